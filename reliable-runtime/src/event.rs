//! Typed events: breaker state changes, SLA status changes, retries, refusals by rate limiters,
//! bulkheads and timeouts, and stale values served, on one process-wide channel.
//!
//! Publishing never blocks and never allocates a queue per subscriber: events go to a bounded
//! `tokio::sync::broadcast` channel ([`EVENT_CAPACITY`] events). A subscriber that falls behind
//! misses the oldest events and is told how many (`RecvError::Lagged`); the caller that caused the
//! event never waits for anyone.

pub use crate::breaker::state::BreakerTransition;
#[cfg(feature = "cache")]
pub use crate::cache::events::StaleServed;
use crate::common::settings::{differences, settings_of};
pub use crate::common::settings::{ConfigConflict, Reconfigured, SettingChange};
use crate::common::throttle::Throttle;
pub use crate::limit::refused::LimitReached;
#[cfg(feature = "retry")]
pub use crate::retry::events::{RetryAttempted, RetryBudgetExhausted};
pub use crate::sla::status::SlaStatusChange;
use serde::Serialize;
use std::sync::OnceLock;
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
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    RetryAttempted(RetryAttempted),
    /// A retry was refused because the policy's retry budget is spent.
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    RetryBudgetExhausted(RetryBudgetExhausted),
    /// A rate limiter refused calls (published at most once a second per limiter).
    RateLimited(LimitReached),
    /// A bulkhead refused calls (published at most once a second per bulkhead).
    BulkheadFull(LimitReached),
    /// Attempts timed out (published at most once a second per timeout policy).
    TimedOut(LimitReached),
    /// A cache served a stale value because its refresh failed.
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    StaleServed(StaleServed),
    /// A cache's hit rate crossed its `min_hit_rate`, either way (judged each second by the
    /// runtime's watcher).
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    CacheHitRate(crate::cache::HitRateChange),
    /// An attribute asked for a layer registered under its name with other settings, and took
    /// the registered one (a [`Policy`](crate::Policy) builder refuses it instead).
    ConfigConflict(ConfigConflict),
    /// A running instance took a new configuration, its state kept (e.g.
    /// [`CircuitBreaker::reconfigure`](crate::breaker::CircuitBreaker::reconfigure)).
    Reconfigured(Reconfigured),
}

static CHANNEL: OnceLock<broadcast::Sender<Event>> = OnceLock::new();

fn channel() -> &'static broadcast::Sender<Event> {
    CHANNEL.get_or_init(|| broadcast::channel(EVENT_CAPACITY).0)
}

/// Subscribes to every event published from now on.
///
/// Works without a tokio runtime (`try_recv`, `blocking_recv`) and inside one (`recv().await`).
///
/// The first subscriber starts the runtime's SLA watcher, which judges every registered
/// monitor each second so that status changes are published without a reader
/// ([`sla::evaluate_all`](crate::sla::evaluate_all)).
pub fn subscribe() -> broadcast::Receiver<Event> {
    let events = channel().subscribe();
    crate::sla::start_watching();
    events
}

/// Publishes `event()` unless `throttle` let one through less than a second ago.
pub(crate) fn publish_throttled(throttle: &Throttle, event: impl FnOnce() -> Event) {
    if throttle.admit() {
        publish(event());
    }
}

/// Logs and publishes a reconfiguration of `layer` `name` from `before` to `after`.
pub(crate) fn publish_reconfigured(
    layer: &'static str,
    name: &'static str,
    before: &impl Serialize,
    after: &impl Serialize,
) {
    let changes = differences(&settings_of(before), &settings_of(after));
    for change in &changes {
        tracing::info!(layer, name, field = %change.field, from = %change.from, to = %change.to, "reconfigured");
    }
    publish(Event::Reconfigured(Reconfigured {
        layer,
        name,
        changes,
        at: std::time::SystemTime::now(),
    }));
}

/// Publishes an event; a no-op when nobody listens.
pub(crate) fn publish(event: Event) {
    // No channel yet: nobody ever subscribed (and making one would allocate on a call path).
    let Some(sender) = CHANNEL.get() else {
        return;
    };
    if sender.receiver_count() > 0 {
        // An error only means every receiver went away meanwhile: nothing to do.
        let _ = sender.send(event);
    }
}
