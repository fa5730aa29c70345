//! Live reconfiguration: a running breaker takes new settings, keeping its state, under
//! concurrent load.

use reliable_runtime::alert::{Alert, AlertKind, Severity};
use reliable_runtime::breaker::{BreakerConfig, BreakerState, BreakerWindow, CircuitBreaker};
use reliable_runtime::clock::Clock;
use reliable_runtime::event::{subscribe, Event};
use reliable_runtime::registry::breaker_registry;
use reliable_runtime::{circuit_breaker, Rejected};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[test]
fn a_reconfigured_breaker_keeps_its_state_and_applies_the_new_settings_to_its_next_decisions() {
    let (clock, hand) = Clock::manual();
    let breaker = CircuitBreaker::new(
        "reconfigure_state",
        BreakerConfig::default().failure_threshold(5).clock(clock),
    )
    .unwrap();
    let mut events = subscribe();
    for _ in 0..3 {
        breaker.try_acquire().unwrap().failure();
    }
    breaker
        .reconfigure(|config| config.failure_threshold(4).timeout(Duration::from_secs(5)))
        .unwrap();
    assert_eq!(breaker.snapshot().failure_count, 3, "the count is kept");
    breaker.try_acquire().unwrap().failure();
    assert_eq!(
        breaker.state(),
        BreakerState::Open,
        "the 4th failure trips it now"
    );
    hand.advance(Duration::from_secs(5));
    assert!(breaker.try_acquire().is_ok(), "the new open time");

    let change = std::iter::from_fn(|| events.try_recv().ok())
        .find_map(|event| match event {
            Event::Reconfigured(change) if change.name == "reconfigure_state" => Some(change),
            _ => None,
        })
        .unwrap();
    let fields: Vec<_> = change.changes.iter().map(|c| c.field.as_str()).collect();
    assert_eq!(fields, ["failure_threshold", "timeout"]);
    let alert = Alert::from_event(&Event::Reconfigured(change)).unwrap();
    assert_eq!(
        (alert.kind, alert.severity),
        (AlertKind::Configuration, Severity::Info)
    );
    assert_eq!(alert.metadata["failure_threshold"], "5 -> 4");
}

#[test]
fn an_invalid_or_state_changing_reconfiguration_is_an_error_and_changes_nothing() {
    let breaker = CircuitBreaker::new("reconfigure_refused", BreakerConfig::default()).unwrap();
    let before = breaker.config();
    let error = breaker
        .reconfigure(|config| config.failure_threshold(3).success_threshold(0))
        .unwrap_err();
    assert_eq!(error.field(), "success_threshold");
    let error = breaker
        .reconfigure(|config| config.failure_rate_threshold(0.5))
        .unwrap_err();
    assert_eq!(error.field(), "failure_rate_threshold");
    let error = breaker
        .reconfigure(|config| config.slow_call_rate_threshold(0.5))
        .unwrap_err();
    assert_eq!(error.field(), "slow_call_rate_threshold");
    assert_eq!(breaker.config().failure_threshold, before.failure_threshold);

    let windowed = CircuitBreaker::new(
        "reconfigure_window",
        BreakerConfig::default().failure_rate_threshold(0.5),
    )
    .unwrap();
    let error = windowed
        .reconfigure(|config| config.window(BreakerWindow::Time(Duration::from_secs(60))))
        .unwrap_err();
    assert_eq!(error.field(), "window");
    windowed
        .reconfigure(|config| config.failure_rate_threshold(0.8))
        .unwrap();
    assert_eq!(windowed.config().failure_rate_threshold, Some(0.8));
}

/// Four threads (more than the machine's cores) call through the breaker while another
/// reconfigures it back and forth, for many rounds: every reconfiguration lands whole, calls
/// never fail for it, and once the last one returns, the next failure obeys it.
#[test]
fn reconfigurations_under_concurrent_calls_land_whole() {
    for round in 0..20 {
        let breaker = Arc::new(
            CircuitBreaker::new(
                format!("reconfigure_load_{round}"),
                BreakerConfig::default()
                    .failure_threshold(1_000_000)
                    .timeout(Duration::from_secs(3600))
                    .max_timeout(Duration::from_secs(3600)),
            )
            .unwrap(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let tripping = Arc::new(AtomicBool::new(false));
        let refused_early = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let callers: Vec<_> = (0..4)
            .map(|_| {
                let (breaker, stop, calls) = (breaker.clone(), stop.clone(), calls.clone());
                let (tripping, refused_early) = (tripping.clone(), refused_early.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        match breaker.try_acquire() {
                            Ok(permit) => permit.success(),
                            // Only the final trip may refuse a call.
                            Err(_) if !tripping.load(Ordering::SeqCst) => {
                                refused_early.store(true, Ordering::SeqCst)
                            }
                            Err(_) => {}
                        }
                        calls.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // The callers run before and during the changes, not after them.
        while calls.load(Ordering::Relaxed) < 1_000 {
            std::thread::yield_now();
        }
        for step in 0..200u32 {
            breaker
                .reconfigure(|config| {
                    config
                        .failure_threshold(1_000 + step)
                        .success_threshold(1 + step % 3)
                })
                .unwrap();
            let config = breaker.config();
            assert_eq!(config.failure_threshold, 1_000 + step, "whole");
            assert_eq!(config.success_threshold, 1 + step % 3, "whole");
        }
        breaker
            .reconfigure(|config| config.failure_threshold(1))
            .unwrap();
        tripping.store(true, Ordering::SeqCst);
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open, "round {round}");
        stop.store(true, Ordering::Relaxed);
        for caller in callers {
            caller.join().unwrap();
        }
        assert!(!refused_early.load(Ordering::SeqCst), "round {round}");
        assert!(calls.load(Ordering::Relaxed) > 0);
    }
}

#[derive(Debug)]
struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[circuit_breaker(name = "reconfigure_attribute", failure_threshold = 10, timeout = "1h")]
async fn flaky(up: bool) -> Result<u32, ApiError> {
    if up {
        Ok(1)
    } else {
        Err(ApiError)
    }
}

/// The instance behind an attribute is reconfigured in place: the fn's calls, made from many
/// tasks at once, take the new threshold.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attributes_breaker_is_reconfigured_in_place_under_load() {
    let _ = flaky(true).await; // creates it
    let breaker = breaker_registry().get("reconfigure_attribute").unwrap();
    let load: Vec<_> = (0..8)
        .map(|_| {
            tokio::spawn(async {
                for _ in 0..200 {
                    let _ = flaky(true).await;
                }
            })
        })
        .collect();
    breaker
        .reconfigure(|config| config.failure_threshold(2))
        .unwrap();
    for task in load {
        task.await.unwrap();
    }
    let _ = flaky(false).await;
    let _ = flaky(false).await;
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(matches!(flaky(true).await, Err(ApiError)));
}

mod monitors_and_retries {
    use reliable_runtime::event::{subscribe, Event};
    use reliable_runtime::retry::{Jitter, RetryConfig, RetryPolicy};
    use reliable_runtime::sla::{SlaMonitor, SlaStatus, SlaThresholds};
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;
    use std::time::Duration;

    /// A monitor's thresholds change while four threads record into it: the counts are kept,
    /// and the status read after the change follows the new thresholds.
    #[test]
    fn a_monitor_is_reconfigured_under_concurrent_recording() {
        let monitor = Arc::new(
            SlaMonitor::new("reconfigure_monitor", SlaThresholds::cex().min_calls(1)).unwrap(),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let recorded = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let recorders: Vec<_> = (0..4)
            .map(|_| {
                let (monitor, stop, recorded) = (monitor.clone(), stop.clone(), recorded.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        // Successes of 5 ms: healthy under the CEX p95 of 1 s.
                        monitor.record_latency(Duration::from_millis(5), false);
                        recorded.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        // The recorders run before and during the changes, not after them.
        while recorded.load(Ordering::Relaxed) < 1_000 {
            std::thread::yield_now();
        }
        let mut events = subscribe();
        for step in 0..100u32 {
            monitor
                .reconfigure(|sla| sla.max_consecutive_failures(3 + step))
                .unwrap();
            assert_eq!(monitor.thresholds().max_consecutive_failures, 3 + step);
        }
        assert_eq!(monitor.status(), SlaStatus::Healthy);
        monitor
            .reconfigure(|sla| {
                sla.max_latency_p95(Duration::from_millis(1))
                    .max_latency_p99(Duration::from_millis(2))
            })
            .unwrap();
        stop.store(true, Ordering::Relaxed);
        for recorder in recorders {
            recorder.join().unwrap();
        }
        let metrics = monitor.metrics();
        assert_eq!(
            metrics.total_calls,
            recorded.load(Ordering::Relaxed),
            "every call counted across the changes"
        );
        assert_eq!(
            metrics.status,
            SlaStatus::Degraded,
            "judged by the new thresholds"
        );
        let changes = std::iter::from_fn(|| events.try_recv().ok())
            .filter(|event| matches!(event, Event::Reconfigured(change) if change.name == "reconfigure_monitor"))
            .count();
        assert_eq!(changes, 101);
        let error = monitor
            // Below the p95.
            .reconfigure(|sla| sla.max_latency_p99(Duration::from_micros(500)))
            .unwrap_err();
        assert_eq!(error.field(), "max_latency_p99");
        assert_eq!(
            monitor.thresholds().max_latency_p99,
            Duration::from_millis(2),
            "unchanged"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_retry_policy_follows_its_new_attempts_and_refuses_a_budget_change() {
        let policy = RetryPolicy::new(
            "reconfigure_retry",
            RetryConfig::default()
                .max_attempts(2)
                .initial_delay(Duration::from_millis(10))
                .jitter(Jitter::None),
        )
        .unwrap();
        let attempts = std::sync::atomic::AtomicU32::new(0);
        let _ = policy
            .call(|| async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>("503")
            })
            .await;
        assert_eq!(attempts.swap(0, Ordering::SeqCst), 2);
        policy.reconfigure(|config| config.max_attempts(4)).unwrap();
        let _ = policy
            .call(|| async {
                attempts.fetch_add(1, Ordering::SeqCst);
                Err::<(), _>("503")
            })
            .await;
        assert_eq!(attempts.load(Ordering::SeqCst), 4);
        assert_eq!(policy.snapshot().calls, 2, "the counters are kept");
        let error = policy
            .reconfigure(|config| config.budget_ratio(0.5))
            .unwrap_err();
        assert_eq!(error.field(), "budget");
    }
}

mod limits_and_caches {
    use super::ApiError;
    use reliable_runtime::event::{subscribe, Event};
    use reliable_runtime::registry::{bulkhead_registry, cache_registry, rate_limiter_registry};
    use reliable_runtime::{bulkhead, cached, rate_limited, Rejected};
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Arc;
    use std::time::Duration;
    use tokio::sync::oneshot;
    use tokio::task::JoinHandle;

    #[derive(Debug)]
    enum CallError {
        Limited,
        Other,
    }

    impl From<Rejected> for CallError {
        fn from(rejected: Rejected) -> Self {
            match rejected {
                Rejected::RateLimited { .. } => CallError::Limited,
                _ => CallError::Other,
            }
        }
    }

    #[rate_limited(name = "reconfigure_rate", per_minute = 50)]
    async fn quote() -> Result<u32, CallError> {
        Ok(1)
    }

    /// Calls until the limiter refuses: how many got in.
    async fn admitted_until_refused(admitted: &AtomicU64) {
        loop {
            match quote().await {
                Ok(_) => admitted.fetch_add(1, Ordering::SeqCst),
                Err(CallError::Limited) => return,
                Err(CallError::Other) => panic!("only the limiter refuses"),
            };
        }
    }

    /// The limit of an attribute's limiter is lowered and raised while tasks on four threads
    /// call: every admission of this minute counts against the new limit, so the calls admitted
    /// are exactly the limit in force when they stop.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_attributes_rate_limit_moves_under_load_and_counts_what_it_admitted() {
        let mut events = subscribe();
        let admitted = Arc::new(AtomicU64::new(0));
        let _ = quote().await.unwrap(); // creates it
        admitted.fetch_add(1, Ordering::SeqCst);
        let limiter = rate_limiter_registry().get("reconfigure_rate").unwrap();
        let callers = |admitted: &Arc<AtomicU64>| -> Vec<_> {
            (0..8)
                .map(|_| {
                    let admitted = Arc::clone(admitted);
                    tokio::spawn(async move { admitted_until_refused(&admitted).await })
                })
                .collect()
        };
        let first = callers(&admitted);
        limiter.reconfigure(|rate| rate.limit(30)).unwrap();
        for caller in first {
            caller.await.unwrap();
        }
        let after_lowering = admitted.load(Ordering::SeqCst);
        assert!(
            (30..=50).contains(&after_lowering),
            "{after_lowering} admitted: 30 once lowered, or all 50 before it"
        );
        // Raised above every limit it had: the history moves to a larger log.
        limiter.reconfigure(|rate| rate.limit(120)).unwrap();
        for caller in callers(&admitted) {
            caller.await.unwrap();
        }
        assert_eq!(admitted.load(Ordering::SeqCst), 120);
        assert_eq!(limiter.snapshot().admitted, 120);
        let changes: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
            .filter_map(|event| match event {
                Event::Reconfigured(change) if change.name == "reconfigure_rate" => {
                    Some(change.changes[0].to.clone())
                }
                _ => None,
            })
            .collect();
        assert_eq!(changes, ["30", "120"]);
    }

    #[bulkhead(name = "reconfigure_bulkhead", max_concurrent = 2)]
    async fn held(release: oneshot::Receiver<()>) -> Result<(), ApiError> {
        let _ = release.await;
        Ok(())
    }

    /// A call that returns at once, if the bulkhead admits it.
    async fn quick() -> Result<(), ApiError> {
        let (_, released) = oneshot::channel(); // the sender dropped: returns at once
        held(released).await
    }

    /// Calls holding the bulkhead until their sender fires.
    async fn holding(count: usize) -> Vec<(oneshot::Sender<()>, JoinHandle<Result<(), ApiError>>)> {
        let calls: Vec<_> = (0..count)
            .map(|_| {
                let (release, wait) = oneshot::channel();
                (release, tokio::spawn(held(wait)))
            })
            .collect();
        while bulkhead_registry()
            .get("reconfigure_bulkhead")
            .is_none_or(|bulkhead| bulkhead.snapshot().in_flight < count as u32)
        {
            tokio::task::yield_now().await;
        }
        calls
    }

    /// A bulkhead lowered while calls hold its slots refuses until fewer than the new size are
    /// in flight, and a raised one admits at once.
    #[tokio::test]
    async fn an_attributes_bulkhead_resizes_around_the_calls_in_flight() {
        let mut calls = holding(2).await;
        let bulkhead = bulkhead_registry().get("reconfigure_bulkhead").unwrap();
        bulkhead
            .reconfigure(|config| config.max_concurrent(1))
            .unwrap();
        assert!(quick().await.is_err(), "2 in flight, size 1");
        for _ in 0..2 {
            assert!(quick().await.is_err(), "still at least 1 in flight");
            let (release, call) = calls.pop().unwrap();
            release.send(()).unwrap();
            assert!(call.await.unwrap().is_ok());
        }
        assert!(quick().await.is_ok(), "none in flight");
        bulkhead
            .reconfigure(|config| config.max_concurrent(3))
            .unwrap();
        let calls = holding(3).await;
        assert!(quick().await.is_err(), "3 in flight, size 3");
        for (release, call) in calls {
            release.send(()).unwrap();
            assert!(call.await.unwrap().is_ok());
        }
        let stats = bulkhead.snapshot();
        assert_eq!(
            (stats.max_concurrent, stats.in_flight, stats.rejected),
            (3, 0, 4)
        );
    }

    #[cached(ttl = 60, name = "reconfigure_cache", key = id)]
    async fn profile(id: u32) -> Result<u32, ApiError> {
        Ok(id * 10)
    }

    /// A `#[cached]` fn's cache, reconfigured by name while tasks read it: the entries held are
    /// kept (a lower size evicts down to it), and new entries take the new TTL.
    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn an_attributes_cache_is_reconfigured_by_name_under_reads() {
        for id in 0..100 {
            assert_eq!(profile(id).await.unwrap(), id * 10);
        }
        let readers: Vec<_> = (0..4)
            .map(|_| {
                tokio::spawn(async {
                    for id in 0..2_000 {
                        assert_eq!(profile(id % 100).await.unwrap(), (id % 100) * 10);
                    }
                })
            })
            .collect();
        cache_registry()
            .reconfigure("reconfigure_cache", |config| {
                config.ttl(Duration::from_secs(5)).max_entries(50)
            })
            .unwrap();
        for reader in readers {
            reader.await.unwrap();
        }
        let stats = cache_registry().snapshot("reconfigure_cache").unwrap();
        assert_eq!(stats.ttl_seconds, 5.0);
        assert!(stats.size <= 100, "{} entries", stats.size);
        let error = cache_registry()
            .reconfigure("reconfigure_cache", |config| config.eviction_ratio(2.0))
            .unwrap_err();
        assert_eq!(error.field(), "eviction_ratio");
        assert_eq!(
            cache_registry()
                .snapshot("reconfigure_cache")
                .unwrap()
                .ttl_seconds,
            5.0
        );
    }
}
