//! Sharding shared by every pattern: each thread writes to its own cache line, readers merge.
//!
//! A counter that every thread increments bounces its cache line between cores and caps
//! multi-core throughput, and even an uncontended atomic read-modify-write costs several
//! nanoseconds. So the first [`exclusive_shards()`] threads each *own* a shard: only that thread
//! ever writes it, so it updates with a plain load and store (no `lock` prefix) that readers on
//! other threads still see atomically. A thread's shard returns to a free list when the thread
//! exits, for the next new thread. Threads beyond that (large blocking pools) share the
//! remaining [`SHARED_SHARDS`] shards with atomic read-modify-writes.
//!
//! Why not a crate: the `thread_local` crate's `ThreadLocal<T>` gives each counter its own
//! per-thread table, looked up by thread id on every write, where here one thread-local index,
//! computed once per thread, addresses every counter's shard; and the sharded counters of
//! crates use atomic read-modify-writes on the write path, where a shard owned by one thread
//! takes a plain load and store.

use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// Shards shared by the threads that found no exclusive shard free.
pub(crate) const SHARED_SHARDS: usize = 2;

/// Shards owned by one thread each: twice the parallelism, at least 4, at most 64.
pub(crate) fn exclusive_shards() -> usize {
    static COUNT: OnceLock<usize> = OnceLock::new();
    *COUNT.get_or_init(|| {
        let cores = std::thread::available_parallelism().map_or(4, |n| n.get());
        (cores * 2).clamp(4, 64)
    })
}

/// Every shard: the exclusive ones, then the shared ones.
pub(crate) fn shard_count() -> usize {
    exclusive_shards() + SHARED_SHARDS
}

/// The shard this thread writes to, and whether it owns it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) exclusive: bool,
}

/// Exclusive shard indexes free for new threads.
struct ShardPool {
    free: Mutex<Vec<usize>>,
}

impl ShardPool {
    fn new() -> Self {
        ShardPool {
            free: Mutex::new((0..exclusive_shards()).rev().collect()),
        }
    }
}

/// The pool every thread's claim comes from.
fn pool() -> &'static ShardPool {
    static POOL: OnceLock<ShardPool> = OnceLock::new();
    POOL.get_or_init(ShardPool::new)
}

/// A thread's claim on its shard; gives an exclusive shard back to its pool when the thread
/// exits.
struct Claim {
    shard: Shard,
    pool: &'static ShardPool,
}

impl Claim {
    fn take(pool: &'static ShardPool) -> Claim {
        static NEXT_SHARED: AtomicU64 = AtomicU64::new(0);
        let free = pool.free.lock().ok().and_then(|mut free| free.pop());
        let shard = match free {
            Some(index) => Shard {
                index,
                exclusive: true,
            },
            None => Shard {
                index: exclusive_shards()
                    + (NEXT_SHARED.fetch_add(1, Ordering::Relaxed) as usize % SHARED_SHARDS),
                exclusive: false,
            },
        };
        Claim { shard, pool }
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.shard.exclusive {
            // The mutex orders this thread's last writes before the next owner's first ones.
            if let Ok(mut free) = self.pool.free.lock() {
                free.push(self.shard.index);
            }
        }
    }
}

thread_local! {
    static CLAIM: Claim = Claim::take(pool());
}

/// The shard this thread writes to.
#[inline]
pub(crate) fn current_shard() -> Shard {
    CLAIM
        .try_with(|claim| claim.shard)
        // Thread-local storage already destroyed (a call from another TLS destructor): share.
        .unwrap_or_else(|_| Shard {
            index: exclusive_shards(),
            exclusive: false,
        })
}

/// Adds `n` to `counter`, which belongs to `shard`: a plain load and store when this thread owns
/// the shard, an atomic add otherwise. Returns the previous value.
#[inline]
pub(crate) fn add_to(counter: &AtomicU64, shard: Shard, n: u64) -> u64 {
    if shard.exclusive {
        let previous = counter.load(Ordering::Relaxed);
        counter.store(previous.wrapping_add(n), Ordering::Relaxed);
        previous
    } else {
        counter.fetch_add(n, Ordering::Relaxed)
    }
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
        let shard = current_shard();
        add_to(&self.shards[shard.index], shard, n);
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

    /// The two tests that spawn threads must not hold shards at the same time.
    static SPAWNING: Mutex<()> = Mutex::new(());

    #[test]
    fn shards_are_within_bounds() {
        let shard = current_shard();
        assert!(shard.index < shard_count());
        assert_eq!(shard, current_shard(), "a thread keeps its shard");
    }

    #[test]
    fn counter_is_exact_with_more_threads_than_exclusive_shards() {
        let _serial = SPAWNING.lock().unwrap_or_else(|e| e.into_inner());
        let counter = Arc::new(ShardedCounter::new());
        let threads: Vec<_> = (0..exclusive_shards() + 6)
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
        assert_eq!(counter.sum(), (exclusive_shards() as u64 + 6) * 10_000);
    }

    #[test]
    fn exited_threads_give_their_shard_back() {
        // A pool of its own, so that the threads other tests run meanwhile take nothing from it.
        static TEST_POOL: OnceLock<ShardPool> = OnceLock::new();
        thread_local! {
            static TEST_CLAIM: Claim = Claim::take(TEST_POOL.get_or_init(ShardPool::new));
        }
        let claim = || TEST_CLAIM.with(|claim| claim.shard);
        let first = std::thread::spawn(claim).join().unwrap();
        assert!(first.exclusive);
        // Sequential threads keep reusing freed shards instead of running out.
        for _ in 0..exclusive_shards() * 3 {
            let shard = std::thread::spawn(claim).join().unwrap();
            assert!(shard.exclusive);
            assert_eq!(
                shard.index, first.index,
                "the shard the last thread gave back"
            );
        }
        // Threads alive together each own one, until there are none left.
        let barrier = std::sync::Arc::new(std::sync::Barrier::new(exclusive_shards() + 2));
        let threads: Vec<_> = (0..exclusive_shards() + 1)
            .map(|_| {
                let barrier = std::sync::Arc::clone(&barrier);
                std::thread::spawn(move || {
                    let shard = claim();
                    barrier.wait();
                    shard
                })
            })
            .collect();
        barrier.wait();
        let shards: Vec<Shard> = threads.into_iter().map(|t| t.join().unwrap()).collect();
        assert_eq!(
            shards.iter().filter(|shard| shard.exclusive).count(),
            exclusive_shards()
        );
    }
}
