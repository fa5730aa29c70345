//! The cache layer of a [`Policy`]: named and configured when the policy is built, typed (key
//! and value) by the first call that uses it.

use super::out_of_line::out_of_line;
use super::Policy;
use crate::__private::{CacheKey, CacheOutput, CacheValue};
use crate::cache::{ByClone, Cache, CacheConfig, ShareFailure, SharedError};
use crate::common::intern::intern;
use crate::error::Rejected;
use crate::registry::cache_registry;
use std::any::{Any, TypeId};
use std::future::Future;
use std::hash::Hash;
use std::ptr::NonNull;
use std::sync::{Arc, OnceLock};

/// The cache of a policy (or of an attribute's call site).
pub(crate) struct CacheLayer {
    name: &'static str,
    config: CacheConfig,
    typed: OnceLock<Option<TypedCache>>,
}

/// The cache, whose key and value types only the calls know, as a thin pointer plus the
/// `TypeId` it was created with: each call compares that id with a constant and casts, where
/// `dyn Any::downcast_ref` would make a virtual call for the id. Why: BENCHMARKS.md, section
/// "Design notes moved from the API docs".
struct TypedCache {
    type_id: TypeId,
    /// Points into `_owner`, which keeps it alive as long as the layer lives.
    cache: NonNull<()>,
    _owner: Arc<dyn Any + Send + Sync>,
}

// SAFETY: `cache` points into `_owner`, which is `Send + Sync`; the pointer itself is only read
// back as `&Cache<K, V>` for the `K, V` that `type_id` names.
unsafe impl Send for TypedCache {}
// SAFETY: as above.
unsafe impl Sync for TypedCache {}

impl CacheLayer {
    pub(crate) fn new(name: &str, config: CacheConfig) -> Self {
        CacheLayer {
            name: intern(name),
            config,
            typed: OnceLock::new(),
        }
    }

    pub(crate) fn name(&self) -> &'static str {
        self.name
    }

    /// The cache for keys `K` and values `V`: the one registered under the layer's name, made
    /// on the first call. `None` (calls go uncached, which is logged once) if a cache of that
    /// name has other types, or a generic fn calls with other types than its first call.
    #[inline(always)]
    pub(crate) fn get<K: CacheKey, V: CacheValue>(&self) -> Option<&Cache<K, V>> {
        let typed = self.typed.get_or_init(|| self.create::<K, V>()).as_ref()?;
        if typed.type_id != TypeId::of::<Cache<K, V>>() {
            return None;
        }
        // SAFETY: the id matches, so `cache` points to a `Cache<K, V>`, owned by `_owner`,
        // which lives as long as `self`.
        Some(unsafe { typed.cache.cast::<Cache<K, V>>().as_ref() })
    }

    #[cold]
    fn create<K: CacheKey, V: CacheValue>(&self) -> Option<TypedCache> {
        match cache_registry().get_or_create::<K, V>(self.name, self.config.clone()) {
            Ok(Some(cache)) => Some(TypedCache {
                type_id: TypeId::of::<Cache<K, V>>(),
                cache: NonNull::from(&*cache).cast(),
                _owner: cache,
            }),
            Ok(None) => {
                tracing::error!(
                    cache = self.name,
                    "a cache of this name has other key or value types; calls are not cached"
                );
                None
            }
            Err(error) => {
                tracing::error!(cache = self.name, %error, "invalid cache configuration; calls are not cached");
                None
            }
        }
    }
}

impl Policy {
    /// The value cached for `key`, or [`call`](Self::call)'s (the whole pipeline behind the
    /// cache): one load per key at a time (callers that miss together wait for it and share
    /// its result, a failed one included), stale values served while the source fails.
    /// Without a [`cache`](crate::PolicyBuilder::cache) layer it is `call`.
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    /// use std::time::Duration;
    ///
    /// #[derive(Clone, Debug)]
    /// struct ApiError;
    /// impl From<Rejected> for ApiError {
    ///     fn from(_: Rejected) -> Self { ApiError }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let policy = Policy::builder("cached_doc")
    ///     .cache("cached_doc", |cache| cache.ttl(Duration::from_secs(5)))
    ///     .build()
    ///     .unwrap();
    /// let mut loads = 0;
    /// for _ in 0..3 {
    ///     let price = policy.cached("BTCUSDT".to_owned(), || { loads += 1; async { Ok::<_, ApiError>(97_000.0) } }).await;
    ///     assert_eq!(price.unwrap(), 97_000.0);
    /// }
    /// assert_eq!(loads, 1);
    /// # }
    /// ```
    pub async fn cached<K, V, E, F, Fut>(&self, key: K, call: F) -> Result<V, E>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        E: From<Rejected> + SharedError,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<V, E>>,
    {
        if let Some(hit) = self.cache_hit::<Result<V, E>, K, K>(&key) {
            return hit;
        }
        // Everything else (no cache layer included) goes through the boxed miss path: it is
        // the large part of this future, and out of it the hit path's future stays small.
        self.load_cached(key, self.call(call), ByClone).await
    }

    /// [`cached`](Self::cached) looked up by `lookup`, a borrowed form of the key (a `&str` for
    /// a `String` key): a hit builds no owned key; `key` builds it on a miss. Callers that
    /// waited for a failed load get their error as `Share` says (see
    /// [`ShareFailure`]).
    ///
    /// ```
    /// use reliable_runtime::cache::ByClone;
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// #[derive(Clone, Debug)]
    /// struct ApiError;
    /// impl From<Rejected> for ApiError {
    ///     fn from(_: Rejected) -> Self { ApiError }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let policy = Policy::builder("cached_by_doc").cache("cached_by_doc", |cache| cache).build().unwrap();
    /// let symbol: &str = "ETHUSDT";
    /// let price = policy
    ///     .cached_by::<String, _, _, _, _, _, ByClone>(symbol, || symbol.to_owned(), || async { Ok::<_, ApiError>(3_500.0) })
    ///     .await;
    /// assert_eq!(price.unwrap(), 3_500.0);
    /// # }
    /// ```
    #[inline]
    pub async fn cached_by<K, Q, V, E, F, Fut, Share>(
        &self,
        lookup: &Q,
        key: impl FnOnce() -> K,
        call: F,
    ) -> Result<V, E>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        Q: scc::Equivalent<K> + Hash + ?Sized,
        V: Clone + Send + Sync + 'static,
        E: From<Rejected> + 'static,
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<V, E>>,
        Share: ShareFailure<E> + Default,
    {
        if let Some(hit) = self.cache_hit::<Result<V, E>, K, Q>(lookup) {
            return hit;
        }
        self.load_cached(key(), self.call(call), Share::default())
            .await
    }

    /// [`cached`](Self::cached) for a blocking call.
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    /// use std::time::Duration;
    ///
    /// let policy = Policy::builder("cached_blocking_doc").cache("cached_blocking_doc", |cache| cache.ttl(Duration::from_secs(5))).build().unwrap();
    /// let first = policy.cached_blocking("ETH", || Ok::<_, Rejected>(3_400.0));
    /// let second = policy.cached_blocking("ETH", || Ok::<_, Rejected>(0.0));
    /// assert_eq!((first, second), (Ok(3_400.0), Ok(3_400.0)), "the second is a hit");
    /// ```
    pub fn cached_blocking<K, V, E>(
        &self,
        key: K,
        call: impl FnMut() -> Result<V, E>,
    ) -> Result<V, E>
    where
        K: Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
        E: From<Rejected> + 'static,
    {
        match self.cache.as_ref().and_then(CacheLayer::get::<K, V>) {
            Some(cache) => cache.get_or_load_sync(key, || self.call_blocking(call)),
            None => self.call_blocking(call),
        }
    }

    /// The fresh cached value for `lookup` (the key, or a borrowed form of it), as the
    /// output `R` of the cached call (`Ok(value)` or `Some(value)`); `None` on a miss or
    /// without a cache. The attributes check it before building any future; with
    /// [`load_cached`](Self::load_cached) it makes [`cached`](Self::cached).
    #[inline(always)]
    pub fn cache_hit<R, K, Q>(&self, lookup: &Q) -> Option<R>
    where
        R: CacheOutput,
        R::Value: CacheValue,
        K: CacheKey,
        Q: scc::Equivalent<K> + Hash + ?Sized,
    {
        let cache = self.cache.as_ref()?.get::<K, R::Value>()?;
        let value = cache.get_fresh(lookup)?;
        crate::served::record(|| crate::served::Source::Cached);
        Some(R::join(Ok(value)))
    }

    /// The miss path of a cached call: the value for `key`, loaded by `load` (any future of
    /// the call's output, the pipeline behind the cache included) once per key at a time,
    /// or served stale while loads fail. Callers that waited for a failed load get their
    /// error as `Share` says. Boxed: it is the large part of a cached call's future.
    // Never inlined: built in the caller's poll, the miss path would take the inlining budget
    // the hit path's lookup needs (`HashIndex::peek_with` was left out of line, +60% per hit).
    #[inline(never)]
    pub fn load_cached<'a, R, K, F, Share>(
        &'a self,
        key: K,
        load: F,
        _share: Share,
    ) -> impl Future<Output = R> + 'a
    where
        R: CacheOutput + 'a,
        R::Value: CacheValue,
        K: CacheKey,
        F: Future<Output = R> + 'a,
        Share: ShareFailure<R::Miss>,
    {
        out_of_line(async move {
            let load = async move { load.await.split() };
            R::join(
                match self.cache.as_ref().and_then(CacheLayer::get::<K, R::Value>) {
                    Some(cache) => cache.get_or_load_sharing::<_, _, Share>(key, load).await,
                    None => load.await,
                },
            )
        })
    }

    /// [`load_cached`](Self::load_cached) for a blocking call.
    pub fn load_cached_blocking<R, K>(&self, key: K, load: impl FnOnce() -> R) -> R
    where
        R: CacheOutput,
        R::Value: CacheValue,
        K: CacheKey,
    {
        R::join(
            match self.cache.as_ref().and_then(CacheLayer::get::<K, R::Value>) {
                Some(cache) => cache.get_or_load_sync(key, || load().split()),
                None => load().split(),
            },
        )
    }
}
