//! Graceful degradation: what a call answers when it fails, and how often that happened.
//!
//! `#[graceful_degradation(fallback = ...)]` is the outermost layer of a fn: when the call
//! fails (its own error, or a [`Rejected`](crate::Rejected) from an open breaker, a timeout, a
//! rate limit or a full bulkhead) and the cache has no stale value to serve, the fallback
//! answers. Each call site counts its fallbacks in a [`Degradation`] registered under the fn's
//! name; `get_system_health()` shows them as `degradation`.
//!
//! ```
//! use reliable_runtime::{graceful_degradation, Failure};
//!
//! #[derive(Debug)]
//! struct ApiError;
//!
//! fn last_known_price(symbol: &str, cause: &Failure<ApiError>) -> Result<f64, ApiError> {
//!     assert!(!cause.is_rejected());
//!     Ok(if symbol == "BTCUSDT" { 97_000.0 } else { 0.0 })
//! }
//!
//! #[graceful_degradation(fallback = last_known_price, name = "degrade_doc")]
//! fn price(symbol: &str) -> Result<f64, ApiError> {
//!     Err(ApiError)
//! }
//!
//! assert_eq!(price("BTCUSDT").unwrap(), 97_000.0);
//! let stats = reliable_runtime::degrade::degradation_registry().get("degrade_doc").unwrap();
//! assert_eq!(stats.snapshot().fallbacks, 1);
//! ```

use crate::common::registry::{Registered, Registry};
use crate::error::ConfigError;
use serde::Serialize;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;

/// The fallback counters of one call site (or of any code that degrades by hand).
#[derive(Debug)]
pub struct Degradation {
    name: &'static str,
    fallbacks: AtomicU64,
    fallback_panics: AtomicU64,
}

/// A [`Degradation`]'s counters, as `get_system_health()` shows them (`degradation`).
///
/// A call site's counters are registered on its first fallback, so health lists a site only
/// once it has fallen back; from then on they count until the process ends and are never
/// reset.
///
/// ```
/// use reliable_runtime::degrade::Degradation;
///
/// let degradation = Degradation::new("degradation_snapshot_doc").unwrap();
/// degradation.record_fallback();
/// degradation.record_panic();
/// let stats = degradation.snapshot();
/// assert_eq!((stats.fallbacks, stats.fallback_panics), (1, 1));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DegradationSnapshot {
    /// Failed calls (the call's own error after its retries, or a refusal) that the fallback
    /// answered, whatever it answered. A call served a stale cache value instead is counted
    /// by the cache (`stale_if_error`), not here.
    pub fallbacks: u64,
    /// Fallbacks that panicked; the caller got the original error. Not counted in
    /// `fallbacks`.
    pub fallback_panics: u64,
}

impl Degradation {
    /// New counters named `name`.
    ///
    /// ```
    /// use reliable_runtime::degrade::Degradation;
    ///
    /// let degradation = Degradation::new("degradation_new_doc").unwrap();
    /// degradation.record_fallback();
    /// assert_eq!(degradation.snapshot().fallbacks, 1);
    /// ```
    pub fn new(name: &str) -> Result<Self, ConfigError> {
        if name.is_empty() {
            return Err(ConfigError::new("name", "must not be empty"));
        }
        Ok(Degradation::named(name))
    }

    /// New counters named `name`, which the caller checked is not empty.
    pub(crate) fn named(name: &str) -> Self {
        Degradation {
            name: crate::common::intern::intern(name),
            fallbacks: AtomicU64::new(0),
            fallback_panics: AtomicU64::new(0),
        }
    }

    /// The registry name.
    pub fn name(&self) -> &str {
        self.name
    }

    /// Counts a failed call answered by the fallback. Failures are the cold path, so one shared
    /// atomic is enough here.
    pub fn record_fallback(&self) {
        self.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a fallback that panicked.
    pub fn record_panic(&self) {
        self.fallback_panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> DegradationSnapshot {
        DegradationSnapshot {
            fallbacks: self.fallbacks.load(Ordering::Relaxed),
            fallback_panics: self.fallback_panics.load(Ordering::Relaxed),
        }
    }
}

/// The registry of graceful-degradation counters (one per `#[graceful_degradation]` site).
pub fn degradation_registry() -> &'static Registry<Degradation> {
    static REGISTRY: OnceLock<Registry<Degradation>> = OnceLock::new();
    REGISTRY.get_or_init(Registry::new)
}

impl Registered for Degradation {
    type Config = ();
    fn name(&self) -> &str {
        Degradation::name(self)
    }
    fn create(name: &str, (): ()) -> Result<Self, ConfigError> {
        Degradation::new(name)
    }
}
