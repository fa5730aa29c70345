//! One criterion binary: the floor (a hand-written minimal monitored call), ours, and peers, on
//! the same trivial async fn, so ratios are measured in one run.
//!
//! `cargo bench -p reliable-benches` (add `-- --quick` for a short run). Futures are polled by a
//! minimal `block_on` (no runtime), so only the reliability layer and the fn are measured.

use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use reliable_runtime::breaker::BreakerConfig;
use reliable_runtime::registry::breaker_registry;
use reliable_runtime::{
    cached, circuit_breaker, monitored, rate_limited, timeout, with_backoff, Policy, Rejected,
};
use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Barrier, OnceLock};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// Polls `future` to completion on this thread (the cases never wait).
///
/// Inlined into each case, so the future is built in place and polled there, as an executor
/// polls a task already in place: out of line, this harness took every future by value and
/// copied it into its own frame, and that copy (and the frame around it) was most of what
/// separated an async case from a synchronous one (BENCHMARKS.md, "A harness that copies
/// nothing").
#[inline(always)]
fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

#[derive(Clone, Debug)]
pub struct ApiError;

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("api error")
    }
}

impl std::error::Error for ApiError {}

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

/// The fn every contender wraps.
#[inline(never)]
async fn plain(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x).wrapping_mul(31))
}

#[monitored(name = "bench_ours")]
#[circuit_breaker(name = "bench_ours")]
#[inline(never)]
async fn ours(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x).wrapping_mul(31))
}

#[circuit_breaker(name = "bench_breaker_only")]
#[inline(never)]
async fn breaker_only(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x).wrapping_mul(31))
}

#[monitored(name = "bench_rejected")]
#[circuit_breaker(name = "bench_rejected")]
#[inline(never)]
async fn rejected(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x).wrapping_mul(31))
}

/// The programmatic form of `ours`: a `Policy` in a `static`, called with the same body.
fn closed_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::builder("bench_policy")
            .monitor("bench_policy", |sla| sla)
            .breaker("bench_policy", |breaker| breaker)
            .build()
            .unwrap()
    })
}

#[inline(never)]
async fn through_policy(x: u64) -> Result<u64, ApiError> {
    closed_policy()
        .call(|| async move { Ok(black_box(x).wrapping_mul(31)) })
        .await
}

/// The programmatic form of `rejected`, on a breaker kept open.
fn open_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::builder("bench_policy_rejected")
            .monitor("bench_policy_rejected", |sla| sla)
            .breaker("bench_policy_rejected", |breaker| {
                breaker
                    .timeout(Duration::from_secs(3600))
                    .max_timeout(Duration::from_secs(3600))
            })
            .build()
            .unwrap()
    })
}

#[inline(never)]
async fn rejected_by_policy(x: u64) -> Result<u64, ApiError> {
    open_policy()
        .call(|| async move { Ok(black_box(x).wrapping_mul(31)) })
        .await
}

/// The floor: what a hand-written monitored call through a breaker costs at minimum: an atomic
/// state check, two clock reads, and a latency written to a thread-local ring.
mod floor {
    use super::*;

    static STATE: AtomicU8 = AtomicU8::new(0);

    thread_local! {
        static RING: RefCell<[u64; 128]> = const { RefCell::new([0; 128]) };
        static NEXT: Cell<usize> = const { Cell::new(0) };
    }

    fn clock() -> &'static quanta::Clock {
        static CLOCK: OnceLock<quanta::Clock> = OnceLock::new();
        CLOCK.get_or_init(quanta::Clock::new)
    }

    #[inline(never)]
    pub(super) async fn call(x: u64) -> Result<u64, ApiError> {
        if STATE.load(Ordering::Acquire) != 0 {
            return Err(ApiError);
        }
        let clock = clock();
        let start = clock.raw();
        let result = plain(x).await;
        let latency = clock.delta_as_nanos(start, clock.raw());
        let slot = NEXT.with(|next| {
            let slot = next.get();
            next.set((slot + 1) & 127);
            slot
        });
        RING.with(|ring| ring.borrow_mut()[slot] = latency);
        result
    }
}

/// Benchmarks `call(x)` for increasing `x`, polled to completion.
fn bench_calls<F, Fut, T, E>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    name: &str,
    mut call: F,
) where
    F: FnMut(u64) -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: std::fmt::Debug,
{
    group.bench_function(name, |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(call(x)).unwrap()
        })
    });
}

fn closed_call(c: &mut Criterion) {
    let failsafe_breaker = failsafe::Config::new().build();
    let recloser = recloser::AsyncRecloser::from(recloser::Recloser::default());
    let mut group = c.benchmark_group("closed_call");
    bench_calls(&mut group, "unprotected", plain);
    bench_calls(&mut group, "floor", floor::call);
    bench_calls(&mut group, "reliable_monitored_breaker", ours);
    bench_calls(&mut group, "reliable_breaker_only", breaker_only);
    bench_calls(&mut group, "policy_monitored_breaker", through_policy);
    group.bench_function("failsafe", |b| {
        use failsafe::futures::CircuitBreaker as _;
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(failsafe_breaker.call(plain(x))).unwrap()
        })
    });
    group.bench_function("recloser", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(recloser.call(plain(x))).unwrap()
        })
    });
    group.finish();
}

fn probe(c: &mut Criterion) {
    block_on(breaker_only(0)).unwrap();
    let breaker = breaker_registry().get("bench_breaker_only").unwrap();
    let mut group = c.benchmark_group("probe");
    let clock = reliable_runtime::clock::Clock::system();
    group.bench_function("clock_now", |b| b.iter(|| clock.now()));
    let quanta_clock = quanta::Clock::new();
    group.bench_function("quanta_raw", |b| b.iter(|| quanta_clock.raw()));
    group.bench_function("std_instant_now", |b| b.iter(std::time::Instant::now));
    group.bench_function("clock_now_coarse", |b| b.iter(|| clock.now_coarse()));
    group.bench_function("acquire_success", |b| {
        b.iter(|| breaker.try_acquire().unwrap().success())
    });
    group.finish();
}

fn open_rejection(c: &mut Criterion) {
    // A long open timeout, so the breaker stays open however long the measurement runs.
    let breaker = breaker_registry()
        .get_or_create(
            "bench_rejected",
            BreakerConfig::cex()
                .timeout(Duration::from_secs(3600))
                .max_timeout(Duration::from_secs(3600)),
        )
        .unwrap();
    block_on(rejected(0)).unwrap();
    // Open (not forced open): the rejection path reads the clock to see if the timeout passed.
    for _ in 0..5 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.failure();
        }
    }
    assert!(breaker.state().is_open());
    let mut group = c.benchmark_group("open_rejection");
    group.bench_function("reliable", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(rejected(x)).unwrap_err()
        })
    });
    group.bench_function("reliable_try_acquire", |b| {
        b.iter(|| breaker.try_acquire().is_err())
    });
    let policy_breaker = open_policy().breaker().unwrap();
    for _ in 0..5 {
        if let Ok(permit) = policy_breaker.try_acquire() {
            permit.failure();
        }
    }
    assert!(policy_breaker.state().is_open());
    group.bench_function("policy", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(rejected_by_policy(x)).unwrap_err()
        })
    });
    let failsafe_breaker = failsafe::Config::new()
        .failure_policy(failsafe::failure_policy::consecutive_failures(
            5,
            failsafe::backoff::constant(Duration::from_secs(3600)),
        ))
        .build();
    {
        use failsafe::futures::CircuitBreaker as _;
        for _ in 0..10 {
            let _ = block_on(failsafe_breaker.call(async { Err::<(), ApiError>(ApiError) }));
        }
    }
    group.bench_function("failsafe", |b| {
        use failsafe::futures::CircuitBreaker as _;
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(failsafe_breaker.call(plain(x))).unwrap_err()
        })
    });
    group.finish();
}

/// Calls per thread per iteration of the multi-threaded benchmark.
const CALLS: u64 = 10_000;

/// Runs `work(thread, iters)` on `threads` threads started together; the wall time of all.
fn run_threads(threads: usize, iters: u64, work: &(dyn Fn(usize, u64) + Sync)) -> Duration {
    let barrier = Barrier::new(threads + 1);
    std::thread::scope(|scope| {
        for thread in 0..threads {
            let barrier = &barrier;
            scope.spawn(move || {
                barrier.wait();
                work(thread, iters);
            });
        }
        barrier.wait();
        let start = Instant::now();
        // Leaving the scope joins every thread.
        start
    })
    .elapsed()
}

fn monitored_breaker_calls(_thread: usize, iters: u64) {
    let mut sum = 0u64;
    for x in 0..iters * CALLS {
        sum = sum.wrapping_add(block_on(ours(x)).unwrap());
    }
    black_box(sum);
}

/// The floor's map: the keys `cached_ticker` is warmed with, fresh for good.
fn floor_index() -> &'static FloorIndex {
    static INDEX: OnceLock<FloorIndex> = OnceLock::new();
    INDEX.get_or_init(|| {
        let index = FloorIndex::with_hasher(foldhash::fast::RandomState::default());
        for symbol in 0..1024u64 {
            let _ = index.insert_sync(symbol, (symbol.wrapping_mul(31), u64::MAX));
        }
        index
    })
}

type FloorIndex = scc::HashIndex<u64, (u64, u64), foldhash::fast::RandomState>;

/// Thread scaling of the floor, for the same keys: what the map and the machine allow.
fn floor_hits(key_of: fn(usize, u64) -> u64) -> impl Fn(usize, u64) {
    move |thread, iters| {
        let (index, clock) = (floor_index(), reliable_runtime::clock::Clock::system());
        let mut sum = 0u64;
        for i in 0..iters * CALLS {
            let key = key_of(thread, i);
            sum = sum.wrapping_add(block_on(floor_cached_ticker(index, &clock, key)).unwrap());
        }
        black_box(sum);
    }
}

fn hot_key(_thread: usize, _call: u64) -> u64 {
    1
}

/// Each thread cycles through its own 512 of the 1024 warm keys.
fn distinct_key(thread: usize, call: u64) -> u64 {
    (call + thread as u64 * 512) % 1024
}

fn cache_hits_hot_key(thread: usize, iters: u64) {
    let mut sum = 0u64;
    for i in 0..iters * CALLS {
        sum = sum.wrapping_add(block_on(cached_ticker(hot_key(thread, i))).unwrap());
    }
    black_box(sum);
}

fn cache_hits_distinct_keys(thread: usize, iters: u64) {
    let mut sum = 0u64;
    for i in 0..iters * CALLS {
        sum = sum.wrapping_add(block_on(cached_ticker(distinct_key(thread, i))).unwrap());
    }
    black_box(sum);
}

fn thread_scaling(c: &mut Criterion) {
    let mut group = c.benchmark_group("thread_scaling");
    for threads in [1usize, 2] {
        group.throughput(Throughput::Elements(CALLS * threads as u64));
        group.bench_with_input(
            BenchmarkId::new("reliable_monitored_breaker", threads),
            &threads,
            |b, &threads| {
                b.iter_custom(|iters| run_threads(threads, iters, &monitored_breaker_calls))
            },
        );
    }
    group.finish();
}

#[with_backoff(name = "bench_retry", max_attempts = 3)]
#[inline(never)]
async fn retried(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x).wrapping_mul(31))
}

#[timeout("1s")]
#[inline(never)]
async fn timed(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x).wrapping_mul(31))
}

#[rate_limited(name = "bench_limited", per_second = 1_000_000)]
#[inline(never)]
async fn limited(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x).wrapping_mul(31))
}

#[with_backoff(name = "bench_full", max_attempts = 3)]
#[circuit_breaker(name = "bench_full")]
#[rate_limited(name = "bench_full", per_second = 1_000_000)]
#[monitored(name = "bench_full")]
#[timeout("1s")]
#[inline(never)]
async fn full_stack(x: u64) -> Result<u64, ApiError> {
    Ok(black_box(x).wrapping_mul(31))
}

/// A runtime context for `tokio::time` (timeouts and sleeps need its timer), while futures are
/// still polled by `block_on` so the runtime's scheduler is not measured.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
}

fn retry_first_try(c: &mut Criterion) {
    use backon::Retryable;
    let rt = runtime();
    let _context = rt.enter();
    let mut group = c.benchmark_group("retry_first_try");
    group.bench_function("floor", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(async {
                for _attempt in 0..3 {
                    if let Ok(value) = plain(x).await {
                        return Ok(value);
                    }
                }
                Err(ApiError)
            })
            .unwrap()
        })
    });
    bench_calls(&mut group, "reliable_with_backoff", retried);
    group.bench_function("backon", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            let value = x;
            block_on(
                (|| plain(value)).retry(backon::ExponentialBuilder::default().with_max_times(2)),
            )
            .unwrap()
        })
    });
    group.finish();
}

fn timeout_call(c: &mut Criterion) {
    use tower::{Service, ServiceExt};
    let rt = runtime();
    let _context = rt.enter();
    let mut group = c.benchmark_group("timeout");
    group.bench_function("floor_tokio_timeout", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(tokio::time::timeout(Duration::from_secs(1), plain(x)))
                .unwrap()
                .unwrap()
        })
    });
    bench_calls(&mut group, "reliable_timeout", timed);
    let mut service =
        tower::timeout::Timeout::new(tower::service_fn(plain), Duration::from_secs(1));
    group.bench_function("tower_timeout", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(async {
                service.ready().await.unwrap();
                service.call(x).await
            })
            .unwrap()
        })
    });
    group.finish();
}

/// A limit far above the benchmark's call rate, so every check admits.
fn never_limiting() -> reliable_runtime::limit::RateLimiterConfig {
    reliable_runtime::limit::RateLimiterConfig::new(
        reliable_runtime::limit::RateLimit::per_second(1_000_000).window(Duration::from_millis(1)),
    )
}

fn rate_limit_check(c: &mut Criterion) {
    use reliable_runtime::limit::RateLimiter;
    let ours = RateLimiter::new("bench_rate_direct", never_limiting()).unwrap();
    let governor =
        governor::RateLimiter::direct(governor::Quota::per_second(std::num::NonZeroU32::MAX));
    let mut group = c.benchmark_group("rate_limit_check");
    group.bench_function("reliable_try_acquire", |b| {
        b.iter(|| ours.try_acquire().unwrap())
    });
    group.bench_function("governor_check", |b| b.iter(|| governor.check().unwrap()));
    reliable_runtime::registry::rate_limiter_registry()
        .get_or_create("bench_limited", never_limiting())
        .unwrap();
    bench_calls(&mut group, "reliable_rate_limited_fn", limited);
    group.finish();
}

/// A bulkhead slot taken and given back, against the floor: the semaphore alone (a permit
/// taken, forgotten and added back, as the bulkhead keeps slots).
fn bulkhead_slot(c: &mut Criterion) {
    use reliable_runtime::limit::{Bulkhead, BulkheadConfig};
    let ours = Bulkhead::new(
        "bench_bulkhead",
        BulkheadConfig::default().max_concurrent(64),
    )
    .unwrap();
    let floor = tokio::sync::Semaphore::new(64);
    let mut group = c.benchmark_group("bulkhead");
    group.bench_function("floor_semaphore", |b| {
        b.iter(|| {
            floor.try_acquire().unwrap().forget();
            floor.add_permits(1);
        })
    });
    group.bench_function("reliable_try_enter", |b| {
        b.iter(|| drop(black_box(ours.try_enter().unwrap())))
    });
    group.finish();
}

fn full_stack_call(c: &mut Criterion) {
    let rt = runtime();
    let _context = rt.enter();
    reliable_runtime::registry::rate_limiter_registry()
        .get_or_create("bench_full", never_limiting())
        .unwrap();
    let governor =
        governor::RateLimiter::direct(governor::Quota::per_second(std::num::NonZeroU32::MAX));
    let mut group = c.benchmark_group("full_stack");
    group.bench_function("floor", |b| {
        let mut x = 0u64;
        b.iter(|| {
            x += 1;
            block_on(async {
                for _attempt in 0..3 {
                    governor.check().map_err(|_| ApiError)?;
                    if let Ok(Ok(value)) =
                        tokio::time::timeout(Duration::from_secs(1), floor::call(x)).await
                    {
                        return Ok(value);
                    }
                }
                Err(ApiError)
            })
            .unwrap()
        })
    });
    bench_calls(&mut group, "reliable", full_stack);
    group.finish();
}

#[cached(ttl = 3600, key = symbol, name = "bench_cache")]
#[inline(never)]
async fn cached_ticker(symbol: u64) -> Result<u64, ApiError> {
    Ok(black_box(symbol).wrapping_mul(31))
}

/// A string key, the common case: the default key `(String,)`, looked up as `(&str,)`.
#[cached(ttl = 3600, name = "bench_cache_str")]
#[inline(never)]
async fn cached_quote(symbol: &str) -> Result<u64, ApiError> {
    Ok(symbol.len() as u64)
}

/// The floor of a cached async fn: the same lookup and TTL check, hand-written in an `async fn`
/// polled the same way, so both sides pay for building and polling a future.
#[inline(never)]
async fn floor_cached_ticker(
    floor: &FloorIndex,
    clock: &reliable_runtime::clock::Clock,
    symbol: u64,
) -> Result<u64, ApiError> {
    let now = clock.now_coarse().as_nanos();
    match floor
        .peek_with(&symbol, |_, &(value, expires)| {
            (now < expires).then_some(value)
        })
        .flatten()
    {
        Some(value) => Ok(value),
        None => Ok(black_box(symbol).wrapping_mul(31)),
    }
}

fn cache_policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::builder("bench_policy_cache")
            .cache("bench_policy_cache", |cache| {
                cache.ttl(Duration::from_secs(3600))
            })
            .build()
            .unwrap()
    })
}

/// Keyed by `u32`, not `u64` like `cached_ticker`: one more instantiation of the same cache
/// types would change how the compiler inlines the other's lookup (a lookup with one caller is
/// inlined, one with two is not), and each case is measured as a user would have it.
#[inline(never)]
async fn policy_cached_ticker(symbol: u32) -> Result<u64, ApiError> {
    cache_policy()
        .cached(symbol, || async move {
            Ok(u64::from(black_box(symbol)).wrapping_mul(31))
        })
        .await
}

/// `Policy::cached` with a `move` closure: its future owns `symbol` instead of borrowing the
/// caller's, which changes what `block_on` copies (see BENCHMARKS.md).
#[inline(never)]
async fn policy_cached_move_ticker(symbol: u32) -> Result<u64, ApiError> {
    cache_policy()
        .cached(symbol, move || async move {
            Ok(u64::from(black_box(symbol)).wrapping_mul(31))
        })
        .await
}

/// `Policy::cached` in its two halves, as the attribute expands: the hit returns before any
/// future is built, the miss loads through the policy.
#[inline(never)]
async fn policy_split_ticker(symbol: u32) -> Result<u64, ApiError> {
    let policy = cache_policy();
    if let Some(hit) = policy.cache_hit::<Result<u64, ApiError>, u32, u32>(&symbol) {
        return hit;
    }
    let load =
        policy.call(move || async move { Ok(u64::from(black_box(symbol)).wrapping_mul(31)) });
    policy
        .load_cached(symbol, load, reliable_runtime::cache::ByClone)
        .await
}

#[cached::proc_macro::cached(time = 3600)]
async fn peer_cached_ticker(symbol: u64) -> u64 {
    black_box(symbol).wrapping_mul(31)
}

fn cache_hit(c: &mut Criterion) {
    let rt = runtime();
    let _context = rt.enter();
    let clock = reliable_runtime::clock::Clock::system();
    let floor = floor_index();
    let moka: moka::future::Cache<u64, u64> = moka::future::Cache::new(10_000);
    for symbol in 0..1024u64 {
        block_on(cached_ticker(symbol)).unwrap();
        block_on(policy_cached_ticker(symbol as u32)).unwrap();
        block_on(peer_cached_ticker(symbol));
        block_on(moka.insert(symbol, symbol * 31));
    }
    let moka_str: moka::future::Cache<String, u64> = moka::future::Cache::new(10_000);
    block_on(cached_quote("BTCUSDT")).unwrap();
    block_on(moka_str.insert("BTCUSDT".to_owned(), 7));
    let mut group = c.benchmark_group("cache_hit");
    group.bench_function("floor_map_lookup_and_ttl_check", |b| {
        b.iter(|| {
            let now = clock.now_coarse().as_nanos();
            floor
                .peek_with(&black_box(1), |_, &(value, expires)| {
                    (now < expires).then_some(value)
                })
                .flatten()
                .unwrap()
        })
    });
    group.bench_function("floor_async_fn", |b| {
        b.iter(|| block_on(floor_cached_ticker(floor, &clock, black_box(1))).unwrap())
    });
    group.bench_function("reliable_cached", |b| {
        b.iter(|| block_on(cached_ticker(black_box(1))).unwrap())
    });
    group.bench_function("policy_cached", |b| {
        b.iter(|| block_on(policy_cached_ticker(black_box(1u32))).unwrap())
    });
    group.bench_function("policy_cached_move", |b| {
        b.iter(|| block_on(policy_cached_move_ticker(black_box(1u32))).unwrap())
    });
    group.bench_function("policy_cache_hit_then_load", |b| {
        b.iter(|| block_on(policy_split_ticker(black_box(1u32))).unwrap())
    });
    group.bench_function("cached_crate_async", |b| {
        b.iter(|| block_on(peer_cached_ticker(black_box(1))))
    });
    group.bench_function("moka_future_get", |b| {
        b.iter(|| block_on(moka.get(&black_box(1))).unwrap())
    });
    let floor_hot = floor_hits(hot_key);
    let floor_distinct = floor_hits(distinct_key);
    group.bench_function("reliable_cached_str_key", |b| {
        b.iter(|| block_on(cached_quote(black_box("BTCUSDT"))).unwrap())
    });
    group.bench_function("moka_future_get_str_key", |b| {
        b.iter(|| block_on(moka_str.get(black_box("BTCUSDT"))).unwrap())
    });
    for (label, work) in [
        ("floor_hot_key", &floor_hot as &(dyn Fn(usize, u64) + Sync)),
        ("reliable_cached_hot_key", &cache_hits_hot_key),
        ("floor_distinct_keys", &floor_distinct),
        ("reliable_cached_distinct_keys", &cache_hits_distinct_keys),
    ] {
        for threads in [1usize, 2] {
            group.throughput(Throughput::Elements(CALLS * threads as u64));
            group.bench_with_input(BenchmarkId::new(label, threads), &threads, |b, &threads| {
                b.iter_custom(|iters| run_threads(threads, iters, work))
            });
        }
    }
    group.finish();
}

criterion_group!(
    benches,
    cache_hit,
    probe,
    closed_call,
    open_rejection,
    thread_scaling,
    retry_first_try,
    timeout_call,
    rate_limit_check,
    bulkhead_slot,
    full_stack_call
);
criterion_main!(benches);
