use reliable_runtime::{circuit_breaker, Rejected};

#[circuit_breaker(window_failures = 20, window = 10)]
async fn more_failures_than_calls() -> Result<(), Rejected> {
    Ok(())
}

#[circuit_breaker(window_failures = 0, window = "1m")]
async fn zero_failures() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
