//! [`PolicyBuilder`]: names and configures each layer, then validates them all at once.

use super::cached::CacheLayer;
use super::ErrorHooks;
use super::{FallbackLayer, Policy};
use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::cache::CacheConfig;
use crate::clock::Clock;
use crate::common::intern::intern;
use crate::error::{ConfigError, Failure};
use crate::limit::{
    Bulkhead, BulkheadConfig, RateLimit, RateLimiter, RateLimiterConfig, TimeoutPolicy,
};
use crate::policy::layers::Layers;
use crate::preset::{IntoPreset, Preset, DEFAULT};
use crate::registry::{
    breaker_registry, bulkhead_registry, rate_limiter_registry, retry_registry, sla_registry,
    timeout_registry, Registered, Registry,
};
use crate::retry::{RetryConfig, RetryPolicy};
use crate::sla::{SlaMonitor, SlaThresholds, SlaWindow};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Changes a layer's configuration, starting from the preset's (or the defaults).
type Configure<C> = Box<dyn FnOnce(C) -> C + Send>;

/// One layer as the builder was told: its name (the policy's if none) and its changes.
struct LayerSpec<C> {
    name: Option<String>,
    configure: Option<Configure<C>>,
}

impl<C> LayerSpec<C> {
    fn named(name: Option<String>, configure: impl FnOnce(C) -> C + Send + 'static) -> Self {
        LayerSpec {
            name,
            configure: Some(Box::new(configure)),
        }
    }

    fn defaults() -> Self {
        LayerSpec {
            name: None,
            configure: None,
        }
    }

    /// The layer's name and final configuration.
    fn resolve(self, policy: &str, start: C) -> (String, C) {
        let name = self.name.unwrap_or_else(|| policy.to_owned());
        let config = match self.configure {
            Some(configure) => configure(start),
            None => start,
        };
        (name, config)
    }
}

/// Builds a [`Policy`]: each layer is named and configured on its own, then
/// [`build`](Self::build) validates every layer and registers the new ones, or changes nothing
/// and returns the first [`ConfigError`] (naming the layer and the field).
///
/// A layer whose name is registered already is taken as it is (its configuration here is not
/// applied): that is how the endpoints of one exchange share its breaker.
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
///     .breaker("builder_doc_binance", |breaker| breaker)
///     .build()
///     .unwrap();
/// // One breaker for the exchange, one monitor per endpoint.
/// assert!(std::sync::Arc::ptr_eq(orderbook.breaker().unwrap(), ticker.breaker().unwrap()));
/// assert_eq!(orderbook.monitor().unwrap().name(), "builder_doc_orderbook");
/// assert_eq!(orderbook.breaker().unwrap().config().failure_threshold, 3);
/// ```
#[must_use = "a builder does nothing until `build` is called"]
pub struct PolicyBuilder {
    name: String,
    preset: Option<Preset>,
    clock: Option<Clock>,
    group: Option<Arc<str>>,
    monitor: Option<LayerSpec<SlaThresholds>>,
    monitor_window: SlaWindow,
    breaker: Option<LayerSpec<BreakerConfig>>,
    retry: Option<LayerSpec<RetryConfig>>,
    rate_limit: Option<(Option<String>, RateLimit)>,
    wait_for_rate_limit: bool,
    bulkhead: Option<LayerSpec<BulkheadConfig>>,
    timeout: Option<(Option<String>, Duration)>,
    cache: Option<LayerSpec<CacheConfig>>,
    fallback: Option<String>,
    hooks: ErrorHooks,
}

impl fmt::Debug for PolicyBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyBuilder")
            .field("name", &self.name)
            .field("monitor", &self.monitor.is_some())
            .field("breaker", &self.breaker.is_some())
            .field("retry", &self.retry.is_some())
            .field("rate_limit", &self.rate_limit)
            .field("bulkhead", &self.bulkhead.is_some())
            .field("timeout", &self.timeout)
            .field("cache", &self.cache.is_some())
            .field("hooks", &self.hooks)
            .finish_non_exhaustive()
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
            retry: None,
            rate_limit: None,
            wait_for_rate_limit: false,
            bulkhead: None,
            timeout: None,
            cache: None,
            fallback: None,
            hooks: ErrorHooks::default(),
        }
    }

    /// Starts every layer from `preset`'s configurations (a [`Preset`] or a registered name)
    /// and turns on the layers a preset stands for: the monitor, the breaker and retries,
    /// named after the policy unless named otherwise. The cache takes the preset's
    /// configuration when [`cache`](Self::cache) turns it on.
    pub fn preset(mut self, preset: impl IntoPreset) -> Self {
        self.preset = Some(preset.into_preset());
        self.monitor.get_or_insert_with(LayerSpec::defaults);
        self.breaker.get_or_insert_with(LayerSpec::defaults);
        self.retry.get_or_insert_with(LayerSpec::defaults);
        self
    }

    /// The SLA monitor `name`: its thresholds, from the preset's or the defaults.
    pub fn monitor(
        mut self,
        name: impl Into<String>,
        configure: impl FnOnce(SlaThresholds) -> SlaThresholds + Send + 'static,
    ) -> Self {
        self.monitor = Some(LayerSpec::named(Some(name.into()), configure));
        self
    }

    /// The monitor's window (default: the last 100 calls).
    pub fn monitor_window(mut self, window: SlaWindow) -> Self {
        self.monitor_window = window;
        self
    }

    /// The circuit breaker `name`, shared with every policy and attribute naming it.
    pub fn breaker(
        mut self,
        name: impl Into<String>,
        configure: impl FnOnce(BreakerConfig) -> BreakerConfig + Send + 'static,
    ) -> Self {
        self.breaker = Some(LayerSpec::named(Some(name.into()), configure));
        self
    }

    /// Retries with backoff (policy `name`); every error is retried unless
    /// [`retry_if`](Self::retry_if) says otherwise; rejections are not, timeouts are.
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
    pub fn rate_limit(mut self, name: impl Into<String>, limit: RateLimit) -> Self {
        self.rate_limit = Some((Some(name.into()), limit));
        self
    }

    /// Waits for a rate-limit slot instead of refusing (async calls; a blocking call sleeps).
    pub fn wait_for_rate_limit(mut self) -> Self {
        self.wait_for_rate_limit = true;
        self
    }

    /// A bulkhead `name`: at most `max_concurrent` calls in flight, others wait up to
    /// `max_wait` (default: none, refused at once with `Rejected::BulkheadFull`).
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
    pub fn timeout(mut self, after: Duration) -> Self {
        self.timeout = Some((None, after));
        self
    }

    /// [`timeout`](Self::timeout) under its own name.
    pub fn named_timeout(mut self, name: impl Into<String>, after: Duration) -> Self {
        self.timeout = Some((Some(name.into()), after));
        self
    }

    /// A cache `name` for [`Policy::cached`]: keys and values are typed by the calls.
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
    pub fn fallback(mut self, name: impl Into<String>) -> Self {
        self.fallback = Some(name.into());
        self
    }

    /// The health group of the monitor and the breaker.
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

    /// Which errors are retried (default: all).
    pub fn retry_if<E: 'static>(
        mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.hooks.set_retry_if(predicate);
        self
    }

    /// A server's hint of when to retry (e.g. from a 429's `Retry-After`); it replaces the
    /// backoff delay, capped by `max_delay`.
    pub fn retry_after<E: 'static>(
        mut self,
        hint: impl Fn(&E) -> Option<Duration> + Send + Sync + 'static,
    ) -> Self {
        self.hooks.set_retry_after(hint);
        self
    }

    /// Called before each retry with the attempt about to be made (from 2), its delay and
    /// the failure that caused it. A panic in it is logged, never propagated.
    pub fn on_retry<E: 'static>(
        mut self,
        callback: impl Fn(u32, Duration, &Failure<E>) + Send + Sync + 'static,
    ) -> Self {
        self.hooks.set_on_retry(callback);
        self
    }

    /// Validates every layer, then registers the new ones; an invalid layer is an `Err`
    /// naming it and its field, and nothing is registered.
    pub fn build(self) -> Result<Policy, ConfigError> {
        if self.name.is_empty() {
            return Err(ConfigError::new("name", "a policy needs a name"));
        }
        if self.fallback.as_deref() == Some("") {
            return Err(ConfigError::new("name", "must not be empty").in_layer("fallback", ""));
        }
        let preset = self.preset.unwrap_or(DEFAULT);
        let name = self.name.as_str();
        let clock = self.clock.clone();
        let with_clock = |config_clock: &mut Clock| {
            if let Some(clock) = &clock {
                *config_clock = clock.clone();
            }
        };

        // First make (and so validate) every instance that is not registered yet.
        let monitor = self
            .monitor
            .map(|spec| {
                let (layer, thresholds) = spec.resolve(name, (preset.sla)());
                pending(sla_registry(), "monitor", &layer, || {
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
                let mut start = (preset.breaker)();
                with_clock(&mut start.clock);
                let (layer, config) = spec.resolve(name, start);
                pending(breaker_registry(), "breaker", &layer, || {
                    let breaker = CircuitBreaker::new(layer.as_str(), config)?;
                    Ok(match &self.group {
                        Some(group) => breaker.with_group(Arc::clone(group)),
                        None => breaker,
                    })
                })
            })
            .transpose()?;
        let retry = self
            .retry
            .map(|spec| {
                let mut start = RetryConfig {
                    backoff: (preset.backoff)(),
                    ..RetryConfig::default()
                };
                with_clock(&mut start.clock);
                let (layer, config) = spec.resolve(name, start);
                pending(retry_registry(), "retry", &layer, || {
                    RetryPolicy::new(layer.as_str(), config)
                })
            })
            .transpose()?;
        let limiter = self
            .rate_limit
            .map(|(layer, limit)| {
                let layer = layer.unwrap_or_else(|| name.to_owned());
                let mut config = RateLimiterConfig::new(limit);
                with_clock(&mut config.clock);
                pending(rate_limiter_registry(), "rate limit", &layer, || {
                    RateLimiter::new(layer.as_str(), config)
                })
            })
            .transpose()?;
        let bulkhead = self
            .bulkhead
            .map(|spec| {
                let (layer, config) = spec.resolve(name, BulkheadConfig::default());
                pending(bulkhead_registry(), "bulkhead", &layer, || {
                    Bulkhead::new(layer.as_str(), config)
                })
            })
            .transpose()?;
        let timeout = self
            .timeout
            .map(|(layer, after)| {
                let layer = layer.unwrap_or_else(|| name.to_owned());
                pending(timeout_registry(), "timeout", &layer, || {
                    TimeoutPolicy::new(layer.as_str(), after)
                })
            })
            .transpose()?;
        let cache = self
            .cache
            .map(|spec| {
                let mut start = (preset.cache)();
                with_clock(&mut start.clock);
                let (layer, config) = spec.resolve(name, start);
                config
                    .validate()
                    .map_err(|error| error.in_layer("cache", &layer))?;
                Ok::<_, ConfigError>(CacheLayer::new(&layer, config))
            })
            .transpose()?;

        // Every layer is valid: register the new ones (a name registered meanwhile wins).
        let layers = Layers {
            breaker: breaker.map(Pending::register),
            limiter: limiter.map(Pending::register),
            limiter_waits: self.wait_for_rate_limit,
            bulkhead: bulkhead.map(Pending::register),
            monitor: monitor.map(Pending::register),
            timeout: timeout.map(Pending::register),
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
            name: intern(name),
            layers,
            monitor_only,
            cache,
            fallback: FallbackLayer::new(self.fallback.as_deref().unwrap_or(name)),
        })
    }
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

/// The instance `name` of `registry`, or a new one from `create` (validated, not registered).
fn pending<T: Registered + 'static>(
    registry: &'static Registry<T>,
    kind: &str,
    name: &str,
    create: impl FnOnce() -> Result<T, ConfigError>,
) -> Result<Pending<T>, ConfigError> {
    if let Some(existing) = registry.get(name) {
        return Ok(Pending::Registered(existing));
    }
    if name.is_empty() {
        return Err(ConfigError::new("name", "must not be empty").in_layer(kind, name));
    }
    create()
        .map(|instance| Pending::New(registry, instance))
        .map_err(|error| error.in_layer(kind, name))
}
