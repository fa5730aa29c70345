#![allow(unused_imports)]
use reliable_runtime::{circuit_breaker, monitored, Rejected};

#[derive(Debug)]
pub struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

fn is_server_error(status: &u16) -> bool {
    *status >= 500
}

#[circuit_breaker(failure_if = is_server_error)]
async fn fetch() -> Result<(), ApiError> {
    Ok(())
}

fn main() {}
