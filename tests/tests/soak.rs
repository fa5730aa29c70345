//! Soak: over a million calls through the attributes on a multi-thread runtime with more
//! workers than cores, a share of them cancelled at whatever point they reached, checking the
//! promises README makes on every round: never more than the rate limit in any window, never
//! more than the bulkhead's calls at once, never more half-open probes than the cap, one load
//! of a key at a time and one completed load per key.

use reliable_runtime::breaker::{BreakerConfig, BreakerState};
use reliable_runtime::clock::{Clock, ManualClock};
use reliable_runtime::limit::{RateLimit, RateLimiterConfig};
use reliable_runtime::registry::{breaker_registry, bulkhead_registry, rate_limiter_registry};
use reliable_runtime::{bulkhead, cached, circuit_breaker, monitored, rate_limited, Rejected};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

#[derive(Clone, Debug)]
enum ApiError {
    Down,
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(8)
        .enable_time()
        .build()
        .unwrap()
}

/// Runs `calls` copies of `call` at once, aborting every third, and waits for the rest.
async fn round<F>(calls: usize, call: impl Fn() -> F)
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let tasks: Vec<_> = (0..calls).map(|_| tokio::spawn(call())).collect();
    for (i, task) in tasks.iter().enumerate() {
        if i % 3 == 2 {
            task.abort(); // cancelled wherever it is: before, inside or after its layers
        }
    }
    for task in tasks {
        if let Err(error) = task.await {
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic()); // a broken promise: fail the test
            }
        }
    }
}

/// A counter of calls running now that remembers its peak.
#[derive(Default)]
struct Running {
    now: AtomicUsize,
    peak: AtomicUsize,
}

impl Running {
    /// Counts a call in until the guard drops (when the call ends or is cancelled).
    fn enter(&self) -> impl Drop + '_ {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.peak.fetch_max(now, Ordering::SeqCst);
        Leave(self)
    }
}

struct Leave<'a>(&'a Running);

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

static LIMITED_RUNS: AtomicU64 = AtomicU64::new(0);
static IN_BULKHEAD: OnceLock<Running> = OnceLock::new();

#[rate_limited(name = "soak_limit", per_second = 50)]
#[bulkhead(name = "soak_bulkhead", max_concurrent = 4, max_wait = "1h")]
#[monitored(name = "soak_limit")]
async fn limited() -> Result<(), ApiError> {
    let _running = IN_BULKHEAD.get_or_init(Running::default).enter();
    LIMITED_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    Ok(())
}

/// 5,000 rounds of 96 calls, half a window apart on a manual clock: two rounds in a row are
/// within one window, so together they run at most the limit.
#[test]
fn the_rate_limit_and_the_bulkhead_hold_through_a_soak() {
    const LIMIT: u64 = 50;
    let (clock, hand) = Clock::manual();
    rate_limiter_registry()
        .get_or_create(
            "soak_limit",
            RateLimiterConfig::new(RateLimit::per_second(LIMIT as u32)).clock(clock),
        )
        .unwrap();
    let mut previous = 0;
    let mut total = 0;
    runtime().block_on(async {
        for index in 0..5_000 {
            let before = LIMITED_RUNS.load(Ordering::SeqCst);
            round(96, || async {
                let _ = limited().await;
            })
            .await;
            let ran = LIMITED_RUNS.load(Ordering::SeqCst) - before;
            assert!(
                previous + ran <= LIMIT,
                "round {index}: {previous} + {ran} calls within one window"
            );
            previous = ran;
            total += ran;
            hand.advance(Duration::from_millis(500));
        }
    });
    let limiter = rate_limiter_registry()
        .get("soak_limit")
        .unwrap()
        .snapshot();
    let bulkhead = bulkhead_registry().get("soak_bulkhead").unwrap().snapshot();
    // More callers than the limit are never cancelled in a round, so every other round fills
    // the window: the limit is used to the last call, and never beyond.
    assert_eq!(limiter.admitted, 5_000 / 2 * LIMIT, "{limiter:?}");
    assert!(total <= limiter.admitted && total > limiter.admitted / 2);
    assert_eq!(bulkhead.rejected, 0, "{bulkhead:?}");
    let peak = IN_BULKHEAD.get().unwrap().peak.load(Ordering::SeqCst);
    assert!(peak <= 4, "{peak} calls in a bulkhead of 4");
}

static PROBES: OnceLock<Running> = OnceLock::new();
static PROBE_RUNS: AtomicU64 = AtomicU64::new(0);

#[circuit_breaker(name = "soak_breaker")]
async fn failing_service() -> Result<(), ApiError> {
    let _probing = PROBES.get_or_init(Running::default).enter();
    PROBE_RUNS.fetch_add(1, Ordering::SeqCst);
    tokio::task::yield_now().await;
    Err(ApiError::Down)
}

/// A failing service behind a tripped breaker: every call that runs is a probe. 10,000 rounds
/// of 32 calls, each round after the open timeout: never more than 3 probes at once.
#[test]
fn half_open_probes_stay_within_the_cap_through_a_soak() {
    let (clock, hand): (Clock, ManualClock) = Clock::manual();
    let breaker = breaker_registry()
        .get_or_create(
            "soak_breaker",
            BreakerConfig::cex()
                .failure_threshold(1)
                .half_open_max_calls(3)
                .timeout(Duration::from_secs(1))
                .timeout_multiplier(1.0)
                .clock(clock),
        )
        .unwrap();
    breaker.try_acquire().unwrap().failure();
    runtime().block_on(async {
        for _ in 0..10_000 {
            hand.advance(Duration::from_secs(1));
            round(32, || async {
                match failing_service().await {
                    Err(ApiError::Down | ApiError::Rejected(Rejected::CircuitOpen { .. })) => {}
                    other => panic!("a call through an open breaker gave {other:?}"),
                }
            })
            .await;
        }
    });
    let peak = PROBES.get().unwrap().peak.load(Ordering::SeqCst);
    assert!(peak <= 3, "{peak} probes at once with a cap of 3");
    assert!(
        PROBE_RUNS.load(Ordering::SeqCst) > 5_000,
        "most periods probed"
    );
    assert_ne!(breaker.state(), BreakerState::Closed);
}

/// Per key: loads running now, loads completed.
static LOADS: OnceLock<Mutex<HashMap<u64, (usize, usize)>>> = OnceLock::new();

fn loads() -> std::sync::MutexGuard<'static, HashMap<u64, (usize, usize)>> {
    LOADS
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Marks a load of `key` running until dropped (completed or cancelled).
struct Loading(u64);

impl Drop for Loading {
    fn drop(&mut self) {
        loads().get_mut(&self.0).unwrap().0 -= 1;
    }
}

#[cached(ttl = 3600, name = "soak_cache", max_entries = 100_000)]
async fn load(key: u64) -> Result<u64, ApiError> {
    let loading = {
        let mut loads = loads();
        let (running, _) = loads.entry(key).or_default();
        *running += 1;
        assert_eq!(*running, 1, "two loads of key {key} at once");
        Loading(key)
    };
    tokio::task::yield_now().await;
    drop(loading);
    loads().get_mut(&key).unwrap().1 += 1;
    Ok(key * 3)
}

/// 2,000 keys, 200 rounds of 2,000 calls each over 40 hot keys a round: one load of a key at a
/// time, and once a load completed, never another for that key.
#[test]
fn single_flight_loads_each_key_once_through_a_soak() {
    let served = Arc::new(AtomicU64::new(0));
    runtime().block_on(async {
        for round_index in 0..200u64 {
            let served = Arc::clone(&served);
            round(2_000, move || {
                let served = Arc::clone(&served);
                let key = round_index * 10 + (rand::random::<u64>() % 40);
                async move {
                    assert_eq!(load(key).await.unwrap(), key * 3);
                    served.fetch_add(1, Ordering::Relaxed);
                }
            })
            .await;
        }
    });
    let loads = loads();
    for (key, (running, completed)) in loads.iter() {
        assert_eq!(*running, 0, "key {key}: a load still marked running");
        assert!(*completed <= 1, "key {key} loaded {completed} times");
    }
    assert!(served.load(Ordering::Relaxed) > 200_000);
}
