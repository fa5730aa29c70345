//! Global registries: one instance per name, shared by every call site that names it.
//!
//! The attributes look their instance up once per call site (then keep it in a `static`), so the
//! registries are never on the hot path; [`get_system_health()`](crate::get_system_health) reads
//! them all.
//!
//! The first registration of a name wins: a later `get_or_create` with another configuration
//! returns the existing instance unchanged. A [`Policy`](crate::Policy) builder checks instead:
//! asking for other settings under a registered name is a `ConfigError` (an attribute warns and
//! publishes [`Event::ConfigConflict`](crate::event::Event::ConfigConflict)). Register an instance yourself before the first call
//! to configure what an attribute will use (a test clock, a config file's values).
//!
//! ```
//! use reliable_runtime::breaker::BreakerConfig;
//! use reliable_runtime::registry::breaker_registry;
//!
//! let breaker = breaker_registry().get_or_create("bybit_api", BreakerConfig::cex()).unwrap();
//! let same = breaker_registry().get("bybit_api").unwrap();
//! assert!(std::sync::Arc::ptr_eq(&breaker, &same));
//! ```

#[cfg(feature = "cache")]
use crate::cache::{CacheSnapshot, CacheStats};
pub use crate::common::registry::{Registered, Registry};
#[cfg(feature = "cache")]
use crate::common::scope;
pub use crate::degrade::degradation_registry;
#[cfg(feature = "cache")]
use crate::error::ConfigError;
/// One accessor per kind of layer kept by name (made from the layer table).
pub use crate::layer::registries::*;
#[cfg(feature = "testing")]
use crate::layer::{for_each_layer, Layer, LayerVisitor};
use crate::sla::{SlaMonitor, SlaStatus};
#[cfg(feature = "cache")]
use dashmap::DashMap;
#[cfg(feature = "cache")]
use std::fmt;
use std::sync::Arc;
#[cfg(feature = "cache")]
use std::sync::OnceLock;

impl Registry<SlaMonitor> {
    /// Sources whose status is not HEALTHY, with their status, sorted by name.
    ///
    /// ```
    /// use reliable_runtime::registry::sla_registry;
    /// use reliable_runtime::sla::{SlaStatus, SlaThresholds};
    /// use std::time::Duration;
    ///
    /// let monitor = sla_registry().get_or_create("unhealthy_doc", SlaThresholds::cex()).unwrap();
    /// for _ in 0..3 {
    ///     monitor.record_latency(Duration::from_millis(1), true);
    /// }
    /// let unhealthy = sla_registry().unhealthy_sources();
    /// assert!(unhealthy.iter().any(|(name, status)| &**name == "unhealthy_doc" && *status == SlaStatus::Failed));
    /// ```
    pub fn unhealthy_sources(&self) -> Vec<(Arc<str>, SlaStatus)> {
        self.all()
            .iter()
            .map(|monitor| (Arc::from(monitor.name()), monitor.status()))
            .filter(|(_, status)| *status != SlaStatus::Healthy)
            .collect()
    }
}

#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
/// Caches by name, whatever their key and value types (health reads their counters; call sites
/// get theirs back with its types through [`CacheStats::into_any`]).
#[derive(Default)]
pub struct CacheRegistry {
    caches: DashMap<Arc<str>, Arc<dyn CacheStats>>,
    /// Configurations declared (by a configuration file) for caches not created yet.
    declared: DashMap<Arc<str>, crate::cache::CacheConfig>,
}

#[cfg(feature = "cache")]
impl fmt::Debug for CacheRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CacheRegistry")
            .field("caches", &self.caches.len())
            .finish()
    }
}

#[cfg(feature = "cache")]
impl CacheRegistry {
    /// Registers `cache` unless its name is taken; returns whether it was registered.
    ///
    /// ```
    /// use reliable_runtime::cache::{Cache, CacheConfig};
    /// use reliable_runtime::registry::cache_registry;
    /// use std::sync::Arc;
    ///
    /// let cache: Arc<Cache<String, u64>> = Arc::new(Cache::new("doc_registered", CacheConfig::default()).unwrap());
    /// assert!(cache_registry().register(cache.clone()));
    /// assert_eq!(cache_registry().snapshot("doc_registered").unwrap().size, 0);
    /// ```
    pub fn register(&self, cache: Arc<dyn CacheStats>) -> bool {
        let name: Arc<str> = scope::key(cache.name()).into();
        let mut registered = false;
        self.caches.entry(name).or_insert_with(|| {
            registered = true;
            cache
        });
        registered
    }

    /// The cache named `name` with keys `K` and values `V`, created with `config` if new.
    ///
    /// `Ok(None)` if a cache of that name exists with other key or value types.
    pub fn get_or_create<K, V>(
        &self,
        name: &str,
        config: crate::cache::CacheConfig,
    ) -> Result<Option<Arc<crate::cache::Cache<K, V>>>, ConfigError>
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let typed = |cache: &Arc<dyn CacheStats>| {
            Arc::clone(cache)
                .into_any()
                .and_then(|any| any.downcast().ok())
        };
        let key = scope::key(name);
        if let Some(existing) = self.caches.get(&*key) {
            return Ok(typed(existing.value()));
        }
        let config = match self.declared(name) {
            // The declared configuration wins, on the clock the caller runs on.
            Some(declared) => declared.clock(config.clock),
            None => config,
        };
        let created: Arc<dyn CacheStats> =
            Arc::new(crate::cache::Cache::<K, V>::new(name, config)?);
        let stored = self.caches.entry(key.into()).or_insert(created);
        Ok(typed(stored.value()))
    }

    /// [`Cache::reconfigure`](crate::cache::Cache::reconfigure) for the cache named `name`,
    /// whatever its key and value types (a `#[cached]` fn's cache, by the fn's cache name).
    /// An `Err` (field `name` if there is no such cache) changes nothing.
    ///
    /// ```
    /// use reliable_runtime::cache::CacheConfig;
    /// use reliable_runtime::registry::cache_registry;
    /// use std::time::Duration;
    ///
    /// cache_registry().get_or_create::<String, f64>("doc_reconfigured", CacheConfig::default()).unwrap();
    /// cache_registry().reconfigure("doc_reconfigured", |config| config.ttl(Duration::from_secs(30))).unwrap();
    /// assert_eq!(cache_registry().snapshot("doc_reconfigured").unwrap().ttl_seconds, 30.0);
    /// assert_eq!(cache_registry().reconfigure("doc_no_such_cache", |config| config).unwrap_err().field(), "name");
    /// ```
    pub fn reconfigure(
        &self,
        name: &str,
        change: impl FnOnce(crate::cache::CacheConfig) -> crate::cache::CacheConfig,
    ) -> Result<(), ConfigError> {
        let cache = self
            .get_untyped(name)
            .ok_or_else(|| ConfigError::new("name", format!("no cache named `{name}`")))?;
        let mut change = Some(change);
        cache.reconfigure_by_name(
            &mut |config| match change.take() {
                Some(change) => change(config),
                None => config,
            },
            true,
        )
    }

    /// Declares the configuration of the cache `name` before it exists (a configuration file's
    /// `[caches.name]`): the cache is created with it, whatever the fn or policy that creates it
    /// asks for (its clock kept). A cache that exists already is not changed: reconfigure it.
    pub(crate) fn declare(&self, name: &str, config: crate::cache::CacheConfig) {
        self.declared.insert(scope::key(name).into(), config);
    }

    /// The configuration declared for the cache `name`, if any.
    pub(crate) fn declared(&self, name: &str) -> Option<crate::cache::CacheConfig> {
        self.declared
            .get(&*scope::key(name))
            .map(|config| config.value().clone())
    }

    /// Every cache, whatever test scope registered it (for the runtime's watcher).
    pub(crate) fn every(&self) -> Vec<Arc<dyn CacheStats>> {
        self.caches
            .iter()
            .map(|cache| Arc::clone(cache.value()))
            .collect()
    }

    /// The cache `name` as the registry holds it, without its types.
    pub(crate) fn get_untyped(&self, name: &str) -> Option<Arc<dyn CacheStats>> {
        self.caches
            .get(&*scope::key(name))
            .map(|cache| Arc::clone(cache.value()))
    }

    /// The counters of the cache named `name`.
    pub fn snapshot(&self, name: &str) -> Option<CacheSnapshot> {
        self.caches
            .get(&*scope::key(name))
            .map(|cache| cache.snapshot())
    }

    /// Every cache's counters, by name.
    pub fn snapshots(&self) -> std::collections::BTreeMap<String, CacheSnapshot> {
        self.caches
            .iter()
            .filter_map(|entry| {
                let name = scope::name_here(entry.key())?;
                Some((name.to_owned(), entry.value().snapshot()))
            })
            .collect()
    }

    /// Removes the cache named `name`: health no longer shows it, the next `get_or_create` of
    /// the name makes a new one, and its memory is freed once nothing holds it (a `#[cached]`
    /// fn that already used it keeps it).
    pub fn remove(&self, name: &str) -> bool {
        self.caches.remove(&*scope::key(name)).is_some()
    }
}

/// Keeps, in every registry, the entries whose key `keep` accepts (a test scope's end).
#[cfg(feature = "testing")]
pub(crate) fn retain_keys(keep: &dyn Fn(&str) -> bool) {
    struct Retain<'a>(&'a dyn Fn(&str) -> bool);
    impl LayerVisitor for Retain<'_> {
        fn visit<T: Layer>(&mut self) {
            T::registry().retain_keys(self.0);
        }
    }
    for_each_layer(&mut Retain(keep));
    degradation_registry().retain_keys(keep);
    #[cfg(feature = "cache")]
    cache_registry().caches.retain(|key, _| keep(key));
}

#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
/// The registry of caches.
pub fn cache_registry() -> &'static CacheRegistry {
    static REGISTRY: OnceLock<CacheRegistry> = OnceLock::new();
    REGISTRY.get_or_init(CacheRegistry::default)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::breaker::BreakerConfig;

    #[test]
    fn first_registration_wins() {
        let first = breaker_registry()
            .get_or_create("registry_first_wins", BreakerConfig::cex())
            .unwrap();
        let second = breaker_registry()
            .get_or_create("registry_first_wins", BreakerConfig::twitter())
            .unwrap();
        assert!(Arc::ptr_eq(&first, &second));
        assert_eq!(second.config().failure_threshold, 5);
    }

    #[test]
    fn bad_configuration_is_an_error_and_registers_nothing() {
        let bad = BreakerConfig {
            success_threshold: 0,
            ..BreakerConfig::cex()
        };
        assert!(breaker_registry()
            .get_or_create("registry_bad", bad)
            .is_err());
        assert!(breaker_registry().get("registry_bad").is_none());
    }
}
