//! Eviction: when a cache is over `max_entries`, it drops expired entries first, then the ones
//! its policy ranks lowest.

use super::{Cache, CachePolicy};
use rand::Rng;
use std::hash::Hash;
use std::sync::atomic::Ordering;

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Evicts down to `max_entries × (1 − eviction_ratio)`: expired entries first, then by
    /// policy. One thread evicts at a time; the others go on (the documented slack).
    #[cold]
    pub(super) fn evict(&self, now: u64) {
        let Ok(_evicting) = self.evicting.try_lock() else {
            return;
        };
        let config = self.config.load_full();
        let keep = ((config.max_entries as f64) * (1.0 - config.eviction_ratio)) as usize;
        let policy = self.policy();
        if self.len() <= keep {
            return;
        }
        // Ties are broken at random: evicting tied entries in the index's bucket order would
        // empty whole bucket ranges and skew the table: the million-key test in
        // tests/cache.rs, whose entries all tie on a manual clock, then took minutes.
        let mut rng = rand::rng();
        let mut scored: Vec<((u64, u32), K)> = Vec::with_capacity(self.len());
        self.map.iter_sync(|key, entry| {
            let score = if now >= entry.stale_until {
                0
            } else {
                match policy {
                    CachePolicy::Ttl => entry.fresh_until,
                    CachePolicy::Lru | CachePolicy::Adaptive => {
                        entry.last_access.load(Ordering::Relaxed)
                    }
                    CachePolicy::Lfu => u64::from(entry.hits.load(Ordering::Relaxed)),
                }
            };
            scored.push(((score, rng.random()), key.clone()));
            true
        });
        let excess = scored.len().saturating_sub(keep);
        if excess == 0 {
            return;
        }
        if excess < scored.len() {
            scored.select_nth_unstable_by_key(excess, |(score, _)| *score);
        }
        for (_, key) in scored.iter().take(excess) {
            if self.remove(key) {
                self.evictions.add(1);
            }
        }
    }
}
