//! The runtime logs each breaker transition and SLA status change once, itself (`LogHandler`
//! leaves these alerts to it), at the level its alert's severity maps to: a source FAILED or a
//! breaker OPEN is an error, not an info line a `warn` filter would hide.

use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use reliable_runtime::sla::{SlaMonitor, SlaThresholds};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Every event's level and message while it is the default subscriber.
#[derive(Clone, Default)]
struct Events(Arc<Mutex<Vec<(Level, String)>>>);

struct Message<'a>(&'a mut String);

impl Visit for Message<'_> {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            *self.0 = format!("{value:?}");
        }
    }
}

impl Subscriber for Events {
    fn enabled(&self, _: &Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }
    fn record(&self, _: &Id, _: &Record<'_>) {}
    fn record_follows_from(&self, _: &Id, _: &Id) {}
    fn event(&self, event: &Event<'_>) {
        let mut message = String::new();
        event.record(&mut Message(&mut message));
        self.0
            .lock()
            .unwrap()
            .push((*event.metadata().level(), message));
    }
    fn enter(&self, _: &Id) {}
    fn exit(&self, _: &Id) {}
}

impl Events {
    fn levels_of(&self, message: &str) -> Vec<Level> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, logged)| logged == message)
            .map(|(level, _)| *level)
            .collect()
    }
}

#[test]
fn failures_are_logged_as_errors_recoveries_as_info() {
    let events = Events::default();
    tracing::subscriber::with_default(events.clone(), || {
        let breaker = CircuitBreaker::new("log_levels_breaker", BreakerConfig::default()).unwrap();
        breaker.set_state(BreakerState::Open);
        breaker.set_state(BreakerState::HalfOpen);
        breaker.set_state(BreakerState::Closed);

        let monitor = SlaMonitor::new("log_levels_source", SlaThresholds::cex()).unwrap();
        for _ in 0..SlaThresholds::cex().max_consecutive_failures {
            monitor.record_latency(Duration::from_millis(1), true);
        }
    });
    assert_eq!(events.levels_of("circuit breaker opened"), [Level::ERROR]);
    assert_eq!(
        events.levels_of("circuit breaker state changed"),
        [Level::WARN]
    );
    assert_eq!(events.levels_of("circuit breaker closed"), [Level::INFO]);
    assert_eq!(
        events.levels_of("SLA status changed"),
        [Level::ERROR],
        "FAILED"
    );
}
