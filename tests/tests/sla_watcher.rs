//! The SLA watcher, alone in its process (no other test judges the monitors meanwhile): a
//! change made by the success-rate rule is published within the watcher's interval, with
//! nobody reading the health.

use reliable_runtime::event::{self, Event};
use reliable_runtime::registry::sla_registry;
use reliable_runtime::sla::{SlaStatus, SlaThresholds, EVALUATION_INTERVAL};
use std::time::{Duration, Instant};

/// Waits for a status change of `source` to `to` on `events`, up to `within`.
fn published(
    events: &mut tokio::sync::broadcast::Receiver<Event>,
    source: &str,
    to: SlaStatus,
    within: Duration,
) -> bool {
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        match events.try_recv() {
            Ok(Event::SlaStatusChanged(change)) if &*change.source == source && change.to == to => {
                return true;
            }
            Ok(_) => {}
            Err(tokio::sync::broadcast::error::TryRecvError::Empty) => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(error) => panic!("events: {error}"),
        }
    }
    false
}

#[test]
fn the_rate_rule_is_judged_by_the_watcher_within_its_interval() {
    let mut events = event::subscribe(); // the first subscriber starts the watcher
    let monitor = sla_registry()
        .get_or_create(
            "eager_rate",
            SlaThresholds::cex().max_consecutive_failures(100),
        )
        .unwrap();
    for call in 0..30 {
        monitor.finish(monitor.start(), call % 3 != 0); // two in three fail, never three in a row
    }
    assert_eq!(
        monitor.last_status(),
        SlaStatus::Healthy,
        "nobody judged it"
    );
    assert!(
        published(
            &mut events,
            "eager_rate",
            SlaStatus::Failed,
            EVALUATION_INTERVAL * 5
        ),
        "the watcher did not publish within its interval"
    );
}
