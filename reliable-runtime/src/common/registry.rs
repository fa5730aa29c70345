//! [`Registry`]: instances by name, one per name, shared by every call site that names it.
//! The registries of each kind are listed in [`crate::registry`].

use crate::common::scope;
use crate::error::ConfigError;
use dashmap::DashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

/// Something a registry holds: it knows its own name and how it is made from a configuration.
pub trait Registered: Sized {
    /// What [`Registry::get_or_create`] needs to make one.
    type Config;
    /// The registry name.
    fn name(&self) -> &str;
    /// A new instance named `name`, after validating `config`.
    fn create(name: &str, config: Self::Config) -> Result<Self, ConfigError>;
}

/// Instances by name.
pub struct Registry<T> {
    instances: DashMap<Arc<str>, Arc<T>>,
    /// Counts the insertions and removals, each once it is done.
    version: AtomicU64,
    /// Every instance with its key, sorted by name, as of a `version`: a health read lists
    /// thousands of instances each second or two, and sorting their names was most of the cost
    /// of listing them.
    listing: Mutex<Listing<T>>,
}

/// A registry's instances, sorted by name, with the version they were listed at.
type Listing<T> = (u64, Arc<[(Arc<str>, Arc<T>)]>);

impl<T: Registered> fmt::Debug for Registry<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("names", &self.names())
            .finish()
    }
}

impl<T: Registered> Registry<T> {
    pub(crate) fn new() -> Self {
        Registry {
            instances: DashMap::new(),
            version: AtomicU64::new(1),
            listing: Mutex::new((0, Arc::from([]))),
        }
    }

    /// The instance named `name`, if registered.
    pub fn get(&self, name: &str) -> Option<Arc<T>> {
        self.instances
            .get(&*scope::key(name))
            .map(|entry| Arc::clone(entry.value()))
    }

    /// The instance named `name`, created from `config` if new (a monitor's config is its
    /// thresholds, with the default window; a timeout's is its deadline).
    pub fn get_or_create(
        &self,
        name: &str,
        config: impl Into<T::Config>,
    ) -> Result<Arc<T>, ConfigError> {
        self.get_or_try_insert_with(name, || T::create(name, config.into()))
    }

    /// Registers `instance` unless its name is taken; returns the registered instance either way.
    pub fn register(&self, instance: T) -> Arc<T> {
        let key: Arc<str> = scope::key(instance.name()).into();
        let mut inserted = false;
        let registered = Arc::clone(
            self.instances
                .entry(key)
                .or_insert_with(|| {
                    inserted = true;
                    Arc::new(instance)
                })
                .value(),
        );
        if inserted {
            self.changed();
        }
        registered
    }

    /// Marks the listing stale, after an insertion or removal is done.
    fn changed(&self) {
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Drops the kept listing, so that it holds no removed instance alive.
    fn forget_listing(&self) {
        *self.listing.lock().unwrap_or_else(PoisonError::into_inner) = (0, Arc::from([]));
    }

    /// Every instance with its key, sorted by name: the last listing if nothing was inserted or
    /// removed since, a new one otherwise.
    fn listing(&self) -> Arc<[(Arc<str>, Arc<T>)]> {
        // Read before listing: a change done after this is counted after it, so a listing that
        // misses the change is not kept past it.
        let version = self.version.load(Ordering::Acquire);
        let mut kept = self.listing.lock().unwrap_or_else(PoisonError::into_inner);
        if kept.0 != version {
            let mut listing: Vec<(Arc<str>, Arc<T>)> = self
                .instances
                .iter()
                .map(|entry| (Arc::clone(entry.key()), Arc::clone(entry.value())))
                .collect();
            // Names are unique within a scope: an unstable sort orders them the same, without
            // a buffer.
            listing.sort_unstable_by(|a, b| a.1.name().cmp(b.1.name()));
            *kept = (version, listing.into());
        }
        Arc::clone(&kept.1)
    }

    /// The instance named `name`, or the one `create` builds (only called if the name is free).
    pub fn get_or_try_insert_with(
        &self,
        name: &str,
        create: impl FnOnce() -> Result<T, ConfigError>,
    ) -> Result<Arc<T>, ConfigError> {
        if let Some(existing) = self.get(name) {
            return Ok(existing);
        }
        let instance = create()?;
        Ok(self.register(instance))
    }

    /// Removes the instance named `name` (call sites that already hold it keep using it).
    pub fn remove(&self, name: &str) -> Option<Arc<T>> {
        let removed = self
            .instances
            .remove(&*scope::key(name))
            .map(|(_, instance)| instance);
        if removed.is_some() {
            self.changed();
            self.forget_listing();
        }
        removed
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<Arc<str>> {
        // The listing is in name order already.
        self.listing()
            .iter()
            .filter_map(|(key, _)| match scope::name_here(key) {
                Some(name) if name.len() == key.len() => Some(Arc::clone(key)),
                Some(name) => Some(name.into()),
                None => None,
            })
            .collect()
    }

    /// Every instance, whatever test scope registered it (for the runtime's own watchers).
    pub(crate) fn every(&self) -> Vec<Arc<T>> {
        self.instances
            .iter()
            .map(|entry| Arc::clone(entry.value()))
            .collect()
    }

    /// Every instance, sorted by name.
    pub fn all(&self) -> Vec<Arc<T>> {
        self.listing()
            .iter()
            .filter(|(key, _)| scope::name_here(key).is_some())
            .map(|(_, instance)| Arc::clone(instance))
            .collect()
    }

    /// Number of registered instances.
    pub fn len(&self) -> usize {
        #[cfg(not(feature = "testing"))]
        return self.instances.len();
        #[cfg(feature = "testing")]
        self.instances
            .iter()
            .filter(|entry| scope::name_here(entry.key()).is_some())
            .count()
    }

    /// Whether nothing is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Keeps the instances whose registry key `keep` accepts (a test scope's end).
    #[cfg(feature = "testing")]
    pub(crate) fn retain_keys(&self, keep: &dyn Fn(&str) -> bool) {
        self.instances.retain(|key, _| keep(key));
        self.changed();
        self.forget_listing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limit::TimeoutPolicy;
    use std::time::Duration;

    fn names(registry: &Registry<TimeoutPolicy>) -> Vec<String> {
        registry
            .all()
            .iter()
            .map(|policy| policy.name().to_owned())
            .collect()
    }

    /// The kept listing follows every insertion and removal.
    #[test]
    fn listing_follows_changes() {
        let registry = Registry::<TimeoutPolicy>::new();
        assert!(names(&registry).is_empty());
        registry.get_or_create("b", Duration::from_secs(1)).unwrap();
        registry.get_or_create("a", Duration::from_secs(1)).unwrap();
        assert_eq!(names(&registry), ["a", "b"]);
        registry.get_or_create("a", Duration::from_secs(2)).unwrap();
        assert_eq!(names(&registry), ["a", "b"], "a taken name changes nothing");
        let removed = registry.remove("a").unwrap();
        assert_eq!(names(&registry), ["b"]);
        assert_eq!(Arc::strong_count(&removed), 1, "the kept listing let it go");
    }

    /// Listings taken while other threads register (more threads than cores, many rounds)
    /// never keep a listing that misses a registration once it is done.
    #[test]
    fn listing_never_misses_a_registration_raced_by_a_read() {
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
        for round in 0..100 {
            let registry = Registry::<TimeoutPolicy>::new();
            std::thread::scope(|scope| {
                for thread in 0..threads {
                    let registry = &registry;
                    scope.spawn(move || {
                        for index in 0..10 {
                            let name = format!("{thread:02}_{index}");
                            registry
                                .get_or_create(&name, Duration::from_secs(1))
                                .unwrap();
                            assert!(
                                registry.all().iter().any(|policy| policy.name() == name),
                                "round {round}: {name} missing right after registering"
                            );
                        }
                    });
                }
            });
            assert_eq!(registry.all().len(), threads * 10, "round {round}");
        }
    }
}
