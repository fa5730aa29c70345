//! Status changes are published, and alerted, without anyone reading the health: the failure
//! that crosses the consecutive-failure rule publishes at once, the watcher judges the rate and
//! latency rules every second (`sla_watcher.rs`, a process of its own), and an alert manager that starts late replays what is not
//! healthy.

use reliable_runtime::alert::{alert_manager, AlertConfig, AlertManager};
use reliable_runtime::breaker::BreakerConfig;
use reliable_runtime::registry::{breaker_registry, sla_registry};
use reliable_runtime::sla::{evaluate_all, SlaStatus, SlaThresholds};
use std::time::{Duration, Instant};

/// Waits for the alert listener (a thread of its own) to raise an alert for `source` with
/// `state`; the deadline is far above the time it takes, only to end a failing run.
fn alerted(manager: &AlertManager, source: &str, state: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if manager
            .history()
            .iter()
            .any(|alert| alert.source == source && alert.new_state == state)
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    false
}

#[test]
fn the_failure_that_crosses_the_consecutive_rule_alerts_with_nobody_reading_health() {
    let manager = alert_manager();
    let monitor = sla_registry()
        .get_or_create("eager_consecutive", SlaThresholds::cex())
        .unwrap();
    for _ in 0..2 {
        monitor.finish(monitor.start(), true);
    }
    assert_eq!(monitor.last_status(), SlaStatus::Healthy);
    monitor.finish(monitor.start(), true); // the third in a row: CEX's rule
    assert_eq!(
        monitor.last_status(),
        SlaStatus::Failed,
        "published at the failure"
    );
    assert!(alerted(manager, "eager_consecutive", "FAILED"));
    // A success: the window's rules decide the recovery, judged without a reader too.
    monitor.finish(monitor.start(), false);
    evaluate_all();
    assert_ne!(monitor.last_status(), SlaStatus::Failed);
}

#[test]
fn a_manager_that_starts_late_replays_what_is_not_healthy() {
    let monitor = sla_registry()
        .get_or_create("replayed_source", SlaThresholds::cex())
        .unwrap();
    for _ in 0..3 {
        monitor.finish(monitor.start(), true);
    }
    let breaker = breaker_registry()
        .get_or_create("replayed_breaker", BreakerConfig::default())
        .unwrap();
    breaker.force_open();
    let healthy = sla_registry()
        .get_or_create("replayed_healthy", SlaThresholds::cex())
        .unwrap();
    healthy.finish(healthy.start(), false);

    let manager = AlertManager::new(AlertConfig::default());
    manager.replay_current();
    let history = manager.history();
    let states = |source: &str| -> Vec<String> {
        history
            .iter()
            .filter(|alert| alert.source == source)
            .map(|alert| alert.new_state.clone())
            .collect()
    };
    assert_eq!(states("replayed_source"), ["FAILED"]);
    assert_eq!(states("replayed_breaker"), ["FORCED_OPEN"]);
    assert!(states("replayed_healthy").is_empty());
}

#[test]
fn a_cache_whose_hit_rate_drops_alerts_and_recovers() {
    use reliable_runtime::alert::{AlertKind, Severity};
    use reliable_runtime::cache::{judge_hit_rates, Cache, CacheConfig, HIT_RATE_MIN_LOOKUPS};
    use reliable_runtime::registry::cache_registry;
    // The watcher (started by the manager) judges too, each second: whichever judges a
    // crossing publishes it once, so this test reads the alerts, not what its own calls return.
    let manager = alert_manager();
    let cache: std::sync::Arc<Cache<u32, u32>> = cache_registry()
        .get_or_create("eager_hit_rate", CacheConfig::default().min_hit_rate(0.5))
        .unwrap()
        .unwrap();
    let alerts = |state: &str| {
        manager
            .history()
            .into_iter()
            .filter(|alert| alert.source == "eager_hit_rate" && alert.new_state == state)
            .collect::<Vec<_>>()
    };
    // Twice the lookups a judgement needs, in each phase: if the watcher judges in the middle
    // of one, a half still has enough.
    let lookups = 2 * HIT_RATE_MIN_LOOKUPS as u32;
    for key in 0..lookups {
        assert!(cache.get(&key).is_none());
        cache.insert(key, key);
    }
    judge_hit_rates();
    assert!(alerted(manager, "eager_hit_rate", "LOW"));
    let low = alerts("LOW");
    assert_eq!(
        (low[0].kind, low[0].severity),
        (AlertKind::Cache, Severity::Warning)
    );
    // Below the threshold still: no second alert.
    for key in 100..130 {
        assert!(cache.get(&key).is_none());
    }
    judge_hit_rates();
    // Hits again: recovered, once.
    for key in 0..lookups {
        assert_eq!(cache.get(&key), Some(key));
    }
    judge_hit_rates();
    assert!(alerted(manager, "eager_hit_rate", "OK"));
    assert_eq!(alerts("LOW").len(), 1, "one alert for one drop");
    assert_eq!(alerts("OK")[0].severity, Severity::Info);
}
