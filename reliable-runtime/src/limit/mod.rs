//! Limits on when and how much a source is called: rate limits and bulkheads (timeouts are
//! applied per attempt by the pipeline: see [`#[timeout]`](crate::timeout)).

mod bulkhead;
mod rate;

pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadSlot, BulkheadSnapshot};
pub use rate::{RateLimit, RateLimiter, RateLimiterConfig, RateLimiterSnapshot};
