//! The public `Policy`: built once, called many times, without any attribute.

use reliable_runtime::breaker::BreakerState;
use reliable_runtime::clock::Clock;
use reliable_runtime::limit::RateLimit;
use reliable_runtime::preset::{CEX, DEX};
use reliable_runtime::registry::{breaker_registry, retry_registry, sla_registry};
use reliable_runtime::{Failure, Policy, Rejected};
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
enum ApiError {
    Http(u16),
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

#[test]
fn endpoints_share_a_named_breaker_and_keep_their_own_monitors() {
    let orderbook = Policy::builder("policy_orderbook")
        .preset(CEX)
        .breaker("policy_exchange", |breaker| breaker.failure_threshold(3))
        .build()
        .unwrap();
    let ticker = Policy::builder("policy_ticker")
        .preset(CEX)
        // Configured once above: referred to by name, the instance is shared.
        .shared_breaker("policy_exchange")
        .build()
        .unwrap();
    assert!(Arc::ptr_eq(
        orderbook.breaker().unwrap(),
        ticker.breaker().unwrap()
    ));
    assert_eq!(ticker.breaker().unwrap().config().failure_threshold, 3);
    assert_eq!(orderbook.monitor().unwrap().name(), "policy_orderbook");
    assert_eq!(ticker.monitor().unwrap().name(), "policy_ticker");
    // The preset's numbers where nothing was changed.
    let sla = orderbook.monitor().unwrap().thresholds();
    assert_eq!(sla.max_latency_p95, Duration::from_secs(1));
    assert_eq!(orderbook.retry().unwrap().config().backoff.max_attempts, 3);
    assert_eq!(
        orderbook.breaker().unwrap().config().timeout,
        Duration::from_secs(30)
    );
}

#[test]
fn an_invalid_layer_is_an_error_naming_it_and_registers_nothing() {
    let error = Policy::builder("policy_invalid")
        .monitor("policy_invalid_monitor", |sla| sla)
        .breaker("policy_invalid_breaker", |breaker| {
            breaker.success_threshold(0)
        })
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "success_threshold");
    assert_eq!(error.layer(), Some("breaker `policy_invalid_breaker`"));
    assert!(error
        .to_string()
        .starts_with("breaker `policy_invalid_breaker`: invalid `success_threshold`"));
    // The monitor was valid, but nothing is registered when any layer is not.
    assert!(sla_registry().get("policy_invalid_monitor").is_none());
    assert!(breaker_registry().get("policy_invalid_breaker").is_none());

    let error = Policy::builder("").build().unwrap_err();
    assert_eq!(error.field(), "name");
    let error = Policy::builder("policy_bad_limit")
        .rate_limit("policy_bad_limit", RateLimit::per_second(0))
        .build()
        .unwrap_err();
    assert_eq!(
        (error.field(), error.layer()),
        ("limit", Some("rate limit `policy_bad_limit`"))
    );
    let error = Policy::builder("policy_bad_cache")
        .cache("policy_bad_cache", |cache| cache.eviction_ratio(2.0))
        .build()
        .unwrap_err();
    assert_eq!(
        (error.field(), error.layer()),
        ("eviction_ratio", Some("cache `policy_bad_cache`"))
    );
}

#[tokio::test]
async fn calls_are_measured_and_an_open_breaker_refuses_without_calling() {
    let policy = Policy::builder("policy_calls")
        .monitor("policy_calls", |sla| sla)
        .breaker("policy_calls", |breaker| breaker.failure_threshold(2))
        .build()
        .unwrap();
    assert_eq!(policy.call(|| async { Ok::<_, ApiError>(7) }).await, Ok(7));
    for _ in 0..2 {
        let failed = policy
            .call(|| async { Err::<u32, _>(ApiError::Http(503)) })
            .await;
        assert_eq!(failed, Err(ApiError::Http(503)));
    }
    assert!(policy.breaker().unwrap().state().is_open());
    let calls = AtomicU32::new(0);
    let refused = policy
        .call(|| {
            calls.fetch_add(1, Ordering::Relaxed);
            async { Ok::<_, ApiError>(1) }
        })
        .await;
    assert!(matches!(
        refused,
        Err(ApiError::Rejected(Rejected::CircuitOpen { .. }))
    ));
    assert_eq!(
        calls.load(Ordering::Relaxed),
        0,
        "a refused call never runs"
    );
    let metrics = policy.monitor().unwrap().metrics();
    assert_eq!((metrics.total_calls, metrics.total_failures), (3, 2));

    // The programmatic form tells a refusal from the call's own error.
    let refused = policy
        .try_call(|| async { Ok::<_, std::io::Error>(()) })
        .await;
    assert!(matches!(
        refused,
        Err(Failure::Rejected(Rejected::CircuitOpen { .. }))
    ));
}

#[tokio::test(start_paused = true)]
async fn retries_follow_retry_if_and_call_on_retry() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    let policy = Policy::builder("policy_retries")
        .retry("policy_retries", |retry| {
            retry
                .max_attempts(4)
                .initial_delay(Duration::from_millis(100))
                .budget(None)
        })
        .retry_if(|error: &ApiError| matches!(error, ApiError::Http(500..)))
        .on_retry(move |attempt, _delay, cause: &Failure<ApiError>| {
            log.lock().unwrap().push((attempt, format!("{cause:?}")));
        })
        .build()
        .unwrap();
    let attempts = AtomicU32::new(0);
    let answer = policy
        .call(|| {
            let attempt = attempts.fetch_add(1, Ordering::Relaxed) + 1;
            async move {
                match attempt {
                    1 | 2 => Err(ApiError::Http(503)),
                    _ => Ok(attempt),
                }
            }
        })
        .await;
    assert_eq!(answer, Ok(3));
    assert_eq!(
        seen.lock()
            .unwrap()
            .iter()
            .map(|(attempt, _)| *attempt)
            .collect::<Vec<_>>(),
        vec![2, 3]
    );
    // A 404 is not worth another attempt.
    attempts.store(0, Ordering::Relaxed);
    let answer = policy
        .call(|| {
            attempts.fetch_add(1, Ordering::Relaxed);
            async { Err::<u32, _>(ApiError::Http(404)) }
        })
        .await;
    assert_eq!(answer, Err(ApiError::Http(404)));
    assert_eq!(attempts.load(Ordering::Relaxed), 1);
    assert_eq!(
        retry_registry()
            .get("policy_retries")
            .unwrap()
            .snapshot()
            .retries,
        2
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_hint_sets_the_retry_delay() {
    let policy = Policy::builder("policy_hint")
        .retry("policy_hint", |retry| {
            retry
                .max_attempts(2)
                .initial_delay(Duration::from_secs(10))
                .budget(None)
        })
        .retry_after(|_: &ApiError| Some(Duration::from_millis(250)))
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    let attempts = AtomicU32::new(0);
    let answer = policy
        .call(|| {
            let first = attempts.fetch_add(1, Ordering::Relaxed) == 0;
            async move {
                if first {
                    Err(ApiError::Http(429))
                } else {
                    Ok(())
                }
            }
        })
        .await;
    assert_eq!(answer, Ok(()));
    assert_eq!(start.elapsed(), Duration::from_millis(250));
}

#[tokio::test(start_paused = true)]
async fn a_slow_attempt_times_out_counts_as_failed_and_is_retried() {
    let policy = Policy::builder("policy_timeout")
        .monitor("policy_timeout", |sla| sla)
        .retry("policy_timeout", |retry| {
            retry
                .max_attempts(2)
                .initial_delay(Duration::from_millis(10))
                .budget(None)
        })
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    let answer = policy
        .call(|| async {
            tokio::time::sleep(Duration::from_secs(5)).await;
            Ok::<_, ApiError>(())
        })
        .await;
    assert!(matches!(
        answer,
        Err(ApiError::Rejected(Rejected::Timeout { after })) if after == Duration::from_millis(100)
    ));
    let metrics = policy.monitor().unwrap().metrics();
    assert_eq!((metrics.total_calls, metrics.total_failures), (2, 2));
    let timeouts = policy.timeout().unwrap().snapshot();
    assert_eq!((timeouts.attempts, timeouts.timeouts), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn rate_limits_refuse_or_wait() {
    let refusing = Policy::builder("policy_refusing")
        .rate_limit("policy_refusing", RateLimit::per_second(2))
        .clock(Clock::tokio())
        .build()
        .unwrap();
    for _ in 0..2 {
        assert!(refusing
            .call(|| async { Ok::<_, ApiError>(()) })
            .await
            .is_ok());
    }
    assert!(matches!(
        refusing.call(|| async { Ok::<_, ApiError>(()) }).await,
        Err(ApiError::Rejected(Rejected::RateLimited { .. }))
    ));

    let waiting = Policy::builder("policy_waiting")
        .rate_limit("policy_waiting", RateLimit::per_second(2))
        .wait_for_rate_limit()
        .clock(Clock::tokio())
        .build()
        .unwrap();
    let start = tokio::time::Instant::now();
    for _ in 0..3 {
        assert!(waiting
            .call(|| async { Ok::<_, ApiError>(()) })
            .await
            .is_ok());
    }
    assert!(
        start.elapsed() >= Duration::from_secs(1),
        "the third call waited for a slot"
    );
}

#[tokio::test(start_paused = true)]
async fn a_full_bulkhead_refuses_and_a_cancelled_call_frees_its_slot() {
    let policy = Arc::new(
        Policy::builder("policy_bulkhead")
            .bulkhead("policy_bulkhead", |bulkhead| bulkhead.max_concurrent(1))
            .build()
            .unwrap(),
    );
    let holder = {
        let policy = Arc::clone(&policy);
        tokio::spawn(async move {
            policy
                .call(|| async {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                    Ok::<_, ApiError>(())
                })
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert!(matches!(
        policy.call(|| async { Ok::<_, ApiError>(()) }).await,
        Err(ApiError::Rejected(Rejected::BulkheadFull { .. }))
    ));
    holder.abort();
    let _ = holder.await;
    assert_eq!(policy.call(|| async { Ok::<_, ApiError>(5) }).await, Ok(5));
}

#[test]
fn blocking_calls_go_through_the_same_layers() {
    let policy = Policy::builder("policy_blocking")
        .monitor("policy_blocking", |sla| sla)
        .breaker("policy_blocking", |breaker| breaker.failure_threshold(3))
        .retry("policy_blocking", |retry| {
            retry
                .max_attempts(3)
                .initial_delay(Duration::from_millis(1))
                .budget(None)
        })
        .build()
        .unwrap();
    let mut attempts = 0;
    let answer = policy.call_blocking(|| {
        attempts += 1;
        if attempts < 3 {
            Err(ApiError::Http(502))
        } else {
            Ok(attempts)
        }
    });
    assert_eq!(answer, Ok(3));
    assert_eq!(policy.monitor().unwrap().metrics().total_calls, 3);
    // Two failures, a success: the breaker's consecutive count restarted.
    assert_eq!(policy.breaker().unwrap().state(), BreakerState::Closed);
}

#[tokio::test]
async fn cached_calls_load_once_and_look_up_borrowed() {
    let policy = Policy::builder("policy_cached")
        .cache("policy_cached", |cache| cache.ttl(Duration::from_secs(60)))
        .monitor("policy_cached", |sla| sla)
        .build()
        .unwrap();
    let loads = AtomicU32::new(0);
    let load = || {
        loads.fetch_add(1, Ordering::Relaxed);
        async { Ok::<_, ApiError>(97_000u64) }
    };
    for _ in 0..3 {
        assert_eq!(policy.cached("BTCUSDT".to_owned(), load).await, Ok(97_000));
    }
    let symbol: &str = "BTCUSDT";
    let hit = policy
        .cached_by::<String, _, _, _, _, _, reliable_runtime::cache::ByClone>(
            symbol,
            || unreachable!("a hit builds no owned key"),
            load,
        )
        .await;
    assert_eq!(hit, Ok(97_000));
    assert_eq!(loads.load(Ordering::Relaxed), 1);
    // The monitor measured the one load, not the hits.
    assert_eq!(policy.monitor().unwrap().metrics().total_calls, 1);
    assert_eq!(
        policy.cached_blocking("BTCUSDT".to_owned(), || Ok::<u64, ApiError>(1)),
        Ok(97_000)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_misses_share_one_load() {
    let policy = Arc::new(
        Policy::builder("policy_single_flight")
            .cache("policy_single_flight", |cache| {
                cache.ttl(Duration::from_secs(60))
            })
            .build()
            .unwrap(),
    );
    let loads = Arc::new(AtomicU32::new(0));
    let barrier = Arc::new(tokio::sync::Barrier::new(16));
    let callers: Vec<_> = (0..16)
        .map(|_| {
            let (policy, loads, barrier) = (
                Arc::clone(&policy),
                Arc::clone(&loads),
                Arc::clone(&barrier),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                policy
                    .cached(1u64, || {
                        loads.fetch_add(1, Ordering::Relaxed);
                        async {
                            tokio::time::sleep(Duration::from_millis(20)).await;
                            Ok::<_, ApiError>("book")
                        }
                    })
                    .await
            })
        })
        .collect();
    for caller in callers {
        assert_eq!(caller.await.unwrap(), Ok("book"));
    }
    assert_eq!(loads.load(Ordering::Relaxed), 1);
}

#[tokio::test]
async fn a_fallback_answers_from_the_cause_and_a_panicking_one_gives_the_error() {
    let policy = Policy::builder("policy_fallback")
        .breaker("policy_fallback", |breaker| breaker.failure_threshold(1))
        .fallback("policy_fallback_counters")
        .build()
        .unwrap();
    let causes = Mutex::new(Vec::new());
    for _ in 0..2 {
        let answer = policy
            .call_or_else(
                || async { Err::<u32, _>(ApiError::Http(500)) },
                |cause| {
                    causes.lock().unwrap().push(cause.is_rejected());
                    async { Ok(0) }
                },
            )
            .await;
        assert_eq!(answer, Ok(0));
    }
    // The first failed, the second was refused by the open breaker.
    assert_eq!(*causes.lock().unwrap(), vec![false, true]);
    let panicked = policy
        .call_or_else(
            || async { Err::<u32, _>(ApiError::Http(500)) },
            |_| -> std::future::Ready<Result<u32, ApiError>> { panic!("fallback bug") },
        )
        .await;
    assert!(matches!(
        panicked,
        Err(ApiError::Rejected(Rejected::CircuitOpen { .. }))
    ));
    let counters = policy.degradation().unwrap().snapshot();
    assert_eq!((counters.fallbacks, counters.fallback_panics), (2, 1));
    assert_eq!(
        policy.degradation().unwrap().name(),
        "policy_fallback_counters"
    );
}

#[tokio::test]
async fn failure_if_decides_what_the_breaker_and_monitor_count() {
    let policy = Policy::builder("policy_failure_if")
        .monitor("policy_failure_if", |sla| sla)
        .breaker("policy_failure_if", |breaker| breaker.failure_threshold(1))
        .failure_if(|error: &ApiError| !matches!(error, ApiError::Http(404)))
        .build()
        .unwrap();
    for _ in 0..3 {
        let _ = policy
            .call(|| async { Err::<(), _>(ApiError::Http(404)) })
            .await;
    }
    assert_eq!(policy.breaker().unwrap().state(), BreakerState::Closed);
    assert_eq!(policy.monitor().unwrap().metrics().total_failures, 0);
    // A callback given for another error type is not used (and does not panic).
    let _ = policy
        .try_call(|| async { Err::<(), _>(std::io::Error::other("x")) })
        .await;
    assert!(policy.breaker().unwrap().state().is_open());
}

#[tokio::test]
async fn measure_takes_any_output() {
    let policy = Policy::builder("policy_measure")
        .preset(DEX)
        .build()
        .unwrap();
    let quotes = policy
        .measure(async { Vec::<f64>::new() }, Vec::is_empty)
        .await;
    assert!(quotes.is_empty());
    let metrics = policy.monitor().unwrap().metrics();
    assert_eq!((metrics.total_calls, metrics.total_failures), (1, 1));
    // The breaker is not involved in a measurement.
    assert_eq!(policy.breaker().unwrap().snapshot().failure_count, 0);
    assert_eq!(policy.measure_blocking(|| 3, |_| false), 3);
}

#[test]
fn policies_and_their_calls_cross_threads() {
    fn send_sync<T: Send + Sync>(_: &T) {}
    fn send<T: Send>(_: &T) {}
    let policy = Policy::builder("policy_threads")
        .preset(CEX)
        .build()
        .unwrap();
    send_sync(&policy);
    send(&policy.call(|| async { Ok::<_, ApiError>(()) }));
    send(&policy.cached(1u8, || async { Ok::<_, ApiError>(()) }));
}

/// More threads than cores through one policy whose bulkhead admits two at a time: never more
/// than two bodies run at once, and every call is either run or refused, none lost.
#[test]
fn a_policy_under_contention_keeps_its_bulkhead_bound() {
    let policy = Arc::new(
        Policy::builder("policy_contention")
            .monitor("policy_contention", |sla| sla)
            .bulkhead("policy_contention", |bulkhead| bulkhead.max_concurrent(2))
            .build()
            .unwrap(),
    );
    let in_flight = Arc::new(AtomicUsize::new(0));
    let most = Arc::new(AtomicUsize::new(0));
    let (ran, refused) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let threads: Vec<_> = (0..8)
        .map(|_| {
            let (policy, in_flight, most, ran, refused) = (
                Arc::clone(&policy),
                Arc::clone(&in_flight),
                Arc::clone(&most),
                Arc::clone(&ran),
                Arc::clone(&refused),
            );
            std::thread::spawn(move || {
                for _ in 0..2_000 {
                    let answer = policy.call_blocking(|| {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        most.fetch_max(now, Ordering::SeqCst);
                        std::hint::spin_loop();
                        in_flight.fetch_sub(1, Ordering::SeqCst);
                        Ok::<_, ApiError>(())
                    });
                    match answer {
                        Ok(()) => ran.fetch_add(1, Ordering::Relaxed),
                        Err(_) => refused.fetch_add(1, Ordering::Relaxed),
                    };
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert!(most.load(Ordering::SeqCst) <= 2);
    let (ran, refused) = (ran.load(Ordering::Relaxed), refused.load(Ordering::Relaxed));
    assert_eq!(ran + refused, 16_000);
    assert_eq!(
        policy.bulkhead().unwrap().snapshot().rejected as usize,
        refused
    );
}
