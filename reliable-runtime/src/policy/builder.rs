//! [`PolicyBuilder`]: names and configures each layer, then validates them all at once.

#[cfg(feature = "cache")]
use super::cached::CacheLayer;
use super::conflict::{settings_of, ConfigConflict, OnConflict};
use super::ErrorHooks;
use super::{FallbackLayer, Policy};
use crate::breaker::{BreakerConfig, CircuitBreaker};
#[cfg(feature = "cache")]
use crate::cache::CacheConfig;
use crate::clock::Clock;
use crate::common::intern::intern;
use crate::error::ConfigError;
#[cfg(feature = "retry")]
use crate::error::Failure;
use crate::layer::Layer;
#[cfg(feature = "limit")]
use crate::limit::{
    Bulkhead, BulkheadConfig, RateLimit, RateLimiter, RateLimiterConfig, WeightedLimiter,
};
use crate::limit::{TimeoutConfig, TimeoutPolicy};
use crate::policy::layers::Layers;
use crate::preset::{IntoPreset, PresetValues, DEFAULT};
use crate::registry::{Registered, Registry};
#[cfg(feature = "retry")]
use crate::retry::{RetryConfig, RetryPolicy};
use crate::sla::{SlaMonitor, SlaThresholds, SlaWindow};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Changes a layer's configuration, starting from the preset's (or the defaults).
type Configure<C> = Box<dyn FnOnce(C) -> C + Send>;

/// One layer as the builder was told: its name (the policy's if none), its changes, and
/// whether it asks for settings (a shared layer takes the registered instance as it is).
struct LayerSpec<C> {
    name: Option<String>,
    configure: Option<Configure<C>>,
    shared: bool,
}

impl<C> LayerSpec<C> {
    fn named(name: Option<String>, configure: impl FnOnce(C) -> C + Send + 'static) -> Self {
        LayerSpec {
            name,
            configure: Some(Box::new(configure)),
            shared: false,
        }
    }

    fn defaults() -> Self {
        LayerSpec {
            name: None,
            configure: None,
            shared: false,
        }
    }

    fn shared(name: String) -> Self {
        LayerSpec {
            name: Some(name),
            configure: None,
            shared: true,
        }
    }

    /// The layer's name, its final configuration, and whether it asks for those settings.
    fn resolve(self, policy: &str, start: C) -> (String, C, Asks) {
        let name = self.name.unwrap_or_else(|| policy.to_owned());
        let config = match self.configure {
            Some(configure) => configure(start),
            None => start,
        };
        let asks = if self.shared {
            Asks::Nothing
        } else {
            Asks::Settings
        };
        (name, config, asks)
    }
}

/// Whether a layer asks for its settings, or takes a registered instance as it is.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Asks {
    Settings,
    Nothing,
}

/// Builds a [`Policy`]: each layer is named and configured on its own, then
/// [`build`](Self::build) validates every layer and registers the new ones, or changes nothing
/// and returns the first [`ConfigError`] (naming the layer and the field).
///
/// A layer whose name is registered already is that instance: that is how the endpoints of one
/// exchange share its breaker. Configure it once (`.breaker(name, ..)`, or
/// `registry::breaker_registry().get_or_create(..)`) and refer to it by name elsewhere
/// (`.shared_breaker(name)`); a policy that asks for other settings under a registered name is a
/// [`ConfigError`] naming the first setting that differs, never a silent choice of one.
///
/// ```
/// use reliable_runtime::preset::CEX;
/// use reliable_runtime::Policy;
/// use std::time::Duration;
///
/// let orderbook = Policy::builder("builder_doc_orderbook")
///     .preset(CEX)
///     .breaker("builder_doc_binance", |breaker| breaker.failure_threshold(3))
///     .timeout(Duration::from_secs(2))
///     .build()
///     .unwrap();
/// let ticker = Policy::builder("builder_doc_ticker")
///     .preset(CEX)
///     .shared_breaker("builder_doc_binance")
///     .build()
///     .unwrap();
/// // One breaker for the exchange, one monitor per endpoint.
/// assert!(std::sync::Arc::ptr_eq(orderbook.breaker().unwrap(), ticker.breaker().unwrap()));
/// assert_eq!(orderbook.monitor().unwrap().name(), "builder_doc_orderbook");
/// assert_eq!(orderbook.breaker().unwrap().config().failure_threshold, 3);
///
/// // Asking for other settings under the same name is refused, naming what differs.
/// let error = Policy::builder("builder_doc_depth")
///     .breaker("builder_doc_binance", |breaker| breaker.failure_threshold(7))
///     .build()
///     .unwrap_err();
/// assert_eq!(error.field(), "failure_threshold");
/// assert_eq!(error.layer(), Some("breaker `builder_doc_binance`"));
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PolicyBuilder {
    name: String,
    preset: Option<PresetValues>,
    clock: Option<Clock>,
    group: Option<Arc<str>>,
    monitor: Option<LayerSpec<SlaThresholds>>,
    monitor_window: SlaWindow,
    breaker: Option<LayerSpec<BreakerConfig>>,
    #[cfg(feature = "retry")]
    retry: Option<LayerSpec<RetryConfig>>,
    #[cfg(feature = "limit")]
    rate_limit: Option<(Option<String>, RateLimit)>,
    #[cfg(feature = "limit")]
    wait_for_rate_limit: bool,
    #[cfg(feature = "limit")]
    weighted_limit: Option<(Arc<WeightedLimiter>, u32)>,
    #[cfg(feature = "redis")]
    shared_limit: Option<(Arc<crate::shared::SharedRateLimiter>, u32)>,
    #[cfg(feature = "limit")]
    bulkhead: Option<LayerSpec<BulkheadConfig>>,
    timeout: Option<LayerSpec<TimeoutConfig>>,
    #[cfg(feature = "cache")]
    cache: Option<LayerSpec<CacheConfig>>,
    fallback: Option<String>,
    hooks: ErrorHooks,
    on_conflict: OnConflict,
}

impl fmt::Debug for PolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut f = f.debug_struct("PolicyBuilder");
        f.field("name", &self.name)
            .field("monitor", &self.monitor.is_some())
            .field("breaker", &self.breaker.is_some())
            .field("timeout", &self.timeout.is_some())
            .field("hooks", &self.hooks);
        #[cfg(feature = "retry")]
        f.field("retry", &self.retry.is_some());
        #[cfg(feature = "limit")]
        f.field("rate_limit", &self.rate_limit)
            .field("bulkhead", &self.bulkhead.is_some());
        #[cfg(feature = "cache")]
        f.field("cache", &self.cache.is_some());
        f.finish_non_exhaustive()
    }
}

impl PolicyBuilder {
    pub(super) fn new(name: impl Into<String>) -> Self {
        PolicyBuilder {
            name: name.into(),
            preset: None,
            clock: None,
            group: None,
            monitor: None,
            monitor_window: SlaWindow::default(),
            breaker: None,
            #[cfg(feature = "retry")]
            retry: None,
            #[cfg(feature = "limit")]
            rate_limit: None,
            #[cfg(feature = "limit")]
            wait_for_rate_limit: false,
            #[cfg(feature = "limit")]
            weighted_limit: None,
            #[cfg(feature = "redis")]
            shared_limit: None,
            #[cfg(feature = "limit")]
            bulkhead: None,
            timeout: None,
            #[cfg(feature = "cache")]
            cache: None,
            fallback: None,
            hooks: ErrorHooks::default(),
            on_conflict: OnConflict::Refuse,
        }
    }

    /// For an attribute's call site, which has no caller to refuse: a layer registered with
    /// other settings is taken as it is, with a warning and an event.
    pub(crate) fn taking_registered_layers(mut self) -> Self {
        self.on_conflict = OnConflict::TakeRegistered;
        self
    }

    /// Starts every layer from `preset`'s configurations (a [`Preset`](crate::preset::Preset),
    /// or the name of one registered in code or declared by a file) and turns on the layers a
    /// preset stands for: the monitor, the breaker and retries (with the `retry` feature),
    /// named after the policy unless named otherwise. The cache takes the preset's
    /// configuration when [`cache`](Self::cache) turns it on.
    ///
    /// ```
    /// use reliable_runtime::preset::DEX;
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("preset_doc").preset(DEX).build().unwrap();
    /// assert_eq!(policy.monitor().unwrap().thresholds().max_latency_p95.as_secs(), 3);
    /// assert_eq!(policy.breaker().unwrap().name(), "preset_doc");
    /// assert!(policy.timeout().is_some());
    /// ```
    pub fn preset(mut self, preset: impl IntoPreset) -> Self {
        self.preset = Some(preset.into_values());
        self.monitor.get_or_insert_with(LayerSpec::defaults);
        self.breaker.get_or_insert_with(LayerSpec::defaults);
        #[cfg(feature = "retry")]
        self.retry.get_or_insert_with(LayerSpec::defaults);
        self.timeout.get_or_insert_with(LayerSpec::defaults);
        self
    }

    /// The SLA monitor `name`: its thresholds, from the preset's or the defaults.
    ///
    /// ```
    /// use reliable_runtime::Policy;
    /// use std::time::Duration;
    ///
    /// let policy = Policy::builder("monitor_doc_depth")
    ///     .monitor("monitor_doc", |sla| sla.max_latency_p95(Duration::from_millis(800)))
    ///     .build()
    ///     .unwrap();
    /// let monitor = policy.monitor().unwrap();
    /// assert_eq!((monitor.name(), monitor.thresholds().max_latency_p95), ("monitor_doc", Duration::from_millis(800)));
    /// ```
    pub fn monitor(
        mut self,
        name: impl Into<String>,
        configure: impl FnOnce(SlaThresholds) -> SlaThresholds + Send + 'static,
    ) -> Self {
        self.monitor = Some(LayerSpec::named(Some(name.into()), configure));
        self
    }

    /// The monitor's window (default: the last 100 calls).
    ///
    /// ```
    /// use reliable_runtime::sla::SlaWindow;
    /// use reliable_runtime::Policy;
    /// use std::time::Duration;
    ///
    /// let policy = Policy::builder("monitor_window_doc").monitor("monitor_window_doc", |sla| sla).monitor_window(SlaWindow::Time(Duration::from_secs(300))).build().unwrap();
    /// assert_eq!(policy.monitor().unwrap().window(), SlaWindow::Time(Duration::from_secs(300)));
    /// ```
    pub fn monitor_window(mut self, window: SlaWindow) -> Self {
        self.monitor_window = window;
        self
    }

    /// The circuit breaker `name`, shared with every policy and attribute naming it.
    ///
    /// ```
    /// use reliable_runtime::Policy;
    /// use std::time::Duration;
    ///
    /// let policy = Policy::builder("breaker_doc_depth")
    ///     .breaker("breaker_doc", |breaker| breaker.failure_threshold(3).timeout(Duration::from_secs(30)))
    ///     .build()
    ///     .unwrap();
    /// assert_eq!(policy.breaker().unwrap().config().failure_threshold, 3);
    /// ```
    pub fn breaker(
        mut self,
        name: impl Into<String>,
        configure: impl FnOnce(BreakerConfig) -> BreakerConfig + Send + 'static,
    ) -> Self {
        self.breaker = Some(LayerSpec::named(Some(name.into()), configure));
        self
    }

    /// The circuit breaker `name` as it is registered (configured once elsewhere), or, if
    /// nothing has registered it yet, one with the preset's settings (or the defaults).
    ///
    /// ```
    /// use reliable_runtime::registry::breaker_registry;
    /// use reliable_runtime::breaker::BreakerConfig;
    /// use reliable_runtime::Policy;
    ///
    /// breaker_registry()
    ///     .get_or_create("shared_breaker_doc", BreakerConfig::default().failure_threshold(9))
    ///     .unwrap();
    /// let policy = Policy::builder("shared_breaker_doc_ticker").shared_breaker("shared_breaker_doc").build().unwrap();
    /// assert_eq!(policy.breaker().unwrap().config().failure_threshold, 9);
    /// ```
    pub fn shared_breaker(mut self, name: impl Into<String>) -> Self {
        self.breaker = Some(LayerSpec::shared(name.into()));
        self
    }

    /// The SLA monitor `name` as it is registered; see [`shared_breaker`](Self::shared_breaker).
    ///
    /// ```
    /// use reliable_runtime::registry::sla_registry;
    /// use reliable_runtime::Policy;
    ///
    /// sla_registry().get_or_create("shared_monitor_doc", reliable_runtime::sla::SlaThresholds::dex()).unwrap();
    /// let policy = Policy::builder("shared_monitor_doc_user").shared_monitor("shared_monitor_doc").build().unwrap();
    /// assert_eq!(policy.monitor().unwrap().thresholds().max_latency_p95.as_secs(), 3);
    /// ```
    pub fn shared_monitor(mut self, name: impl Into<String>) -> Self {
        self.monitor = Some(LayerSpec::shared(name.into()));
        self
    }

    /// The retry policy `name` as it is registered; see [`shared_breaker`](Self::shared_breaker).
    ///
    /// ```
    /// use reliable_runtime::registry::retry_registry;
    /// use reliable_runtime::Policy;
    ///
    /// retry_registry().get_or_create("shared_retry_doc", reliable_runtime::retry::RetryConfig::default().max_attempts(5)).unwrap();
    /// let policy = Policy::builder("shared_retry_doc_user").shared_retry("shared_retry_doc").build().unwrap();
    /// assert_eq!(policy.retry().unwrap().config().backoff.max_attempts, 5);
    /// ```
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    pub fn shared_retry(mut self, name: impl Into<String>) -> Self {
        self.retry = Some(LayerSpec::shared(name.into()));
        self
    }

    /// The bulkhead `name` as it is registered; see [`shared_breaker`](Self::shared_breaker).
    ///
    /// ```
    /// use reliable_runtime::limit::BulkheadConfig;
    /// use reliable_runtime::registry::bulkhead_registry;
    /// use reliable_runtime::Policy;
    ///
    /// bulkhead_registry().get_or_create("shared_bulkhead_doc", BulkheadConfig::default().max_concurrent(7)).unwrap();
    /// let policy = Policy::builder("shared_bulkhead_doc_user").shared_bulkhead("shared_bulkhead_doc").build().unwrap();
    /// assert_eq!(policy.bulkhead().unwrap().config().max_concurrent, 7);
    /// ```
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    pub fn shared_bulkhead(mut self, name: impl Into<String>) -> Self {
        self.bulkhead = Some(LayerSpec::shared(name.into()));
        self
    }

    /// Retries with backoff (policy `name`); every error is retried unless
    /// [`retry_if`](Self::retry_if) says otherwise; rejections are not, timeouts are.
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum ApiError { Unavailable, Rejected(Rejected) }
    /// impl From<Rejected> for ApiError {
    ///     fn from(rejected: Rejected) -> Self { ApiError::Rejected(rejected) }
    /// }
    ///
    /// let policy = Policy::builder("retry_doc")
    ///     .retry("retry_doc", |retry| retry.max_attempts(3).initial_delay(Duration::from_millis(1)))
    ///     .build()
    ///     .unwrap();
    /// let attempts = AtomicU32::new(0);
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let answer = policy
    ///     .call(|| async {
    ///         match attempts.fetch_add(1, Ordering::SeqCst) {
    ///             0 | 1 => Err(ApiError::Unavailable),
    ///             _ => Ok(7),
    ///         }
    ///     })
    ///     .await;
    /// assert_eq!((answer, attempts.load(Ordering::SeqCst)), (Ok(7), 3));
    /// # });
    /// ```
    pub fn retry(
        mut self,
        name: impl Into<String>,
        configure: impl FnOnce(RetryConfig) -> RetryConfig + Send + 'static,
    ) -> Self {
        self.retry = Some(LayerSpec::named(Some(name.into()), configure));
        self
    }

    /// A sliding-window rate limit (limiter `name`); over it, a call is refused with
    /// `Rejected::RateLimited` unless [`wait_for_rate_limit`](Self::wait_for_rate_limit).
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    ///
    /// ```
    /// use reliable_runtime::limit::RateLimit;
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// let policy = Policy::builder("rate_limit_doc").rate_limit("rate_limit_doc", RateLimit::per_second(2)).build().unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// for _ in 0..2 {
    ///     assert_eq!(policy.call(|| async { Ok::<_, Rejected>(1) }).await, Ok(1));
    /// }
    /// assert!(matches!(policy.call(|| async { Ok::<_, Rejected>(1) }).await, Err(Rejected::RateLimited { .. })));
    /// # });
    /// ```
    pub fn rate_limit(mut self, name: impl Into<String>, limit: RateLimit) -> Self {
        self.rate_limit = Some((Some(name.into()), limit));
        self
    }

    /// Each call takes `weight` of `limiter`'s windows (several at once, corrected by what the
    /// server reports): share one limiter between the endpoints of an exchange, each with its
    /// request weight. Refused with `Rejected::RateLimited` unless
    /// [`wait_for_rate_limit`](Self::wait_for_rate_limit). Beside a
    /// [`rate_limit`](Self::rate_limit), both must admit the call.
    ///
    /// ```
    /// use reliable_runtime::clock::Clock;
    /// use reliable_runtime::limit::{RateLimit, WeightedLimiter};
    /// use reliable_runtime::{Policy, Rejected};
    /// use std::sync::Arc;
    ///
    /// let weight = Arc::new(WeightedLimiter::new("binance_weight_doc", &[RateLimit::per_minute(1200)], Clock::system()).unwrap());
    /// let depth = Policy::builder("binance_depth_doc").weighted_limit(Arc::clone(&weight), 250).build().unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// for _ in 0..4 {
    ///     assert_eq!(depth.call(|| async { Ok::<_, Rejected>(1) }).await, Ok(1));
    /// }
    /// // 1000 of 1200 used: a fifth snapshot of weight 250 does not fit.
    /// assert!(matches!(depth.call(|| async { Ok::<_, Rejected>(1) }).await, Err(Rejected::RateLimited { .. })));
    /// # });
    /// ```
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    pub fn weighted_limit(mut self, limiter: Arc<WeightedLimiter>, weight: u32) -> Self {
        self.weighted_limit = Some((limiter, weight));
        self
    }

    /// Each call takes `weight` of a limit shared by every instance of the service through
    /// Redis (see [`SharedRateLimiter`](crate::shared::SharedRateLimiter)): ten replicas
    /// together stay within an exchange's limit. Refused with `Rejected::RateLimited` unless
    /// [`wait_for_rate_limit`](Self::wait_for_rate_limit) (then it waits what the server says,
    /// asking again at least each second; the admission comes before the call's timeouts
    /// start, as a bulkhead's wait does). Answered locally within the store's timeout when
    /// Redis is unavailable; a blocking call (`call_blocking`) always takes from the local
    /// share.
    ///
    /// ```no_run
    /// use reliable_runtime::limit::RateLimit;
    /// use reliable_runtime::shared::{SharedRateLimiter, SharedStore};
    /// use reliable_runtime::Policy;
    /// use std::sync::Arc;
    ///
    /// # fn main() -> Result<(), reliable_runtime::ConfigError> {
    /// let store = SharedStore::new("ingest", "redis://127.0.0.1:6379/")?;
    /// let weight = SharedRateLimiter::new(&store, "binance_weight", &[RateLimit::per_minute(1200)])?;
    /// let depth = Policy::builder("binance_depth")
    ///     .shared_rate_limit(Arc::new(weight), 10)
    ///     .wait_for_rate_limit()
    ///     .build()?;
    /// # let _ = depth;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub fn shared_rate_limit(
        mut self,
        limiter: Arc<crate::shared::SharedRateLimiter>,
        weight: u32,
    ) -> Self {
        self.shared_limit = Some((limiter, weight));
        self
    }

    /// Waits for a rate-limit slot instead of refusing (async calls; a blocking call sleeps).
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    ///
    /// ```
    /// use reliable_runtime::limit::RateLimit;
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// let policy = Policy::builder("wait_doc")
    ///     .rate_limit("wait_doc", RateLimit::per_second(1))
    ///     .wait_for_rate_limit()
    ///     .build()
    ///     .unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let started = tokio::time::Instant::now();
    /// for _ in 0..2 {
    ///     assert_eq!(policy.call(|| async { Ok::<_, Rejected>(1) }).await, Ok(1));
    /// }
    /// assert!(started.elapsed() >= std::time::Duration::from_millis(900), "the second waited its slot");
    /// # });
    /// ```
    pub fn wait_for_rate_limit(mut self) -> Self {
        self.wait_for_rate_limit = true;
        self
    }

    /// A bulkhead `name`: at most `max_concurrent` calls in flight, others wait up to
    /// `max_wait` (default: none, refused at once with `Rejected::BulkheadFull`).
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("bulkhead_doc").bulkhead("bulkhead_doc", |bulkhead| bulkhead.max_concurrent(4)).build().unwrap();
    /// let bulkhead = policy.bulkhead().unwrap();
    /// assert_eq!((bulkhead.config().max_concurrent, bulkhead.snapshot().in_flight), (4, 0));
    /// ```
    pub fn bulkhead(
        mut self,
        name: impl Into<String>,
        configure: impl FnOnce(BulkheadConfig) -> BulkheadConfig + Send + 'static,
    ) -> Self {
        self.bulkhead = Some(LayerSpec::named(Some(name.into()), configure));
        self
    }

    /// A per-attempt timeout (named after the policy): a slower attempt is dropped and fails
    /// with `Rejected::Timeout`. Blocking calls cannot be stopped midway and ignore it.
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    /// use std::time::Duration;
    ///
    /// let policy = Policy::builder("timeout_doc").timeout(Duration::from_millis(100)).build().unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap().block_on(async {
    /// let slow = policy.call(|| async {
    ///     tokio::time::sleep(Duration::from_secs(5)).await;
    ///     Ok::<_, Rejected>(1)
    /// });
    /// assert_eq!(slow.await, Err(Rejected::Timeout { after: Duration::from_millis(100) }));
    /// # });
    /// ```
    pub fn timeout(mut self, after: Duration) -> Self {
        self.timeout = Some(LayerSpec::named(None, move |_| TimeoutConfig::new(after)));
        self
    }

    /// [`timeout`](Self::timeout) under its own name.
    ///
    /// ```
    /// use reliable_runtime::Policy;
    /// use std::time::Duration;
    ///
    /// let policy = Policy::builder("named_timeout_doc_depth").named_timeout("named_timeout_doc", Duration::from_secs(2)).build().unwrap();
    /// assert_eq!(policy.timeout().unwrap().name(), "named_timeout_doc");
    /// ```
    pub fn named_timeout(mut self, name: impl Into<String>, after: Duration) -> Self {
        self.timeout = Some(LayerSpec::named(Some(name.into()), move |_| {
            TimeoutConfig::new(after)
        }));
        self
    }

    /// The time limits `name`: each attempt's timeout, growing with each retry, and the whole
    /// call's deadline; `configure` starts from the preset's ([`TimeoutConfig::default`]
    /// without one). An attempt past its timeout fails with `Rejected::Timeout`; a call past
    /// its deadline gives up (see [`TimeoutConfig`]). Blocking calls cannot be stopped midway
    /// and ignore them.
    ///
    /// ```
    /// use reliable_runtime::preset::CEX;
    /// use reliable_runtime::Policy;
    /// use std::time::Duration;
    ///
    /// let policy = Policy::builder("time_limits_doc")
    ///     .preset(CEX)
    ///     .time_limits("time_limits_doc", |limits| limits.deadline(Some(Duration::from_secs(5))))
    ///     .build()
    ///     .unwrap();
    /// let limits = policy.timeout().unwrap().config();
    /// assert_eq!((limits.after, limits.deadline), (Duration::from_secs(2), Some(Duration::from_secs(5))));
    /// ```
    pub fn time_limits(
        mut self,
        name: impl Into<String>,
        configure: impl FnOnce(TimeoutConfig) -> TimeoutConfig + Send + 'static,
    ) -> Self {
        self.timeout = Some(LayerSpec::named(Some(name.into()), configure));
        self
    }

    /// A cache `name` for [`Policy::cached`]: keys and values are typed by the calls.
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    /// use std::time::Duration;
    ///
    /// let policy = Policy::builder("cache_doc").cache("cache_doc", |cache| cache.ttl(Duration::from_secs(5))).build().unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let first = policy.cached("BTC", || async { Ok::<_, Rejected>(97_000.0) }).await;
    /// let second = policy.cached("BTC", || async { Ok::<_, Rejected>(0.0) }).await;
    /// assert_eq!((first, second), (Ok(97_000.0), Ok(97_000.0)), "the second is a hit");
    /// # });
    /// ```
    pub fn cache(
        mut self,
        name: impl Into<String>,
        configure: impl FnOnce(CacheConfig) -> CacheConfig + Send + 'static,
    ) -> Self {
        self.cache = Some(LayerSpec::named(Some(name.into()), configure));
        self
    }

    /// The name the fallback counters of [`Policy::call_or_else`] are registered under
    /// (default: the policy's).
    ///
    /// ```
    /// use reliable_runtime::degrade::degradation_registry;
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// #[derive(Debug, PartialEq)]
    /// enum ApiError { Unavailable, Rejected(Rejected) }
    /// impl From<Rejected> for ApiError {
    ///     fn from(rejected: Rejected) -> Self { ApiError::Rejected(rejected) }
    /// }
    ///
    /// let policy = Policy::builder("fallback_doc_depth").fallback("fallback_doc").build().unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let answer = policy
    ///     .call_or_else(|| async { Err::<u32, _>(ApiError::Unavailable) }, |_cause| async { Ok(0) })
    ///     .await;
    /// assert_eq!(answer, Ok(0));
    /// assert_eq!(degradation_registry().get("fallback_doc").unwrap().snapshot().fallbacks, 1);
    /// # });
    /// ```
    pub fn fallback(mut self, name: impl Into<String>) -> Self {
        self.fallback = Some(name.into());
        self
    }

    /// The health group of the monitor and the breaker.
    ///
    /// ```
    /// use reliable_runtime::{get_system_health, preset::CEX, Policy};
    ///
    /// let _policy = Policy::builder("group_doc_depth").preset(CEX).group("group_doc").build().unwrap();
    /// let group = &get_system_health().per_exchange_degradation["group_doc"];
    /// assert_eq!(group.sources[0].name, "group_doc_depth");
    /// ```
    pub fn group(mut self, group: impl Into<Arc<str>>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The clock of every layer that reads one (tests pass a manual or tokio clock); a
    /// layer's own configuration may still set another.
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Which errors count as failures for the breaker and the monitor (default: all). Given
    /// for one error type; calls with another error type ignore it (and log that once).
    pub fn failure_if<E: 'static>(
        mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.set_failure_if(predicate);
        self
    }

    /// Retries and counts errors of type `E` by their [`ErrorClass`](crate::classify::ErrorClass):
    /// transient, rate-limited and unknown errors are retried (a rate limit after its
    /// `Retry-After`, when it gives one), only transient and unknown ones count against the
    /// breaker and the SLA monitor. A [`retry_if`](Self::retry_if),
    /// [`failure_if`](Self::failure_if) or [`retry_after`](Self::retry_after) given too wins,
    /// before or after this.
    ///
    /// ```
    /// use reliable_runtime::classify::{Classify, ErrorClass};
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// #[derive(Debug)]
    /// enum ApiError { Unauthorized, Unavailable, Refused(Rejected) }
    /// impl From<Rejected> for ApiError {
    ///     fn from(refusal: Rejected) -> Self { ApiError::Refused(refusal) }
    /// }
    /// impl Classify for ApiError {
    ///     fn class(&self) -> ErrorClass {
    ///         match self {
    ///             ApiError::Unauthorized => ErrorClass::Permanent,
    ///             ApiError::Unavailable | ApiError::Refused(_) => ErrorClass::Transient,
    ///         }
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let policy = Policy::builder("classify_doc")
    ///     .retry("classify_doc", |retry| retry.max_attempts(3).initial_delay(std::time::Duration::from_millis(1)))
    ///     .classify::<ApiError>()
    ///     .build()
    ///     .unwrap();
    /// let attempts = std::sync::atomic::AtomicU32::new(0);
    /// let result: Result<(), ApiError> = policy
    ///     .call(|| async {
    ///         attempts.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    ///         Err(ApiError::Unauthorized)
    ///     })
    ///     .await;
    /// assert!(matches!(result, Err(ApiError::Unauthorized)));
    /// assert_eq!(attempts.into_inner(), 1, "a permanent error is not retried");
    /// # }
    /// ```
    pub fn classify<E: crate::classify::Classify + 'static>(mut self) -> Self {
        self.hooks.classify::<E>();
        self
    }

    /// Which errors are retried (default: all).
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    pub fn retry_if<E: 'static>(
        mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.set_retry_if(predicate);
        self
    }

    /// A server's hint of when to retry (e.g. from a 429's `Retry-After`); it replaces the
    /// backoff delay, capped by `max_delay`.
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    pub fn retry_after<E: 'static>(
        mut self,
        hint: impl Fn(&E) -> Option<Duration> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.set_retry_after(hint);
        self
    }

    /// Called before each retry with the attempt about to be made (from 2), its delay and
    /// the failure that caused it. A panic in it is logged, never propagated.
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    pub fn on_retry<E: 'static>(
        mut self,
        callback: impl Fn(u32, Duration, &Failure<E>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.set_on_retry(callback);
        self
    }

    /// Validates every layer, then registers the new ones; an invalid layer is an `Err`
    /// naming it and its field, and nothing is registered.
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let error = Policy::builder("build_doc").breaker("build_doc", |breaker| breaker.failure_threshold(0)).build().unwrap_err();
    /// assert_eq!((error.field(), error.layer()), ("failure_threshold", Some("breaker `build_doc`")));
    /// assert!(reliable_runtime::registry::breaker_registry().get("build_doc").is_none(), "nothing registered");
    /// ```
    pub fn build(self) -> Result<Policy, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::new("name", "a policy needs a name"));
        }
        if self.fallback.as_deref() == Some("") {
            return Err(ConfigError::new("name", "must not be empty").in_layer("fallback", ""));
        }
        #[cfg(feature = "limit")]
        if let Some((limiter, weight)) = &self.weighted_limit {
            weight_fits(limiter.fits(*weight), *weight, limiter.name())?;
        }
        #[cfg(feature = "redis")]
        if let Some((limiter, weight)) = &self.shared_limit {
            weight_fits(limiter.fits(*weight), *weight, limiter.name())?;
        }
        let preset = self.preset.unwrap_or_else(|| PresetValues::of(DEFAULT));
        let name = self.name.as_str();
        let conflicts = Conflicts {
            policy: name,
            on_conflict: self.on_conflict,
        };
        let clock = self.clock.clone();
        // In a test scope with a clock, every layer without a clock of its own reads it.
        #[cfg(feature = "testing")]
        let clock = clock.or_else(crate::testing::clock);
        let with_clock = |config_clock: &mut Clock| {
            if let Some(clock) = &clock {
                *config_clock = clock.clone();
            }
        };

        // First make (and so validate) every instance that is not registered yet.
        let monitor = self
            .monitor
            .map(|spec| {
                let (layer, thresholds, asks) = spec.resolve(name, preset.sla);
                let asked = asks.for_settings(&thresholds);
                pending(&layer, asked, conflicts, || {
                    let mut builder = SlaMonitor::builder(layer.as_str())
                        .thresholds(thresholds)
                        .window(self.monitor_window);
                    if let Some(clock) = &clock {
                        builder = builder.clock(clock.clone());
                    }
                    if let Some(group) = &self.group {
                        builder = builder.group(Arc::clone(group));
                    }
                    builder.build()
                })
            })
            .transpose()?;
        let breaker = self
            .breaker
            .map(|spec| {
                let mut start = preset.breaker.clone();
                with_clock(&mut start.clock);
                let (layer, config, asks) = spec.resolve(name, start);
                let asked = asks.for_settings(&config);
                pending(&layer, asked, conflicts, || {
                    let breaker = CircuitBreaker::new(layer.as_str(), config)?;
                    Ok(match &self.group {
                        Some(group) => breaker.with_group(Arc::clone(group)),
                        None => breaker,
                    })
                })
            })
            .transpose()?;
        #[cfg(feature = "retry")]
        let retry = self
            .retry
            .map(|spec| {
                let mut start = RetryConfig {
                    backoff: preset.backoff,
                    ..RetryConfig::default()
                };
                with_clock(&mut start.clock);
                let (layer, config, asks) = spec.resolve(name, start);
                let asked = asks.for_settings(&config);
                pending(&layer, asked, conflicts, || {
                    RetryPolicy::new(layer.as_str(), config)
                })
            })
            .transpose()?;
        #[cfg(feature = "limit")]
        let limiter = self
            .rate_limit
            .map(|(layer, limit)| {
                let layer = layer.unwrap_or_else(|| name.to_owned());
                let mut config = RateLimiterConfig::new(limit);
                with_clock(&mut config.clock);
                let asked = Asks::Settings.for_settings(&limit);
                pending(&layer, asked, conflicts, || {
                    RateLimiter::new(layer.as_str(), config)
                })
            })
            .transpose()?;
        #[cfg(feature = "limit")]
        let bulkhead = self
            .bulkhead
            .map(|spec| {
                let (layer, config, asks) = spec.resolve(name, BulkheadConfig::default());
                let asked = asks.for_settings(&config);
                pending(&layer, asked, conflicts, || {
                    Bulkhead::new(layer.as_str(), config)
                })
            })
            .transpose()?;
        let timeout = self
            .timeout
            .map(|spec| {
                let (layer, config, asks) = spec.resolve(name, preset.timeout);
                let asked = asks.for_settings(&config);
                pending(&layer, asked, conflicts, || {
                    TimeoutPolicy::new(layer.as_str(), config)
                })
            })
            .transpose()?;
        #[cfg(feature = "cache")]
        let cache = self
            .cache
            .map(|spec| {
                let mut start = preset.cache.clone();
                with_clock(&mut start.clock);
                let (layer, config, _) = spec.resolve(name, start);
                config
                    .validate()
                    .map_err(|error| error.in_layer("cache", &layer))?;
                Ok::<_, ConfigError>(CacheLayer::new(&layer, config))
            })
            .transpose()?;

        // Every layer is valid: register the new ones (a name registered meanwhile wins).
        let layers = Layers {
            name: intern(name),
            breaker: breaker.map(Pending::register),
            #[cfg(feature = "limit")]
            limiter: limiter.map(Pending::register),
            #[cfg(feature = "limit")]
            limiter_waits: self.wait_for_rate_limit,
            #[cfg(feature = "limit")]
            weighted: self.weighted_limit,
            #[cfg(feature = "redis")]
            shared_limit: self.shared_limit,
            #[cfg(feature = "limit")]
            bulkhead: bulkhead.map(Pending::register),
            monitor: monitor.map(Pending::register),
            timeout: timeout.map(Pending::register),
            #[cfg(feature = "retry")]
            retry: retry.map(Pending::register),
            hooks: self.hooks,
            ..Layers::NONE
        }
        .ready();
        let monitor_only = Layers {
            monitor: layers.monitor.clone(),
            ..Layers::NONE
        };
        Ok(Policy {
            layers,
            monitor_only,
            #[cfg(feature = "cache")]
            cache,
            fallback: FallbackLayer::new(self.fallback.as_deref().unwrap_or(name)),
        })
    }
}

/// A call's weight against its limiter: one that could never fit is an error naming `weight`.
#[cfg(feature = "limit")]
fn weight_fits(fits: bool, weight: u32, limiter: &str) -> Result<(), ConfigError> {
    if fits {
        return Ok(());
    }
    Err(ConfigError::new(
        "weight",
        format!("{weight} is above a window's whole limit of `{limiter}`: no call could ever be admitted"),
    ))
}

/// A layer's instance: the registered one, or a new one to register once every layer is valid.
enum Pending<T: Registered + 'static> {
    Registered(Arc<T>),
    New(&'static Registry<T>, T),
}

impl<T: Registered + 'static> Pending<T> {
    fn register(self) -> Arc<T> {
        match self {
            Pending::Registered(instance) => instance,
            Pending::New(registry, instance) => registry.register(instance),
        }
    }
}

impl Asks {
    /// The settings a layer asks for, in the form registered instances are compared in.
    fn for_settings(self, settings: &impl serde::Serialize) -> Option<serde_json::Value> {
        match self {
            Asks::Settings => Some(settings_of(settings)),
            Asks::Nothing => None,
        }
    }
}

/// Who asks, and what to do when a registered layer has other settings.
#[derive(Clone, Copy)]
struct Conflicts<'a> {
    policy: &'a str,
    on_conflict: OnConflict,
}

/// The instance `name` of `T`'s registry, or a new one from `create` (validated, not registered).
/// A registered instance whose settings differ from `asked` is a conflict.
fn pending<T: Layer>(
    name: &str,
    asked: Option<serde_json::Value>,
    conflicts: Conflicts<'_>,
    create: impl FnOnce() -> Result<T, ConfigError>,
) -> Result<Pending<T>, ConfigError> {
    let (registry, kind) = (T::registry(), T::KIND);
    if let Some(existing) = registry.get(name) {
        let conflict = asked.and_then(|asked| {
            ConfigConflict::between(kind, name, conflicts.policy, &existing.settings(), &asked)
        });
        match (conflict, conflicts.on_conflict) {
            (None, _) => {}
            (Some(conflict), OnConflict::Refuse) => return Err(conflict.into_error()),
            (Some(conflict), OnConflict::TakeRegistered) => conflict.report(),
        }
        return Ok(Pending::Registered(existing));
    }
    if name.is_empty() {
        return Err(ConfigError::new("name", "must not be empty").in_layer(kind, name));
    }
    create()
        .map(|instance| Pending::New(registry, instance))
        .map_err(|error| error.in_layer(kind, name))
}
