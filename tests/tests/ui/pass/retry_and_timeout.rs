use reliable_runtime::{circuit_breaker, monitored, timeout, with_backoff, Failure, Rejected};
use std::time::Duration;

#[derive(Debug)]
pub enum ApiError {
    Status(u16),
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

fn is_transient(error: &ApiError) -> bool {
    matches!(error, ApiError::Status(500..))
}

fn retry_after(error: &ApiError) -> Option<Duration> {
    matches!(error, ApiError::Status(429)).then(|| Duration::from_secs(1))
}

fn log_retry(attempt: u32, delay: Duration, error: &Failure<ApiError>) {
    let _ = (attempt, delay, error);
}

pub struct Client {
    calls: u32,
}

impl Client {
    #[with_backoff(initial_delay = "500ms", max_delay = "10s", multiplier = 2.0, max_attempts = 3, jitter = "equal", retry_if = is_transient, retry_after = retry_after, on_retry = log_retry)]
    #[circuit_breaker]
    #[monitored]
    #[timeout("2s")]
    pub async fn full_stack(&self, symbol: &str) -> Result<usize, ApiError> {
        Ok(symbol.len())
    }

    #[with_backoff(budget = false)]
    async fn by_mut(&mut self) -> Result<u32, ApiError> {
        self.calls += 1;
        Ok(self.calls)
    }

    #[timeout(5)]
    async fn by_value(self, owned: String) -> Result<String, ApiError> {
        Ok(owned)
    }

    #[with_backoff(max_attempts = 2, jitter = "none", retry_timeouts = false, budget_ratio = 0.2)]
    fn blocking(&self) -> Result<u32, ApiError> {
        Ok(self.calls)
    }
}

fn main() {
    let _ = (limits::both(), limits::blocking());
    let mut client = Client { calls: 0 };
    let _ = client.blocking();
    let _ = client.full_stack("x");
    let _ = client.by_mut();
    let _ = Client { calls: 0 }.by_value(String::new());
}

mod limits {
    use reliable_runtime::{bulkhead, rate_limited, Rejected};

    #[rate_limited(name = "ui_exchange", per_minute = 1200, burst = 50, wait = true)]
    #[bulkhead(max_concurrent = 25, max_wait = "100ms")]
    pub async fn both() -> Result<(), Rejected> {
        Ok(())
    }

    #[rate_limited(per_second = 5)]
    #[bulkhead(max_concurrent = 2)]
    pub fn blocking() -> Result<(), Rejected> {
        Ok(())
    }
}
