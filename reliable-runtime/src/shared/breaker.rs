//! [`SharedBreaker`]: a trip in one instance opens the breaker of every instance.

use super::SharedStore;
use crate::breaker::{BreakerState, CircuitBreaker};
use crate::event::Event;
use std::sync::Arc;
use std::time::Duration;

/// The reason a breaker's state is set by hand, which [`SharedBreaker`] uses to open a breaker
/// because another instance's opened: such openings are not published again (no echo).
const SET_BY_HAND: &str = "set by hand";

/// Shares the trips of a local [`CircuitBreaker`] with every instance naming the same shared
/// breaker on one Redis: when the breaker of one opens on its own (failures, not by hand), it
/// records the opening on the server for its open timeout; every instance reads the record
/// each `sync_every` (100 ms by default) and opens its own breaker if it is closed, so an
/// outage found by one instance cuts them all off within that delay plus the store's timeout.
/// Each instance then half-opens and probes on its own timer.
///
/// Calls never wait on Redis: the breaker's own admission is local, and the syncing runs in a
/// task of its own (spawned on the current tokio runtime; it stops when the `SharedBreaker`
/// drops). While Redis is unavailable, each breaker works on its own; trips in that time are
/// not shared.
///
/// ```no_run
/// use reliable_runtime::breaker::BreakerConfig;
/// use reliable_runtime::registry::breaker_registry;
/// use reliable_runtime::shared::{SharedBreaker, SharedStore};
///
/// # async fn run() -> Result<(), reliable_runtime::ConfigError> {
/// let store = SharedStore::new("ingest", "redis://127.0.0.1:6379/")?;
/// let breaker = breaker_registry().get_or_create("binance_api", BreakerConfig::cex())?;
/// let _shared = SharedBreaker::start(&store, "binance_api", breaker);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SharedBreaker {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SharedBreaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SharedBreaker {
    /// Shares `breaker`'s trips as `name` on `store`'s server, reading the others' every
    /// 100 ms. Needs a tokio runtime.
    pub fn start(store: &SharedStore, name: &str, breaker: Arc<CircuitBreaker>) -> SharedBreaker {
        SharedBreaker::with_sync(store, name, breaker, Duration::from_millis(100))
    }

    /// [`start`](Self::start), reading every `sync_every`.
    pub fn with_sync(
        store: &SharedStore,
        name: &str,
        breaker: Arc<CircuitBreaker>,
        sync_every: Duration,
    ) -> SharedBreaker {
        let store = store.clone();
        let key = format!("reliable:{{{name}}}:breaker:open");
        let mut events = crate::event::subscribe();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(sync_every.max(Duration::from_millis(1)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    event = events.recv() => match event {
                        Ok(Event::BreakerStateChanged(change))
                            if change.breaker == breaker.name()
                                && change.to == BreakerState::Open
                                && change.reason != SET_BY_HAND =>
                        {
                            publish(&store, &key, &breaker).await;
                        }
                        Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                    },
                    _ = tick.tick() => follow(&store, &key, &breaker).await,
                }
            }
        });
        SharedBreaker { task }
    }
}

/// Records this instance's opening for its open timeout.
async fn publish(store: &SharedStore, key: &str, breaker: &CircuitBreaker) {
    let open_for = breaker.config().timeout;
    let millis = u64::try_from(open_for.as_millis())
        .unwrap_or(u64::MAX)
        .max(1);
    let outcome = store
        .run(|mut connection| async move {
            redis::cmd("SET")
                .arg(key)
                .arg(breaker.name())
                .arg("PX")
                .arg(millis)
                .query_async::<()>(&mut connection)
                .await
        })
        .await;
    if outcome.is_err() {
        store.fell_back();
        tracing::warn!(
            breaker = breaker.name(),
            "a trip could not be shared: Redis is unavailable"
        );
    }
}

/// Opens this instance's breaker if another instance's opening is recorded and it is closed.
async fn follow(store: &SharedStore, key: &str, breaker: &CircuitBreaker) {
    let remaining = store
        .run(|mut connection| async move {
            redis::cmd("PTTL")
                .arg(key)
                .query_async::<i64>(&mut connection)
                .await
        })
        .await;
    match remaining {
        Ok(millis) if millis > 0 && breaker.state() == BreakerState::Closed => {
            tracing::info!(
                breaker = breaker.name(),
                "opened: another instance's breaker opened"
            );
            breaker.set_state(BreakerState::Open);
        }
        Ok(_) => {}
        Err(_) => store.fell_back(),
    }
}
