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

/// A timeout policy's counters, as health shows them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TimeoutSnapshot {
    /// The deadline, in seconds.
    pub after_seconds: f64,
    /// Attempts started under the deadline.
    pub attempts: u64,
    /// Attempts dropped at the deadline.
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
