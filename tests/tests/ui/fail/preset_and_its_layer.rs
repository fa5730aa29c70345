use reliable_runtime::{circuit_breaker, reliable_dex_call, Rejected};

#[derive(Debug)]
pub struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[reliable_dex_call(key = pair.to_owned())]
#[circuit_breaker(failure_threshold = 3)]
async fn liquidity(pair: &str) -> Result<u64, ApiError> {
    Ok(pair.len() as u64)
}

fn main() {
    let _ = liquidity("SOL/USDC");
}
