#![allow(unused_imports)]
use reliable_runtime::{circuit_breaker, monitored, Rejected};

#[derive(Debug)]
pub struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

trait Api {
    #[monitored]
    async fn fetch(&self) -> Result<(), ApiError>;
}

fn main() {}
