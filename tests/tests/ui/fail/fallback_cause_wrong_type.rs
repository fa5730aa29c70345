use reliable_runtime::{graceful_degradation, Failure};

#[derive(Debug)]
pub struct ApiError;

// The cause is a `&Failure<ApiError>`, not a `&u16`.
fn last_price(_symbol: &str, _cause: &u16) -> Result<f64, ApiError> {
    Ok(0.0)
}

#[graceful_degradation(fallback = last_price)]
fn price(symbol: &str) -> Result<f64, ApiError> {
    let _ = symbol;
    Err(ApiError)
}

async fn last_price_async(_symbol: &str, _cause: &Failure<u16>) -> Result<f64, ApiError> {
    Ok(0.0)
}

#[graceful_degradation(fallback = last_price_async)]
async fn price_async(symbol: &str) -> Result<f64, ApiError> {
    let _ = symbol;
    Err(ApiError)
}

fn main() {}
