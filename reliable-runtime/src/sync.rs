//! The atomics and locks of the lock-free protocols (breaker admission, the rate limiter's
//! ring, single-flight, the bulkhead's slot debt, the latency recorder's slots and counts), swapped for `loom`'s under `--cfg reliable_loom` so that the models in
//! each module's `loom_models` explore every interleaving of the real code.
//!
//! Run the models with:
//! `RUSTFLAGS="--cfg reliable_loom" cargo test -p reliable-runtime --release --lib loom_models`

#[cfg(reliable_loom)]
pub(crate) use loom::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64},
    Mutex, MutexGuard,
};
#[cfg(not(reliable_loom))]
// AtomicBool: single-flight (`cache`); MutexGuard: the bulkhead (`limit`).
#[cfg_attr(not(all(feature = "cache", feature = "limit")), allow(unused_imports))]
pub(crate) use std::sync::{
    atomic::{fence, AtomicBool, AtomicPtr, AtomicU32, AtomicU64},
    Mutex, MutexGuard,
};

/// Reads a counter only the calling thread writes (an owned shard's): a relaxed load.
///
/// Under loom it is an untracked read: loom keeps one last access per atomic, so the owner's
/// own tracked load just before its store would hide another thread's earlier read of the
/// counter from loom's search, and the interleavings where that read sees the store would
/// never be explored.
#[inline(always)]
pub(crate) fn load_own(counter: &AtomicU64) -> u64 {
    #[cfg(reliable_loom)]
    // SAFETY: only the calling thread writes `counter`, so no write races this read.
    return unsafe { counter.unsync_load() };
    #[cfg(not(reliable_loom))]
    counter.load(std::sync::atomic::Ordering::Relaxed)
}
