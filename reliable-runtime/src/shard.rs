//! Sharding shared by every pattern: each thread writes to its own cache line, readers merge.
//!
//! A counter that every thread increments bounces its cache line between cores and caps
//! multi-core throughput; per-thread shards keep the hot path core-local. Threads get a shard
//! round-robin on first use, so with up to `shard_count()` threads no two threads share one.

use crossbeam_utils::CachePadded;
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;

/// Number of shards: twice the available parallelism rounded up to a power of two, at most 64.
pub(crate) fn shard_count() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cores * 2).next_power_of_two().clamp(2, 64)
    })
}

/// The shard this thread writes to, in `0..shard_count()`.
#[inline]
pub(crate) fn current_shard() -> usize {
    thread_local! {
        static SHARD: Cell<usize> = const { Cell::new(usize::MAX) };
    }
    SHARD.with(|shard| {
        let index = shard.get();
        if index != usize::MAX {
            return index;
        }
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let index = NEXT.fetch_add(1, Ordering::Relaxed) & (shard_count() - 1);
        shard.set(index);
        index
    })
}

/// A counter sharded by thread; `sum` merges the shards.
pub(crate) struct ShardedCounter {
    shards: Box<[CachePadded<AtomicU64>]>,
}

impl ShardedCounter {
    pub(crate) fn new() -> Self {
        ShardedCounter {
            shards: (0..shard_count())
                .map(|_| CachePadded::new(AtomicU64::new(0)))
                .collect(),
        }
    }

    #[inline]
    pub(crate) fn add(&self, n: u64) {
        self.shards[current_shard()].fetch_add(n, Ordering::Relaxed);
    }

    pub(crate) fn sum(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.load(Ordering::Relaxed))
            .sum()
    }
}

impl std::fmt::Debug for ShardedCounter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("ShardedCounter").field(&self.sum()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn shard_count_is_a_power_of_two() {
        let count = shard_count();
        assert!(count.is_power_of_two());
        assert!((2..=64).contains(&count));
    }

    #[test]
    fn counter_sums_across_threads() {
        let counter = Arc::new(ShardedCounter::new());
        let threads: Vec<_> = (0..4)
            .map(|_| {
                let counter = Arc::clone(&counter);
                std::thread::spawn(move || {
                    for _ in 0..10_000 {
                        counter.add(1);
                    }
                })
            })
            .collect();
        for thread in threads {
            thread.join().unwrap();
        }
        assert_eq!(counter.sum(), 40_000);
    }
}
