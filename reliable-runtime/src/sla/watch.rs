//! The watcher: judges every registered monitor once a second, so a status change made by the
//! rate or latency rules is published even when nobody reads the health.
//!
//! One thread for the whole process (no tokio runtime needed), started by the first event
//! subscriber (the alert manager is one): with nobody listening, a change has no one to tell.
//! The consecutive-failure rule needs no watcher: the failure that crosses it publishes at once.

use crate::registry::sla_registry;
use std::sync::Once;
use std::time::Duration;

/// How often the watcher judges the monitors.
pub const EVALUATION_INTERVAL: Duration = Duration::from_secs(1);

/// Judges every registered monitor now (what the watcher does each second), publishing an
/// [`Event::SlaStatusChanged`](crate::event::Event::SlaStatusChanged) for each status that
/// changed since it was last judged. Returns how many monitors it judged.
///
/// ```
/// use reliable_runtime::registry::sla_registry;
/// use reliable_runtime::sla::{evaluate_all, SlaStatus, SlaThresholds};
///
/// let monitor = sla_registry().get_or_create("evaluate_all_doc", SlaThresholds::default().min_success_rate(0.9)).unwrap();
/// // Two failures in three, never more than two in a row: only the success-rate rule sees it.
/// for call in 0..30 {
///     monitor.finish(monitor.start(), call % 3 != 0);
/// }
/// assert_eq!(monitor.last_status(), SlaStatus::Healthy, "not judged yet");
/// assert!(evaluate_all() >= 1);
/// assert_eq!(monitor.last_status(), SlaStatus::Failed);
/// ```
pub fn evaluate_all() -> usize {
    let monitors = sla_registry().every();
    for monitor in &monitors {
        monitor.evaluate();
    }
    monitors.len()
}

/// Starts the watcher thread, once per process.
pub(crate) fn start() {
    static STARTED: Once = Once::new();
    STARTED.call_once(|| {
        let started = std::thread::Builder::new()
            .name("reliable-sla-watch".to_owned())
            .spawn(|| loop {
                std::thread::sleep(EVALUATION_INTERVAL);
                // A panic in one judgement (there should be none) must not end the watcher.
                let _ = std::panic::catch_unwind(evaluate_all);
                #[cfg(feature = "cache")]
                let _ = std::panic::catch_unwind(crate::cache::judge_hit_rates);
            });
        if let Err(error) = started {
            tracing::error!(%error, "could not start the SLA watcher: rate and latency rules are judged only when health is read");
        }
    });
}
