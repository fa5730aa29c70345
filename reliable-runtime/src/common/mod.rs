//! Primitives the patterns share: the clock, per-thread shards, the sliding windows of the
//! breaker and the retry budget, the event throttle, name interning, the registry of
//! instances by name and the configuration setters. Nothing here depends on a pattern.

pub mod clock;
pub(crate) mod human_duration;
pub(crate) mod intern;
pub(crate) mod live;
// Its users (health endpoints, keyed limits, the dedup store) all come with `limit`.
#[cfg(feature = "limit")]
pub(crate) mod recency;
pub(crate) mod registry;
pub(crate) mod scope;
pub(crate) mod setters;
pub(crate) mod settings;
pub(crate) mod shard;
pub(crate) mod throttle;
pub(crate) mod window;
