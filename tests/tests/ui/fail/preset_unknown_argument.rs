use reliable_runtime::{reliable_cex_call, Rejected};

#[derive(Debug)]
pub struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[reliable_cex_call(cache_tll = 5, key = symbol.to_owned())]
async fn orderbook(symbol: &str) -> Result<u64, ApiError> {
    Ok(symbol.len() as u64)
}

fn main() {
    let _ = orderbook("BTC");
}
