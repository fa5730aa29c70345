//! Per-attempt timeouts: a named policy per call site, counting its timeouts for health.

use crate::clock::duration_to_nanos;
use crate::common::intern::intern;
use crate::common::settings::reconfigured;
use crate::common::shard::ShardedCounter;
use crate::common::throttle::Throttle;
use crate::error::ConfigError;
use crate::policy::conflict::TimeoutSettings;
use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

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
    /// The deadline, in nanoseconds.
    after: AtomicU64,
    /// Makes one reconfiguration at a time (so each publishes the change it made).
    changing: Mutex<()>,
    attempts: ShardedCounter,
    timeouts: ShardedCounter,
    events: Throttle,
}

impl fmt::Debug for TimeoutPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutPolicy")
            .field("name", &self.name)
            .field("after", &self.after())
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
    /// The per-attempt deadline, in seconds (the configuration). It counts from the end of
    /// the attempt's first poll: an answer ready at once never starts a timer.
    pub after_seconds: f64,
    /// Attempts started under the deadline since the policy was created (each retry is one
    /// more attempt).
    pub attempts: u64,
    /// Attempts still running at the deadline, dropped and answered with
    /// [`Rejected::Timeout`](crate::Rejected::Timeout), since the policy was created.
    pub timeouts: u64,
}

impl TimeoutPolicy {
    /// A policy named `name` with deadline `after` (above zero).
    pub fn new(name: impl AsRef<str>, after: Duration) -> Result<Self, ConfigError> {
        ConfigError::check("timeout", reliable_rules::limit::timeout(after))?;
        Ok(TimeoutPolicy {
            name: intern(name.as_ref()),
            after: AtomicU64::new(duration_to_nanos(after)),
            changing: Mutex::new(()),
            attempts: ShardedCounter::new(),
            timeouts: ShardedCounter::new(),
            events: Throttle::new(),
        })
    }

    /// The policy's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The deadline.
    #[inline]
    pub fn after(&self) -> Duration {
        Duration::from_nanos(self.after.load(Ordering::Relaxed))
    }

    /// Changes the deadline of attempts started from now on (those running keep theirs). An
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
        self.check_reconfigure(after)?;
        let _one = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        let before = self.after();
        self.after
            .store(duration_to_nanos(after), Ordering::Relaxed);
        reconfigured(
            "timeout",
            self.name,
            &TimeoutSettings::of(before),
            &TimeoutSettings::of(after),
        );
        Ok(())
    }

    /// [`reconfigure`](Self::reconfigure)'s checks, changing nothing.
    pub(crate) fn check_reconfigure(&self, after: Duration) -> Result<(), ConfigError> {
        ConfigError::check("timeout", reliable_rules::limit::timeout(after))
    }

    #[inline]
    pub(crate) fn started(&self) {
        self.attempts.add(1);
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
        TimeoutSnapshot {
            after_seconds: self.after().as_secs_f64(),
            attempts: self.attempts.sum(),
            timeouts: self.timeouts.sum(),
        }
    }
}
