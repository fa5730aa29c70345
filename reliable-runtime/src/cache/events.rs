//! The event a cache publishes.

use serde::Serialize;
use std::time::{Duration, SystemTime};

/// A stale value served because its refresh failed (an [`Event`](crate::event::Event)).
#[derive(Clone, Debug, Serialize)]
pub struct StaleServed {
    /// The cache's name.
    pub cache: &'static str,
    /// How old the served value is.
    pub age: Duration,
    /// Wall-clock time.
    #[serde(skip)]
    pub at: SystemTime,
}
