//! Bytes a cache entry costs beyond its key and value, measured with a counting allocator.

use reliable_runtime::cache::{Cache, CacheConfig};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

struct CountingAllocator;

static LIVE_BYTES: AtomicIsize = AtomicIsize::new(0);

// SAFETY: defers every operation to the system allocator; only counts live bytes.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE_BYTES.fetch_add(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE_BYTES.fetch_sub(layout.size() as isize, Ordering::SeqCst);
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[test]
fn overhead_per_entry_beyond_key_and_value() {
    const ENTRIES: u64 = 100_000;
    let cache: Cache<u64, u64> = Cache::new(
        "cache_memory",
        CacheConfig {
            max_entries: 1_000_000,
            ..CacheConfig::default()
        },
    )
    .unwrap();
    cache.insert(0, 0); // the first insert allocates the table's first array
    let before = LIVE_BYTES.load(Ordering::SeqCst);
    for key in 1..=ENTRIES {
        cache.insert(key, key);
    }
    let after = LIVE_BYTES.load(Ordering::SeqCst);
    let per_entry = (after - before) as f64 / ENTRIES as f64;
    let key_and_value = (2 * std::mem::size_of::<u64>()) as f64;
    let overhead = per_entry - key_and_value;
    println!("{per_entry:.1} bytes per entry, {overhead:.1} beyond key and value");
    // Entry metadata (load time, expiry, stale limit, LRU stamp, LFU count: 36 bytes) plus the
    // index's slot and link. Measured 2026-11-23; a regression past this bound fails.
    assert!(
        overhead <= 100.0,
        "{overhead:.1} bytes of overhead per entry"
    );
    assert_eq!(cache.len() as u64, ENTRIES + 1);
}
