//! [`Cached`]: `#[cached]`'s hit path and the checks of its key and return type.

use super::bounds::{CacheKey, CacheOutput, CacheValue, LookupKey};
use crate::cache::ShareFailure;
use crate::cache::{AsRejected, LoadAlone};
use crate::policy::Policy;
use core::future::Future;
use core::marker::PhantomData;

/// `#[cached]`'s helpers.
pub struct Cached;

/// A miss's owned key: see [`Cached::owned_key`].
pub struct OwnedKey<K>(K);

impl<K> OwnedKey<K> {
    /// The key, for a blocking fn's miss.
    #[inline(always)]
    pub fn into_inner(self) -> K {
        self.0
    }
}

/// The type of a cache key, as a value: see [`Cached::key_type`].
pub struct KeyType<K>(PhantomData<fn() -> K>);

impl Cached {
    /// Compile-time check of the return type, spanned at it.
    #[inline(always)]
    pub const fn output<R>()
    where
        R: CacheOutput,
        R::Value: CacheValue,
    {
    }

    /// Compile-time check of a key, spanned at the user's key expression.
    #[inline(always)]
    pub fn key<K: CacheKey>(_key: &K) {}

    /// The hit path, before any future is built: the fresh value for `lookup`, if any.
    /// `_owned_key` names the type of the key the cache keeps, which is built only on a miss.
    #[inline(always)]
    pub fn hit<R, K, Q>(policy: &Policy, lookup: &Q, _owned_key: KeyType<K>) -> Option<R>
    where
        R: CacheOutput,
        R::Value: CacheValue,
        K: CacheKey,
        Q: LookupKey<K> + ?Sized,
    {
        policy.cache_hit::<R, K, Q>(lookup)
    }

    /// The type of the key `owned_key` would build (it is never called), as an argument of
    /// [`hit`](Self::hit): rustc reports an unmet bound on `K` at the argument whose type
    /// names it, which is the user's key.
    #[inline(always)]
    pub fn key_type<K>(_owned_key: impl FnOnce() -> K) -> KeyType<K> {
        KeyType(PhantomData)
    }

    /// The miss path ([`Policy::load_cached`]): `load`'s outcome, as `deliver` makes it the
    /// fn's output.
    #[inline(always)]
    pub fn load<'a, R, K, F, Deliver, Share>(
        policy: &'a Policy,
        key: OwnedKey<K>,
        load: F,
        deliver: Deliver,
        share: Share,
    ) -> impl Future<Output = R> + 'a
    where
        R: CacheOutput + 'a,
        R::Value: CacheValue,
        K: CacheKey,
        F: Future + 'a,
        Deliver: FnOnce(F::Output) -> R + 'a,
        Share: ShareFailure<R::Miss>,
    {
        policy.load_cached(key.0, async move { deliver(load.await) }, share)
    }

    /// The key of a miss, wrapped so that its type is named by [`load`](Self::load)'s
    /// argument, where rustc reports a key that cannot be one (the user's key).
    #[inline(always)]
    pub fn owned_key<K: 'static>(key: K) -> OwnedKey<K> {
        OwnedKey(key)
    }

    /// [`hit`](Self::hit) for an owned key, built before the lookup.
    #[inline(always)]
    pub fn hit_owned<R, K>(policy: &Policy, key: &K) -> Option<R>
    where
        R: CacheOutput,
        R::Value: CacheValue,
        K: CacheKey,
    {
        policy.cache_hit::<R, K, K>(key)
    }

    /// A key of the fn's arguments, borrowed (a tuple of references).
    #[inline(always)]
    pub fn borrowed<T>(parts: T) -> BorrowedKey<T> {
        BorrowedKey(parts)
    }

    /// For a return type that cannot be named: each caller that waited for a failed load
    /// loads on its own.
    #[inline(always)]
    pub fn load_alone() -> LoadAlone {
        LoadAlone
    }

    /// For a return type that cannot be named, whose error holds a `Rejected`: the callers
    /// that waited for a failed load get `Rejected::LoadFailed`.
    #[inline(always)]
    pub fn as_rejected() -> AsRejected {
        AsRejected
    }
}

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
}
