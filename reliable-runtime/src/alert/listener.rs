//! The global manager's listener: runtime events in, alerts out, on a thread of its own.

use super::AlertManager;
use crate::event::{self, Event};
use tokio::sync::broadcast::{self, error::RecvError};

/// Subscribes to the runtime's events now, and raises their alerts on `manager` from a
/// dedicated thread (no tokio runtime needed).
pub(super) fn start(manager: &'static AlertManager) {
    let events = event::subscribe();
    // What is not healthy already: its events were published before anyone listened. After
    // subscribing, so that nothing falls between the two: a change that lands between them is
    // both replayed and received, and alerted twice; once, at start, is the price of never
    // missing one.
    manager.replay_current();
    let started = std::thread::Builder::new()
        .name("reliable-alerts".to_owned())
        .spawn(move || listen(events, manager));
    if let Err(error) = started {
        tracing::error!(%error, "could not start the alert listener: no breaker or SLA alerts");
    }
}

/// Raises an alert for each alerting event until the channel closes; events lost because this
/// fell behind are counted as missed.
pub(super) fn listen(mut events: broadcast::Receiver<Event>, manager: &AlertManager) {
    loop {
        match events.blocking_recv() {
            Ok(event) => {
                manager.raise_event(&event);
            }
            Err(RecvError::Lagged(missed)) => {
                manager.note_missed(missed);
                tracing::warn!(missed, "the alert listener fell behind: events were missed");
            }
            Err(RecvError::Closed) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::alert::AlertConfig;
    use crate::breaker::BreakerState;
    use crate::event::BreakerTransition;
    use std::time::SystemTime;

    fn transition(to: BreakerState) -> Event {
        Event::BreakerStateChanged(BreakerTransition {
            breaker: "unit_listener",
            from: BreakerState::Closed,
            to,
            failure_count: 0,
            reason: "unit",
            at: SystemTime::now(),
        })
    }

    #[test]
    fn a_lagging_listener_counts_the_events_it_missed() {
        let (sender, events) = broadcast::channel(2);
        let manager = AlertManager::new(AlertConfig::default());
        for to in [
            BreakerState::Open,
            BreakerState::ForcedOpen,
            BreakerState::Disabled,
            BreakerState::HalfOpen,
            BreakerState::Closed,
        ] {
            sender.send(transition(to)).unwrap();
        }
        drop(sender);
        listen(events, &manager); // returns once the channel is closed and drained
        let stats = manager.stats();
        assert_eq!((stats.raised, stats.missed_events), (2, 3));
        let kept: Vec<String> = manager.history().into_iter().map(|a| a.new_state).collect();
        assert_eq!(kept, ["HALF_OPEN", "CLOSED"]);
    }
}
