use reliable_runtime::graceful_degradation;

#[derive(Debug)]
pub struct ApiError;

#[graceful_degradation(fallback = "no price")]
async fn price(symbol: &str) -> Result<f64, ApiError> {
    let _ = symbol;
    Err(ApiError)
}

fn main() {
    let _ = price("BTC");
}
