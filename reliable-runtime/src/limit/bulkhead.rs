//! Bulkhead: at most N calls in flight; the rest wait up to `max_wait`, then are refused.
//!
//! Built on `tokio::sync::Semaphore` (fair, FIFO waiters, an atomic fast path); the permit is
//! released when the call's future completes or is dropped.

use crate::common::intern::intern;
use crate::common::shard::ShardedCounter;
use crate::common::throttle::Throttle;
use crate::error::{ConfigError, Rejected};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::Duration;
use tokio::sync::{Semaphore, SemaphorePermit};

/// A bulkhead's configuration.
///
/// ```
/// use reliable_runtime::limit::BulkheadConfig;
/// use std::time::Duration;
///
/// let config = BulkheadConfig { max_concurrent: 25, max_wait: Duration::from_millis(100) };
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BulkheadConfig {
    /// Calls allowed in flight at once.
    pub max_concurrent: u32,
    /// How long an excess call waits for a slot before `Rejected::BulkheadFull` (zero: refuse
    /// at once).
    #[serde(with = "crate::common::human_duration")]
    pub max_wait: Duration,
}

impl Default for BulkheadConfig {
    /// 25 calls at once, refused at once when full.
    fn default() -> Self {
        BulkheadConfig {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
        }
    }
}

impl BulkheadConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // `max_concurrent` is a `u32`, far below the semaphore's `usize::MAX >> 3` permits.
        ConfigError::check(
            "max_concurrent",
            reliable_rules::limit::max_concurrent(self.max_concurrent),
        )
    }
}

/// Limits concurrent calls to a source.
///
/// ```
/// use reliable_runtime::limit::{Bulkhead, BulkheadConfig};
/// use std::time::Duration;
///
/// let bulkhead = Bulkhead::new("doc_bulkhead", BulkheadConfig { max_concurrent: 1, max_wait: Duration::ZERO }).unwrap();
/// let slot = bulkhead.try_enter().unwrap();
/// assert!(bulkhead.try_enter().is_err());
/// drop(slot);
/// assert!(bulkhead.try_enter().is_ok());
/// ```
pub struct Bulkhead {
    name: &'static str,
    config: BulkheadConfig,
    semaphore: Semaphore,
    admitted: ShardedCounter,
    rejected: ShardedCounter,
    events: Throttle,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.name)
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

/// A bulkhead's counters, as `get_system_health()` shows them (`bulkheads`).
///
/// The counters start at zero when the bulkhead is created (on the first call of a fn that
/// names it, or when it is registered by hand), add up every call site that shares its name,
/// and are never reset.
///
/// ```
/// use reliable_runtime::limit::{Bulkhead, BulkheadConfig};
///
/// let bulkhead = Bulkhead::new("bulkhead_snapshot_doc", BulkheadConfig { max_concurrent: 1, ..BulkheadConfig::default() }).unwrap();
/// let slot = bulkhead.try_enter().unwrap();
/// assert!(bulkhead.try_enter().is_err());
/// let stats = bulkhead.snapshot();
/// assert_eq!((stats.max_concurrent, stats.in_flight, stats.admitted, stats.rejected), (1, 1, 1, 1));
/// drop(slot);
/// assert_eq!(bulkhead.snapshot().in_flight, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BulkheadSnapshot {
    /// Calls allowed in flight at once (the configuration).
    pub max_concurrent: u32,
    /// Calls holding a slot at the moment of the snapshot.
    pub in_flight: u32,
    /// Calls that got a slot since the bulkhead was created, at once or after waiting.
    pub admitted: u64,
    /// Calls refused since the bulkhead was created: full with `max_wait` zero (always so on a
    /// blocking fn), or still full after waiting `max_wait`.
    pub rejected: u64,
}

/// A slot in a bulkhead, freed when dropped.
#[derive(Debug)]
pub struct BulkheadSlot<'a> {
    _permit: SemaphorePermit<'a>,
}

impl Bulkhead {
    /// A bulkhead named `name`, after validating `config`.
    pub fn new(name: impl AsRef<str>, config: BulkheadConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Bulkhead {
            name: intern(name.as_ref()),
            semaphore: Semaphore::new(config.max_concurrent as usize),
            config,
            admitted: ShardedCounter::new(),
            rejected: ShardedCounter::new(),
            events: Throttle::new(),
        })
    }

    /// The bulkhead's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configuration.
    pub fn config(&self) -> &BulkheadConfig {
        &self.config
    }

    /// Takes a slot now, or refuses.
    #[inline]
    pub fn try_enter(&self) -> Result<BulkheadSlot<'_>, Rejected> {
        match self.semaphore.try_acquire() {
            Ok(permit) => {
                self.admitted.add(1);
                Ok(BulkheadSlot { _permit: permit })
            }
            Err(_) => Err(self.full()),
        }
    }

    /// Takes a slot, waiting up to `max_wait` for one.
    pub async fn enter(&self) -> Result<BulkheadSlot<'_>, Rejected> {
        if let Ok(permit) = self.semaphore.try_acquire() {
            self.admitted.add(1);
            return Ok(BulkheadSlot { _permit: permit });
        }
        if self.config.max_wait.is_zero() {
            return Err(self.full());
        }
        match tokio::time::timeout(self.config.max_wait, self.semaphore.acquire()).await {
            Ok(Ok(permit)) => {
                self.admitted.add(1);
                Ok(BulkheadSlot { _permit: permit })
            }
            _ => Err(self.full()),
        }
    }

    /// [`try_enter`](Self::try_enter) for the pipeline, which keeps the slot as a flag (a
    /// smaller future than one holding the permit) and frees it with
    /// [`give_back`](Self::give_back).
    #[inline]
    pub(crate) fn try_take(&self) -> Result<(), Rejected> {
        self.try_enter().map(|slot| slot._permit.forget())
    }

    /// [`enter`](Self::enter) for the pipeline; see [`try_take`](Self::try_take).
    pub(crate) async fn take(&self) -> Result<(), Rejected> {
        self.enter().await.map(|slot| slot._permit.forget())
    }

    /// Frees a slot taken by [`try_take`](Self::try_take) or [`take`](Self::take).
    #[inline]
    pub(crate) fn give_back(&self) {
        self.semaphore.add_permits(1);
    }

    #[cold]
    fn full(&self) -> Rejected {
        self.rejected.add(1);
        crate::event::publish_throttled(&self.events, || {
            crate::event::Event::BulkheadFull(crate::event::LimitReached {
                name: self.name,
                retry_after: None,
            })
        });
        Rejected::BulkheadFull {
            bulkhead: self.name,
        }
    }

    /// The bulkhead's counters now.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        let available = self.semaphore.available_permits() as u32;
        BulkheadSnapshot {
            max_concurrent: self.config.max_concurrent,
            in_flight: self.config.max_concurrent.saturating_sub(available),
            admitted: self.admitted.sum(),
            rejected: self.rejected.sum(),
        }
    }
}

crate::common::setters::setters! { BulkheadConfig {
    max_concurrent: u32,
    max_wait: Duration,
}}
