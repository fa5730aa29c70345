//! [`Policy`]: the whole reliability pipeline of one call site as a value.
//!
//! A policy holds the layers of a call, each optional and each a registered instance that
//! health shows under its name, in one fixed order:
//!
//! ```text
//! caller -> fallback -> cache -> retry (budget) -> breaker -> rate limit -> bulkhead -> monitor -> timeout -> call
//! ```
//!
//! The attributes build one per function; anything else (an HTTP client, a consumer, a job)
//! builds its own with [`Policy::builder`] and calls through it:
//!
//! ```
//! use reliable_runtime::preset::CEX;
//! use reliable_runtime::{Policy, Rejected};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! enum ApiError {
//!     Http(u16),
//!     Unavailable(Rejected),
//! }
//! impl From<Rejected> for ApiError {
//!     fn from(rejected: Rejected) -> Self {
//!         ApiError::Unavailable(rejected)
//!     }
//! }
//!
//! async fn fetch_orderbook(symbol: &str) -> Result<Vec<(f64, f64)>, ApiError> {
//!     if symbol.is_empty() { return Err(ApiError::Http(400)); }
//!     Ok(vec![(97_000.0, 1.5)])
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let policy = Policy::builder("policy_doc_orderbook")
//!     .preset(CEX)
//!     .breaker("policy_doc_binance", |breaker| breaker.failure_threshold(3))
//!     .timeout(Duration::from_secs(2))
//!     .build()?;
//! let book = policy.call(|| fetch_orderbook("BTCUSDT")).await.unwrap();
//! assert_eq!(book.len(), 1);
//! assert_eq!(policy.monitor().unwrap().metrics().total_calls, 1);
//! # Ok(()) }
//! ```

mod builder;
#[cfg(feature = "cache")]
mod cached;
mod call;
mod catch_unwind;
pub(crate) mod conflict;
mod hooks;
pub(crate) mod layers;
#[cfg(feature = "cache")]
mod out_of_line;
pub(crate) mod span;
#[cfg(feature = "tower")]
#[cfg_attr(docsrs, doc(cfg(feature = "tower")))]
pub mod tower;

pub use builder::PolicyBuilder;
#[cfg(feature = "retry")]
pub(crate) use call::{after_attempt, record_success};
pub(crate) use call::{call_flags, Call};
pub use call::{CallFuture, Deliver, OwnError, WithFailure};
pub use conflict::ConfigConflict;
pub use hooks::{ErrorHooks, FromPolicy, Hooks};

use crate::breaker::CircuitBreaker;
use crate::common::intern::intern;
use crate::degrade::Degradation;
use crate::limit::TimeoutPolicy;
#[cfg(feature = "limit")]
use crate::limit::{Bulkhead, RateLimiter};
use crate::policy::layers::Layers;
use crate::registry::degradation_registry;
#[cfg(feature = "retry")]
use crate::retry::RetryPolicy;
use crate::sla::SlaMonitor;
#[cfg(feature = "cache")]
use cached::CacheLayer;
use std::fmt;
use std::sync::{Arc, OnceLock};

/// The layers of one call site, built once by [`Policy::builder`] and called through many
/// times (`&self`: share it in a `static`, an `Arc` or a struct field).
///
/// Calls: [`call`](Self::call) and [`try_call`](Self::try_call) (async, retried),
/// [`call_once`](Self::call_once) (a body that can run only once),
/// [`call_blocking`](Self::call_blocking), [`cached`](Self::cached),
/// [`call_or_else`](Self::call_or_else) (a fallback), [`measure`](Self::measure) (the monitor
/// alone, any output).
///
/// The error contract: `call` gives the call's own error type, so it needs
/// `E: From<Rejected>` for the calls a layer refuses (an open breaker, a timeout, a rate
/// limit, a full bulkhead); `try_call` gives [`Failure<E>`](crate::Failure) for any `E`.
pub struct Policy {
    /// Its layers, and its name (`layers.name`, which the call spans read).
    layers: Layers,
    /// The monitor alone, for [`measure`](Self::measure).
    monitor_only: Layers,
    #[cfg(feature = "cache")]
    cache: Option<CacheLayer>,
    fallback: FallbackLayer,
}

/// The fallback counters, registered on the first fallback.
struct FallbackLayer {
    name: &'static str,
    counters: OnceLock<Arc<Degradation>>,
}

impl FallbackLayer {
    fn new(name: &str) -> Self {
        FallbackLayer {
            name: intern(name),
            counters: OnceLock::new(),
        }
    }

    fn counters(&self) -> &Degradation {
        self.counters.get_or_init(|| {
            degradation_registry()
                .get(self.name)
                .unwrap_or_else(|| degradation_registry().register(Degradation::named(self.name)))
        })
    }
}

impl Policy {
    /// A policy without layers, for a call site whose configuration the runtime refused.
    pub(crate) fn passthrough(name: &str) -> Policy {
        Policy {
            layers: Layers {
                name: intern(name),
                ..Layers::NONE
            },
            monitor_only: Layers::NONE,
            #[cfg(feature = "cache")]
            cache: None,
            fallback: FallbackLayer::new(name),
        }
    }

    /// A builder for the policy `name` (also the default name of each layer).
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("policy_builder_doc").breaker("policy_builder_doc_api", |b| b).build().unwrap();
    /// assert_eq!((policy.name(), policy.breaker().unwrap().name()), ("policy_builder_doc", "policy_builder_doc_api"));
    /// ```
    pub fn builder(name: impl Into<String>) -> PolicyBuilder {
        PolicyBuilder::new(name)
    }

    /// The policy's name.
    ///
    /// ```
    /// use reliable_runtime::{preset::CEX, Policy};
    ///
    /// let policy = Policy::builder("policy_layers_doc").preset(CEX).build().unwrap();
    /// assert_eq!(policy.name(), "policy_layers_doc");
    /// ```
    pub fn name(&self) -> &'static str {
        self.layers.name
    }

    /// The circuit breaker, if the policy has one.
    ///
    /// ```
    /// use reliable_runtime::{preset::CEX, Policy};
    ///
    /// let policy = Policy::builder("policy_layers_doc").preset(CEX).build().unwrap();
    /// assert_eq!(policy.breaker().unwrap().config().failure_threshold, 5, "CEX's");
    /// ```
    pub fn breaker(&self) -> Option<&Arc<CircuitBreaker>> {
        self.layers.breaker.as_ref()
    }

    /// The SLA monitor, if any.
    ///
    /// ```
    /// use reliable_runtime::{preset::CEX, Policy};
    ///
    /// let policy = Policy::builder("policy_layers_doc").preset(CEX).build().unwrap();
    /// assert_eq!(policy.monitor().unwrap().thresholds().max_latency_p95.as_secs(), 1);
    /// ```
    pub fn monitor(&self) -> Option<&Arc<SlaMonitor>> {
        self.layers.monitor.as_ref()
    }

    /// The retry policy, if any.
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    ///
    /// ```
    /// use reliable_runtime::{preset::CEX, Policy};
    ///
    /// let policy = Policy::builder("policy_layers_doc").preset(CEX).build().unwrap();
    /// assert_eq!(policy.retry().unwrap().config().backoff.max_attempts, 3);
    /// ```
    pub fn retry(&self) -> Option<&Arc<RetryPolicy>> {
        self.layers.retry.as_ref()
    }

    /// The rate limiter, if any.
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    ///
    /// ```
    /// use reliable_runtime::{limit::RateLimit, Policy};
    ///
    /// let policy = Policy::builder("policy_limiter_doc").rate_limit("policy_limiter_doc", RateLimit::per_second(10)).build().unwrap();
    /// assert_eq!(policy.rate_limiter().unwrap().limit(), RateLimit::per_second(10));
    /// ```
    pub fn rate_limiter(&self) -> Option<&Arc<RateLimiter>> {
        self.layers.limiter.as_ref()
    }

    /// The bulkhead, if any.
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("policy_bulkhead_doc").bulkhead("policy_bulkhead_doc", |b| b.max_concurrent(3)).build().unwrap();
    /// assert_eq!(policy.bulkhead().unwrap().config().max_concurrent, 3);
    /// ```
    pub fn bulkhead(&self) -> Option<&Arc<Bulkhead>> {
        self.layers.bulkhead.as_ref()
    }

    /// The per-attempt timeout, if any.
    ///
    /// ```
    /// use reliable_runtime::{preset::CEX, Policy};
    ///
    /// let policy = Policy::builder("policy_layers_doc").preset(CEX).build().unwrap();
    /// assert_eq!(policy.timeout().unwrap().after().as_secs(), 2);
    /// ```
    pub fn timeout(&self) -> Option<&Arc<TimeoutPolicy>> {
        self.layers.timeout.as_ref()
    }

    /// The fallback counters (registered on the first fallback of
    /// [`call_or_else`](Self::call_or_else)).
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// let policy = Policy::builder("policy_degradation_doc").build().unwrap();
    /// assert!(policy.degradation().is_none(), "no fallback yet");
    /// let answer = policy.try_call_blocking(|| Err::<u32, _>(Rejected::Timeout { after: Default::default() }));
    /// policy.fall_back_blocking(answer.unwrap_err(), |_cause| Ok(0)).unwrap();
    /// assert_eq!(policy.degradation().unwrap().snapshot().fallbacks, 1);
    /// ```
    pub fn degradation(&self) -> Option<&Arc<Degradation>> {
        self.fallback.counters.get()
    }

    /// Whether the policy has a cache (see [`cached`](Self::cached)).
    ///
    /// ```
    /// use reliable_runtime::{preset::CEX, Policy};
    ///
    /// assert!(!Policy::builder("has_cache_doc").preset(CEX).build().unwrap().has_cache());
    /// assert!(Policy::builder("has_cache_doc_cached").cache("has_cache_doc_cached", |c| c).build().unwrap().has_cache());
    /// ```
    pub fn has_cache(&self) -> bool {
        #[cfg(feature = "cache")]
        return self.cache.is_some();
        #[cfg(not(feature = "cache"))]
        false
    }

    /// Whether a layer can refuse a call (its error type must then hold a `Rejected`).
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// assert!(!Policy::builder("rejects_doc").monitor("rejects_doc", |sla| sla).build().unwrap().rejects());
    /// assert!(Policy::builder("rejects_doc_breaker").breaker("rejects_doc_breaker", |b| b).build().unwrap().rejects());
    /// ```
    pub fn rejects(&self) -> bool {
        #[cfg(feature = "limit")]
        if self.layers.limiter.is_some() || self.layers.bulkhead.is_some() {
            return true;
        }
        self.layers.breaker.is_some() || self.layers.timeout.is_some()
    }
}

impl fmt::Debug for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |layer: Option<&str>| layer.map(str::to_owned);
        let mut f = f.debug_struct("Policy");
        f.field("name", &self.layers.name)
            .field(
                "monitor",
                &name(self.layers.monitor.as_deref().map(SlaMonitor::name)),
            )
            .field(
                "breaker",
                &name(self.layers.breaker.as_deref().map(CircuitBreaker::name)),
            )
            .field(
                "timeout",
                &self.layers.timeout.as_deref().map(TimeoutPolicy::after),
            )
            .field("hooks", &self.layers.hooks);
        #[cfg(feature = "retry")]
        f.field(
            "retry",
            &name(self.layers.retry.as_deref().map(RetryPolicy::name)),
        );
        #[cfg(feature = "limit")]
        f.field(
            "rate_limiter",
            &name(self.layers.limiter.as_deref().map(RateLimiter::name)),
        )
        .field(
            "bulkhead",
            &name(self.layers.bulkhead.as_deref().map(Bulkhead::name)),
        );
        #[cfg(feature = "cache")]
        f.field("cache", &self.cache.as_ref().map(CacheLayer::name));
        f.finish()
    }
}
