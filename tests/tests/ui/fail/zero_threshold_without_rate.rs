use reliable_runtime::{circuit_breaker, Rejected};

#[circuit_breaker(failure_threshold = 0)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
