//! Limits on when and how much a source is called: rate limits, bulkheads and per-attempt
//! timeouts.

mod bulkhead;
mod rate;
pub(crate) mod refused;
mod timeout;

pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadSlot, BulkheadSnapshot};
pub use rate::{RateLimit, RateLimiter, RateLimiterConfig, RateLimiterSnapshot, MAX_RATE_LIMIT};
pub use refused::LimitReached;
pub use timeout::{TimeoutPolicy, TimeoutSnapshot};
