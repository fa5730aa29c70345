//! What the attribute macros' generated code calls. Not a public API: it changes without notice.
//!
//! The generated code is a thin shell: it keeps each instance in a per-call-site `static`
//! [`Site`] (so the hot path never touches a registry) and hands the call to one of the pipeline
//! functions below, which are ordinary generic Rust.

pub use crate::breaker::{BreakerConfig, BreakerWindow, CircuitBreaker};
pub use crate::cache::{AsRejected, ByClone, LoadAlone};
pub use crate::cache::{Cache, CacheConfig, CachePolicy};
use crate::cache::{ShareFailure, SharedError};
pub use crate::error::Rejected;
pub use crate::sla::{SlaMonitor, SlaThresholds, SlaWindow};
pub use core::any::type_name_of_val;
pub use core::future::Future;
pub use core::result::Result;
pub use core::time::Duration;

use crate::error::ConfigError;
use crate::registry::{
    breaker_registry, bulkhead_registry, cache_registry, rate_limiter_registry, retry_registry,
    sla_registry, timeout_registry,
};
use crate::registry::{Registered, Registry};
use std::marker::PhantomData;
use std::sync::{Arc, OnceLock};

/// A call site's instance, looked up in the registry on first use.
pub struct Site<T> {
    cell: OnceLock<Arc<T>>,
}

impl<T> Site<T> {
    /// An empty site, for a `static`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        Site {
            cell: OnceLock::new(),
        }
    }
}

/// A call site's per-attempt layers, built once from its instances.
pub struct LayersSite {
    cell: OnceLock<Layers>,
}

impl LayersSite {
    /// An empty site, for a `static`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        LayersSite {
            cell: OnceLock::new(),
        }
    }

    /// The layers, built by `build` on the first call.
    #[inline]
    pub fn get(&'static self, build: impl FnOnce() -> Layers) -> &'static Layers {
        self.cell.get_or_init(|| build().ready())
    }
}

/// The instance name of a call site: the one written in the attribute, or the function's path.
#[derive(Clone, Copy)]
pub struct SiteName {
    explicit: Option<&'static str>,
    /// `type_name_of_val` of a marker fn defined in the function's body.
    marker_path: &'static str,
}

impl SiteName {
    /// `explicit` if given, else the function's path derived from its marker fn's type name.
    pub const fn new(explicit: Option<&'static str>, marker_path: &'static str) -> Self {
        SiteName {
            explicit,
            marker_path,
        }
    }

    /// Resolves the name (once per call site).
    pub fn resolve(self) -> String {
        if let Some(name) = self.explicit {
            return name.to_owned();
        }
        function_path(self.marker_path)
    }
}

/// `crate::Type::method::{{closure}}::__reliable_site` -> `crate::Type::method`.
fn function_path(marker_path: &str) -> String {
    let mut path = marker_path;
    if let Some(stripped) = path.rsplit_once("::").map(|(head, _)| head) {
        path = stripped;
    }
    while let Some(stripped) = path.strip_suffix("::{{closure}}") {
        path = stripped;
    }
    path.to_owned()
}

impl<T: Registered> Site<T> {
    /// The site's instance: the one registered under its name, or a new one made by `create`
    /// from the attribute's configuration. The macro validated that configuration at compile
    /// time, so if it is refused anyway (a bug) the error is logged and `defaults` makes the
    /// instance instead: the caller is never panicked on.
    #[inline]
    fn get_or_create(
        &'static self,
        name: SiteName,
        registry: &'static Registry<T>,
        create: impl FnOnce(&str) -> Result<T, ConfigError>,
        defaults: impl FnOnce(&str) -> Result<T, ConfigError>,
    ) -> &'static Arc<T> {
        if let Some(instance) = self.cell.get() {
            return instance;
        }
        self.init(name, registry, create, defaults)
    }

    #[cold]
    fn init(
        &'static self,
        name: SiteName,
        registry: &'static Registry<T>,
        create: impl FnOnce(&str) -> Result<T, ConfigError>,
        defaults: impl FnOnce(&str) -> Result<T, ConfigError>,
    ) -> &'static Arc<T> {
        let name = name.resolve();
        self.cell.get_or_init(|| {
            registry
                .get_or_try_insert_with(&name, || create(&name))
                .unwrap_or_else(|error| {
                    tracing::error!(instance = %name, %error, "invalid configuration; using the defaults");
                    registry
                        .get_or_try_insert_with(&name, || defaults(&name))
                        .expect("the default configuration is valid")
                })
        })
    }
}

impl Site<CircuitBreaker> {
    /// The breaker of this call site, created from `config` on first use unless registered.
    #[inline]
    pub fn breaker(
        &'static self,
        name: SiteName,
        config: impl FnOnce() -> BreakerConfig,
        group: Option<&'static str>,
    ) -> Arc<CircuitBreaker> {
        let grouped = move |breaker: CircuitBreaker| match group {
            Some(group) => breaker.with_group(group),
            None => breaker,
        };
        Arc::clone(self.get_or_create(
            name,
            breaker_registry(),
            |name| CircuitBreaker::new(name, config()).map(grouped),
            |name| CircuitBreaker::new(name, BreakerConfig::default()).map(grouped),
        ))
    }
}

impl Site<SlaMonitor> {
    /// The monitor of this call site, created on first use unless registered.
    #[inline]
    pub fn monitor(
        &'static self,
        name: SiteName,
        thresholds: impl FnOnce() -> SlaThresholds,
        window: SlaWindow,
        group: Option<&'static str>,
    ) -> Arc<SlaMonitor> {
        let build = move |name: &str, thresholds: SlaThresholds, window: SlaWindow| {
            let builder = SlaMonitor::builder(name)
                .thresholds(thresholds)
                .window(window);
            match group {
                Some(group) => builder.group(group),
                None => builder,
            }
            .build()
        };
        Arc::clone(self.get_or_create(
            name,
            sla_registry(),
            |name| build(name, thresholds(), window),
            |name| build(name, SlaThresholds::default(), SlaWindow::default()),
        ))
    }
}

pub use crate::degrade::Degradation;
pub use crate::error::Failure;
pub use crate::limit::{
    Bulkhead, BulkheadConfig, RateLimit, RateLimiter, RateLimiterConfig, TimeoutPolicy,
};
pub use crate::pipeline::{
    attempt, attempt_now, attempt_result, attempt_sync, into_error, monitored, monitored_sync,
    outcome, retry_callback, retry_hint, retry_predicate, settle, settle_once, settle_outcome,
    sleep, timed_outcome, AttemptNow, AttemptResult, Layers, Monitored,
};
pub use crate::preset::{IntoPreset, Preset};
pub use crate::retry::{BackoffConfig, Jitter, RetryBudget, RetryConfig, RetryPolicy};
pub use core::ops::ControlFlow;

impl Site<RetryPolicy> {
    /// The retry policy of this call site, created on first use unless registered.
    #[inline]
    pub fn retry_policy(
        &'static self,
        name: SiteName,
        config: impl FnOnce() -> RetryConfig,
    ) -> &'static RetryPolicy {
        self.get_or_create(
            name,
            retry_registry(),
            |name| RetryPolicy::new(name, config()),
            |name| RetryPolicy::new(name, RetryConfig::default()),
        )
    }
}

impl Site<RateLimiter> {
    /// The rate limiter of this call site, created on first use unless registered.
    #[inline]
    pub fn rate_limiter(
        &'static self,
        name: SiteName,
        limit: impl FnOnce() -> RateLimit,
    ) -> Arc<RateLimiter> {
        Arc::clone(self.get_or_create(
            name,
            rate_limiter_registry(),
            |name| RateLimiter::new(name, RateLimiterConfig::new(limit())),
            |name| RateLimiter::new(name, RateLimiterConfig::new(RateLimit::per_minute(60))),
        ))
    }
}

impl Site<Bulkhead> {
    /// The bulkhead of this call site, created on first use unless registered.
    #[inline]
    pub fn bulkhead(
        &'static self,
        name: SiteName,
        config: impl FnOnce() -> BulkheadConfig,
    ) -> Arc<Bulkhead> {
        let defaults = BulkheadConfig {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
        };
        Arc::clone(self.get_or_create(
            name,
            bulkhead_registry(),
            |name| Bulkhead::new(name, config()),
            |name| Bulkhead::new(name, defaults),
        ))
    }
}

impl Site<TimeoutPolicy> {
    /// The timeout policy of this call site, created on first use unless registered.
    #[inline]
    pub fn timeout_policy(
        &'static self,
        name: SiteName,
        after: Duration,
    ) -> &'static TimeoutPolicy {
        self.get_or_create(
            name,
            timeout_registry(),
            |name| TimeoutPolicy::new(name, after),
            |name| TimeoutPolicy::new(name, Duration::from_secs(30)),
        )
    }
}

/// A call site's cache, whose key and value types only the compiler knows (a `static` cannot
/// name the type of a `key = ...` expression).
///
/// The site keeps the cache alive in its registry and remembers it as a thin pointer plus the
/// `TypeId` it was created with: each call compares that id with a constant and casts, where
/// `dyn Any::downcast_ref` would make a virtual call for the id (the `cache_hit` bench group).
pub struct CacheSite {
    cell: OnceLock<Option<TypedCache>>,
}

struct TypedCache {
    type_id: std::any::TypeId,
    /// Points into `_owner`, which keeps it alive as long as the site (a `static`) lives.
    cache: std::ptr::NonNull<()>,
    _owner: Arc<dyn std::any::Any + Send + Sync>,
}

// SAFETY: `cache` points into `_owner`, which is `Send + Sync`; the pointer itself is only read
// back as `&Cache<K, V>` for the `K, V` that `type_id` names.
unsafe impl Send for TypedCache {}
// SAFETY: as above.
unsafe impl Sync for TypedCache {}

impl CacheSite {
    /// An empty site, for a `static`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        CacheSite {
            cell: OnceLock::new(),
        }
    }

    #[inline]
    fn cache<K, V>(
        &'static self,
        name: SiteName,
        config: impl FnOnce() -> CacheConfig,
    ) -> Option<&'static Cache<K, V>>
    where
        K: CacheKey,
        V: CacheValue,
    {
        let typed = self
            .cell
            .get_or_init(|| {
                let name = name.resolve();
                match cache_registry().get_or_create::<K, V>(&name, config()) {
                    Ok(Some(cache)) => Some(TypedCache {
                        type_id: std::any::TypeId::of::<Cache<K, V>>(),
                        cache: std::ptr::NonNull::from(&*cache).cast(),
                        _owner: cache,
                    }),
                    Ok(None) => {
                        tracing::error!(cache = %name, "a cache of this name has other key or value types; calls are not cached");
                        None
                    }
                    Err(error) => {
                        tracing::error!(cache = %name, %error, "invalid cache configuration; calls are not cached");
                        None
                    }
                }
            })
            .as_ref()?;
        // A generic fn whose key type varies shares one static: such calls are not cached.
        if typed.type_id != std::any::TypeId::of::<Cache<K, V>>() {
            return None;
        }
        // SAFETY: the id matches, so `cache` points to a `Cache<K, V>`, owned by `_owner`,
        // which lives as long as the `'static` site.
        Some(unsafe { typed.cache.cast::<Cache<K, V>>().as_ref() })
    }
}

/// What `#[cached]` needs of a return type: a `Result` (caches `Ok`) or an `Option` (caches `Some`).
#[diagnostic::on_unimplemented(
    message = "`#[cached]` caches the `Ok` value of a `Result` or the `Some` value of an `Option`; `{Self}` is neither",
    label = "return a `Result<T, E>` or an `Option<T>`"
)]
pub trait CacheOutput: Sized {
    /// What is cached.
    type Value;
    /// What is not (errors, `None`).
    type Miss;
    /// Splits the output.
    fn split(self) -> Result<Self::Value, Self::Miss>;
    /// Joins it back.
    fn join(result: Result<Self::Value, Self::Miss>) -> Self;
}

impl<T, E> CacheOutput for Result<T, E> {
    type Value = T;
    type Miss = E;
    #[inline]
    fn split(self) -> Result<T, E> {
        self
    }
    #[inline]
    fn join(result: Result<T, E>) -> Self {
        result
    }
}

impl<T> CacheOutput for Option<T> {
    type Value = T;
    type Miss = ();
    #[inline]
    fn split(self) -> Result<T, ()> {
        self.ok_or(())
    }
    #[inline]
    fn join(result: Result<T, ()>) -> Self {
        result.ok()
    }
}

/// What `#[cached]` needs of a cached value.
#[diagnostic::on_unimplemented(
    message = "`#[cached]` returns cached values by cloning them: `{Self}` must be `Clone + Send + Sync + 'static`",
    note = "derive `Clone` for it, or return an `Arc` of it"
)]
pub trait CacheValue: Clone + Send + Sync + 'static {}

impl<T: Clone + Send + Sync + 'static> CacheValue for T {}

/// What `#[cached]` needs of a key.
#[diagnostic::on_unimplemented(
    message = "a cache key must be `Hash + Eq + Clone + Send + Sync + 'static`; `{Self}` is not",
    label = "this key",
    note = "key on the arguments themselves (`key = symbol`, `key = (symbol, depth)`: looked up borrowed, owned on a miss), or build an owned key (`key = format!(..)`, `key = symbol.to_uppercase()`)"
)]
pub trait CacheKey: std::hash::Hash + Eq + Clone + Send + Sync + 'static {}

impl<T: std::hash::Hash + Eq + Clone + Send + Sync + 'static> CacheKey for T {}

/// Compile-time check of a key, spanned at the user's key expression.
#[inline(always)]
pub fn assert_cache_key<K: CacheKey>(_key: &K) {}

/// Compile-time check of the return type, spanned at it.
#[inline(always)]
pub const fn assert_cache_output<R>()
where
    R: CacheOutput,
    R::Value: CacheValue,
{
}

/// `#[cached]`'s hit path, before any future is built: the fresh value for `key`, if any.
#[inline]
pub fn cache_hit<R, K>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: &K,
) -> Option<R>
where
    R: CacheOutput,
    R::Value: CacheValue,
    K: CacheKey,
{
    fresh_value::<R, K, K>(site, name, config, key)
}

/// `#[cached]`'s hit path for a key of arguments, looked up borrowed. `owned_key` is never
/// called: it names the type of the owned key, which is built only on a miss.
#[inline]
pub fn cache_hit_borrowed<R, K, Q>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: &Q,
    _owned_key: impl FnOnce() -> K,
) -> Option<R>
where
    R: CacheOutput,
    R::Value: CacheValue,
    K: CacheKey,
    Q: LookupKey<K> + ?Sized,
{
    fresh_value::<R, K, Q>(site, name, config, key)
}

#[inline]
fn fresh_value<R, K, Q>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: &Q,
) -> Option<R>
where
    R: CacheOutput,
    R::Value: CacheValue,
    K: CacheKey,
    Q: LookupKey<K> + ?Sized,
{
    let value = site.cache::<K, R::Value>(name, config)?.get_fresh(key)?;
    Some(R::join(Ok(value)))
}

/// What a key of arguments is looked up with: its borrowed form, which hashes and compares like
/// the owned key `K`.
#[diagnostic::on_unimplemented(
    message = "a cache key must be `Hash + Eq + Clone + Send + Sync + 'static`; `{Self}` is not",
    label = "this key",
    note = "key on the arguments themselves (`key = symbol`, `key = (symbol, depth)`: looked up borrowed, owned on a miss), or build an owned key (`key = format!(..)`, `key = symbol.to_uppercase()`)"
)]
pub trait LookupKey<K>: scc::Equivalent<K> + std::hash::Hash {}

impl<K: CacheKey, Q: scc::Equivalent<K> + std::hash::Hash + ?Sized> LookupKey<K> for Q {}

/// A key of the fn's arguments, borrowed: a tuple of references that hashes and compares like
/// the tuple of owned values the cache keeps, so a hit needs no owned key.
///
/// The hashes agree because a tuple hashes its fields in order, a reference hashes what it
/// points to, and `Borrow` requires the owned and the borrowed form to hash alike.
pub struct BorrowedKey<T>(pub T);

macro_rules! borrowed_key_tuples {
    ($(($($borrowed:ident $owned:ident $index:tt),+))+) => {$(
        impl<'a, $($borrowed: ?Sized + std::hash::Hash),+> std::hash::Hash
            for BorrowedKey<($(&'a $borrowed,)+)>
        {
            #[inline]
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                $(self.0.$index.hash(state);)+
            }
        }

        impl<'a, $($borrowed: ?Sized + Eq, $owned: std::borrow::Borrow<$borrowed>),+>
            scc::Equivalent<($($owned,)+)> for BorrowedKey<($(&'a $borrowed,)+)>
        {
            #[inline]
            fn equivalent(&self, key: &($($owned,)+)) -> bool {
                $(*self.0.$index == *key.$index.borrow())&&+
            }
        }
    )+};
}

borrowed_key_tuples! {
    (A0 O0 0)
    (A0 O0 0, A1 O1 1)
    (A0 O0 0, A1 O1 1, A2 O2 2)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3, A4 O4 4)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3, A4 O4 4, A5 O5 5)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3, A4 O4 4, A5 O5 5, A6 O6 6)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3, A4 O4 4, A5 O5 5, A6 O6 6, A7 O7 7)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3, A4 O4 4, A5 O5 5, A6 O6 6, A7 O7 7, A8 O8 8)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3, A4 O4 4, A5 O5 5, A6 O6 6, A7 O7 7, A8 O8 8, A9 O9 9)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3, A4 O4 4, A5 O5 5, A6 O6 6, A7 O7 7, A8 O8 8, A9 O9 9, A10 O10 10)
    (A0 O0 0, A1 O1 1, A2 O2 2, A3 O3 3, A4 O4 4, A5 O5 5, A6 O6 6, A7 O7 7, A8 O8 8, A9 O9 9, A10 O10 10, A11 O11 11)
}

/// `#[cached]`'s miss path, boxed and polled out of line.
///
/// Boxing keeps the large miss-path state out of the fn's future. Awaiting a plain
/// `Pin<Box<F>>` is not enough: its `poll` and drop glue take the address of the field that
/// holds the box, and once that address escapes into a call the compiler keeps the whole future
/// in memory and copies it on every move, which stalls on the freshly written state byte (the
/// copy cost nearly as much as the cache lookup: the `cache_hit` bench group). Here `poll` and `drop`
/// read the pointer into a register and pass it by value to functions that are never inlined,
/// so the hit path's future stays in registers.
pub struct OutOfLine<F: Future>(std::mem::ManuallyDrop<std::pin::Pin<Box<F>>>);

/// Boxes `future` to be awaited out of line.
#[inline]
pub fn out_of_line<F: Future>(future: F) -> OutOfLine<F> {
    OutOfLine(std::mem::ManuallyDrop::new(Box::pin(future)))
}

impl<F: Future> Future for OutOfLine<F> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        poll_out_of_line(self.get_mut().0.as_mut(), context)
    }
}

impl<F: Future> Drop for OutOfLine<F> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the field is never used again: this is its owner's drop.
        drop_out_of_line(unsafe { std::mem::ManuallyDrop::take(&mut self.0) });
    }
}

#[inline(never)]
fn poll_out_of_line<F: Future>(
    future: std::pin::Pin<&mut F>,
    context: &mut std::task::Context<'_>,
) -> std::task::Poll<F::Output> {
    future.poll(context)
}

#[inline(never)]
fn drop_out_of_line<F>(future: std::pin::Pin<Box<F>>) {
    drop(future);
}

/// `#[cached]`, async: the cached value for `key`, or `call`'s (single-flight, stale handling);
/// the callers that waited for a failed load get their error as `share` says (see
/// [`ShareProbe`]).
#[inline]
pub async fn cached<R, K, F, S>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: K,
    call: F,
    _share: S,
) -> R
where
    R: CacheOutput,
    R::Value: CacheValue,
    K: CacheKey,
    F: Future<Output = R>,
    S: ShareFailure<R::Miss>,
{
    let call = async move { call.await.split() };
    R::join(cached_result::<_, _, _, _, S>(site, name, config, key, call).await)
}

/// Picks how `#[cached]` shares a failed load with the callers that waited for it, by
/// autoref specialization on the fn's return type `R`: `(&ShareProbe::<R, Otherwise>::NEW)
/// .__reliable_share()` is [`ByClone`] when `R` is a `Result` whose error is `Clone + Send +
/// Sync + 'static`, or an `Option` ([`ShareByClone`]), and `Otherwise` (`AsRejected` or
/// `LoadAlone`) for any other type ([`ShareOtherwise`]), which never fails to resolve: a return
/// type that cannot be cached is reported once, by the cache's own bounds.
pub struct ShareProbe<R, Otherwise>(PhantomData<(fn() -> R, Otherwise)>);

impl<R, Otherwise> ShareProbe<R, Otherwise> {
    /// The probe.
    pub const NEW: Self = ShareProbe(PhantomData);
}

/// The preferred case of [`ShareProbe`]: followers get a clone of the leader's error.
pub trait ShareByClone {
    /// [`ByClone`].
    fn __reliable_share(&self) -> ByClone;
}

impl<T, E: SharedError, Otherwise> ShareByClone for ShareProbe<Result<T, E>, Otherwise> {
    #[inline]
    fn __reliable_share(&self) -> ByClone {
        ByClone
    }
}

impl<T, Otherwise> ShareByClone for ShareProbe<Option<T>, Otherwise> {
    #[inline]
    fn __reliable_share(&self) -> ByClone {
        ByClone
    }
}

/// The fallback of [`ShareProbe`] for error types that cannot be cloned.
pub trait ShareOtherwise<Otherwise> {
    /// `Otherwise`.
    fn __reliable_share(&self) -> Otherwise;
}

impl<R, Otherwise: Default> ShareOtherwise<Otherwise> for &ShareProbe<R, Otherwise> {
    #[inline]
    fn __reliable_share(&self) -> Otherwise {
        Otherwise::default()
    }
}

/// `#[cached]`, blocking.
#[inline]
pub fn cached_sync<R, K>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: K,
    call: impl FnOnce() -> R,
) -> R
where
    R: CacheOutput,
    R::Value: CacheValue,
    K: CacheKey,
{
    R::join(cached_result_sync(site, name, config, key, || {
        call().split()
    }))
}

/// The cached `Ok` for `key`, or `call`'s result; `call` alone when the site has no cache.
async fn cached_result<V, E, K, F, S>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: K,
    call: F,
) -> Result<V, E>
where
    V: CacheValue,
    K: CacheKey,
    F: Future<Output = Result<V, E>>,
    S: ShareFailure<E>,
{
    match site.cache::<K, V>(name, config) {
        Some(cache) => cache.get_or_load_sharing::<E, F, S>(key, call).await,
        None => call.await,
    }
}

/// [`cached_result`], blocking.
fn cached_result_sync<V, E, K>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: K,
    call: impl FnOnce() -> Result<V, E>,
) -> Result<V, E>
where
    V: CacheValue,
    K: CacheKey,
{
    match site.cache::<K, V>(name, config) {
        Some(cache) => cache.get_or_load_sync(key, call),
        None => call(),
    }
}

/// Classifies any output as failed or not: `Err` fails, anything else succeeds.
///
/// Autoref specialization: for `output: &R`, `output.__reliable_failed()` finds
/// [`FailedIfErr`] when `R` is a `Result` and falls back to [`NeverFailed`] otherwise.
pub trait FailedIfErr {
    /// Whether the output is an `Err`.
    fn __reliable_failed(&self) -> bool;
}

impl<T, E> FailedIfErr for Result<T, E> {
    #[inline]
    fn __reliable_failed(&self) -> bool {
        self.is_err()
    }
}

/// The fallback of [`FailedIfErr`]: outputs that are not `Result`s never fail.
pub trait NeverFailed {
    /// Always `false`.
    fn __reliable_failed(&self) -> bool;
}

impl<T: ?Sized> NeverFailed for &T {
    #[inline]
    fn __reliable_failed(&self) -> bool {
        false
    }
}

/// What `#[circuit_breaker]`, `#[with_backoff]` and `#[timeout]` need of a return type: a
/// `Result<T, E>` (or an alias of one).
#[diagnostic::on_unimplemented(
    message = "this reliability attribute needs the function to return `Result<T, E>`, not `{Self}`",
    label = "this must be a `Result<T, E>`",
    note = "breakers, retries and timeouts answer with an `Err` when the call is refused, retried out or too slow; only `#[monitored]` works on any return type"
)]
pub trait BreakerOutput: Sized {
    /// The success type.
    type Ok;
    /// The error type.
    type Error;
    /// The error, if the output is one.
    fn error(&self) -> Option<&Self::Error>;
    /// The output as a `Result`.
    fn into_result(self) -> Result<Self::Ok, Self::Error>;
    /// The output from a `Result`.
    fn from_result(result: Result<Self::Ok, Self::Error>) -> Self;
}

impl<T, E> BreakerOutput for Result<T, E> {
    type Ok = T;
    type Error = E;

    #[inline]
    fn error(&self) -> Option<&E> {
        self.as_ref().err()
    }

    #[inline]
    fn into_result(self) -> Result<T, E> {
        self
    }

    #[inline]
    fn from_result(result: Result<T, E>) -> Self {
        result
    }
}

/// What `#[circuit_breaker]` needs of an error type: it can carry a [`Rejected`].
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot hold a `reliable_runtime::Rejected`",
    label = "a refused call (open breaker, timeout, rate limit) must return this error type",
    note = "add `impl From<reliable_runtime::Rejected> for {Self}` (e.g. a `Rejected(Rejected)` variant)"
)]
pub trait HoldsRejected {
    /// The error an open breaker returns.
    fn from_rejected(rejected: Rejected) -> Self;
}

impl<E: From<Rejected>> HoldsRejected for E {
    #[inline]
    fn from_rejected(rejected: Rejected) -> Self {
        E::from(rejected)
    }
}

/// Compile-time check that `R` is `Result<_, E>` with `E: From<Rejected>`; generated code calls
/// it with the span of the user's return type so errors point there.
#[inline(always)]
pub const fn assert_breaker_output<R>()
where
    R: BreakerOutput,
    R::Error: HoldsRejected,
{
}

/// Pins a `failure_if` predicate to the fn's error type, so a predicate of the wrong type is an
/// error at the predicate's path.
#[inline(always)]
pub fn failure_predicate<R: BreakerOutput>(
    predicate: fn(&R::Error) -> bool,
) -> fn(&R::Error) -> bool {
    predicate
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn borrowed_keys_hash_and_compare_like_the_owned_tuples() {
        use scc::Equivalent;
        use std::hash::BuildHasher;
        let hasher = foldhash::fast::RandomState::default();
        let owned = ("BTC".to_owned(), 5u32, vec![1u8, 2]);
        let borrowed = BorrowedKey(("BTC", &5u32, &[1u8, 2][..]));
        assert_eq!(hasher.hash_one(&borrowed), hasher.hash_one(&owned));
        assert!(borrowed.equivalent(&owned));
        assert!(!BorrowedKey(("BTC", &6u32, &[1u8, 2][..])).equivalent(&owned));
        assert!(!BorrowedKey(("ETH", &5u32, &[1u8, 2][..])).equivalent(&owned));
        let one = BorrowedKey(("BTC",));
        assert_eq!(hasher.hash_one(&one), hasher.hash_one(("BTC".to_owned(),)));
        assert!(one.equivalent(&("BTC".to_owned(),)));
        // Twelve parts, the most a key of arguments has here.
        let owned: (u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, u8, String) =
            (0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, "x".to_owned());
        let borrowed = BorrowedKey((
            &0u8, &1u8, &2u8, &3u8, &4u8, &5u8, &6u8, &7u8, &8u8, &9u8, &10u8, "x",
        ));
        assert_eq!(hasher.hash_one(&borrowed), hasher.hash_one(&owned));
        assert!(borrowed.equivalent(&owned));
    }

    #[test]
    fn function_path_strips_closures_and_the_marker() {
        assert_eq!(
            function_path("app::Client::ticker::{{closure}}::__reliable_site"),
            "app::Client::ticker"
        );
        assert_eq!(function_path("app::fetch::__reliable_site"), "app::fetch");
        assert_eq!(
            function_path("<app::Client as app::Api>::get::__reliable_site"),
            "<app::Client as app::Api>::get"
        );
    }

    #[test]
    fn classification_by_autoref() {
        let ok: Result<u8, u8> = Ok(1);
        let err: Result<u8, u8> = Err(1);
        let plain = 5u32;
        // Generated code sees the output as `&R`, as here.
        let (ok, err, plain) = (&ok, &err, &plain);
        assert!(!ok.__reliable_failed());
        assert!(err.__reliable_failed());
        assert!(!plain.__reliable_failed());
    }
}

/// Compile-time check that a fn with a fallback returns a `Result`, spanned at its return type.
#[inline(always)]
pub const fn assert_result<R: BreakerOutput>() {}

/// Resolves a preset (a value or a registered name) once per call site.
#[inline]
pub fn preset(preset: impl IntoPreset) -> Preset {
    preset.into_preset()
}

impl Site<Degradation> {
    /// The fallback counters of this call site.
    #[inline]
    pub fn degradation(&'static self, name: SiteName) -> &'static Degradation {
        self.get_or_create(
            name,
            crate::registry::degradation_registry(),
            |name| Degradation::new(name, ()),
            |name| Degradation::new(name, ()),
        )
    }
}

/// The output of a call that succeeded, or its failure for the fallback.
#[inline]
pub fn split_outcome<R: BreakerOutput>(outcome: AttemptResult<R>) -> Result<R, Failure<R::Error>> {
    outcome.map(|value| R::from_result(Ok(value)))
}

/// The error for a failure of a fn none of whose layers refuses calls.
pub fn inner_error<E>(failure: Failure<E>) -> E {
    match failure {
        Failure::Inner(error) => error,
        // Only generated for plans without breaker, limiter, bulkhead or timeout.
        Failure::Rejected(rejected) => {
            unreachable!("no layer of this fn refuses calls, yet it was refused: {rejected}")
        }
    }
}

/// `#[cached]` around an outcome (a fn with a fallback): a failed load keeps its cause; the
/// callers that waited for it get theirs as `share` says.
#[inline]
pub async fn cached_outcome<R, K, F, S>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: K,
    call: F,
    _share: S,
) -> AttemptResult<R>
where
    R: BreakerOutput,
    R::Ok: CacheValue,
    K: CacheKey,
    F: Future<Output = AttemptResult<R>>,
    S: ShareFailure<Failure<R::Error>>,
{
    cached_result::<_, _, _, _, S>(site, name, config, key, call).await
}

/// [`cached_outcome`], blocking.
#[inline]
pub fn cached_outcome_sync<R, K>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: K,
    call: impl FnOnce() -> AttemptResult<R>,
) -> AttemptResult<R>
where
    R: BreakerOutput,
    R::Ok: CacheValue,
    K: CacheKey,
{
    cached_result_sync(site, name, config, key, call)
}

/// Marks a fallback given as a value of the fn's return type.
pub struct FallbackValue;
/// Marks a fallback fn taking the fn's arguments.
pub struct FallbackFn;
/// Marks a fallback fn taking the fn's arguments and the cause.
pub struct FallbackFnWithCause;
/// Marks an async fallback fn taking the fn's arguments.
pub struct FallbackAsyncFn;

/// What `fallback = ...` may be for a blocking fn returning `R` with arguments `Args` (a tuple
/// of references to them) and failure `Cause`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be this function's fallback",
    label = "not a fallback for a function returning `{R}`",
    note = "give a value of the function's return type (`fallback = Ok(Vec::new())`), or a fn that takes the function's arguments by reference (`&self` included), optionally followed by `&reliable_runtime::Failure<E>`, and returns `{R}`"
)]
pub trait Fallback<Args, Cause, R, Marker> {
    /// Answers for a failed call.
    fn answer(self, args: Args, cause: &Cause) -> R;
}

impl<Args, Cause, R> Fallback<Args, Cause, R, FallbackValue> for R {
    #[inline]
    fn answer(self, _args: Args, _cause: &Cause) -> R {
        self
    }
}

/// What `fallback = ...` may be for an async fn: also a fn returning a future of `R`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be this function's fallback",
    label = "not a fallback for a function returning `{R}`",
    note = "give a value of the function's return type (`fallback = Ok(Vec::new())`), or a fn (sync or async) that takes the function's arguments by reference (`&self` included), optionally followed by `&reliable_runtime::Failure<E>`, and returns `{R}`"
)]
pub trait AsyncFallback<Args, Cause, R, Marker> {
    /// The answer's future.
    type Answer: Future<Output = R>;
    /// Answers for a failed call.
    fn answer(self, args: Args, cause: &Cause) -> Self::Answer;
}

impl<Args, Cause, R> AsyncFallback<Args, Cause, R, FallbackValue> for R {
    type Answer = core::future::Ready<R>;
    #[inline]
    fn answer(self, _args: Args, _cause: &Cause) -> Self::Answer {
        core::future::ready(self)
    }
}

macro_rules! fallback_fns {
    ($(($($arg:ident),*)),* $(,)?) => {$(
        impl<F, Cause, R, $($arg),*> Fallback<($($arg,)*), Cause, R, FallbackFn> for F
        where
            F: FnOnce($($arg),*) -> R,
        {
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), _cause: &Cause) -> R {
                self($($arg),*)
            }
        }

        impl<F, Cause, R, $($arg),*> Fallback<($($arg,)*), Cause, R, FallbackFnWithCause> for F
        where
            F: FnOnce($($arg,)* &Cause) -> R,
        {
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), cause: &Cause) -> R {
                self($($arg,)* cause)
            }
        }

        impl<F, Cause, R, $($arg),*> AsyncFallback<($($arg,)*), Cause, R, FallbackFn> for F
        where
            F: FnOnce($($arg),*) -> R,
        {
            type Answer = core::future::Ready<R>;
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), _cause: &Cause) -> Self::Answer {
                core::future::ready(self($($arg),*))
            }
        }

        impl<F, Cause, R, $($arg),*> AsyncFallback<($($arg,)*), Cause, R, FallbackFnWithCause> for F
        where
            F: FnOnce($($arg,)* &Cause) -> R,
        {
            type Answer = core::future::Ready<R>;
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), cause: &Cause) -> Self::Answer {
                core::future::ready(self($($arg,)* cause))
            }
        }

        impl<F, Fut, Cause, R, $($arg),*> AsyncFallback<($($arg,)*), Cause, R, FallbackAsyncFn> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future<Output = R>,
        {
            type Answer = Fut;
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), _cause: &Cause) -> Fut {
                self($($arg),*)
            }
        }
    )*};
}

fallback_fns! {
    (),
    (A1),
    (A1, A2),
    (A1, A2, A3),
    (A1, A2, A3, A4),
    (A1, A2, A3, A4, A5),
    (A1, A2, A3, A4, A5, A6),
    (A1, A2, A3, A4, A5, A6, A7),
    (A1, A2, A3, A4, A5, A6, A7, A8),
}

/// Answers a failed blocking call with `fallback`; a panicking fallback gives the original error.
#[inline]
pub fn degrade<R: BreakerOutput>(
    site: &Degradation,
    failure: Failure<R::Error>,
    fallback: impl FnOnce(&Failure<R::Error>) -> R,
    into_error: fn(Failure<R::Error>) -> R::Error,
) -> R {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fallback(&failure))) {
        Ok(answer) => {
            site.record_fallback();
            answer
        }
        Err(_) => fallback_panicked(site, failure, into_error),
    }
}

#[cold]
fn fallback_panicked<R: BreakerOutput>(
    site: &Degradation,
    failure: Failure<R::Error>,
    into_error: fn(Failure<R::Error>) -> R::Error,
) -> R {
    site.record_panic();
    tracing::error!(
        site = site.name(),
        "a fallback panicked; the caller gets the original error"
    );
    R::from_result(Err(into_error(failure)))
}

/// Builds a fallback's future, catching a panic while it is built.
#[inline]
pub fn start_fallback<Fut>(build: impl FnOnce() -> Fut) -> Option<CatchUnwind<Fut>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
        .ok()
        .map(|future| CatchUnwind { future })
}

/// The answer of an async fallback, or the original error if it panicked.
#[inline]
pub fn finish_fallback<R: BreakerOutput>(
    site: &Degradation,
    answer: Option<R>,
    failure: Failure<R::Error>,
    into_error: fn(Failure<R::Error>) -> R::Error,
) -> R {
    match answer {
        Some(answer) => {
            site.record_fallback();
            answer
        }
        None => fallback_panicked(site, failure, into_error),
    }
}

pin_project_lite::pin_project! {
    /// A future that turns a panic while polling into `None` (the fallback's future: a panic in
    /// it must not reach the caller).
    pub struct CatchUnwind<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let future = self.project().future;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll(context))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Some(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}
