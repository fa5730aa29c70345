//! A concurrent cache with TTL/LRU/LFU/adaptive policies, stale-while-revalidate,
//! stale-if-error and single-flight loads.
//!
//! The store is `scc`'s `HashIndex`, whose reads take no lock and write no shared memory, so
//! readers of one hot key scale across cores. Eviction, TTLs and stale windows are the cache's
//! own: the map only stores. Why it is built this way: BENCHMARKS.md, section "Design notes
//! moved from the API docs".
//!
//! ```
//! use reliable_runtime::cache::{Cache, CacheConfig, Lookup};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let cache: Cache<String, f64> = Cache::new("doc_prices", CacheConfig::default()).unwrap();
//! let price = cache.get_or_load("BTCUSDT".to_string(), || async { Ok::<_, String>(97_000.0) }).await;
//! assert_eq!(price.unwrap(), 97_000.0);
//! assert!(matches!(cache.lookup("BTCUSDT"), Lookup::Fresh(97_000.0)));
//! assert_eq!(cache.snapshot().loads, 1);
//! # }
//! ```

mod config;
pub(crate) mod events;
mod evict;
mod flight;
mod hit_rate;
#[cfg(feature = "redis")]
pub(crate) mod second_level;

pub use config::{CacheConfig, CachePolicy};
pub use events::StaleServed;
pub use flight::{AsRejected, ByClone, LoadAlone, ShareFailure, SharedError};
pub use hit_rate::{judge_hit_rates, HitRateChange, HIT_RATE_MIN_LOOKUPS};

use flight::{Flights, Outcome, Role};

use crate::clock::Clock;
use crate::clock::{duration_to_nanos, saturating_secs_f64};
use crate::common::intern::intern;
use crate::common::live::Live;
use crate::common::shard::ShardedCounter;
use crate::error::ConfigError;
use crate::event::{self, Event};
use rand::Rng;
use serde::Serialize;
use std::fmt;
use std::future::Future;
use std::hash::Hash;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// What a lookup found.
#[derive(Clone, Debug, PartialEq)]
pub enum Lookup<V> {
    /// A value within its TTL.
    Fresh(V),
    /// A value past its TTL but within the stale window, and how old it is.
    Stale {
        /// The value.
        value: V,
        /// Time since it was loaded.
        age: Duration,
    },
    /// Nothing usable.
    Miss,
}

/// A cache's counters, as `get_system_health()` shows them (`cache_stats`).
///
/// The counters start at zero when the cache is created (on the first call of a fn that uses
/// it, or when it is registered by hand) and are never reset: [`Cache::clear`] drops the
/// entries only. A cache removed from the registry and created again starts from zero. A
/// `#[cached]` or [`Policy::cached`](crate::Policy::cached) call counts one lookup: a hit, or
/// a miss followed by a shared load, a load of its own or a stale value.
///
/// ```
/// use reliable_runtime::cache::{Cache, CacheConfig};
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// let cache: Cache<&str, f64> = Cache::new("snapshot_doc", CacheConfig::default()).unwrap();
/// cache.get_or_load("BTCUSDT", || async { Ok::<_, String>(97_000.0) }).await.unwrap(); // miss, load
/// cache.get_or_load("BTCUSDT", || async { Ok::<_, String>(0.0) }).await.unwrap(); // hit
/// let stats = cache.snapshot();
/// assert_eq!((stats.size, stats.hits, stats.misses, stats.loads), (1, 1, 1, 1));
/// assert_eq!(stats.hit_rate, 0.5);
/// assert_eq!(stats.ttl_seconds, 5.0);
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CacheSnapshot {
    /// Entries stored now. Expired entries stay stored (and counted) until an eviction or a
    /// new value for their key replaces them.
    pub size: u64,
    /// `hits / (hits + misses)` since the cache was created, 0.0 to 1.0; 0.0 before the first
    /// lookup.
    pub hit_rate: f64,
    /// Lookups that found a value within its TTL and returned it without calling anything.
    pub hits: u64,
    /// Lookups that found no value within its TTL: nothing, an expired value, or a stale one
    /// (a stale value then served counts here and in `stale_hits`).
    pub misses: u64,
    /// Values served past their TTL but within the `stale` window: to a caller that found
    /// another caller already refreshing the key, and after a failed load (those are counted
    /// in `stale_if_error` too).
    pub stale_hits: u64,
    /// Stale values served because the load failed (stale-if-error), a part of `stale_hits`;
    /// each also publishes an [`Event::StaleServed`].
    pub stale_if_error: u64,
    /// Loads started (the function or closure behind the cache, run on a miss or by
    /// [`warmup`](Cache::warmup)), whatever their outcome. Callers that shared another
    /// caller's load do not count one.
    pub loads: u64,
    /// Loads that returned an error (errors are never cached). A load cancelled before it
    /// finished counts in `loads` only.
    pub load_errors: u64,
    /// Entries dropped to bring the cache back under `max_entries` (expired ones first, then
    /// by policy); entries taken out by [`remove`](Cache::remove) or [`clear`](Cache::clear)
    /// are not counted.
    pub evictions: u64,
    /// The TTL, in seconds, that a value stored now gets (before `ttl_jitter`): the configured
    /// `ttl`, or for an adaptive cache its current value within `min_ttl..=max_ttl`.
    pub ttl_seconds: f64,
}

/// Values in a `HashIndex` are immutable once published; only the access metadata changes,
/// through atomics. `Clone` copies a snapshot of them (the index clones on update).
struct Entry<V> {
    value: V,
    loaded_at: u64,
    fresh_until: u64,
    stale_until: u64,
    /// Coarse clock nanos of the last hit (LRU), written at most once a millisecond.
    last_access: AtomicU64,
    /// Sampled hit count (LFU): one in [`LFU_SAMPLE`] hits is counted.
    hits: AtomicU32,
}

impl<V: Clone> Clone for Entry<V> {
    fn clone(&self) -> Self {
        Entry {
            value: self.value.clone(),
            loaded_at: self.loaded_at,
            fresh_until: self.fresh_until,
            stale_until: self.stale_until,
            last_access: AtomicU64::new(self.last_access.load(Ordering::Relaxed)),
            hits: AtomicU32::new(self.hits.load(Ordering::Relaxed)),
        }
    }
}

/// One hit in this many is counted for LFU, so a hot entry's counter is not written per hit.
const LFU_SAMPLE: u32 = 8;
/// LRU timestamps are refreshed at most this often per entry.
const LRU_RESOLUTION_NANOS: u64 = 1_000_000;

/// A concurrent cache. Keys: `Hash + Eq + Clone + Send + Sync + 'static`; values: `Clone +
/// Send + Sync + 'static` (a hit returns a clone: wrap big values in `Arc`).
pub struct Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    name: &'static str,
    config: Live<CacheConfig>,
    /// The configuration's clock (never changed).
    clock: Clock,
    /// The configuration's policy, read by every hit (never changed: entries carry its
    /// bookkeeping).
    policy: CachePolicy,
    /// Hashed with foldhash, whose per-process random seed keeps collision attacks
    /// impractical, rather than std's SipHash. Why: BENCHMARKS.md, section "Design notes moved
    /// from the API docs".
    map: scc::HashIndex<K, Entry<V>, foldhash::fast::RandomState>,
    flights: Flights<K, V>,
    ttl_nanos: AtomicU64,
    /// Entries held (the index's own `len` scans its buckets).
    size: AtomicUsize,
    /// Hits already applied to the adaptive TTL.
    adapted_hits: Mutex<u64>,
    evicting: Mutex<()>,
    hits: ShardedCounter,
    misses: ShardedCounter,
    stale_hits: ShardedCounter,
    stale_if_error: ShardedCounter,
    loads: ShardedCounter,
    load_errors: ShardedCounter,
    evictions: ShardedCounter,
    /// A level shared by several instances, consulted by a load's leader only.
    #[cfg(feature = "redis")]
    second_level: std::sync::OnceLock<Arc<dyn second_level::SecondLevel<K, V>>>,
}

impl<K, V> fmt::Debug for Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cache")
            .field("name", &self.name)
            .field("config", &*self.config.load())
            .field("size", &self.len())
            .finish_non_exhaustive()
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// A cache named `name`, after validating `config`.
    pub fn new(name: impl AsRef<str>, config: CacheConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Cache {
            name: intern(name.as_ref()),
            ttl_nanos: AtomicU64::new(duration_to_nanos(config.ttl)),
            size: AtomicUsize::new(0),
            clock: config.clock.clone(),
            policy: config.policy,
            config: Live::new(config),
            map: scc::HashIndex::with_hasher(foldhash::fast::RandomState::default()),
            flights: Flights::new(),
            adapted_hits: Mutex::new(0),
            evicting: Mutex::new(()),
            hits: ShardedCounter::new(),
            misses: ShardedCounter::new(),
            stale_hits: ShardedCounter::new(),
            stale_if_error: ShardedCounter::new(),
            loads: ShardedCounter::new(),
            load_errors: ShardedCounter::new(),
            evictions: ShardedCounter::new(),
            #[cfg(feature = "redis")]
            second_level: std::sync::OnceLock::new(),
        })
    }

    /// The cache's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configuration now.
    pub fn config(&self) -> Arc<CacheConfig> {
        self.config.load_full()
    }

    /// Changes the configuration while the cache runs: TTLs and the stale period apply to
    /// entries stored from now on (the entries held keep theirs: [`clear`](Self::clear) drops
    /// them), a lower `max_entries` evicts down to it at once, and the counters are kept. The
    /// clock cannot change, nor can the `policy` (an `Err`). An invalid configuration is an `Err` and changes nothing. Each
    /// change is an [`Event::Reconfigured`] (an info alert).
    ///
    /// ```
    /// use reliable_runtime::cache::{Cache, CacheConfig};
    /// use std::time::Duration;
    ///
    /// let cache: Cache<u32, u32> = Cache::new("cache_reconfigure_doc", CacheConfig::default()).unwrap();
    /// for key in 0..10 {
    ///     cache.insert(key, key);
    /// }
    /// cache.reconfigure(|config| config.ttl(Duration::from_secs(60)).max_entries(4)).unwrap();
    /// assert_eq!(cache.current_ttl(), Duration::from_secs(60));
    /// assert!(cache.len() <= 4);
    /// let error = cache.reconfigure(|config| config.max_entries(0)).unwrap_err();
    /// assert_eq!(error.field(), "max_entries");
    /// assert_eq!(cache.config().max_entries, 4, "unchanged");
    /// ```
    pub fn reconfigure(
        &self,
        change: impl FnOnce(CacheConfig) -> CacheConfig,
    ) -> Result<(), ConfigError> {
        let mut same_ttl = false;
        let next = self
            .config
            .change(("cache", self.name), change, |current, next| {
                same_ttl = next.ttl == current.ttl;
                self.check_change(current, next)
            })?;
        // An adaptive TTL goes on from where the hits took it, unless the TTL itself changed.
        let ttl = if next.policy == CachePolicy::Adaptive && same_ttl {
            self.current_ttl().clamp(next.min_ttl, next.max_ttl)
        } else {
            next.ttl
        };
        self.ttl_nanos
            .store(duration_to_nanos(ttl), Ordering::Relaxed);
        if self.len() > next.max_entries {
            self.evict(self.clock.now_coarse().as_nanos());
        }
        Ok(())
    }

    /// [`reconfigure`](Self::reconfigure)'s checks, changing nothing.
    pub(crate) fn check_reconfigure(
        &self,
        change: impl FnOnce(CacheConfig) -> CacheConfig,
    ) -> Result<(), ConfigError> {
        self.config
            .check(change, |current, next| self.check_change(current, next))
    }

    fn check_change(
        &self,
        current: &CacheConfig,
        next: &mut CacheConfig,
    ) -> Result<(), ConfigError> {
        next.clock = self.clock.clone();
        next.validate()?;
        if next.policy != current.policy {
            return Err(ConfigError::new(
                "policy",
                "cannot change while the cache runs: its entries carry the policy's bookkeeping",
            ));
        }
        Ok(())
    }

    #[inline(always)]
    fn policy(&self) -> CachePolicy {
        self.policy
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.size.load(Ordering::Relaxed)
    }

    /// Whether the cache holds nothing.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The TTL new entries get now.
    pub fn current_ttl(&self) -> Duration {
        Duration::from_nanos(self.ttl_nanos.load(Ordering::Relaxed))
    }

    /// What the cache holds for `key` now (counts a hit, a stale hit or a miss).
    #[inline]
    pub fn lookup<Q>(&self, key: &Q) -> Lookup<V>
    where
        Q: scc::Equivalent<K> + Hash + ?Sized,
    {
        let now = self.clock.now_coarse().as_nanos();
        let found = self.map.peek_with(key, |_, entry| {
            if now < entry.fresh_until {
                self.touch(entry, now);
                Lookup::Fresh(entry.value.clone())
            } else if now < entry.stale_until {
                Lookup::Stale {
                    value: entry.value.clone(),
                    age: Duration::from_nanos(now.saturating_sub(entry.loaded_at)),
                }
            } else {
                Lookup::Miss
            }
        });
        match found {
            Some(fresh @ Lookup::Fresh(_)) => {
                self.hits.add(1);
                fresh
            }
            Some(other) => {
                self.on_miss();
                other
            }
            None => {
                self.on_miss();
                Lookup::Miss
            }
        }
    }

    /// The fresh value for `key`, counting a hit if there is one and nothing otherwise (a
    /// caller that then falls back to [`get_or_load`](Self::get_or_load) counts its miss there).
    // Always inlined: behind a policy's cache layer the call chain is one step deeper than
    // the inliner's budget, and the call itself cost a `#[cached]` hit a third of its time.
    #[inline(always)]
    pub fn get_fresh<Q>(&self, key: &Q) -> Option<V>
    where
        Q: scc::Equivalent<K> + Hash + ?Sized,
    {
        let now = self.clock.now_coarse().as_nanos();
        let value = self.map.peek_with(key, |_, entry| {
            (now < entry.fresh_until).then(|| {
                self.touch(entry, now);
                entry.value.clone()
            })
        })??;
        self.hits.add(1);
        Some(value)
    }

    /// The fresh value for `key`, counting nothing.
    fn peek_fresh(&self, key: &K) -> Option<V> {
        let now = self.clock.now_coarse().as_nanos();
        self.map
            .peek_with(key, |_, entry| {
                (now < entry.fresh_until).then(|| entry.value.clone())
            })
            .flatten()
    }

    /// The fresh value for `key`, if any.
    #[inline]
    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        Q: scc::Equivalent<K> + Hash + ?Sized,
    {
        match self.lookup(key) {
            Lookup::Fresh(value) => Some(value),
            _ => None,
        }
    }

    #[inline]
    fn touch(&self, entry: &Entry<V>, now: u64) {
        match self.policy {
            CachePolicy::Lru | CachePolicy::Adaptive => {
                // Written at most once a millisecond: a hot entry is read, not written.
                if now.saturating_sub(entry.last_access.load(Ordering::Relaxed))
                    >= LRU_RESOLUTION_NANOS
                {
                    entry.last_access.store(now, Ordering::Relaxed);
                }
            }
            CachePolicy::Lfu => {
                if rand::rng().random_ratio(1, LFU_SAMPLE) {
                    entry.hits.fetch_add(1, Ordering::Relaxed);
                }
            }
            CachePolicy::Ttl => {}
        }
    }

    #[cold]
    fn on_miss(&self) {
        self.misses.add(1);
        if self.policy() == CachePolicy::Adaptive {
            self.adapt();
        }
    }

    /// Applies the hits since the last miss (×1.2 each, capped at `max_ttl`), then this miss
    /// (×0.8, floored at `min_ttl`). Between two misses every event is a hit, so applying them
    /// together here gives exactly the step-by-step result, without writing on the hit path.
    fn adapt(&self) {
        let mut adapted = self
            .adapted_hits
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let hits = self.hits.sum();
        let new_hits = hits.saturating_sub(*adapted);
        *adapted = hits;
        let config = self.config.load();
        let (min, max) = (config.min_ttl.as_secs_f64(), config.max_ttl.as_secs_f64());
        let ttl = self.current_ttl().as_secs_f64();
        let grown = (ttl * 1.2f64.powi(new_hits.min(1_000) as i32)).min(max);
        let shrunk = (grown * 0.8).max(min);
        self.ttl_nanos.store(
            duration_to_nanos(saturating_secs_f64(shrunk)),
            Ordering::Relaxed,
        );
    }

    /// Stores `value` for `key` with the current TTL (jittered if configured).
    pub fn insert(&self, key: K, value: V) {
        let now = self.clock.now_coarse().as_nanos();
        let mut ttl = self.ttl_nanos.load(Ordering::Relaxed);
        let config = self.config.load();
        if config.ttl_jitter > 0.0 {
            let spread = rand::rng().random_range(-config.ttl_jitter..config.ttl_jitter);
            ttl = (ttl as f64 * (1.0 + spread)) as u64;
        }
        let fresh_until = now.saturating_add(ttl);
        let entry = Entry {
            value,
            loaded_at: now,
            fresh_until,
            stale_until: fresh_until.saturating_add(duration_to_nanos(config.stale)),
            last_access: AtomicU64::new(now),
            hits: AtomicU32::new(0),
        };
        drop(config);
        self.put_entry(key, entry, now);
    }

    fn put_entry(&self, key: K, entry: Entry<V>, now: u64) {
        match self.map.entry_sync(key) {
            scc::hash_index::Entry::Occupied(mut occupied) => occupied.update(entry),
            scc::hash_index::Entry::Vacant(vacant) => {
                vacant.insert_entry(entry);
                self.size.fetch_add(1, Ordering::Relaxed);
            }
        }
        if self.len() > self.config.load().max_entries {
            self.evict(now);
        }
    }

    /// Stores a value another instance loaded, with what is left of its TTL there (`remote`).
    #[cfg(feature = "redis")]
    fn insert_loaded_elsewhere(&self, key: K, value: V, remote: &second_level::RemoteValue<V>) {
        let now = self.clock.now_coarse().as_nanos();
        let fresh_until = now.saturating_add(duration_to_nanos(remote.fresh_for));
        let stale = duration_to_nanos(self.config.load().stale);
        self.put_entry(
            key,
            Entry {
                value,
                loaded_at: now.saturating_sub(duration_to_nanos(remote.age)),
                fresh_until,
                stale_until: fresh_until.saturating_add(stale),
                last_access: AtomicU64::new(now),
                hits: AtomicU32::new(0),
            },
            now,
        );
    }

    /// Removes `key`'s entry; returns whether there was one.
    pub fn remove<Q>(&self, key: &Q) -> bool
    where
        Q: scc::Equivalent<K> + Hash + ?Sized,
    {
        let removed = self.map.remove_sync(key);
        if removed {
            self.size.fetch_sub(1, Ordering::Relaxed);
        }
        removed
    }

    /// Removes every entry.
    pub fn clear(&self) {
        self.map.clear_sync();
        self.size.store(0, Ordering::Relaxed);
    }

    /// The value for `key`: fresh from the cache, or loaded by `load`.
    ///
    /// - Single flight: one load per key at a time. Callers that miss while it runs wait for
    ///   it and share its outcome: its value, or a clone of its error (so an outage costs one
    ///   request per key, not one per caller). A caller that missed just as a load finished
    ///   finds that load's value instead of loading again. A leader that is cancelled hands
    ///   the load to one of its followers.
    /// - Stale while revalidating: past its TTL but within the stale window, the value is
    ///   returned at once to every caller while one caller refreshes it (that caller waits for
    ///   its load).
    /// - Stale if error: when the load fails and a stale value exists, the stale value is
    ///   returned and a [`StaleServed`] event published.
    /// - Errors are never cached: the next caller after a failed load loads again.
    ///
    /// ```
    /// use reliable_runtime::cache::{Cache, CacheConfig};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<&str, u32> = Cache::new("doc_single_flight", CacheConfig::default()).unwrap();
    /// let loads = AtomicU32::new(0);
    /// let load = || async {
    ///     loads.fetch_add(1, Ordering::Relaxed);
    ///     tokio::task::yield_now().await;
    ///     Err::<u32, &str>("503")
    /// };
    /// let (a, b) = tokio::join!(cache.get_or_load("BTC", load), cache.get_or_load("BTC", load));
    /// assert_eq!((a, b), (Err("503"), Err("503")));
    /// assert_eq!(loads.load(Ordering::Relaxed), 1, "the second caller shared the first's failure");
    /// # }
    /// ```
    pub async fn get_or_load<E, F, Fut>(&self, key: K, load: F) -> Result<V, E>
    where
        E: SharedError,
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        // The async block calls `load` on its first poll: only when the cache misses.
        self.get_or_load_future(key, async move { load().await })
            .await
    }

    /// [`get_or_load`](Self::get_or_load) with the load as a future (polled only if needed).
    pub async fn get_or_load_future<E, Fut>(&self, key: K, load: Fut) -> Result<V, E>
    where
        E: SharedError,
        Fut: Future<Output = Result<V, E>>,
    {
        self.get_or_load_sharing::<E, Fut, ByClone>(key, load).await
    }

    /// [`get_or_load_future`](Self::get_or_load_future), with the callers that waited for a
    /// failed load getting their error as `S` says (e.g. [`AsRejected`] for an error type that
    /// holds a [`Rejected`](crate::Rejected) but is not `Clone`).
    ///
    /// ```
    /// use reliable_runtime::cache::{AsRejected, Cache, CacheConfig};
    /// use reliable_runtime::Rejected;
    ///
    /// #[derive(Debug)]
    /// enum ApiError {
    ///     Io(std::io::Error), // not `Clone`
    ///     Rejected(Rejected),
    /// }
    /// impl From<Rejected> for ApiError {
    ///     fn from(rejected: Rejected) -> Self {
    ///         ApiError::Rejected(rejected)
    ///     }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let cache: Cache<&str, u32> = Cache::new("doc_as_rejected", CacheConfig::default()).unwrap();
    /// let load = || async {
    ///     tokio::task::yield_now().await;
    ///     Err::<u32, _>(ApiError::Io(std::io::ErrorKind::ConnectionReset.into()))
    /// };
    /// let (leader, follower) = tokio::join!(
    ///     cache.get_or_load_sharing::<_, _, AsRejected>("BTC", load()),
    ///     cache.get_or_load_sharing::<_, _, AsRejected>("BTC", load()),
    /// );
    /// assert!(matches!(leader, Err(ApiError::Io(_))));
    /// assert!(matches!(follower, Err(ApiError::Rejected(Rejected::LoadFailed { .. }))));
    /// # }
    /// ```
    pub async fn get_or_load_sharing<E, Fut, S>(&self, key: K, load: Fut) -> Result<V, E>
    where
        Fut: Future<Output = Result<V, E>>,
        S: ShareFailure<E>,
    {
        let mut load = Some(load);
        loop {
            let stale = match self.lookup(&key) {
                Lookup::Fresh(value) => {
                    crate::served::record(|| crate::served::Source::Cached);
                    return Ok(value);
                }
                Lookup::Stale { value, age } => Some((value, age)),
                Lookup::Miss => None,
            };
            let leader = match self.flights.join(&key) {
                Role::Leader(leader) => {
                    // A load that finished between our lookup and our lead inserted its value
                    // before it let go of the key: look again before loading twice.
                    if let Some(value) = self.peek_fresh(&key) {
                        leader.finish(Outcome::Loaded(value.clone()));
                        crate::served::record(|| crate::served::Source::Cached);
                        return Ok(value);
                    }
                    Some(leader)
                }
                Role::Follower(flight) => {
                    if let Some((value, age)) = stale {
                        self.stale_hits.add(1);
                        crate::served::record(|| crate::served::Source::Stale { age });
                        return Ok(value);
                    }
                    match flight.outcome().await {
                        Some(Outcome::Loaded(value)) => return Ok(value),
                        Some(Outcome::Failed(kept)) => match S::give(&*kept, self.name) {
                            Some(error) => return Err(error),
                            // The failure cannot be shared with us: load on our own.
                            None => None,
                        },
                        None => continue, // the leader was cancelled: someone leads anew
                    }
                }
            };
            // The level shared with other instances, if any: its value, or who loads.
            #[cfg(feature = "redis")]
            // (Its commands need tokio's timers: under another executor, it is left out.)
            #[cfg(feature = "redis")]
            let level = self
                .second_level
                .get()
                .filter(|_| tokio::runtime::Handle::try_current().is_ok());
            #[cfg(feature = "redis")]
            let (second_level, mut claim, remote_stale) = match level {
                None => (None, second_level::Claimed::none(), None),
                Some(level) => {
                    let mut remote_stale = None;
                    match self
                        .consult_second_level(&**level, &key, &mut remote_stale)
                        .await
                    {
                        second_level::Consulted::Found(value) => {
                            if let Some(leader) = leader {
                                leader.finish(Outcome::Loaded(value.clone()));
                            }
                            crate::served::record(|| crate::served::Source::Cached);
                            return Ok(value);
                        }
                        // A claim is given up if this load ends without a value (fails, or is
                        // cancelled), so the other instances do not wait out its lease.
                        second_level::Consulted::Load { claimed } => (
                            Some(level),
                            second_level::Claimed::new(claimed.then(|| level.release(&key))),
                            remote_stale,
                        ),
                    }
                }
            };
            // A stale value there serves if the load fails and there is none here.
            #[cfg(feature = "redis")]
            let stale = stale.or(remote_stale);
            // A caller loads at most once: loading always returns below.
            let Some(load) = load.take() else {
                unreachable!("a caller loads at most once")
            };
            self.loads.add(1);
            return match load.await {
                Ok(value) => {
                    #[cfg(feature = "redis")]
                    let stored = second_level.and_then(|level| {
                        let config = self.config.load();
                        level.store(&key, &value, self.current_ttl(), config.stale)
                    });
                    self.insert(key, value.clone());
                    if let Some(leader) = leader {
                        leader.finish(Outcome::Loaded(value.clone()));
                    }
                    #[cfg(feature = "redis")]
                    if let Some(send) = stored {
                        // Storing the value ends the claim.
                        claim.disarm();
                        second_level::in_background(send).await;
                    }
                    Ok(value)
                }
                Err(error) => {
                    self.load_errors.add(1);
                    if let Some(leader) = leader {
                        leader.finish(Outcome::Failed(S::keep(&error)));
                    }
                    #[cfg(feature = "redis")]
                    if let Some(release) = claim.disarm() {
                        second_level::in_background(release).await;
                    }
                    match stale {
                        Some((value, age)) => {
                            self.serve_stale_after_error(age);
                            Ok(value)
                        }
                        None => Err(error),
                    }
                }
            };
        }
    }

    /// The value for `key` in a blocking fn: fresh from the cache, or loaded by `load`, with
    /// stale-if-error. Blocking callers do not share loads (no single-flight).
    pub fn get_or_load_sync<E>(&self, key: K, load: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        let stale = match self.lookup(&key) {
            Lookup::Fresh(value) => {
                crate::served::record(|| crate::served::Source::Cached);
                return Ok(value);
            }
            Lookup::Stale { value, age } => Some((value, age)),
            Lookup::Miss => None,
        };
        self.loads.add(1);
        match load() {
            Ok(value) => {
                self.insert(key, value.clone());
                Ok(value)
            }
            Err(error) => {
                self.load_errors.add(1);
                match stale {
                    Some((value, age)) => {
                        self.serve_stale_after_error(age);
                        Ok(value)
                    }
                    None => Err(error),
                }
            }
        }
    }

    fn serve_stale_after_error(&self, age: Duration) {
        crate::served::record(|| crate::served::Source::Stale { age });
        self.stale_hits.add(1);
        self.stale_if_error.add(1);
        tracing::warn!(
            cache = self.name,
            ?age,
            "load failed; serving a stale value"
        );
        event::publish(Event::StaleServed(StaleServed {
            cache: self.name,
            age,
            at: SystemTime::now(),
        }));
    }

    /// Loads `keys` ahead of traffic with `load`; returns how many loaded.
    pub async fn warmup<E, F, Fut>(&self, keys: impl IntoIterator<Item = K>, mut load: F) -> usize
    where
        F: FnMut(&K) -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        let mut loaded = 0;
        for key in keys {
            self.loads.add(1);
            match load(&key).await {
                Ok(value) => {
                    self.insert(key, value);
                    loaded += 1;
                }
                Err(_) => self.load_errors.add(1),
            }
        }
        loaded
    }

    /// The cache's counters now.
    pub fn snapshot(&self) -> CacheSnapshot {
        let (hits, misses) = (self.hits.sum(), self.misses.sum());
        CacheSnapshot {
            size: self.len() as u64,
            hit_rate: if hits + misses == 0 {
                0.0
            } else {
                hits as f64 / (hits + misses) as f64
            },
            hits,
            misses,
            stale_hits: self.stale_hits.sum(),
            stale_if_error: self.stale_if_error.sum(),
            loads: self.loads.sum(),
            load_errors: self.load_errors.sum(),
            evictions: self.evictions.sum(),
            ttl_seconds: self.current_ttl().as_secs_f64(),
        }
    }
}

/// What health needs of any cache, whatever its key and value types.
pub trait CacheStats: Send + Sync {
    /// The cache's registry name.
    fn name(&self) -> &str;
    /// Its counters now.
    fn snapshot(&self) -> CacheSnapshot;
    /// The cache as `Any`, so the registry can give it back with its types; `None` (the
    /// default) for caches that are not a [`Cache`].
    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        None
    }
    /// The configuration now, for a cache known by name only; `None` (the default) for caches
    /// that are not a [`Cache`].
    fn current_config(&self) -> Option<Arc<CacheConfig>> {
        None
    }
    /// [`Cache::reconfigure`] (`commit`), or only its checks, for a cache known by name only;
    /// the default, for caches that are not a [`Cache`], refuses.
    fn reconfigure_by_name(
        &self,
        change: &mut dyn FnMut(CacheConfig) -> CacheConfig,
        commit: bool,
    ) -> Result<(), ConfigError> {
        let _ = (change, commit);
        Err(ConfigError::new(
            "cache",
            format!("`{}` is not a reconfigurable cache", self.name()),
        ))
    }
}

impl<K, V> CacheStats for Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        self.name
    }

    fn snapshot(&self) -> CacheSnapshot {
        Cache::snapshot(self)
    }

    fn into_any(self: Arc<Self>) -> Option<Arc<dyn std::any::Any + Send + Sync>> {
        Some(self)
    }

    fn current_config(&self) -> Option<Arc<CacheConfig>> {
        Some(self.config())
    }

    fn reconfigure_by_name(
        &self,
        change: &mut dyn FnMut(CacheConfig) -> CacheConfig,
        commit: bool,
    ) -> Result<(), ConfigError> {
        if commit {
            Cache::reconfigure(self, change)
        } else {
            self.check_reconfigure(change)
        }
    }
}

/// Model checks of single-flight (join, lead, publish, follow; see `flight.rs`) over every
/// interleaving (`--cfg reliable_loom`, see `src/sync.rs`).
#[cfg(all(test, reliable_loom))]
mod loom_models {
    use super::*;
    use crate::clock::Clock;
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    fn cache() -> Arc<Cache<u8, u32>> {
        let (clock, _hand) = Clock::manual();
        Arc::new(
            Cache::new(
                "loom",
                CacheConfig {
                    clock,
                    ..CacheConfig::default()
                },
            )
            .unwrap(),
        )
    }

    /// Callers of one key, racing: `fails` says whether loads fail; each caller's result and
    /// the number of loads. A load yields to the other callers once while it runs and checks
    /// that no other load of the key runs with it.
    fn race(callers: usize, fails: bool) -> (Vec<Result<u32, &'static str>>, usize) {
        let cache = cache();
        let loads = Arc::new(AtomicUsize::new(0));
        let running = Arc::new(AtomicUsize::new(0));
        let threads: Vec<_> = (0..callers)
            .map(|_| {
                let (cache, loads, running) =
                    (Arc::clone(&cache), Arc::clone(&loads), Arc::clone(&running));
                loom::thread::spawn(move || {
                    loom::future::block_on(cache.get_or_load(7, || async move {
                        loads.fetch_add(1, Ordering::Relaxed);
                        assert_eq!(
                            running.fetch_add(1, Ordering::AcqRel),
                            0,
                            "two loads at once"
                        );
                        loom::thread::yield_now();
                        running.fetch_sub(1, Ordering::AcqRel);
                        if fails {
                            Err("503")
                        } else {
                            Ok(42)
                        }
                    }))
                })
            })
            .collect();
        let results = threads
            .into_iter()
            .map(|thread| thread.join().unwrap())
            .collect();
        (results, loads.load(Ordering::Relaxed))
    }

    /// However the callers interleave, the key is loaded once and every caller gets the value.
    #[test]
    fn a_key_is_loaded_once() {
        loom::model(|| {
            let (results, loads) = race(2, false);
            assert_eq!(results, [Ok(42), Ok(42)]);
            assert_eq!(loads, 1);
        });
    }

    /// A caller that follows a flight whose load fails gets the load's error, and does not
    /// load again: the load waits until the other caller has joined its flight.
    #[test]
    fn a_failed_load_is_shared_with_its_follower() {
        loom::model(|| {
            let cache = cache();
            let loads = Arc::new(AtomicUsize::new(0));
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
                    loom::thread::spawn(move || {
                        let inner = Arc::clone(&cache);
                        loom::future::block_on(cache.get_or_load(7, || async move {
                            loads.fetch_add(1, Ordering::Relaxed);
                            // The map, this leader and a follower hold the flight.
                            while inner.flights.holders(&7).is_none_or(|holders| holders < 3) {
                                loom::thread::yield_now();
                            }
                            Err::<u32, _>("503")
                        }))
                    })
                })
                .collect();
            for caller in callers {
                assert_eq!(caller.join().unwrap(), Err("503"));
            }
            assert_eq!(loads.load(Ordering::Relaxed), 1);
        });
    }

    /// A failed load is never run twice at once, and a caller that waited for it gets its
    /// error (a caller that came after it may load again: errors are not cached).
    #[test]
    fn a_failed_load_is_shared_or_retried_but_never_run_twice_at_once() {
        loom::model(|| {
            let (results, loads) = race(2, true);
            assert_eq!(results, [Err("503"), Err("503")]);
            assert!((1..=2).contains(&loads), "{loads} loads");
        });
    }
}
