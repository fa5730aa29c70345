//! [`Registry`]: instances by name, one per name, shared by every call site that names it.
//! The registries of each kind are listed in [`crate::registry`].

use crate::common::scope;
use crate::error::ConfigError;
use dashmap::DashMap;
use std::fmt;
use std::sync::Arc;

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
}

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
    pub fn get_or_create(&self, name: &str, config: T::Config) -> Result<Arc<T>, ConfigError> {
        self.get_or_try_insert_with(name, || T::create(name, config))
    }

    /// Registers `instance` unless its name is taken; returns the registered instance either way.
    pub fn register(&self, instance: T) -> Arc<T> {
        let key: Arc<str> = scope::key(instance.name()).into();
        Arc::clone(
            self.instances
                .entry(key)
                .or_insert_with(|| Arc::new(instance))
                .value(),
        )
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
        self.instances
            .remove(&*scope::key(name))
            .map(|(_, instance)| instance)
    }

    /// Every registered name, sorted.
    pub fn names(&self) -> Vec<Arc<str>> {
        let mut names: Vec<Arc<str>> = self
            .instances
            .iter()
            .filter_map(|entry| match scope::name_here(entry.key()) {
                Some(name) if name.len() == entry.key().len() => Some(Arc::clone(entry.key())),
                Some(name) => Some(name.into()),
                None => None,
            })
            .collect();
        names.sort();
        names
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
        let mut all: Vec<Arc<T>> = self
            .instances
            .iter()
            .filter(|entry| scope::name_here(entry.key()).is_some())
            .map(|entry| Arc::clone(entry.value()))
            .collect();
        all.sort_by(|a, b| a.name().cmp(b.name()));
        all
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
    }
}
