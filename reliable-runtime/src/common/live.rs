//! [`Live`]: a configuration an instance reads without a lock and that can be replaced while it
//! runs (`reconfigure` on breakers, monitors and retry policies).

use crate::error::ConfigError;
use arc_swap::{ArcSwap, Guard};
use serde::Serialize;
use std::sync::{Arc, Mutex, PoisonError};

/// A swappable configuration: reads take no lock; changes go one at a time, each from the one
/// before, and each is published (`Event::Reconfigured`).
pub(crate) struct Live<T> {
    current: ArcSwap<T>,
    changing: Mutex<()>,
}

impl<T: Clone + Serialize> Live<T> {
    pub(crate) fn new(config: T) -> Self {
        Live {
            current: ArcSwap::from_pointee(config),
            changing: Mutex::new(()),
        }
    }

    /// The configuration now, for one decision.
    #[inline]
    pub(crate) fn load(&self) -> Guard<Arc<T>> {
        self.current.load()
    }

    /// The configuration now, to keep.
    pub(crate) fn load_full(&self) -> Arc<T> {
        self.current.load_full()
    }

    /// Whether [`change`](Self::change) would accept `change` now, changing nothing (a file
    /// checks every entry before it changes any).
    pub(crate) fn check(
        &self,
        change: impl FnOnce(T) -> T,
        check: impl FnOnce(&T, &mut T) -> Result<(), ConfigError>,
    ) -> Result<(), ConfigError> {
        let current = self.current.load_full();
        let mut next = change((*current).clone());
        check(&current, &mut next)
    }

    /// Replaces the configuration with `change` of it, once `check` (given the current one and
    /// the new one, which it may complete, e.g. with the instance's clock) accepts it; an `Err`
    /// changes nothing. Publishes the change as layer `layer` named `name`.
    pub(crate) fn change(
        &self,
        (layer, name): (&'static str, &'static str),
        change: impl FnOnce(T) -> T,
        check: impl FnOnce(&T, &mut T) -> Result<(), ConfigError>,
    ) -> Result<Arc<T>, ConfigError> {
        let _one = self.changing.lock().unwrap_or_else(PoisonError::into_inner);
        let current = self.current.load_full();
        let mut next = change((*current).clone());
        check(&current, &mut next)?;
        let next = Arc::new(next);
        self.current.store(Arc::clone(&next));
        crate::event::publish_reconfigured(layer, name, &*current, &*next);
        Ok(next)
    }
}
