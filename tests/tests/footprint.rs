//! What instances cost in memory, measured with a counting allocator: an idle SLA monitor, a
//! thread recording into it, a rate limiter per permit, a cache entry, and caches removed from
//! the registry. README and BENCHMARKS.md quote these figures.

use reliable_runtime::cache::{Cache, CacheConfig};
use reliable_runtime::limit::{RateLimit, RateLimiter, RateLimiterConfig, MAX_RATE_LIMIT};
use reliable_runtime::registry::cache_registry;
use reliable_runtime::sla::{SlaMonitor, SlaThresholds, SlaWindow};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

struct CountingAllocator;

thread_local! {
    /// Allocations made by this thread.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
    /// Bytes this thread allocated less those it freed: what a single-threaded test made live,
    /// without the test harness's allocations and frees on its other threads.
    static THREAD_LIVE_BYTES: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: defers every operation to the system allocator; only counts, per thread.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = ALLOCATIONS.try_with(|count| count.set(count.get() + 1));
        let _ = THREAD_LIVE_BYTES.try_with(|live| live.set(live.get() + layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = THREAD_LIVE_BYTES.try_with(|live| live.set(live.get() - layout.size() as isize));
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The tests measure one process-wide count: one at a time.
static MEASURING: Mutex<()> = Mutex::new(());

/// Bytes live that this thread allocated.
fn live() -> isize {
    THREAD_LIVE_BYTES.with(Cell::get)
}

/// The runtime's shards: twice the cores, at least 4 and at most 64, plus 2 shared ones.
fn shards() -> usize {
    let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
    (2 * cores).clamp(4, 64) + 2
}

fn monitor() -> SlaMonitor {
    monitor_named("footprint_monitor")
}

fn monitor_named(name: &str) -> SlaMonitor {
    SlaMonitor::builder(name)
        .thresholds(SlaThresholds::cex())
        .window(SlaWindow::Calls(100))
        .build()
        .unwrap()
}

/// An idle monitor costs its struct, its name and a cache line of totals per shard, not a ring
/// per shard: about 1.2 KB on two cores, 9 KB on 32 (shards are twice the cores, at least 4,
/// plus two), where a ring of 100 samples per shard would cost 14 KB and 140 KB.
#[test]
fn an_idle_monitor_allocates_no_rings() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    drop(monitor()); // the name's first use is interned for good: leave it out
    let before = live();
    let monitors: Vec<_> = (0..100).map(|_| monitor()).collect();
    let per_monitor = (live() - before) / 100;
    let shards = shards();
    // The bound: the struct, its name, its thresholds (behind an `Arc`, two counts and the
    // thresholds, so they can be swapped live), and a cache line per shard.
    println!(
        "an idle monitor: {per_monitor} bytes ({shards} shards, a struct of {})",
        std::mem::size_of::<SlaMonitor>()
    );
    assert!(
        per_monitor as usize
            <= std::mem::size_of::<SlaMonitor>()
                + 64
                + (16 + std::mem::size_of::<SlaThresholds>())
                + 128 * shards,
        "{per_monitor} bytes per idle monitor"
    );
    drop(monitors);
}

/// A thread that records pays for one ring (a 100-call window: 128 samples of 16 bytes, 2 KB),
/// once; the calls after the first allocate nothing. (Threads beyond
/// the exclusive shards share rings, so a ring per thread is the most it costs.)
#[test]
fn each_recording_thread_costs_one_ring() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let monitor = Arc::new(monitor());
    // A thread's first record anywhere claims its shard (a thread-local, once per thread).
    let warm_up = Arc::new(monitor_named("footprint_warm_up"));
    const THREADS: usize = 4;
    // All alive at once, so that each holds its own shard.
    let all_alive = Arc::new(Barrier::new(THREADS));
    let threads: Vec<_> = (0..THREADS)
        .map(|_| {
            let (monitor, warm_up, all_alive) = (
                Arc::clone(&monitor),
                Arc::clone(&warm_up),
                Arc::clone(&all_alive),
            );
            std::thread::spawn(move || {
                all_alive.wait();
                warm_up.record_latency(Duration::from_millis(5), false);
                let before = live();
                monitor.record_latency(Duration::from_millis(5), false);
                let first = live() - before;
                let allocations = ALLOCATIONS.with(Cell::get);
                for _ in 0..1_000 {
                    monitor.record_latency(Duration::from_millis(5), true);
                }
                let later = ALLOCATIONS.with(Cell::get) - allocations;
                all_alive.wait();
                (first, later)
            })
        })
        .collect();
    let ring = 128 * 16;
    let mut rings = 0;
    for thread in threads {
        let (first, later) = thread.join().unwrap();
        assert_eq!(later, 0, "calls after the first allocated {later} times");
        // A thread's first record allocates its shard's ring, unless a thread sharing the
        // shard (beyond the exclusive ones) did.
        assert!(
            first == 0 || first == ring,
            "a first record allocated {first} bytes"
        );
        rings += first;
    }
    println!("{THREADS} recording threads: {rings} bytes of rings (a ring is {ring})");
    assert!(rings >= ring, "no ring allocated");
    assert_eq!(monitor.metrics().total_failures, THREADS as u64 * 1_000);
}

/// A rate limiter keeps 8 bytes per permit of its limit, so its limit is capped at a million
/// (8 MB).
#[test]
fn a_rate_limiter_costs_eight_bytes_per_permit() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    let limiter = |limit| {
        RateLimiter::new(
            "footprint_limiter",
            RateLimiterConfig::new(RateLimit::per_minute(limit)),
        )
    };
    drop(limiter(1));
    let before = live();
    let big = limiter(100_000).unwrap();
    let bytes = live() - before;
    // The ring, and the admitted and refused counters (a cache line per shard each).
    let counters = 2 * 128 * shards() as isize;
    assert!(
        (800_000..800_000 + counters + 1_024).contains(&bytes),
        "{bytes} bytes"
    );
    drop(big);
    let too_big = limiter(MAX_RATE_LIMIT + 1).unwrap_err();
    assert_eq!(too_big.field(), "limit");
}

/// Caches created under names made at run time and removed again free their memory: only
/// the interned name stays (names are interned for the life of the process).
#[test]
fn removed_caches_free_their_memory() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    const CACHES: usize = 10_000;
    let config = || CacheConfig::default().max_entries(1_000);
    let cycle = |i: usize| {
        let name = format!("footprint_cache_{i}");
        let cache = cache_registry()
            .get_or_create::<u64, u64>(&name, config())
            .unwrap()
            .unwrap();
        cache.insert(1, 1);
        assert!(cache_registry().remove(&name));
    };
    cycle(0);
    let before = live();
    for i in 1..=CACHES {
        cycle(i);
    }
    let per_cache = (live() - before) / CACHES as isize;
    println!("a created and removed cache leaves {per_cache} bytes");
    assert!(per_cache < 200, "{per_cache} bytes stay per removed cache");
    // And the registry forgets it: a new cache of the same name starts empty.
    let name = "footprint_cache_1";
    let again = cache_registry()
        .get_or_create::<u64, u64>(name, config())
        .unwrap()
        .unwrap();
    assert!(again.get(&1).is_none());
    assert_eq!(cache_registry().snapshot(name).unwrap().size, 0);
    let by_hand: Arc<Cache<u64, u64>> =
        Arc::new(Cache::new("footprint_by_hand", config()).unwrap());
    assert!(cache_registry().register(by_hand.clone()));
    let found = cache_registry()
        .get_or_create::<u64, u64>("footprint_by_hand", config())
        .unwrap()
        .unwrap();
    assert!(
        Arc::ptr_eq(&by_hand, &found),
        "a cache registered by hand is the one used"
    );
    assert!(cache_registry()
        .get_or_create::<String, u64>("footprint_by_hand", config())
        .unwrap()
        .is_none());
}

/// Bytes a cache entry costs beyond its key and value, measured with a counting allocator.
///
/// The index grows by doubling, so the cost per entry swings by up to 2× with the fill level, and
/// where exactly a doubling happens depends on the per-process hash seed. The test therefore
/// follows the live bytes through a whole doubling cycle and asserts on the fullest point (the
/// table's real per-entry cost) and on the emptiest (right after a doubling), not on one
/// arbitrary entry count.
#[test]
fn a_cache_entry_costs_under_80_bytes_beyond_key_and_value() {
    let _one_at_a_time = MEASURING.lock().unwrap_or_else(|e| e.into_inner());
    // Two full doubling cycles above 50 000 entries, whatever the seed.
    const FROM: u64 = 50_000;
    const TO: u64 = 250_000;
    let cache: Cache<u64, u64> = Cache::new(
        "footprint_entries",
        CacheConfig::default().max_entries(1_000_000),
    )
    .unwrap();
    let before = live();
    let key_and_value = (2 * std::mem::size_of::<u64>()) as f64;
    let (mut fullest, mut emptiest) = (f64::INFINITY, 0.0_f64);
    for key in 1..=TO {
        cache.insert(key, key);
        if key >= FROM {
            let live = (live() - before) as f64;
            let overhead = live / key as f64 - key_and_value;
            fullest = fullest.min(overhead);
            emptiest = emptiest.max(overhead);
        }
    }
    println!(
        "overhead beyond key and value: {fullest:.1} bytes per entry with the table at its \
         fullest, {emptiest:.1} right after it doubled"
    );
    // Entry metadata (load time, expiry, stale limit, LRU stamp, LFU count: 36 bytes) plus the
    // index's slot and link. Measured 2026-11-23 over 15 runs: 46-50 at the fullest, 176-198 right
    // after a doubling, while the old array waits for its epoch to be reclaimed. A regression past
    // these bounds fails; the second one has headroom for the reclamation's timing.
    assert!(fullest <= 80.0, "{fullest:.1} bytes of overhead per entry");
    assert!(
        emptiest <= 320.0,
        "{emptiest:.1} bytes of overhead per entry"
    );
    assert_eq!(cache.len() as u64, TO);
}
