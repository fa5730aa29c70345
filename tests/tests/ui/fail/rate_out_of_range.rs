#![allow(unused_imports)]
use reliable_runtime::{circuit_breaker, monitored, Rejected};

#[derive(Debug)]
pub struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[monitored(min_success_rate = 95)]
async fn fetch() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
