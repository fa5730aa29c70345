//! Retries with exponential backoff, jitter, server hints and a retry budget.
//!
//! The retry layer ([`RetryPolicy`], its budget and events, `#[with_backoff]`) is the `retry`
//! feature (on by default); [`BackoffConfig`] and [`Jitter`], the delays alone, are always
//! there (presets carry them).
//!
//! A [`RetryPolicy`] is a named, shared instance (in [`retry_registry()`](crate::registry::retry_registry)):
//! its [`BackoffConfig`] says how long to wait, its [`RetryBudget`] how many retries the whole
//! policy may make. Each call keeps a small [`RetryState`] that decides, after each failed
//! attempt, whether and when to try again.
//!
//! ```
//! use reliable_runtime::retry::{BackoffConfig, Jitter, RetryConfig, RetryPolicy};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
//! let policy = RetryPolicy::new("flaky_feed", RetryConfig::default().backoff(BackoffConfig::default().initial_delay(Duration::from_millis(100)).max_attempts(3).jitter(Jitter::None))).unwrap();
//!
//! let mut calls = 0;
//! let price = policy.call(|| { calls += 1; let n = calls; async move { if n < 3 { Err("503") } else { Ok(97_000) } } }).await;
//! assert_eq!(price.unwrap(), 97_000);
//!
//! let error = policy.call(|| async { Err::<(), _>("503") }).await.unwrap_err();
//! assert_eq!((error.attempts, error.error), (3, "503"));
//! # }
//! ```

mod backoff;
#[cfg(feature = "retry")]
mod budget;
#[cfg(feature = "retry")]
pub(crate) mod events;
#[cfg(feature = "retry")]
pub(crate) mod policy;

pub use crate::served::GaveUp;
pub use backoff::{BackoffConfig, Jitter};
#[cfg(feature = "retry")]
pub use budget::RetryBudget;
#[cfg(feature = "retry")]
pub use events::{RetryAttempted, RetryBudgetExhausted};
#[cfg(feature = "retry")]
pub use policy::{RetryConfig, RetryError, RetryPolicy, RetrySnapshot, RetryState};
