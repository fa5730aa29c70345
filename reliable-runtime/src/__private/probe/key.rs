//! How `#[cached]` hands a miss's key to the cache: autoref specialization on the key's type,
//! so that a key that cannot be one is reported once (by the lookup, at the user's key), not
//! again by every later use of it.

use crate::__private::bounds::CacheKey;
use crate::__private::cached::OwnedKey;
use std::cell::Cell;

/// `$key` as the cache's key when its type is a `CacheKey`, else [`UnfitKey`]'s stand-in.
#[doc(hidden)]
#[macro_export]
macro_rules! __reliable_miss_key {
    ($key:expr) => {{
        #[allow(unused_imports)]
        use $crate::__private::probe::{FitKey as _, UnfitKey as _};
        (&$crate::__private::probe::KeyProbe::new($key)).__reliable_key()
    }};
}
pub use crate::__reliable_miss_key as miss_key;

/// Picks what a miss hands the cache, by autoref specialization on the key's type `K`:
/// `(&KeyProbe::new(key)).__reliable_key()` is the key itself when `K` is a `CacheKey`
/// ([`FitKey`]), and [`Unfit`] otherwise ([`UnfitKey`]).
///
/// Only a program that does not compile ever picks [`Unfit`]: every key is also checked by a
/// bound at the user's key (the lookup, or `Cached::key`), which reports it. The stand-in
/// keeps the cache's own bounds met, so that one error is all the user reads.
pub struct KeyProbe<K>(Cell<Option<K>>);

impl<K> KeyProbe<K> {
    /// The probe, holding the key until it is taken.
    #[inline(always)]
    pub fn new(key: K) -> Self {
        KeyProbe(Cell::new(Some(key)))
    }
}

/// The preferred case of [`KeyProbe`]: the key itself.
pub trait FitKey<K> {
    /// The key.
    fn __reliable_key(&self) -> K;
}

impl<K: CacheKey> FitKey<K> for KeyProbe<K> {
    #[inline(always)]
    fn __reliable_key(&self) -> K {
        match self.0.take() {
            Some(key) => key,
            // Each probe is made for one call of this method.
            None => unreachable!("a key probe is read once"),
        }
    }
}

/// The fallback of [`KeyProbe`], for a key that is not a `CacheKey`: the stand-in.
pub trait UnfitKey {
    /// [`Unfit`].
    fn __reliable_key(&self) -> Unfit;
}

impl<K> UnfitKey for &KeyProbe<K> {
    #[inline(always)]
    fn __reliable_key(&self) -> Unfit {
        Unfit
    }
}

/// A key that meets the cache's bounds, standing in for one that does not, in a program
/// that does not compile (see [`KeyProbe`]).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub struct Unfit;

/// [`miss_key!`] for an async fn's miss, whose key is already an `OwnedKey` (made at the
/// user's key, where a borrowed key's lifetime is reported). Named short: the expansion a
/// reader sees keeps the key on one line.
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

/// [`KeyProbe`] for an `OwnedKey`.
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
