//! Races: more threads than cores, many rounds, a manual clock where time matters.
//!
//! Each test here failed on the code before the fix it guards (the name says what it guards);
//! the lock-free protocols behind them are also model-checked with loom (see `src/sync.rs`).

use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use reliable_runtime::cache::{Cache, CacheConfig};
use reliable_runtime::clock::Clock;
use reliable_runtime::limit::{RateLimit, RateLimiter, RateLimiterConfig};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

/// More threads than this machine's (or CI's) two cores.
const THREADS: usize = 8;

fn spawn_all<T: Send + 'static>(
    count: usize,
    work: impl Fn(usize) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let work = Arc::new(work);
    let threads: Vec<_> = (0..count)
        .map(|thread| {
            let work = Arc::clone(&work);
            std::thread::spawn(move || work(thread))
        })
        .collect();
    threads
        .into_iter()
        .map(|thread| thread.join().unwrap())
        .collect()
}

/// With one probe per half-open period and probes that always fail, every admitted probe must
/// reopen the breaker (one trip each). Before the fix, a failed probe freed its slot before
/// reopening, so another caller probed in the same period and its failure was dropped as stale.
#[test]
fn a_failed_probe_reopens_the_breaker_before_anyone_else_probes() {
    let (clock, hand) = Clock::manual();
    let breaker = Arc::new(
        CircuitBreaker::new(
            "contention_half_open",
            BreakerConfig::cex()
                .failure_threshold(1)
                .half_open_max_calls(1)
                .timeout(Duration::from_millis(1))
                .timeout_multiplier(1.0)
                .clock(clock),
        )
        .unwrap(),
    );
    breaker.try_acquire().unwrap().failure();
    let probes: u64 = {
        let breaker = Arc::clone(&breaker);
        spawn_all(THREADS, move |_| {
            let mut probes = 0;
            for _ in 0..100_000 {
                match breaker.try_acquire() {
                    Ok(permit) => {
                        probes += 1;
                        permit.failure();
                    }
                    // Rejected: let the open timeout pass, so the next call opens a period.
                    Err(_) => hand.advance(Duration::from_millis(1)),
                }
            }
            probes
        })
        .into_iter()
        .sum()
    };
    let snapshot = breaker.snapshot();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(probes > 1_000, "too few half-open periods raced: {probes}");
    // The first trip came from the closed state; every later one from a probe.
    assert_eq!(
        u64::from(snapshot.trips) - 1,
        probes,
        "a probe ran without reopening the breaker: more than one probe in a half-open period"
    );
}

/// Before the fix, a caller that read `head` and then a slot another caller had just written
/// took the newest admission for the oldest and refused, far below the limit.
#[test]
fn the_rate_limiter_never_refuses_below_its_limit() {
    let limiter = Arc::new(
        RateLimiter::new(
            "contention_below_limit",
            // On the system clock: the test takes far less than the window.
            RateLimiterConfig::new(RateLimit::per_minute(1_000_000)),
        )
        .unwrap(),
    );
    const CALLS: usize = 100_000;
    let refused: usize = {
        let limiter = Arc::clone(&limiter);
        spawn_all(THREADS, move |_| {
            (0..CALLS)
                .filter(|_| limiter.try_acquire().is_err())
                .count()
        })
        .into_iter()
        .sum()
    };
    assert_eq!(refused, 0, "refused with the window {}% full", 80);
    assert_eq!(limiter.snapshot().admitted, (THREADS * CALLS) as u64);
    // And the limit still holds exactly once the window is full.
    let more = (0..300_000)
        .filter(|_| limiter.try_acquire().is_ok())
        .count();
    assert_eq!(more, 1_000_000 - THREADS * CALLS);
}

/// Threads race for each window; exactly `limit` of them get in. Before the fix, the head
/// moved before the slot's time was written, and a thread lapping the ring read a time from the
/// previous lap: some windows admitted two calls at a limit of one.
fn each_window_admits_exactly(limit: u32, burst: Option<u32>, rounds: usize) {
    let (clock, hand) = Clock::manual();
    let limiter = Arc::new(
        RateLimiter::new(
            format!("contention_exact_{limit}_{burst:?}"),
            RateLimiterConfig::new(
                RateLimit::per_second(limit)
                    .window(Duration::from_secs(1))
                    .burst(burst),
            )
            .clock(clock),
        )
        .unwrap(),
    );
    let racers = 6;
    let round_start = Arc::new(Barrier::new(racers + 1));
    let round_end = Arc::new(Barrier::new(racers + 1));
    let admitted = Arc::new(AtomicUsize::new(0));
    let threads = {
        let (limiter, round_start, round_end, admitted) = (
            Arc::clone(&limiter),
            Arc::clone(&round_start),
            Arc::clone(&round_end),
            Arc::clone(&admitted),
        );
        std::thread::spawn(move || {
            spawn_all(racers, move |_| {
                for _ in 0..rounds {
                    round_start.wait();
                    for _ in 0..2 {
                        if limiter.try_acquire().is_ok() {
                            admitted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    round_end.wait();
                }
            })
        })
    };
    let expected = burst.unwrap_or(limit) as usize;
    let mut wrong = Vec::new();
    for round in 0..rounds {
        round_start.wait();
        round_end.wait();
        let got = admitted.swap(0, Ordering::Relaxed);
        if got != expected {
            wrong.push((round, got));
        }
        hand.advance(Duration::from_secs(1));
    }
    threads.join().unwrap();
    assert!(
        wrong.is_empty(),
        "{} of {rounds} windows admitted other than {expected}: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
}

/// At a limit of one, threads hammer the limiter while the time moves on (each refused thread
/// moves it a third of a window): every two admissions must be a whole window apart. Before the
/// fix, a thread lapping the one-slot ring read the time of the previous lap and admitted a
/// second call in the same window.
#[test]
fn at_a_limit_of_one_admissions_are_a_window_apart() {
    const WINDOW: Duration = Duration::from_millis(3);
    let (clock, hand) = Clock::manual();
    let limiter = Arc::new(
        RateLimiter::new(
            "contention_limit_of_one",
            RateLimiterConfig::new(RateLimit::per_second(1).window(WINDOW).burst(None))
                .clock(clock.clone()),
        )
        .unwrap(),
    );
    let mut admitted: Vec<u64> = {
        let limiter = Arc::clone(&limiter);
        spawn_all(THREADS, move |_| {
            let mut admitted = Vec::new();
            for _ in 0..100_000 {
                let now = clock.now();
                if limiter.try_acquire_at(now).is_ok() {
                    admitted.push(now.as_nanos());
                } else {
                    hand.advance(WINDOW / 3);
                }
            }
            admitted
        })
        .into_iter()
        .flatten()
        .collect()
    };
    admitted.sort_unstable();
    assert!(admitted.len() > 1_000, "too few windows raced");
    let too_close: Vec<_> = admitted
        .windows(2)
        .filter(|pair| pair[1] - pair[0] < WINDOW.as_nanos() as u64)
        .collect();
    assert!(
        too_close.is_empty(),
        "{} of {} admissions came within a window of the one before: {:?}",
        too_close.len(),
        admitted.len(),
        &too_close[..too_close.len().min(5)]
    );
}

#[test]
fn the_rate_limiter_admits_exactly_its_limit_per_window() {
    each_window_admits_exactly(3, None, 3_000);
}

#[test]
fn the_burst_limit_is_exact_under_contention() {
    each_window_admits_exactly(5, Some(2), 3_000);
}

/// Threads sweep the same keys at once, so callers of each key race: one load per key. Before
/// the fix, a caller that missed before the leader inserted its value and joined after the
/// leader's flight ended led a second load.
#[test]
fn concurrent_misses_of_a_key_run_one_load() {
    const KEYS: u64 = 20_000;
    let cache: Arc<Cache<u64, u64>> = Arc::new(
        Cache::new(
            "contention_single_flight",
            CacheConfig::default()
                .ttl(Duration::from_secs(3600))
                .max_entries(100_000),
        )
        .unwrap(),
    );
    let loads = Arc::new(AtomicU64::new(0));
    {
        let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
        spawn_all(THREADS, move |_| {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            for key in 0..KEYS {
                let value = runtime.block_on(cache.get_or_load(key, || async {
                    loads.fetch_add(1, Ordering::Relaxed);
                    Ok::<_, ()>(key * 2)
                }));
                assert_eq!(value, Ok(key * 2));
            }
        });
    }
    assert_eq!(
        loads.load(Ordering::Relaxed),
        KEYS,
        "a key was loaded twice"
    );
    assert_eq!(cache.snapshot().loads, KEYS);
}

/// 100 callers miss one key whose load fails after 20 ms: one load, and every caller gets its
/// error at 20 ms. Before the fix, each follower woke to lead the next load: 100 loads in a row,
/// the last caller waiting 2 s.
#[tokio::test(start_paused = true)]
async fn a_failed_load_is_shared_with_every_caller_that_waited() {
    let cache: Arc<Cache<&str, u64>> =
        Arc::new(Cache::new("contention_shared_failure", CacheConfig::default()).unwrap());
    let loads = Arc::new(AtomicU64::new(0));
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
            tokio::spawn(async move {
                let result = cache
                    .get_or_load("BTCUSDT", || async {
                        loads.fetch_add(1, Ordering::Relaxed);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        Err::<u64, _>("503 from the exchange")
                    })
                    .await;
                (result, start.elapsed())
            })
        })
        .collect();
    for task in tasks {
        let (result, waited) = task.await.unwrap();
        assert_eq!(result, Err("503 from the exchange"));
        assert_eq!(waited, Duration::from_millis(20));
    }
    assert_eq!(loads.load(Ordering::Relaxed), 1);
    let snapshot = cache.snapshot();
    assert_eq!((snapshot.loads, snapshot.load_errors), (1, 1));
    // Errors are not cached: the next caller loads again.
    let again = cache
        .get_or_load("BTCUSDT", || async { Ok::<_, &str>(7) })
        .await;
    assert_eq!(again, Ok(7));
}

/// Weighted admissions racing on a manual clock: in every round each of the two windows
/// holds at most its limit of weight, and the weights the threads were told were admitted are
/// exactly what the limiter counts (a call refused in one window is counted in none).
#[test]
fn weighted_windows_never_admit_more_than_their_limits() {
    use reliable_runtime::limit::WeightedLimiter;
    let (clock, hand) = Clock::manual();
    let limiter = Arc::new(
        WeightedLimiter::new(
            "contention_weighted",
            &[RateLimit::per_second(100), RateLimit::per_minute(1000)],
            clock,
        )
        .unwrap(),
    );
    // (millis since start, weight) of every admission, from every thread.
    let admitted: Arc<std::sync::Mutex<Vec<(u64, u32)>>> = Arc::default();
    for round in 0..200u64 {
        let barrier = Arc::new(Barrier::new(THREADS));
        let (shared, log) = (Arc::clone(&limiter), Arc::clone(&admitted));
        let now = round * 250;
        spawn_all(THREADS, move |thread| {
            barrier.wait();
            for attempt in 0..20u32 {
                let weight = 1 + (thread as u32 * 7 + attempt * 3 + round as u32) % 13;
                if shared.try_acquire(weight).is_ok() {
                    log.lock().unwrap().push((now, weight));
                }
            }
        });
        hand.advance(Duration::from_millis(250));
    }
    let admitted = admitted.lock().unwrap();
    let in_window = |end: u64, span: u64| -> u64 {
        admitted
            .iter()
            .filter(|(at, _)| *at <= end && end - at < span)
            .map(|(_, weight)| u64::from(*weight))
            .sum()
    };
    for round in 0..200u64 {
        let end = round * 250;
        assert!(in_window(end, 1_000) <= 100, "second ending {end} ms");
        assert!(in_window(end, 60_000) <= 1_000, "minute ending {end} ms");
    }
    let snapshot = limiter.snapshot();
    let total: u64 = admitted.iter().map(|(_, weight)| u64::from(*weight)).sum();
    assert_eq!(snapshot.admitted_weight, total);
    assert_eq!(snapshot.admitted, admitted.len() as u64);
    // The minute was the binding limit: it filled.
    assert!(in_window(59_750, 60_000) > 1_000 - 13);
}
