use reliable_runtime::{circuit_breaker, Rejected};

#[circuit_breaker(timeout = "30 parsecs")]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
