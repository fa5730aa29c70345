use reliable_runtime::{circuit_breaker, monitored, Rejected};

#[derive(Debug)]
pub struct ApiError(Option<Rejected>);

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError(Some(rejected))
    }
}

/// Docs stay.
#[monitored]
#[circuit_breaker]
pub async fn both_defaults(symbol: &str) -> Result<usize, ApiError> {
    Ok(symbol.len())
}

#[monitored(name = "ui_free", p95 = 0.25, p99 = "2s", min_success_rate = 0.9, max_consecutive_failures = 4, min_calls = 5, window = "1m", group = "binance")]
pub(crate) async fn monitored_only() -> u8 {
    1
}

#[circuit_breaker(name = "ui_free", failure_threshold = 0, failure_rate = 0.5, slow_call_rate = 1.0, slow_call_duration = "2s", window = 50, minimum_calls = 10, timeout = "30s", timeout_multiplier = 2.0, max_timeout = "5m", success_threshold = 2, half_open_max_calls = 3, group = "binance")]
async fn breaker_only() -> Result<(), ApiError> {
    Ok(())
}

#[monitored]
fn sync_monitored(x: u32) -> u32 {
    x
}

#[circuit_breaker(timeout = 5)]
fn sync_breaker() -> Result<(), ApiError> {
    Ok(())
}

#[monitored]
async fn unit_return() {}

fn main() {
    let _ = (both_defaults("x"), monitored_only(), breaker_only(), unit_return());
    let _ = (sync_monitored(1), sync_breaker());
}
