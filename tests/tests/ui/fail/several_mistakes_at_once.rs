use reliable_runtime::{monitored, Rejected};

#[monitored(p95 = "fast", min_success_rate = 2.0, nme = "x")]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
