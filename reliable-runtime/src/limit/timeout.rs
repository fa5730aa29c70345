//! Per-attempt timeouts: a named policy per call site, counting its timeouts for health.

use crate::common::intern::intern;
use crate::common::shard::ShardedCounter;
use crate::common::throttle::Throttle;
use crate::error::ConfigError;
use serde::Serialize;
use std::fmt;
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
    after: Duration,
    attempts: ShardedCounter,
    timeouts: ShardedCounter,
    events: Throttle,
}

impl fmt::Debug for TimeoutPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeoutPolicy")
            .field("name", &self.name)
            .field("after", &self.after)
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
            after,
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
    pub fn after(&self) -> Duration {
        self.after
    }

    #[inline]
    pub(crate) fn started(&self) {
        self.attempts.add(1);
    }

    #[cold]
    pub(crate) fn timed_out(&self) {
        self.timeouts.add(1);
        crate::event::publish_throttled(&self.events, || {
            tracing::debug!(timeout = self.name, after = ?self.after, "attempt timed out");
            crate::event::Event::TimedOut(crate::event::LimitReached {
                name: self.name,
                retry_after: None,
            })
        });
    }

    /// The policy's counters now.
    pub fn snapshot(&self) -> TimeoutSnapshot {
        TimeoutSnapshot {
            after_seconds: self.after.as_secs_f64(),
            attempts: self.attempts.sum(),
            timeouts: self.timeouts.sum(),
        }
    }
}
