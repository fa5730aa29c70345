use reliable_runtime::{monitored, Rejected};

#[monitored(min_success_rate = 95)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
