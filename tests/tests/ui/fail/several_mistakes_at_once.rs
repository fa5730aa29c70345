#![allow(unused_imports)]
use reliable_runtime::{circuit_breaker, monitored, Rejected};

#[derive(Debug)]
pub struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[monitored(p95 = "fast", min_success_rate = 2.0, nme = "x")]
async fn fetch() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
