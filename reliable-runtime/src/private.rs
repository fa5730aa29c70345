//! What the attribute macros' generated code calls. Not a public API: it changes without notice.
//!
//! An attribute expands to a `static` [`PolicyCell`] that builds the fn's [`Policy`] once
//! through the public builder, and one call on it; the rest here checks types at the user's
//! tokens (so errors point there) and adapts the fn's shapes (fallback arguments, borrowed
//! cache keys, any return type under `#[monitored]`).

pub use crate::cache::{AsRejected, LoadAlone};
use crate::cache::{ByClone, SharedError};
use crate::error::catch_callback;
pub use crate::error::Failure;
use crate::error::Rejected;
use crate::policy::settle_attempt;
use crate::policy::{
    Call, CallFuture, Deliver, ErrorHooks, Hooks, Policy, PolicyBuilder, WithFailure,
};
use crate::retry::RetryState;
use core::future::Future;
use core::ops::ControlFlow;
pub use core::option::Option::Some;
pub use core::time::Duration;
use std::marker::PhantomData;
use std::sync::OnceLock;

/// A call site's policy, built on its first call.
pub struct PolicyCell {
    cell: OnceLock<Policy>,
}

impl PolicyCell {
    /// An empty cell, for a `static`.
    #[allow(clippy::new_without_default)]
    pub const fn new() -> Self {
        PolicyCell {
            cell: OnceLock::new(),
        }
    }

    /// [`get_or_init`](Self::get_or_init) named after the fn whose body defines `marker` (the
    /// fn `__reliable_site`): its path, module and type included.
    #[inline]
    pub fn get_or_init_at<Marker>(
        &'static self,
        marker: Marker,
        build: impl FnOnce(&str) -> PolicyBuilder,
    ) -> &'static Policy {
        self.get_or_init(core::any::type_name_of_val(&marker), build)
    }

    /// The policy, built by `build` from the call site's name on the first call. A
    /// configuration the runtime refuses (a custom preset's invalid values) is logged, and
    /// the fn then runs without its layers: a caller is never panicked on.
    #[inline]
    pub fn get_or_init(
        &'static self,
        name: &'static str,
        build: impl FnOnce(&str) -> PolicyBuilder,
    ) -> &'static Policy {
        match self.cell.get() {
            Some(policy) => policy,
            None => self.init(name, build),
        }
    }

    #[cold]
    fn init(
        &'static self,
        name: &'static str,
        build: impl FnOnce(&str) -> PolicyBuilder,
    ) -> &'static Policy {
        self.cell.get_or_init(|| {
            let name = site_name(name);
            build(&name).build().unwrap_or_else(|error| {
                tracing::error!(policy = %name, %error, "invalid configuration; calls run without the reliability layers");
                Policy::passthrough(&name)
            })
        })
    }
}

/// A call site's policy name: the one written in an attribute, or, given the type name of a
/// marker fn `__reliable_site` defined in the function's body, the function's path.
fn site_name(name: &str) -> String {
    if name.ends_with("::__reliable_site") {
        function_path(name)
    } else {
        name.to_owned()
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

/// `#[cached]`'s hit path, before any future is built: the fresh value for `lookup`, if any.
/// `_owned_key` is never called: it names the type of the key the cache keeps, which is built
/// only on a miss.
#[inline(always)]
pub fn cache_hit<R, K, Q>(policy: &Policy, lookup: &Q, _owned_key: impl FnOnce() -> K) -> Option<R>
where
    R: CacheOutput,
    R::Value: CacheValue,
    K: CacheKey,
    Q: LookupKey<K> + ?Sized,
{
    policy.cache_hit::<R, K, Q>(lookup)
}

/// [`cache_hit`] for an owned key, built before the lookup.
#[inline(always)]
pub fn cache_hit_owned<R, K>(policy: &Policy, key: &K) -> Option<R>
where
    R: CacheOutput,
    R::Value: CacheValue,
    K: CacheKey,
{
    policy.cache_hit::<R, K, K>(key)
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

/// How `#[cached]` on a fn returning `$output` shares a failed load with the callers that
/// waited for it, `$otherwise` when its error cannot be cloned (see [`ShareProbe`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __reliable_share_failure {
    ($output:ty) => {
        $crate::__private::share_failure!($output, $crate::__private::LoadAlone)
    };
    ($output:ty, rejected) => {
        $crate::__private::share_failure!($output, $crate::__private::AsRejected)
    };
    ($output:ty, $otherwise:ty) => {{
        #[allow(unused_imports)]
        use $crate::__private::{ShareByClone as _, ShareOtherwise as _};
        (&$crate::__private::ShareProbe::<$output, $otherwise>::NEW).__reliable_share()
    }};
}
pub use __reliable_share_failure as share_failure;

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
        assert_eq!(site_name("app::fetch::__reliable_site"), "app::fetch");
        assert_eq!(site_name("binance_api"), "binance_api");
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

/// Pins a `retry_if` predicate to the fn's error type, so a predicate of the wrong type is an
/// error at the predicate's path.
#[inline(always)]
pub fn retry_predicate<R: BreakerOutput>(
    predicate: fn(&R::Error) -> bool,
) -> fn(&R::Error) -> bool {
    predicate
}

/// Pins a `retry_after` hint to the fn's error type.
#[inline(always)]
pub fn retry_hint<R: BreakerOutput>(
    hint: fn(&R::Error) -> Option<std::time::Duration>,
) -> fn(&R::Error) -> Option<std::time::Duration> {
    hint
}

/// Pins an `on_retry` callback to the fn's error type.
#[inline(always)]
pub fn retry_callback<R: BreakerOutput>(
    callback: fn(u32, std::time::Duration, &Failure<R::Error>),
) -> fn(u32, std::time::Duration, &Failure<R::Error>) {
    callback
}

/// Compile-time check that a fn with a fallback returns a `Result`, spanned at its return type.
#[inline(always)]
pub const fn assert_result<R: BreakerOutput>() {}

/// The output of a call that succeeded, or its failure for the fallback.
#[inline]
pub fn split_outcome<R: BreakerOutput>(
    outcome: Result<R::Ok, Failure<R::Error>>,
) -> Result<R, Failure<R::Error>> {
    outcome.map(|value| R::from_result(Ok(value)))
}

/// The fn's output from a fallback's outcome.
#[inline]
pub fn answered<R: BreakerOutput>(
    outcome: Result<R::Ok, Failure<R::Error>>,
    into_error: fn(Failure<R::Error>) -> R::Error,
) -> R {
    R::from_result(outcome.map_err(into_error))
}

/// The error a caller gets for a failure: its own, or a rejection converted into it.
pub fn into_error<E: HoldsRejected>(failure: Failure<E>) -> E {
    match failure {
        Failure::Inner(error) => error,
        Failure::Rejected(rejected) => E::from_rejected(rejected),
    }
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

/// Builds a fallback's future, catching a panic while it is built.
#[inline]
pub fn start_fallback<Fut>(build: impl FnOnce() -> Fut) -> Option<CatchUnwind<Fut>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
        .ok()
        .map(|future| CatchUnwind { future })
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

/// The callbacks written on an attribute (`failure_if`, `retry_if`, ...), typed by the fn's
/// error type, which need not be `'static`.
pub struct FnHooks<E> {
    /// `failure_if`.
    pub failure_if: Option<fn(&E) -> bool>,
    /// `retry_if`.
    pub retry_if: Option<fn(&E) -> bool>,
    /// `retry_after`.
    pub retry_after: Option<fn(&E) -> Option<std::time::Duration>>,
    /// `on_retry`.
    pub on_retry: Option<fn(u32, std::time::Duration, &Failure<E>)>,
}

impl<E> FnHooks<E> {
    /// No callback.
    pub const NONE: FnHooks<E> = FnHooks {
        failure_if: None,
        retry_if: None,
        retry_after: None,
        on_retry: None,
    };
}

impl<E> Hooks<E> for FnHooks<E> {
    #[inline(always)]
    fn is_failure(&self, _: &ErrorHooks, error: &E) -> bool {
        match self.failure_if {
            None => true,
            Some(predicate) => catch_callback("failure_if", true, || predicate(error)),
        }
    }

    fn retry_if(&self, _: &ErrorHooks, error: &E) -> bool {
        self.retry_if.is_none_or(|predicate| predicate(error))
    }

    fn retry_after(&self, _: &ErrorHooks, error: &E) -> Option<std::time::Duration> {
        self.retry_after.and_then(|hint| hint(error))
    }

    fn on_retry(
        &self,
        _: &ErrorHooks,
        attempt: u32,
        delay: std::time::Duration,
        cause: &Failure<E>,
    ) {
        if let Some(callback) = self.on_retry {
            callback(attempt, delay, cause);
        }
    }
}

/// No callback written: every error fails and is retried (a zero-sized [`FnHooks`]).
#[derive(Clone, Copy)]
pub struct NoHooks;

impl<E> Hooks<E> for NoHooks {
    #[inline(always)]
    fn is_failure(&self, _: &ErrorHooks, _: &E) -> bool {
        true
    }

    fn retry_if(&self, _: &ErrorHooks, _: &E) -> bool {
        true
    }

    fn retry_after(&self, _: &ErrorHooks, _: &E) -> Option<std::time::Duration> {
        None
    }

    fn on_retry(&self, _: &ErrorHooks, _: u32, _: std::time::Duration, _: &Failure<E>) {}
}

/// [`Deliver`] the fn's own output `R`, a refusal through [`HoldsRejected`] (whose message
/// says what to add when the error type cannot hold one).
pub struct Holds<R>(PhantomData<fn() -> R>);

impl<R> Deliver<R::Ok, R::Error> for Holds<R>
where
    R: BreakerOutput,
    R::Error: HoldsRejected,
{
    type Output = R;

    #[inline(always)]
    fn deliver(outcome: Result<R::Ok, Failure<R::Error>>) -> R {
        R::from_result(outcome.map_err(into_error))
    }
}

/// One attempt through the fn's policy, the refusal or error as the fn's own error. The
/// body's output must be a `Result` (or an alias of one): when it is not, that is one error
/// at the return type, rather than a cascade of mismatched types.
#[inline]
pub fn call_once<'a, R, Fut>(
    policy: &'a Policy,
    hooks: impl Hooks<R::Error> + 'a,
    call: impl FnOnce() -> Fut + 'a,
) -> impl Future<Output = R> + 'a
where
    Fut: Future<Output = R> + 'a,
    R: BreakerOutput + 'a,
    R::Error: HoldsRejected,
{
    Call::<_, Holds<R>, _>::once(policy.layers(), move || result_of(call()), hooks)
}

/// One attempt through the fn's policy, the outcome as a [`Failure`] (for retries and
/// fallbacks).
#[inline]
pub fn try_once<'a, R, Fut>(
    policy: &'a Policy,
    hooks: impl Hooks<R::Error> + 'a,
    call: impl FnOnce() -> Fut + 'a,
) -> impl Future<Output = Result<R::Ok, Failure<R::Error>>> + 'a
where
    Fut: Future<Output = R> + 'a,
    R: BreakerOutput + 'a,
{
    Call::<_, WithFailure, _>::once(policy.layers(), move || result_of(call()), hooks)
}

/// Every attempt through the fn's policy, retried as it says (the body borrows the arguments
/// afresh for each attempt); the refusal or error as the fn's own error.
#[inline]
pub fn call<'a, R, Fut>(
    policy: &'a Policy,
    hooks: impl Hooks<R::Error> + 'a,
    mut call: impl FnMut() -> Fut + 'a,
) -> impl Future<Output = R> + 'a
where
    Fut: Future<Output = R> + 'a,
    R: BreakerOutput + 'a,
    R::Error: HoldsRejected,
{
    CallFuture::<_, _, Holds<R>, _>::new(policy.layers(), move || result_of(call()), true, hooks)
}

/// [`call`], the outcome as a [`Failure`] (for a fallback).
#[inline]
pub fn try_call<'a, R, Fut>(
    policy: &'a Policy,
    hooks: impl Hooks<R::Error> + 'a,
    mut call: impl FnMut() -> Fut + 'a,
) -> impl Future<Output = Result<R::Ok, Failure<R::Error>>> + 'a
where
    Fut: Future<Output = R> + 'a,
    R: BreakerOutput + 'a,
{
    CallFuture::<_, _, WithFailure, _>::new(policy.layers(), move || result_of(call()), true, hooks)
}

/// [`call_once`] for a blocking fn.
#[inline]
pub fn call_once_blocking<R>(
    policy: &Policy,
    hooks: impl Hooks<R::Error>,
    call: impl FnOnce() -> R,
) -> Result<R::Ok, R::Error>
where
    R: BreakerOutput,
    R::Error: HoldsRejected,
{
    policy
        .attempt_blocking(&hooks, || call().into_result())
        .map_err(into_error)
}

/// [`try_once`] for a blocking fn.
#[inline]
pub fn try_once_blocking<R: BreakerOutput>(
    policy: &Policy,
    hooks: impl Hooks<R::Error>,
    call: impl FnOnce() -> R,
) -> Result<R::Ok, Failure<R::Error>> {
    policy.attempt_blocking(&hooks, || call().into_result())
}

/// [`call`] for a blocking fn (retries sleep the thread).
#[inline]
pub fn call_blocking<R>(
    policy: &Policy,
    hooks: impl Hooks<R::Error>,
    call: impl FnMut() -> R,
) -> Result<R::Ok, R::Error>
where
    R: BreakerOutput,
    R::Error: HoldsRejected,
{
    try_call_blocking(policy, hooks, call).map_err(into_error)
}

/// [`try_call`] for a blocking fn.
pub fn try_call_blocking<R: BreakerOutput>(
    policy: &Policy,
    hooks: impl Hooks<R::Error>,
    mut call: impl FnMut() -> R,
) -> Result<R::Ok, Failure<R::Error>> {
    let mut progress = retries(policy);
    loop {
        let outcome = policy.attempt_blocking(&hooks, || call().into_result());
        match settle(policy, &hooks, outcome, &mut progress) {
            ControlFlow::Break(outcome) => return outcome,
            ControlFlow::Continue(delay) => std::thread::sleep(delay),
        }
    }
}

/// A call's retry progress, counted by the policy's retry budget (`None` without retries).
#[inline]
pub fn retries(policy: &Policy) -> Option<RetryState<'_>> {
    policy.retry().map(|retry| retry.start())
}

/// After an attempt: `Break(outcome)` to give it back, `Continue(delay)` to retry.
#[inline]
pub fn settle<T, E>(
    policy: &Policy,
    hooks: impl Hooks<E>,
    outcome: Result<T, Failure<E>>,
    progress: &mut Option<RetryState<'_>>,
) -> ControlFlow<Result<T, Failure<E>>, std::time::Duration> {
    match (outcome, progress.as_mut()) {
        (Ok(value), _) => ControlFlow::Break(Ok(value)),
        (outcome, None) => ControlFlow::Break(outcome),
        (outcome, Some(progress)) => settle_attempt(policy.layers(), &hooks, outcome, progress),
    }
}

/// The fn's body as an `async` block whose output is the declared return type `R`, so `?`
/// and `return` in it convert into `R`.
#[inline(always)]
pub fn body<R, F: Future<Output = R>>(body: F) -> F {
    body
}

/// The fn's output from its pipeline's result, typed by the fn's return type `R` (so a return
/// type that is not a `Result` is one error, at it).
#[inline(always)]
pub fn output<R: BreakerOutput>(result: Result<R::Ok, R::Error>) -> R {
    R::from_result(result)
}

/// The fallback's answer (the fn's return type `R`) for a failed call; see
/// [`Policy::fall_back`].
#[inline]
pub async fn fall_back<R, Answer>(
    policy: &Policy,
    failure: Failure<R::Error>,
    fallback: impl FnOnce(&Failure<R::Error>) -> Answer,
) -> Result<R::Ok, Failure<R::Error>>
where
    R: BreakerOutput,
    Answer: Future<Output = R>,
{
    policy
        .fall_back(failure, |cause| result_of(fallback(cause)))
        .await
}

/// [`fall_back`] for a blocking fn.
#[inline]
pub fn fall_back_blocking<R: BreakerOutput>(
    policy: &Policy,
    failure: Failure<R::Error>,
    fallback: impl FnOnce(&Failure<R::Error>) -> R,
) -> Result<R::Ok, Failure<R::Error>> {
    policy.fall_back_blocking(failure, |cause| fallback(cause).into_result())
}

/// The fn's result from a retried outcome.
#[inline]
pub fn deliver<T, E: HoldsRejected>(outcome: Result<T, Failure<E>>) -> Result<T, E> {
    outcome.map_err(into_error)
}

/// Waits before a retry (tokio's clock, so paused time drives it).
pub async fn sleep(delay: std::time::Duration) {
    tokio::time::sleep(delay).await;
}

pin_project_lite::pin_project! {
    /// The fn's body with its output as a `Result`.
    pub struct ResultOf<F> {
        #[pin]
        body: F,
    }
}

/// The fn's body, whose output must be a `Result` (or an alias of one).
#[inline(always)]
fn result_of<F>(body: F) -> ResultOf<F>
where
    F: Future,
    F::Output: BreakerOutput,
{
    ResultOf { body }
}

impl<F> Future for ResultOf<F>
where
    F: Future,
    F::Output: BreakerOutput,
{
    type Output = Result<<F::Output as BreakerOutput>::Ok, <F::Output as BreakerOutput>::Error>;

    #[inline(always)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.project().body.poll(cx).map(BreakerOutput::into_result)
    }
}
