use reliable_runtime::{reliable, Rejected};

#[derive(Debug)]
pub struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[reliable(key = symbol.to_owned(), cache_ttl = 5)]
async fn orderbook(symbol: &str) -> Result<u64, ApiError> {
    Ok(symbol.len() as u64)
}

fn main() {
    let _ = orderbook("BTC");
}
