//! The traits the helpers' bounds name. Their messages (`#[diagnostic::on_unimplemented]`)
//! are what a user reads when a type does not fit, so they speak of the attributes.

use crate::error::{Failure, Rejected};
use crate::policy::Deliver;
use core::future::Future;

/// What `#[cached]` needs of a return type: a `Result` (caches `Ok`) or an `Option` (caches `Some`).
#[diagnostic::on_unimplemented(
    message = "`#[cached]` caches the `Ok` value of a `Result` or the `Some` value of an `Option`; `{Self}` is neither",
    label = "return a `Result<T, E>` or an `Option<T>`"
)]
#[cfg(feature = "cache")]
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

#[cfg(feature = "cache")]
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

#[cfg(feature = "cache")]
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
#[cfg(feature = "cache")]
pub trait CacheValue: Clone + Send + Sync + 'static {}

#[cfg(feature = "cache")]
impl<T: Clone + Send + Sync + 'static> CacheValue for T {}

/// What `#[cached]` needs of a key.
#[diagnostic::on_unimplemented(
    message = "a cache key must be `Hash + Eq + Clone + Send + Sync + 'static`; `{Self}` is not",
    label = "this key",
    note = "key on the arguments themselves (`key = symbol`, `key = (symbol, depth)`: looked up borrowed, owned on a miss), or build an owned key (`key = format!(..)`, `key = symbol.to_uppercase()`)"
)]
#[cfg(feature = "cache")]
pub trait CacheKey: std::hash::Hash + Eq + Clone + Send + Sync + 'static {}

// Reported as the key not being a `CacheKey` (one error, the message above), not as each of
// the traits it lacks (an `f64` lacks `Hash` and `Eq`: two errors per use).
#[cfg(feature = "cache")]
#[diagnostic::do_not_recommend]
impl<T: std::hash::Hash + Eq + Clone + Send + Sync + 'static> CacheKey for T {}

/// What a key of arguments is looked up with: its borrowed form, which hashes and compares like
/// the owned key `K`.
#[diagnostic::on_unimplemented(
    message = "a cache key must be `Hash + Eq + Clone + Send + Sync + 'static`; `{Self}` is not",
    label = "this key",
    note = "key on the arguments themselves (`key = symbol`, `key = (symbol, depth)`: looked up borrowed, owned on a miss), or build an owned key (`key = format!(..)`, `key = symbol.to_uppercase()`)"
)]
#[cfg(feature = "cache")]
pub trait LookupKey<K>: scc::Equivalent<K> + std::hash::Hash {}

#[cfg(feature = "cache")]
#[diagnostic::do_not_recommend]
impl<K: CacheKey, Q: scc::Equivalent<K> + std::hash::Hash + ?Sized> LookupKey<K> for Q {}

/// What `#[circuit_breaker]`, `#[with_backoff]` and `#[timeout]` need of a return type: a
/// `Result<T, E>` (or an alias of one).
#[diagnostic::on_unimplemented(
    message = "this reliability attribute needs the function to return `Result<T, E>`, not `{Self}`",
    label = "this must be a `Result<T, E>`",
    note = "breakers, retries and timeouts answer with an `Err` when the call is refused, retried out or too slow; only `#[monitored]` works on any return type"
)]
pub trait ReturnsResult: Sized {
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

impl<T, E> ReturnsResult for Result<T, E> {
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

/// [`Deliver`] through a function the expansion names (`Run::delivered`): the function's
/// bounds are checked where it is named, once, rather than by every helper and future
/// generic over the fn's return type.
pub(super) struct DeliverWith<F>(pub(super) F);

impl<T, E, O, F> Deliver<T, E> for DeliverWith<F>
where
    F: Fn(Result<T, Failure<E>>) -> O,
{
    type Output = O;

    #[inline(always)]
    fn deliver(&self, outcome: Result<T, Failure<E>>) -> O {
        (self.0)(outcome)
    }
}

/// The error a caller gets for a failure: its own, or a rejection converted into it.
pub(super) fn into_error<E: HoldsRejected>(failure: Failure<E>) -> E {
    match failure {
        Failure::Inner(error) => error,
        Failure::Rejected(rejected) => E::from_rejected(rejected),
    }
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
pub(super) fn result_of<F>(body: F) -> ResultOf<F>
where
    F: Future,
    F::Output: ReturnsResult,
{
    ResultOf { body }
}

impl<F> Future for ResultOf<F>
where
    F: Future,
    F::Output: ReturnsResult,
{
    type Output = Result<<F::Output as ReturnsResult>::Ok, <F::Output as ReturnsResult>::Error>;

    #[inline(always)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        self.project().body.poll(cx).map(ReturnsResult::into_result)
    }
}
