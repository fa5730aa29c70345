//! Time limits of a call: a per-attempt timeout that may grow with each retry, and an overall
//! deadline for all attempts and the waits between them. A named policy per call site,
//! counting its timeouts for health.

use crate::common::intern::intern;
use crate::common::shard::ShardedCounter;
use crate::common::throttle::Throttle;
use crate::error::ConfigError;
use crate::event::publish_reconfigured;
use crate::health::Exposition;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// A call's time limits: each attempt's timeout (growing by `multiplier` with each retry, up
/// to `max`), and an optional `deadline` for the whole call, attempts and waits together.
///
/// A retry whose wait would end past the deadline is not made (the call returns its last
/// error), and an attempt running at the deadline is dropped with
/// [`Rejected::DeadlineExceeded`](crate::Rejected::DeadlineExceeded). The deadline counts
/// from the first attempt's first wait, as the timeout does: a call that answers at once
/// never reads the clock for it. Time spent waiting for a rate-limit or bulkhead slot (with
/// `wait_for_rate_limit` or a bulkhead's `max_wait`) is not counted.
///
/// | preset | attempt timeouts | deadline |
/// |---|---|---|
/// | [`cex`](Self::cex) | 2 s, 3 s, 4.5 s (×1.5, at most 5 s) | 15 s |
/// | [`dex`](Self::dex) | 5 s, 7.5 s, 11.25 s, 15 s (×1.5, at most 15 s) | 60 s |
/// | [`twitter`](Self::twitter) | 10 s, 15 s, 22.5 s (×1.5, at most 30 s: the hardened client's) | 90 s |
/// | [`default`](Self::default) | 30 s each | none |
///
/// Each preset's deadline leaves room for its backoff's whole schedule of attempts (each
/// timing out) and waits; what it cuts short is a server's long `Retry-After`.
///
/// ```
/// use reliable_runtime::limit::TimeoutConfig;
/// use std::time::Duration;
///
/// let config = TimeoutConfig::new(Duration::from_secs(2))
///     .multiplier(1.5)
///     .max(Duration::from_secs(4))
///     .deadline(Some(Duration::from_secs(10)));
/// assert!(config.validate().is_ok());
/// let attempts: Vec<_> = (1..=4).map(|attempt| config.attempt(attempt)).collect();
/// assert_eq!(attempts, [2000, 3000, 4000, 4000].map(Duration::from_millis));
/// assert_eq!(TimeoutConfig::new(Duration::ZERO).validate().unwrap_err().field(), "after");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(from = "TimeoutConfigForm")]
#[non_exhaustive]
pub struct TimeoutConfig {
    /// The first attempt's timeout.
    #[serde(with = "crate::common::human_duration")]
    pub after: Duration,
    /// Each retry's timeout is the previous one's times this (at least 1.0; 1.0 keeps it).
    pub multiplier: f64,
    /// The cap of the growing timeout (at least `after`).
    #[serde(with = "crate::common::human_duration")]
    pub max: Duration,
    /// The whole call's limit, attempts and waits together; `None`: only the attempts'.
    #[serde(
        skip_serializing_if = "Option::is_none",
        with = "crate::common::human_duration::option"
    )]
    pub deadline: Option<Duration>,
}

/// A configuration file's form of a [`TimeoutConfig`]: a duration (`"2s"`, a fixed timeout)
/// or a table of its fields. Not an untagged enum, whose error would hide what was wrong.
struct TimeoutConfigForm(TimeoutConfig);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeoutTable {
    #[serde(with = "crate::common::human_duration")]
    after: Duration,
    #[serde(default = "one")]
    multiplier: f64,
    #[serde(default, with = "crate::common::human_duration::option")]
    max: Option<Duration>,
    #[serde(default, with = "crate::common::human_duration::option")]
    deadline: Option<Duration>,
}

fn one() -> f64 {
    1.0
}

impl<'de> Deserialize<'de> for TimeoutConfigForm {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        use crate::common::human_duration::HumanDuration;
        use serde::de::{self, Visitor};

        struct Form;

        impl<'de> Visitor<'de> for Form {
            type Value = TimeoutConfig;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a duration (\"2s\") or a table { after, multiplier, max, deadline }")
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<TimeoutConfig, E> {
                HumanDuration.visit_str(text).map(TimeoutConfig::new)
            }

            fn visit_u64<E: de::Error>(self, secs: u64) -> Result<TimeoutConfig, E> {
                HumanDuration.visit_u64(secs).map(TimeoutConfig::new)
            }

            fn visit_i64<E: de::Error>(self, secs: i64) -> Result<TimeoutConfig, E> {
                HumanDuration.visit_i64(secs).map(TimeoutConfig::new)
            }

            fn visit_f64<E: de::Error>(self, secs: f64) -> Result<TimeoutConfig, E> {
                HumanDuration.visit_f64(secs).map(TimeoutConfig::new)
            }

            fn visit_map<M: de::MapAccess<'de>>(self, map: M) -> Result<TimeoutConfig, M::Error> {
                let table = TimeoutTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
                Ok(TimeoutConfig {
                    after: table.after,
                    multiplier: table.multiplier,
                    max: table.max.unwrap_or(table.after),
                    deadline: table.deadline,
                })
            }
        }

        deserializer.deserialize_any(Form).map(TimeoutConfigForm)
    }
}

impl From<TimeoutConfigForm> for TimeoutConfig {
    fn from(form: TimeoutConfigForm) -> Self {
        form.0
    }
}

impl From<Duration> for TimeoutConfig {
    fn from(after: Duration) -> Self {
        TimeoutConfig::new(after)
    }
}

impl Default for TimeoutConfig {
    /// 30 s per attempt, no deadline.
    fn default() -> Self {
        TimeoutConfig::new(Duration::from_secs(30))
    }
}

impl TimeoutConfig {
    /// A fixed timeout of `after` per attempt, no deadline.
    pub const fn new(after: Duration) -> Self {
        TimeoutConfig {
            after,
            multiplier: 1.0,
            max: after,
            deadline: None,
        }
    }

    /// The CEX preset's: 2 s growing ×1.5 to at most 5 s, a 15 s deadline.
    pub fn cex() -> Self {
        TimeoutConfig::new(Duration::from_secs(2))
            .multiplier(1.5)
            .max(Duration::from_secs(5))
            .deadline(Some(Duration::from_secs(15)))
    }

    /// The DEX preset's: 5 s growing ×1.5 to at most 15 s, a 60 s deadline.
    pub fn dex() -> Self {
        TimeoutConfig::new(Duration::from_secs(5))
            .multiplier(1.5)
            .max(Duration::from_secs(15))
            .deadline(Some(Duration::from_secs(60)))
    }

    /// The Twitter preset's: 10 s growing ×1.5 to at most 30 s, a 90 s deadline.
    pub fn twitter() -> Self {
        TimeoutConfig::new(Duration::from_secs(10))
            .multiplier(1.5)
            .max(Duration::from_secs(30))
            .deadline(Some(Duration::from_secs(90)))
    }

    /// With the first attempt's timeout `after` (the cap rises to it if below).
    #[must_use]
    pub fn after(mut self, after: Duration) -> Self {
        self.after = after;
        self.max = self.max.max(after);
        self
    }

    /// With each retry's timeout `multiplier` times the previous one's.
    #[must_use]
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.multiplier = multiplier;
        self
    }

    /// With the growing timeout capped at `max`.
    #[must_use]
    pub fn max(mut self, max: Duration) -> Self {
        self.max = max;
        self
    }

    /// With the whole call limited to `deadline` (`None`: no limit but the attempts').
    #[must_use]
    pub fn deadline(mut self, deadline: Option<Duration>) -> Self {
        self.deadline = deadline;
        self
    }

    /// The timeout of attempt `attempt` (1 for the first).
    pub fn attempt(&self, attempt: u32) -> Duration {
        if attempt <= 1 || self.multiplier == 1.0 {
            return self.after.min(self.max);
        }
        let grown = self.after.as_secs_f64() * self.multiplier.powi(attempt as i32 - 1);
        Duration::try_from_secs_f64(grown).map_or(self.max, |grown| grown.min(self.max))
    }

    /// Checks every field; the error names the first wrong one.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use reliable_rules::limit;
        ConfigError::check("after", limit::timeout(self.after))?;
        ConfigError::check("multiplier", limit::timeout_multiplier(self.multiplier))?;
        ConfigError::check("max", limit::timeout_max(self.after, self.max))?;
        if let Some(deadline) = self.deadline {
            ConfigError::check("deadline", limit::deadline(self.after, deadline))?;
        }
        Ok(())
    }
}

/// A per-attempt deadline, registered by name (the fn's path for `#[timeout]`).
///
/// ```
/// use reliable_runtime::limit::TimeoutPolicy;
/// use std::time::Duration;
///
/// let policy = TimeoutPolicy::new("doc_timeout", Duration::from_millis(250)).unwrap();
/// assert_eq!(policy.after(), Duration::from_millis(250));
/// assert_eq!(policy.snapshot().timeouts, 0);
/// ```
pub struct TimeoutPolicy {
    name: &'static str,
    /// The configuration: read when an attempt's timer is armed, off the hot path.
    config: arc_swap::ArcSwap<TimeoutConfig>,
    /// Makes one reconfiguration at a time (so each publishes the change it made).
    changing: Mutex<()>,
    attempts: ShardedCounter,
    timeouts: ShardedCounter,
    deadlines_exceeded: ShardedCounter,
    events: Throttle,
}

impl fmt::Debug for TimeoutPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutPolicy")
            .field("name", &self.name)
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// A timeout policy's counters, as `get_system_health()` shows them (`timeouts`).
///
/// The counters start at zero when the policy is created (on the first call of a fn that
/// uses it, or when it is registered by hand) and are never reset. Only attempts of async
/// calls are timed and counted: a blocking call cannot be stopped midway.
///
/// ```
/// use reliable_runtime::{timeout, Rejected};
/// use reliable_runtime::registry::timeout_registry;
/// use std::time::Duration;
///
/// #[timeout("1s", name = "timeout_snapshot_doc")]
/// async fn slow() -> Result<(), Rejected> {
///     tokio::time::sleep(Duration::from_secs(5)).await;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// assert!(slow().await.is_err());
/// let stats = timeout_registry().get("timeout_snapshot_doc").unwrap().snapshot();
/// assert_eq!((stats.after_seconds, stats.attempts, stats.timeouts), (1.0, 1, 1));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeoutSnapshot {
    /// The first attempt's timeout, in seconds (the configuration). It counts from the end of
    /// the attempt's first poll: an answer ready at once never starts a timer.
    pub after_seconds: f64,
    /// The cap of the timeout growing with each retry, in seconds (`after_seconds` when it
    /// does not grow).
    pub max_seconds: f64,
    /// The whole call's deadline, in seconds, if any.
    pub deadline_seconds: Option<f64>,
    /// Attempts started under the deadline since the policy was created (each retry is one
    /// more attempt).
    pub attempts: u64,
    /// Attempts still running at their timeout, dropped and answered with
    /// [`Rejected::Timeout`](crate::Rejected::Timeout), since the policy was created.
    pub timeouts: u64,
    /// Calls whose deadline passed during an attempt (answered with
    /// [`Rejected::DeadlineExceeded`](crate::Rejected::DeadlineExceeded)) or before a retry
    /// (given their last error), since the policy was created.
    pub deadlines_exceeded: u64,
}

impl TimeoutPolicy {
    /// A policy named `name` with `config`: a [`TimeoutConfig`], or a `Duration` (a fixed
    /// timeout per attempt, above zero).
    pub fn new(
        name: impl AsRef<str>,
        config: impl Into<TimeoutConfig>,
    ) -> Result<Self, ConfigError> {
        let config = config.into();
        check(&config)?;
        Ok(TimeoutPolicy {
            name: intern(name.as_ref()),
            config: arc_swap::ArcSwap::from_pointee(config),
            changing: Mutex::new(()),
            attempts: ShardedCounter::new(),
            timeouts: ShardedCounter::new(),
            deadlines_exceeded: ShardedCounter::new(),
            events: Throttle::new(),
        })
    }

    /// The policy's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The first attempt's timeout.
    #[inline]
    pub fn after(&self) -> Duration {
        self.config.load().after
    }

    /// The configuration.
    pub fn config(&self) -> TimeoutConfig {
        **self.config.load()
    }

    /// Changes the first attempt's timeout of attempts started from now on (those running keep
    /// theirs), keeping the rest of the configuration (a cap below it rises to it). An
    /// invalid one is an `Err` and changes nothing; each change is an
    /// [`Event::Reconfigured`](crate::event::Event::Reconfigured) (an info alert).
    ///
    /// ```
    /// use reliable_runtime::limit::TimeoutPolicy;
    /// use std::time::Duration;
    ///
    /// let policy = TimeoutPolicy::new("timeout_reconfigure_doc", Duration::from_secs(2)).unwrap();
    /// policy.reconfigure(Duration::from_millis(500)).unwrap();
    /// assert_eq!(policy.after(), Duration::from_millis(500));
    /// assert_eq!(policy.reconfigure(Duration::ZERO).unwrap_err().field(), "timeout");
    /// ```
    pub fn reconfigure(&self, after: Duration) -> Result<(), ConfigError> {
        let _one = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        self.change_to(self.config().after(after))
    }

    /// Changes the whole configuration of attempts started from now on; as
    /// [`reconfigure`](Self::reconfigure).
    ///
    /// ```
    /// use reliable_runtime::limit::{TimeoutConfig, TimeoutPolicy};
    /// use std::time::Duration;
    ///
    /// let policy = TimeoutPolicy::new("timeout_reconfigure_with_doc", Duration::from_secs(2)).unwrap();
    /// let growing = TimeoutConfig::new(Duration::from_secs(1)).multiplier(2.0).max(Duration::from_secs(8));
    /// policy.reconfigure_with(growing).unwrap();
    /// assert_eq!(policy.config().attempt(3), Duration::from_secs(4));
    /// let wrong = growing.multiplier(0.5);
    /// assert_eq!(policy.reconfigure_with(wrong).unwrap_err().field(), "multiplier");
    /// ```
    pub fn reconfigure_with(&self, config: TimeoutConfig) -> Result<(), ConfigError> {
        let _one = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        self.change_to(config)
    }

    /// Makes one change, the lock held.
    fn change_to(&self, config: TimeoutConfig) -> Result<(), ConfigError> {
        check(&config)?;
        let before = self.config();
        self.config.store(std::sync::Arc::new(config));
        publish_reconfigured("timeout", self.name, &before, &config);
        Ok(())
    }

    /// Changes the configuration by `change` (a configuration file's reload).
    pub(crate) fn reconfigure_by(
        &self,
        change: impl FnOnce(TimeoutConfig) -> TimeoutConfig,
    ) -> Result<(), ConfigError> {
        let _one = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        self.change_to(change(self.config()))
    }

    /// [`reconfigure_by`](Self::reconfigure_by)'s checks, changing nothing.
    pub(crate) fn check_reconfigure(
        &self,
        change: impl FnOnce(TimeoutConfig) -> TimeoutConfig,
    ) -> Result<(), ConfigError> {
        check(&change(self.config()))
    }

    /// The timeout of attempt `attempt` (1 for the first) and the call's deadline, as
    /// configured now.
    #[cold]
    pub(crate) fn limits(&self, attempt: u32) -> (Duration, Option<Duration>) {
        let config = self.config.load();
        (config.attempt(attempt), config.deadline)
    }

    /// The call's deadline, as configured now (what the retry layer checks a wait against).
    #[cfg(feature = "retry")]
    #[cold]
    pub(crate) fn deadline(&self) -> Option<Duration> {
        self.config.load().deadline
    }

    #[inline]
    pub(crate) fn started(&self) {
        self.attempts.add(1);
    }

    /// A call's deadline passed.
    #[cold]
    pub(crate) fn deadline_exceeded(&self) {
        self.deadlines_exceeded.add(1);
        tracing::debug!(timeout = self.name, "a call's deadline passed");
    }

    #[cold]
    pub(crate) fn timed_out(&self) {
        self.timeouts.add(1);
        crate::event::publish_throttled(&self.events, || {
            tracing::debug!(timeout = self.name, after = ?self.after(), "attempt timed out");
            crate::event::Event::TimedOut(crate::event::LimitReached {
                name: self.name,
                retry_after: None,
            })
        });
    }

    /// The policy's counters now.
    pub fn snapshot(&self) -> TimeoutSnapshot {
        let config = self.config();
        TimeoutSnapshot {
            after_seconds: config.after.as_secs_f64(),
            max_seconds: config.max.as_secs_f64(),
            deadline_seconds: config.deadline.map(|deadline| deadline.as_secs_f64()),
            attempts: self.attempts.sum(),
            timeouts: self.timeouts.sum(),
            deadlines_exceeded: self.deadlines_exceeded.sum(),
        }
    }
}

/// Every field of `config`, the timeout's own field named as it always was (`timeout`).
fn check(config: &TimeoutConfig) -> Result<(), ConfigError> {
    ConfigError::check("timeout", reliable_rules::limit::timeout(config.after))?;
    config.validate()
}

/// The timeouts' Prometheus families.
pub(crate) fn write_metrics(timeouts: &BTreeMap<String, TimeoutSnapshot>, out: &mut Exposition) {
    out.per_instance_by(
        (
            "reliable_timeout_attempts_total",
            "counter",
            "Attempts given a deadline, by outcome",
        ),
        ("name", "kind"),
        timeouts,
        |timeout| [("timed_out", timeout.timeouts), ("all", timeout.attempts)],
    );
}
