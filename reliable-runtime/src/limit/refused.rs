//! [`LimitReached`]: the event a limiter, bulkhead or timeout publishes.

use serde::Serialize;

/// A limiter, bulkhead or timeout that refused or dropped a call.
#[derive(Clone, Debug, Serialize)]
pub struct LimitReached {
    /// The limiter's, bulkhead's or timeout's registry name.
    pub name: &'static str,
    /// When a slot frees up, if known.
    pub retry_after: Option<std::time::Duration>,
}
