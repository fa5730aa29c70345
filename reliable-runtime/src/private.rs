//! What the attribute macros' generated code calls. Not a public API: it changes without notice.
//!
//! The generated code is a thin shell: it keeps each instance in a per-call-site `static`
//! [`Site`] (so the hot path never touches a registry) and hands the call to one of the pipeline
//! functions below, which are ordinary generic Rust.

pub use crate::breaker::{BreakerConfig, BreakerWindow, CircuitBreaker};
pub use crate::cache::{Cache, CacheConfig, CachePolicy};
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
    cell: OnceLock<Layers<'static>>,
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
    pub fn get(&'static self, build: impl FnOnce() -> Layers<'static>) -> &'static Layers<'static> {
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
    ) -> &'static T {
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
    ) -> &'static T {
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
    ) -> &'static CircuitBreaker {
        let grouped = move |breaker: CircuitBreaker| match group {
            Some(group) => breaker.with_group(group),
            None => breaker,
        };
        self.get_or_create(
            name,
            breaker_registry(),
            |name| CircuitBreaker::new(name, config()).map(grouped),
            |name| CircuitBreaker::new(name, BreakerConfig::default()).map(grouped),
        )
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
    ) -> &'static SlaMonitor {
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
        self.get_or_create(
            name,
            sla_registry(),
            |name| build(name, thresholds(), window),
            |name| build(name, SlaThresholds::default(), SlaWindow::default()),
        )
    }
}

pub use crate::limit::{
    Bulkhead, BulkheadConfig, RateLimit, RateLimiter, RateLimiterConfig, TimeoutPolicy,
};
pub use crate::pipeline::{
    attempt, attempt_now, attempt_sync, monitored, monitored_sync, outcome, retry_callback,
    retry_hint, retry_predicate, settle, settle_once, sleep, timed_outcome, AttemptNow, Layers,
    Monitored,
};
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
    ) -> &'static RateLimiter {
        self.get_or_create(
            name,
            rate_limiter_registry(),
            |name| RateLimiter::new(name, RateLimiterConfig::new(limit())),
            |name| RateLimiter::new(name, RateLimiterConfig::new(RateLimit::per_minute(60))),
        )
    }
}

impl Site<Bulkhead> {
    /// The bulkhead of this call site, created on first use unless registered.
    #[inline]
    pub fn bulkhead(
        &'static self,
        name: SiteName,
        config: impl FnOnce() -> BulkheadConfig,
    ) -> &'static Bulkhead {
        let defaults = BulkheadConfig {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
        };
        self.get_or_create(
            name,
            bulkhead_registry(),
            |name| Bulkhead::new(name, config()),
            |name| Bulkhead::new(name, defaults),
        )
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
    note = "build the key from owned data: `key = symbol.to_owned()`, `key = format!(..)`, or a tuple of owned values"
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
    let value = site.cache::<K, R::Value>(name, config)?.get_fresh(key)?;
    Some(R::join(Ok(value)))
}

/// `#[cached]`, async: the cached value for `key`, or `call`'s (single-flight, stale handling).
#[inline]
pub async fn cached<R, K, F>(
    site: &'static CacheSite,
    name: SiteName,
    config: impl FnOnce() -> CacheConfig,
    key: K,
    call: F,
) -> R
where
    R: CacheOutput,
    R::Value: CacheValue,
    K: CacheKey,
    F: Future<Output = R>,
{
    match site.cache::<K, R::Value>(name, config) {
        Some(cache) => R::join(
            cache
                .get_or_load_future(key, async move { call.await.split() })
                .await,
        ),
        None => call.await,
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
    match site.cache::<K, R::Value>(name, config) {
        Some(cache) => R::join(cache.get_or_load_sync(key, || call().split())),
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
