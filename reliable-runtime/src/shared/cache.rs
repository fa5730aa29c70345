//! [`SharedCache`]: a second cache level in Redis behind a [`Cache`], shared by every instance.

use super::{millis, SharedStore};
use crate::cache::second_level::{Answer, BoxFuture, Claim, RemoteValue, SecondLevel};
use crate::cache::Cache;
use crate::error::ConfigError;
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::hash::Hash;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

/// The entries' format: an entry of another format (another version's) is bad data.
const FORMAT: &str = "reliable-cache-1";

/// `LOOKUP (format, claim, instance, lease_ms)` on the entry and its claim: answers
/// `{value, fresh_ms, age_ms, claim, bad}`: the entry's JSON (`''` for none), what is left of
/// its TTL (0 when stale), its age, and, when it is not fresh and a claim was asked for, who
/// loads it (1 this instance, 2 another; the claim lasts the lease). `bad` is 1 when the key
/// holds something else (another format, another type): it counts as absent.
const LOOKUP: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = redis.call('TYPE', KEYS[1]).ok
local value, fresh, age, bad = '', 0, 0, 0
if kind == 'hash' then
  local f = redis.call('HMGET', KEYS[1], 'format', 'value', 'loaded', 'fresh_until')
  local loaded, untill = tonumber(f[3]), tonumber(f[4])
  if f[1] == ARGV[1] and f[2] and loaded and untill then
    value = f[2]
    if now < untill then fresh = untill - now end
    if now > loaded then age = now - loaded end
  else
    bad = 1
  end
elseif kind ~= 'none' then
  bad = 1
end
if fresh > 0 or ARGV[2] ~= '1' then return {value, fresh, age, 0, bad} end
kind = redis.call('TYPE', KEYS[2]).ok
if kind ~= 'string' and kind ~= 'none' then redis.call('DEL', KEYS[2]) end
local claim = 2
if redis.call('SET', KEYS[2], ARGV[3], 'NX', 'PX', ARGV[4]) then
  claim = 1
elseif redis.call('GET', KEYS[2]) == ARGV[3] then
  claim = 1
end
return {value, fresh, age, claim, bad}
";

/// `STORE (format, value, fresh_ms, stale_ms)`: the entry, fresh for `fresh_ms` and kept
/// `stale_ms` more (the stale window, on the server); the claim is over.
const STORE: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'format', ARGV[1], 'value', ARGV[2], 'loaded', now,
  'fresh_until', now + tonumber(ARGV[3]))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]) + tonumber(ARGV[4]))
return 1
";

/// `RELEASE (instance)`: the claim is given up, if it is still this instance's.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return 1
";

/// A second cache level in Redis behind a [`Cache`]: one instance's load serves every other
/// instance whose cache of the same name misses.
///
/// - **On a miss** (only then: a hit in memory never asks Redis), the load's leader asks Redis
///   first. A fresh value there is taken into memory with what is left of its TTL on the
///   server, and no load runs; the caller learns `Source::Cached`.
/// - **Single flight across instances**: when Redis has no fresh value, one instance claims
///   the load (for `load_lease`, 5 s by default); the others wait for its value (reading every
///   10 ms, up to the lease), then load themselves if it has not come.
/// - **TTL and stale window on the server**: a loaded value is stored with the cache's TTL and
///   kept for its stale window after; a stale value in Redis serves when the load fails and
///   the instance has none (stale-if-error across instances).
/// - Values are JSON (serde); an entry that does not parse (another version's type, another
///   format, a key of another type) is counted in the store's `bad_data`, treated as absent,
///   and replaced by the next load. Nothing panics, and memory never holds a bad value.
/// - Redis down or slow: the miss answers locally within the store's timeout (one command;
///   none while the store's breaker is open), counted in `fallbacks`; the value is stored in
///   Redis in the background once loaded.
///
/// Blocking loads (`get_or_load_sync`) do not use the second level. Keys are
/// `reliable:cache:{<cache>:<key as JSON>}` (one hash tag per entry, so a cluster spreads
/// them) and `…:loading` for the claim.
///
/// ```no_run
/// use reliable_runtime::cache::CacheConfig;
/// use reliable_runtime::registry::cache_registry;
/// use reliable_runtime::shared::{SharedCache, SharedStore};
///
/// # async fn run() -> Result<(), reliable_runtime::ConfigError> {
/// let store = SharedStore::new("ingest", "redis://127.0.0.1:6379/")?;
/// // The cache a `#[cached(name = "orderbooks", ..)]` fn uses, registered first.
/// // (`None`: a cache of that name exists with other key or value types.)
/// if let Some(orderbooks) = cache_registry()
///     .get_or_create::<String, Vec<(f64, f64)>>("orderbooks", CacheConfig::default())?
/// {
///     SharedCache::new(&store).attach(&orderbooks)?;
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug)]
#[must_use = "nothing is shared until `attach`"]
pub struct SharedCache {
    store: SharedStore,
    load_lease: Duration,
}

impl SharedCache {
    /// A second level on `store`'s server, with a load lease of 5 s.
    pub fn new(store: &SharedStore) -> SharedCache {
        SharedCache {
            store: store.clone(),
            load_lease: Duration::from_secs(5),
        }
    }

    /// How long one instance's claim on a load lasts, and how long the others wait for its
    /// value before loading themselves.
    pub fn load_lease(mut self, lease: Duration) -> SharedCache {
        self.load_lease = lease;
        self
    }

    /// Puts this level behind `cache`. `Err` names the field: a lease under 1 ms, or a cache
    /// that already has a second level.
    pub fn attach<K, V>(self, cache: &Cache<K, V>) -> Result<(), ConfigError>
    where
        K: Serialize + Hash + Eq + Clone + Send + Sync + 'static,
        V: Serialize + DeserializeOwned + Clone + Send + Sync + 'static,
    {
        if self.load_lease < Duration::from_millis(1) {
            return Err(ConfigError::new("load_lease", "must be 1 ms or more"));
        }
        let level = RedisLevel::<K, V> {
            store: self.store,
            cache: cache.name(),
            lease_millis: millis(self.load_lease),
            lease: self.load_lease,
            instance: super::instance_id(),
            lookup: redis::Script::new(LOOKUP),
            store_script: redis::Script::new(STORE),
            release: redis::Script::new(RELEASE),
            types: PhantomData,
        };
        if cache.attach_second_level(Arc::new(level)) {
            Ok(())
        } else {
            Err(ConfigError::new(
                "second_level",
                format!("cache `{}` already has one", cache.name()),
            ))
        }
    }
}

struct RedisLevel<K, V> {
    store: SharedStore,
    cache: &'static str,
    lease: Duration,
    lease_millis: u64,
    /// Which instance holds a claim.
    instance: String,
    lookup: redis::Script,
    store_script: redis::Script,
    release: redis::Script,
    types: PhantomData<fn(K) -> V>,
}

impl<K: Serialize, V> RedisLevel<K, V> {
    /// The entry's key and its claim's, or `None` for a key that does not serialize.
    fn keys(&self, key: &K) -> Option<(String, String)> {
        match serde_json::to_string(key) {
            Ok(json) => {
                let entry = format!("reliable:cache:{{{}:{json}}}", self.cache);
                let claim = format!("{entry}:loading");
                Some((entry, claim))
            }
            Err(error) => {
                tracing::warn!(cache = self.cache, %error, "a key did not serialize; not shared");
                None
            }
        }
    }
}

/// An answer that leaves the load here, asking nothing more of Redis.
fn alone<V>() -> Answer<V> {
    Answer {
        value: None,
        claim: Claim::Unavailable,
    }
}

impl<K, V> SecondLevel<K, V> for RedisLevel<K, V>
where
    K: Serialize + Send + Sync + 'static,
    V: Serialize + DeserializeOwned + Send + Sync + 'static,
{
    fn lookup<'a>(&'a self, key: &'a K, claim: bool) -> BoxFuture<'a, Answer<V>> {
        Box::pin(async move {
            let Some((entry, claim_key)) = self.keys(key) else {
                return alone();
            };
            let mut invocation = self.lookup.prepare_invoke();
            invocation
                .key(&entry)
                .key(&claim_key)
                .arg(FORMAT)
                .arg(u8::from(claim))
                .arg(&self.instance)
                .arg(self.lease_millis);
            let answer: Result<(String, u64, u64, u8, u8), _> = self.store.invoke(invocation).await;
            let Ok((json, fresh, age, claimed, bad)) = answer else {
                self.store.fell_back();
                return alone();
            };
            if bad > 0 {
                self.store.bad_data("a cache entry");
            }
            let value = if json.is_empty() {
                None
            } else {
                match serde_json::from_str::<V>(&json) {
                    Ok(value) => Some(RemoteValue {
                        value,
                        fresh_for: Duration::from_millis(fresh),
                        age: Duration::from_millis(age),
                    }),
                    Err(_) => {
                        // Another version's type: load here, and the store replaces it.
                        self.store.bad_data("a cache entry");
                        return alone();
                    }
                }
            };
            let claim = match claimed {
                1 => Claim::Ours,
                2 => Claim::Elsewhere,
                _ => Claim::Unavailable,
            };
            Answer { value, claim }
        })
    }

    fn store(
        &self,
        key: &K,
        value: &V,
        fresh_for: Duration,
        stale_for: Duration,
    ) -> Option<BoxFuture<'static, ()>> {
        let (entry, claim_key) = self.keys(key)?;
        let json = match serde_json::to_string(value) {
            Ok(json) => json,
            Err(error) => {
                tracing::warn!(cache = self.cache, %error, "a value did not serialize; not shared");
                return None;
            }
        };
        let (script, store) = (self.store_script.clone(), self.store.clone());
        Some(Box::pin(async move {
            let mut invocation = script.prepare_invoke();
            invocation
                .key(entry)
                .key(claim_key)
                .arg(FORMAT)
                .arg(json)
                .arg(millis(fresh_for))
                .arg(millis(stale_for));
            store.send(invocation).await;
        }))
    }

    fn release(&self, key: &K) -> BoxFuture<'static, ()> {
        let Some((_, claim_key)) = self.keys(key) else {
            return Box::pin(async {});
        };
        let (script, store, instance) = (
            self.release.clone(),
            self.store.clone(),
            self.instance.clone(),
        );
        Box::pin(async move {
            let mut invocation = script.prepare_invoke();
            invocation.key(claim_key).arg(instance);
            store.send(invocation).await;
        })
    }

    fn wait_bound(&self) -> Duration {
        self.lease
    }
}
