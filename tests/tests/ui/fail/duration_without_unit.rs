use reliable_runtime::{monitored, Rejected};

#[monitored(p95 = "5")]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
