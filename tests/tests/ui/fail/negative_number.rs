use reliable_runtime::{circuit_breaker, Rejected};

#[circuit_breaker(success_threshold = -1)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
