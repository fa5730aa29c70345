//! How `#[cached]` hands a miss's key to the cache: autoref specialization on the key's type,
//! so that a key that cannot be one is reported once (by the lookup, at the user's key), not
//! again by every later use of it.

use crate::__private::bounds::CacheKey;
use crate::__private::cached::OwnedKey;
use std::cell::Cell;

/// `$owned` (an `OwnedKey`, made at the user's key, where a borrowed key's lifetime is
/// reported) as the cache's key when its type is a `CacheKey`, else [`Unfit`]'s: see
/// [`OwnedKeyProbe`]. Named short: the expansion a reader sees keeps the key on one line.
#[doc(hidden)]
#[macro_export]
macro_rules! __reliable_owned_miss_key {
    ($owned:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::probe::{FitOwnedKey as _, UnfitOwnedKey as _};
        (&$crate::__private::probe::OwnedKeyProbe::new($owned)).__reliable_owned_key()
    }};
}
pub use crate::__reliable_owned_miss_key as key;

/// Picks what a miss hands the cache, by autoref specialization on the key's type `K`:
/// `(&OwnedKeyProbe::new(key)).__reliable_owned_key()` is the key itself when `K` is a
/// `CacheKey` ([`FitOwnedKey`]), and [`Unfit`] otherwise ([`UnfitOwnedKey`]).
///
/// Only a program that does not compile ever picks [`Unfit`]: every key is also checked by a
/// bound at the user's key (the lookup, or `Cached::key`), which reports it. The stand-in
/// keeps the cache's own bounds met, so that one error is all the user reads.
pub struct OwnedKeyProbe<K>(Cell<Option<OwnedKey<K>>>);

impl<K> OwnedKeyProbe<K> {
    /// The probe, holding the key until it is taken.
    #[inline(always)]
    pub fn new(key: OwnedKey<K>) -> Self {
        OwnedKeyProbe(Cell::new(Some(key)))
    }
}

/// The preferred case of [`OwnedKeyProbe`]: the key itself.
pub trait FitOwnedKey<K> {
    /// The key.
    fn __reliable_owned_key(&self) -> OwnedKey<K>;
}

impl<K: CacheKey> FitOwnedKey<K> for OwnedKeyProbe<K> {
    #[inline(always)]
    fn __reliable_owned_key(&self) -> OwnedKey<K> {
        match self.0.take() {
            Some(key) => key,
            None => unreachable!("a key probe is read once"),
        }
    }
}

/// The fallback of [`OwnedKeyProbe`]: the stand-in.
pub trait UnfitOwnedKey {
    /// [`Unfit`], owned.
    fn __reliable_owned_key(&self) -> OwnedKey<Unfit>;
}

impl<K> UnfitOwnedKey for &OwnedKeyProbe<K> {
    #[inline(always)]
    fn __reliable_owned_key(&self) -> OwnedKey<Unfit> {
        crate::__private::Cached::owned_key(Unfit)
    }
}

/// A key that meets the cache's bounds, standing in for one that does not, in a program
/// that does not compile (see [`OwnedKeyProbe`]).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Unfit;
