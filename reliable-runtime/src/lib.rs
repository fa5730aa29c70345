//! Make calls to flaky services reliable with one attribute.
//!
//! `reliable` wraps async fns and methods (and blocking ones) in SLA monitoring and circuit
//! breaking, with global registries and one [`get_system_health()`] that shows it all.
//! Depend on this crate alone: it re-exports the attributes.
//!
//! # A tour
//!
//! ```
//! use reliable_runtime::{circuit_breaker, get_system_health, monitored, Rejected};
//!
//! #[derive(Debug)]
//! enum ApiError {
//!     Http(u16),
//!     Unavailable(Rejected),
//! }
//!
//! impl From<Rejected> for ApiError {
//!     fn from(rejected: Rejected) -> Self {
//!         ApiError::Unavailable(rejected)
//!     }
//! }
//!
//! struct Exchange;
//!
//! impl Exchange {
//!     /// Latency and outcome of each call go to the monitor `binance_orderbook`; five failures
//!     /// in a row open the breaker `binance_api` (shared by every endpoint naming it) for 30 s.
//!     #[monitored(name = "binance_orderbook", p95 = "1s", p99 = "2s", min_success_rate = 0.95)]
//!     #[circuit_breaker(name = "binance_api", failure_threshold = 5, timeout = 30, success_threshold = 2)]
//!     async fn orderbook(&self, symbol: &str) -> Result<Vec<(f64, f64)>, ApiError> {
//!         if symbol.is_empty() {
//!             return Err(ApiError::Http(400));
//!         }
//!         Ok(vec![(100.0, 1.5)])
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let book = Exchange.orderbook("BTCUSDT").await.unwrap();
//! assert_eq!(book.len(), 1);
//!
//! let health = get_system_health();
//! assert_eq!(health.data_sources["binance_orderbook"].total_calls, 1);
//! assert_eq!(health.circuit_breakers["binance_api"].state.as_str(), "CLOSED");
//! println!("{}", serde_json::to_string_pretty(&health).unwrap());
//! # }
//! ```
//!
//! # The pipeline
//!
//! However the attributes are stacked, a function gets one pipeline, in this order:
//!
//! ```text
//! caller -> circuit_breaker (open: Rejected::CircuitOpen, no call) -> monitored -> your body
//! ```
//!
//! so the monitor measures the source's real attempts and the breaker counts every attempt.
//!
//! # Modules
//!
//! - [`breaker`]: the [`CircuitBreaker`](breaker::CircuitBreaker) state machine, usable directly.
//! - [`sla`]: the [`SlaMonitor`](sla::SlaMonitor), percentiles and status rules.
//! - [`registry`]: the global registries by name.
//! - [`health`]: [`get_system_health()`] and its serde shapes.
//! - [`event`]: typed state-change events to subscribe to.
//! - [`clock`]: the clock every pattern reads, mockable in tests.

#![deny(missing_docs)]
#![warn(rustdoc::broken_intra_doc_links)]

pub mod breaker;
pub mod clock;
mod error;
pub mod event;
pub mod health;
pub mod registry;
mod pipeline;
mod shard;
pub mod sla;

#[doc(hidden)]
#[path = "private.rs"]
pub mod __private;
use __private as private;

pub use error::{ConfigError, Failure, Rejected};
pub use health::{get_system_health, SystemHealth};

pub use reliable_macros::{circuit_breaker, monitored};
