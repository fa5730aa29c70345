//! The hit-rate alert: each cache with a `min_hit_rate` is judged every second by the runtime's
//! watcher, over the lookups of that second, and a crossing either way is published.

use super::CacheStats;
use crate::event::{self, Event};
use crate::registry::cache_registry;
use serde::Serialize;
use std::collections::{HashMap, HashSet};
use std::sync::{Mutex, OnceLock, PoisonError};
use std::time::SystemTime;

/// The fewest lookups in a judgement for the hit rate to be judged (fewer say too little).
pub const HIT_RATE_MIN_LOOKUPS: u64 = 20;

/// A cache's hit rate crossed its `min_hit_rate`, either way
/// ([`Event::CacheHitRate`](crate::event::Event::CacheHitRate)).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct HitRateChange {
    /// The cache.
    pub cache: String,
    /// Hits over lookups since the previous judgement.
    pub hit_rate: f64,
    /// The threshold.
    pub min_hit_rate: f64,
    /// Lookups since the previous judgement.
    pub lookups: u64,
    /// Below the threshold now (`false`: back above it).
    pub low: bool,
    /// When it was judged.
    pub at: SystemTime,
}

/// What the previous judgement of a cache saw.
#[derive(Default)]
struct Seen {
    hits: u64,
    misses: u64,
    low: bool,
}

/// Judges every registered cache with a `min_hit_rate` now (what the watcher does each
/// second): the hit rate of its lookups since the previous judgement, when there were at least
/// [`HIT_RATE_MIN_LOOKUPS`]. Publishes a [`HitRateChange`] for each cache that crossed its
/// threshold, and returns them.
///
/// ```
/// use reliable_runtime::cache::{judge_hit_rates, Cache, CacheConfig};
/// use reliable_runtime::registry::cache_registry;
///
/// let cache: std::sync::Arc<Cache<u32, u32>> = cache_registry().get_or_create("hit_rate_doc", CacheConfig::default().min_hit_rate(0.5)).unwrap().unwrap();
/// judge_hit_rates();
/// for key in 0..30 {
///     assert!(cache.get(&key).is_none()); // all misses
/// }
/// let changes = judge_hit_rates();
/// let change = changes.iter().find(|change| change.cache == "hit_rate_doc").unwrap();
/// assert!(change.low && change.hit_rate == 0.0 && change.lookups == 30);
/// ```
pub fn judge_hit_rates() -> Vec<HitRateChange> {
    static SEEN: OnceLock<Mutex<HashMap<String, Seen>>> = OnceLock::new();
    let mut seen = SEEN
        .get_or_init(Mutex::default)
        .lock()
        .unwrap_or_else(PoisonError::into_inner);
    let caches = cache_registry().every();
    // Forget caches no longer registered (a test scope's), so this stays the registry's size.
    let registered: HashSet<&str> = caches.iter().map(|cache| cache.name()).collect();
    seen.retain(|name, _| registered.contains(name.as_str()));
    let mut changes = Vec::new();
    for cache in caches {
        let Some(change) = judge(&*cache, &mut seen) else {
            continue;
        };
        event::publish(Event::CacheHitRate(change.clone()));
        changes.push(change);
    }
    changes
}

fn judge(cache: &dyn CacheStats, seen: &mut HashMap<String, Seen>) -> Option<HitRateChange> {
    let min_hit_rate = cache.current_config()?.min_hit_rate?;
    let snapshot = cache.snapshot();
    let before = seen.entry(cache.name().to_owned()).or_default();
    let hits = snapshot.hits.saturating_sub(before.hits);
    let misses = snapshot.misses.saturating_sub(before.misses);
    let lookups = hits + misses;
    if lookups < HIT_RATE_MIN_LOOKUPS {
        // Too few to judge: they count with the next second's.
        return None;
    }
    (before.hits, before.misses) = (snapshot.hits, snapshot.misses);
    let hit_rate = hits as f64 / lookups as f64;
    let low = hit_rate < min_hit_rate;
    if low == before.low {
        return None;
    }
    before.low = low;
    Some(HitRateChange {
        cache: cache.name().to_owned(),
        hit_rate,
        min_hit_rate,
        lookups,
        low,
        at: SystemTime::now(),
    })
}
