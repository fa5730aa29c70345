//! Limits on when and how much a source is called: rate limits and bulkheads (feature `limit`,
//! on by default), and per-attempt timeouts.

#[cfg(feature = "limit")]
pub(crate) mod bulkhead;
#[cfg(feature = "limit")]
pub(crate) mod rate;
pub(crate) mod refused;
pub(crate) mod timeout;
#[cfg(feature = "limit")]
mod weighted;

#[cfg(feature = "limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
pub use bulkhead::{Bulkhead, BulkheadConfig, BulkheadSlot, BulkheadSnapshot};
#[cfg(feature = "limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
pub use rate::{RateLimit, RateLimiter, RateLimiterConfig, RateLimiterSnapshot, MAX_RATE_LIMIT};
pub use refused::LimitReached;
pub use timeout::{TimeoutConfig, TimeoutPolicy, TimeoutSnapshot};
#[cfg(feature = "limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
pub use weighted::{KeyedLimiter, WeightedLimiter, WeightedSnapshot, WindowUse, MAX_WINDOWS};
