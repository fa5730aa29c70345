//! Typed events: breaker state changes and SLA status changes, on one process-wide channel.
//!
//! Publishing never blocks and never allocates a queue per subscriber: events go to a bounded
//! `tokio::sync::broadcast` channel ([`EVENT_CAPACITY`] events). A subscriber that falls behind
//! misses the oldest events and is told how many (`RecvError::Lagged`); the caller that caused the
//! event never waits for anyone.

use crate::breaker::BreakerState;
use crate::sla::SlaStatus;
use serde::{Serialize, Serializer};
use std::sync::{Arc, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::broadcast;

/// How many events the channel keeps for a slow subscriber before it lags.
pub const EVENT_CAPACITY: usize = 1024;

/// Something that happened to a reliability instance.
///
/// ```
/// use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
/// use reliable_runtime::event::{subscribe, Event};
///
/// let mut events = subscribe();
/// let breaker = CircuitBreaker::new("event_doc", BreakerConfig::default()).unwrap();
/// breaker.force_open();
/// match events.try_recv().unwrap() {
///     Event::BreakerStateChanged(change) => {
///         assert_eq!(change.breaker, "event_doc");
///         assert_eq!(change.to.as_str(), "FORCED_OPEN");
///     }
///     other => panic!("unexpected {other:?}"),
/// }
/// ```
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Event {
    /// A circuit breaker changed state.
    BreakerStateChanged(BreakerTransition),
    /// A monitored source's SLA status changed (seen when its metrics were read).
    SlaStatusChanged(SlaStatusChange),
    /// A retry is about to be made.
    RetryAttempted(crate::retry::RetryAttempted),
    /// A retry was refused because the policy's retry budget is spent.
    RetryBudgetExhausted(crate::retry::RetryBudgetExhausted),
    /// A rate limiter refused calls (published at most once a second per limiter).
    RateLimited(LimitReached),
    /// A bulkhead refused calls (published at most once a second per bulkhead).
    BulkheadFull(LimitReached),
    /// Attempts timed out (published at most once a second per timeout policy).
    TimedOut(LimitReached),
    /// A cache served a stale value because its refresh failed.
    StaleServed(crate::cache::StaleServed),
}

/// A circuit breaker's state change.
#[derive(Clone, Debug, Serialize)]
pub struct BreakerTransition {
    /// The breaker's registry name.
    pub breaker: &'static str,
    /// The state it left.
    pub from: BreakerState,
    /// The state it entered.
    pub to: BreakerState,
    /// Failures counted when it changed (consecutive failures, or failures in the window).
    pub failure_count: u32,
    /// Why it changed, in words (for logs and alerts).
    pub reason: &'static str,
    /// Wall-clock time of the change.
    #[serde(serialize_with = "unix_seconds")]
    pub at: SystemTime,
}

/// A limiter, bulkhead or timeout that refused or dropped a call.
#[derive(Clone, Debug, Serialize)]
pub struct LimitReached {
    /// The limiter's, bulkhead's or timeout's registry name.
    pub name: &'static str,
    /// When a slot frees up, if known.
    pub retry_after: Option<std::time::Duration>,
}

/// A monitored source's status change.
#[derive(Clone, Debug, Serialize)]
pub struct SlaStatusChange {
    /// The source's registry name.
    pub source: Arc<str>,
    /// The previous status.
    pub from: SlaStatus,
    /// The new status.
    pub to: SlaStatus,
    /// Wall-clock time the change was seen.
    #[serde(serialize_with = "unix_seconds")]
    pub at: SystemTime,
}

fn unix_seconds<S: Serializer>(at: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    let seconds = at
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    serializer.serialize_f64(seconds)
}

fn channel() -> &'static broadcast::Sender<Event> {
    static CHANNEL: OnceLock<broadcast::Sender<Event>> = OnceLock::new();
    CHANNEL.get_or_init(|| broadcast::channel(EVENT_CAPACITY).0)
}

/// Subscribes to every event published from now on.
///
/// Works without a tokio runtime (`try_recv`, `blocking_recv`) and inside one (`recv().await`).
pub fn subscribe() -> broadcast::Receiver<Event> {
    channel().subscribe()
}

/// Lets through at most one event a second for one source, so that a limiter refusing
/// thousands of calls a second publishes one event, not thousands.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Coarse system-clock nanos of the last event let through (0: none yet).
    last: std::sync::atomic::AtomicU64,
}

impl Throttle {
    pub(crate) fn new() -> Self {
        Throttle::default()
    }

    /// Publishes `event()` unless one was published less than a second ago.
    pub(crate) fn publish(&self, event: impl FnOnce() -> Event) {
        use std::sync::atomic::Ordering;
        let now = crate::clock::Clock::system().now_coarse().as_nanos().max(1);
        let last = self.last.load(Ordering::Relaxed);
        if last == 0 || now.saturating_sub(last) >= 1_000_000_000 {
            self.last.store(now, Ordering::Relaxed);
            publish(event());
        }
    }
}

/// Publishes an event; a no-op when nobody listens.
pub(crate) fn publish(event: Event) {
    let sender = channel();
    if sender.receiver_count() > 0 {
        // An error only means every receiver went away meanwhile: nothing to do.
        let _ = sender.send(event);
    }
}
