use reliable_runtime::{circuit_breaker, Rejected};

#[circuit_breaker(timeout = "1m", max_timeout = "30s")]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
