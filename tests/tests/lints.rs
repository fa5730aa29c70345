//! The expansion pushes no warnings onto users: attributed fns compile under strict lints
//! (checked by `cargo clippy --all-targets -- -D warnings` in CI).
#![deny(
    warnings,
    clippy::pedantic,
    unused_qualifications,
    unused_results,
    dead_code,
    missing_docs,
    unsafe_code
)]

use reliable_runtime::{circuit_breaker, monitored, timeout, with_backoff, Rejected};

/// An error.
#[derive(Debug)]
pub struct LintError;

impl From<Rejected> for LintError {
    fn from(_: Rejected) -> Self {
        LintError
    }
}

/// A client.
pub struct LintClient;

impl LintClient {
    /// Both attributes on a method.
    ///
    /// # Errors
    /// Never.
    #[monitored(name = "lints_method")]
    #[circuit_breaker(name = "lints_method")]
    pub async fn method(&self, symbol: &str) -> Result<usize, LintError> {
        Ok(symbol.len())
    }

    /// A blocking method returning unit.
    #[monitored]
    pub fn unit(&self) {}
}

/// A free fn with defaults.
///
/// # Errors
/// Never.
#[circuit_breaker]
#[monitored]
pub async fn free(value: u32) -> Result<u32, LintError> {
    Ok(value)
}

/// A blocking breaker.
///
/// # Errors
/// Never.
#[circuit_breaker(timeout = "250ms", failure_threshold = 2)]
pub fn blocking(value: u32) -> Result<u32, LintError> {
    Ok(value)
}

/// Every per-call layer at once.
///
/// # Errors
/// Never.
#[with_backoff(max_attempts = 2, initial_delay = "1ms")]
#[circuit_breaker(name = "lints_full")]
#[monitored(name = "lints_full")]
#[timeout("1s")]
pub async fn full(value: &str) -> Result<usize, LintError> {
    Ok(value.len())
}

/// Retried blocking fn.
///
/// # Errors
/// Never.
#[with_backoff(max_attempts = 2, initial_delay = "1ms", jitter = "none")]
pub fn blocking_retried(value: u8) -> Result<u8, LintError> {
    Ok(value)
}

#[tokio::test]
async fn strict_lints_hold() {
    assert_eq!(full("abc").await.unwrap(), 3);
    assert_eq!(blocking_retried(2).unwrap(), 2);
    assert_eq!(LintClient.method("ab").await.unwrap(), 2);
    LintClient.unit();
    assert_eq!(free(3).await.unwrap(), 3);
    assert_eq!(blocking(4).unwrap(), 4);
}
