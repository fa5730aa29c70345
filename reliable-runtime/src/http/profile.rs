//! [`Profile`]: the reliability settings of one source of a [`Client`](super::Client).

use crate::breaker::BreakerConfig;
use crate::error::ConfigError;
use crate::limit::{RateLimit, TimeoutConfig, WeightedLimiter};
use crate::policy::PolicyBuilder;
use crate::retry::{BackoffConfig, Jitter, RetryConfig};
use std::sync::Arc;
use std::time::Duration;

/// How a [`Client`](super::Client) calls one source: timeouts, retries, breaker, rate limit and
/// the requests in flight. Seed 004's hardened client is [`Profile::default`], with its
/// production and development variants:
///
/// | profile | attempt timeout (growing ×1.5) | deadline | retries | backoff | breaker | rate limit | in flight |
/// |---|---|---|---|---|---|---|---|
/// | [`default`](Self::default) | 10 s .. 30 s | 2 min | 3 | 1 s .. 60 s, +10% jitter | 5 failures, 60 s | 60 a minute | 20 |
/// | [`conservative`](Self::conservative) | 15 s .. 45 s | 5 min | 5 | 1 s .. 60 s, +10% | 3 failures, 120 s | 30 a minute | 20 |
/// | [`aggressive`](Self::aggressive) | 5 s .. 15 s | 1 min | 2 | 1 s .. 60 s, +10% | 10 failures, 30 s | 120 a minute | 20 |
///
/// Each deadline leaves room for every attempt to time out and every wait between them.
///
/// ```
/// use reliable_runtime::http::Profile;
/// use std::time::Duration;
///
/// let binance = Profile::default()
///     .rate_limit_per_minute(Some(1200))
///     .base_timeout(Duration::from_secs(2))
///     .max_timeout(Duration::from_secs(5))
///     .breaker("binance_api")
///     .group("binance");
/// assert!(binance.validate().is_ok());
/// assert_eq!(Profile::default().rate_limit_per_minute(Some(0)).validate().unwrap_err().field(), "rate_limit_per_minute");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Profile {
    /// The first attempt's timeout.
    pub base_timeout: Duration,
    /// The cap of the timeout as it grows ×`timeout_growth` with each retry.
    pub max_timeout: Duration,
    /// Each retry's timeout is the previous one's times this.
    pub timeout_growth: f64,
    /// The whole request's limit, attempts and waits together.
    pub deadline: Option<Duration>,
    /// Retries after the first attempt (only of transient errors and 429s).
    pub max_retries: u32,
    /// The first retry's delay, growing ×2.
    pub base_delay: Duration,
    /// The cap of every delay, a `Retry-After` included.
    pub max_delay: Duration,
    /// Additive jitter: each delay plus up to this share of it.
    pub jitter_factor: f64,
    /// Consecutive failures (5xx, timeouts, refused connections) that open the breaker.
    pub breaker_threshold: u32,
    /// How long the breaker stays open.
    pub breaker_timeout: Duration,
    /// Requests in any minute (`None`: no limit).
    pub rate_limit_per_minute: Option<u32>,
    /// Wait for a rate-limit slot instead of failing with `Rejected::RateLimited`.
    pub wait_for_rate_limit: bool,
    /// Requests of this source in flight at once (others wait up to `base_timeout`).
    pub max_in_flight: u32,
    /// The breaker's name, when sources share one (the endpoints of one exchange); the
    /// source's name otherwise.
    pub breaker: Option<String>,
    /// The health group of the source's monitor and breaker.
    pub group: Option<String>,
    /// The request weight limit each attempt takes its weight from
    /// ([`RequestBuilder::weight`](super::RequestBuilder::weight), 1 by default); share one
    /// between the sources of an exchange. A refusal waits its hint like a 429.
    pub weight_limit: Option<Arc<WeightedLimiter>>,
    /// The response header in which the server reports the weight used in a window (Binance:
    /// `x-mbx-used-weight-1m` for the minute), which corrects `weight_limit`.
    pub used_weight_header: Option<(::http::HeaderName, Duration)>,
    /// A request weight limit shared by every instance of the service through Redis (feature
    /// `redis`): each attempt takes its weight from it too, so ten replicas together stay
    /// within an exchange's weight limit. A refusal waits its hint like a 429.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub shared_weight_limit: Option<Arc<crate::shared::SharedRateLimiter>>,
    /// Changes to the source's policy after the profile's layers (see
    /// [`customize`](Self::customize)).
    pub customize: Option<Customize>,
}

/// A change to a source's [`PolicyBuilder`], applied after the [`Profile`]'s layers.
#[derive(Clone)]
pub struct Customize(Arc<CustomizeFn>);

/// What a [`Customize`] holds: the builder and the source's name in, the builder out.
type CustomizeFn = dyn Fn(PolicyBuilder, &str) -> PolicyBuilder + Send + Sync;

impl std::fmt::Debug for Customize {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Customize(..)")
    }
}

impl Default for Profile {
    /// Seed 004's `HTTPConfig`: 10 s growing to 30 s, 3 retries from 1 s to 60 s with 10%
    /// additive jitter, a breaker of 5 failures open 60 s, 60 requests a minute.
    fn default() -> Self {
        Profile {
            base_timeout: Duration::from_secs(10),
            max_timeout: Duration::from_secs(30),
            timeout_growth: 1.5,
            deadline: Some(Duration::from_secs(120)),
            max_retries: 3,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            jitter_factor: 0.1,
            breaker_threshold: 5,
            breaker_timeout: Duration::from_secs(60),
            rate_limit_per_minute: Some(60),
            wait_for_rate_limit: false,
            max_in_flight: 20,
            breaker: None,
            group: None,
            weight_limit: None,
            used_weight_header: None,
            #[cfg(feature = "redis")]
            shared_weight_limit: None,
            customize: None,
        }
    }
}

impl Profile {
    /// Seed 004's production settings: 15 s growing to 45 s, 5 retries, a breaker of 3
    /// failures open 120 s, 30 requests a minute.
    pub fn conservative() -> Self {
        Profile {
            base_timeout: Duration::from_secs(15),
            max_timeout: Duration::from_secs(45),
            deadline: Some(Duration::from_secs(300)),
            max_retries: 5,
            breaker_threshold: 3,
            breaker_timeout: Duration::from_secs(120),
            rate_limit_per_minute: Some(30),
            ..Profile::default()
        }
    }

    /// Seed 004's development settings: 5 s growing to 15 s, 2 retries, a breaker of 10
    /// failures open 30 s, 120 requests a minute.
    pub fn aggressive() -> Self {
        Profile {
            base_timeout: Duration::from_secs(5),
            max_timeout: Duration::from_secs(15),
            deadline: Some(Duration::from_secs(60)),
            max_retries: 2,
            breaker_threshold: 10,
            breaker_timeout: Duration::from_secs(30),
            rate_limit_per_minute: Some(120),
            ..Profile::default()
        }
    }

    /// The layers' configurations, each checked; the error names the profile's field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let rename =
            |field: &'static str| move |error: ConfigError| ConfigError::new(field, error.reason());
        self.time_limits().validate().map_err(|error| {
            let field = match error.field() {
                "max" => "max_timeout",
                "multiplier" => "timeout_growth",
                "deadline" => "deadline",
                _ => "base_timeout",
            };
            ConfigError::new(field, error.reason())
        })?;
        if self.max_retries > 100 {
            return Err(ConfigError::new("max_retries", "at most 100"));
        }
        let backoff = self.backoff();
        backoff.validate().map_err(|error| {
            let field = match error.field() {
                "max_delay" => "max_delay",
                "jitter_factor" => "jitter_factor",
                _ => "base_delay",
            };
            ConfigError::new(field, error.reason())
        })?;
        self.breaker_config().validate().map_err(|error| {
            let field = match error.field() {
                "timeout" => "breaker_timeout",
                _ => "breaker_threshold",
            };
            ConfigError::new(field, error.reason())
        })?;
        if let (Some(limiter), Some((header, window))) =
            (&self.weight_limit, &self.used_weight_header)
        {
            if !limiter.limits().iter().any(|limit| limit.window == *window) {
                return Err(ConfigError::new(
                    "used_weight_header",
                    format!(
                        "`{header}` reports a window of {window:?}, which the weight limit `{}` does not have",
                        limiter.name()
                    ),
                ));
            }
        }
        if let Some(limit) = self.rate_limit_per_minute {
            RateLimit::per_minute(limit)
                .validate()
                .map_err(rename("rate_limit_per_minute"))?;
        }
        if self.max_in_flight == 0 {
            return Err(ConfigError::new("max_in_flight", "must be at least 1"));
        }
        Ok(())
    }

    fn time_limits(&self) -> TimeoutConfig {
        TimeoutConfig::new(self.base_timeout)
            .multiplier(self.timeout_growth)
            .max(self.max_timeout)
            .deadline(self.deadline)
    }

    fn backoff(&self) -> BackoffConfig {
        BackoffConfig::default()
            .initial_delay(self.base_delay)
            .max_delay(self.max_delay)
            .max_attempts(self.max_retries + 1)
            .jitter(Jitter::Additive)
            .jitter_factor(self.jitter_factor)
    }

    fn breaker_config(&self) -> BreakerConfig {
        BreakerConfig::default()
            .failure_threshold(self.breaker_threshold)
            .timeout(self.breaker_timeout)
    }

    /// The policy of source `source` with these settings.
    pub(super) fn builder(&self, source: &str) -> PolicyBuilder {
        let breaker = self.breaker_config();
        let backoff = self.backoff();
        let in_flight = self.max_in_flight;
        let wait = self.base_timeout;
        let mut builder = crate::Policy::builder(source)
            .monitor(source, |sla| sla)
            .breaker(self.breaker.as_deref().unwrap_or(source), move |_| breaker)
            .retry(source, move |_| RetryConfig::default().backoff(backoff))
            .time_limits(source, {
                let limits = self.time_limits();
                move |_| limits
            })
            .bulkhead(source, move |bulkhead| {
                bulkhead.max_concurrent(in_flight).max_wait(wait)
            })
            .classify::<super::HttpError>();
        if let Some(limit) = self.rate_limit_per_minute {
            builder = builder.rate_limit(source, RateLimit::per_minute(limit));
            if self.wait_for_rate_limit {
                builder = builder.wait_for_rate_limit();
            }
        }
        if let Some(group) = &self.group {
            builder = builder.group(group.as_str());
        }
        match &self.customize {
            Some(Customize(customize)) => customize(builder, source),
            None => builder,
        }
    }
}

crate::common::setters::setters! { Profile {
    base_timeout: Duration,
    max_timeout: Duration,
    timeout_growth: f64,
    deadline: Option<Duration>,
    max_retries: u32,
    base_delay: Duration,
    max_delay: Duration,
    jitter_factor: f64,
    breaker_threshold: u32,
    breaker_timeout: Duration,
    rate_limit_per_minute: Option<u32>,
    wait_for_rate_limit: bool,
    max_in_flight: u32,
}}

impl Profile {
    /// With the breaker named `name`, shared with every source naming it.
    #[must_use]
    pub fn breaker(mut self, name: impl Into<String>) -> Self {
        self.breaker = Some(name.into());
        self
    }

    /// With the source's monitor and breaker in health group `group`.
    #[must_use]
    pub fn group(mut self, group: impl Into<String>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// With `customize` applied to each source's policy builder after the profile's layers,
    /// given the source's name (the layers' name): whatever the profile has no field for,
    /// such as a breaker's rate rules or the monitor's thresholds. A layer it names again
    /// replaces the profile's.
    ///
    /// ```
    /// use reliable_runtime::http::Profile;
    /// use reliable_runtime::sla::{SlaThresholds, SlaWindow};
    /// use std::time::Duration;
    ///
    /// let profile = Profile::default().customize(|builder, source| {
    ///     builder
    ///         .monitor(source, |_| SlaThresholds::cex().max_latency_p95(Duration::from_millis(250)))
    ///         .monitor_window(SlaWindow::Time(Duration::from_secs(10)))
    /// });
    /// # let _ = profile;
    /// ```
    #[must_use]
    pub fn customize(
        mut self,
        customize: impl Fn(PolicyBuilder, &str) -> PolicyBuilder + Send + Sync + 'static,
    ) -> Self {
        self.customize = Some(Customize(Arc::new(customize)));
        self
    }

    /// With each attempt taking its request weight from `limiter`.
    #[must_use]
    pub fn weight_limit(mut self, limiter: Arc<WeightedLimiter>) -> Self {
        self.weight_limit = Some(limiter);
        self
    }

    /// With each attempt taking its request weight from `limiter`, a limit shared by every
    /// instance through Redis (beside a local [`weight_limit`](Self::weight_limit), both
    /// must admit it).
    ///
    /// ```no_run
    /// use reliable_runtime::http::Profile;
    /// use reliable_runtime::limit::RateLimit;
    /// use reliable_runtime::shared::{SharedRateLimiter, SharedStore};
    /// use std::sync::Arc;
    ///
    /// # fn main() -> Result<(), reliable_runtime::ConfigError> {
    /// let store = SharedStore::new("ingest", "redis://127.0.0.1:6379/")?;
    /// let weight = SharedRateLimiter::new(&store, "binance_weight", &[RateLimit::per_minute(1200)])?;
    /// let binance = Profile::conservative().shared_weight_limit(Arc::new(weight));
    /// # let _ = binance;
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    #[must_use]
    pub fn shared_weight_limit(mut self, limiter: Arc<crate::shared::SharedRateLimiter>) -> Self {
        self.shared_weight_limit = Some(limiter);
        self
    }

    /// With the server's report of weight used in `window` read from response header
    /// `header`, correcting the weight limit.
    #[must_use]
    pub fn used_weight_header(mut self, header: ::http::HeaderName, window: Duration) -> Self {
        self.used_weight_header = Some((header, window));
        self
    }
}
