//! The atomics and locks of the lock-free protocols (breaker admission, the rate limiter's
//! ring, single-flight, the bulkhead's slot debt), swapped for `loom`'s under `--cfg reliable_loom` so that the models in
//! each module's `loom_models` explore every interleaving of the real code.
//!
//! Run the models with:
//! `RUSTFLAGS="--cfg reliable_loom" cargo test -p reliable-runtime --release --lib loom_models`

#[cfg(reliable_loom)]
pub(crate) use loom::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64},
    Mutex, MutexGuard,
};
#[cfg(not(reliable_loom))]
// AtomicBool: single-flight (`cache`); MutexGuard: the bulkhead (`limit`).
#[cfg_attr(not(all(feature = "cache", feature = "limit")), allow(unused_imports))]
pub(crate) use std::sync::{
    atomic::{AtomicBool, AtomicU32, AtomicU64},
    Mutex, MutexGuard,
};
