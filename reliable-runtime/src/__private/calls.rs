//! One call of an `async fn` through its policy: [`Returns::call`] and its forms.

use super::bounds::{result_of, DeliverWith, Holds, HoldsRejected, ReturnsResult};
use super::Run;
use crate::error::Failure;
use crate::policy::{Call, CallFuture, Hooks, Policy, WithFailure};
use core::future::Future;

impl Run {
    /// One attempt through the fn's policy, the refusal or error as the fn's own error. The
    /// body's output must be a `Result` (or an alias of one): when it is not, that is one
    /// error at the return type, rather than a cascade of mismatched types.
    #[inline]
    pub fn call_once<'a, R, Fut>(
        policy: &'a Policy,
        hooks: impl Hooks<R::Error> + 'a,
        call: impl FnOnce() -> Fut + 'a,
    ) -> impl Future<Output = R> + 'a
    where
        Fut: Future<Output = R> + 'a,
        R: ReturnsResult + 'a,
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
        R: ReturnsResult + 'a,
    {
        Call::<_, WithFailure, _>::once(policy.layers(), move || result_of(call()), hooks)
    }

    /// Every attempt through the fn's policy, retried as it says (the body borrows the
    /// arguments afresh for each attempt); the refusal or error as the fn's own error.
    #[inline]
    pub fn call<'a, R, Fut>(
        policy: &'a Policy,
        hooks: impl Hooks<R::Error> + 'a,
        mut call: impl FnMut() -> Fut + 'a,
    ) -> impl Future<Output = R> + 'a
    where
        Fut: Future<Output = R> + 'a,
        R: ReturnsResult + 'a,
        R::Error: HoldsRejected,
    {
        CallFuture::<_, _, Holds<R>, _>::new(
            policy.layers(),
            move || result_of(call()),
            true,
            hooks,
        )
    }

    /// [`call`](Self::call), the outcome as a [`Failure`] (for a fallback).
    #[inline]
    pub fn try_call<'a, R, Fut>(
        policy: &'a Policy,
        hooks: impl Hooks<R::Error> + 'a,
        mut call: impl FnMut() -> Fut + 'a,
    ) -> impl Future<Output = Result<R::Ok, Failure<R::Error>>> + 'a
    where
        Fut: Future<Output = R> + 'a,
        R: ReturnsResult + 'a,
    {
        CallFuture::<_, _, WithFailure, _>::new(
            policy.layers(),
            move || result_of(call()),
            true,
            hooks,
        )
    }

    /// [`try_once`](Self::try_once), the outcome made the fn's output by `deliver`
    /// (`Run::delivered`, named by the expansion) where it is made.
    #[inline]
    pub fn try_once_delivered<'a, R, Fut, Output>(
        policy: &'a Policy,
        hooks: impl Hooks<R::Error> + 'a,
        call: impl FnOnce() -> Fut + 'a,
        deliver: impl Fn(Result<R::Ok, Failure<R::Error>>) -> Output + 'a,
    ) -> impl Future<Output = Output> + 'a
    where
        Fut: Future<Output = R> + 'a,
        R: ReturnsResult + 'a,
    {
        Call::once_delivering(
            policy.layers(),
            move || result_of(call()),
            hooks,
            DeliverWith(deliver),
        )
    }

    /// [`try_call`](Self::try_call), the outcome made the fn's output by `deliver`.
    #[inline]
    pub fn try_call_delivered<'a, R, Fut, Output>(
        policy: &'a Policy,
        hooks: impl Hooks<R::Error> + 'a,
        mut call: impl FnMut() -> Fut + 'a,
        deliver: impl Fn(Result<R::Ok, Failure<R::Error>>) -> Output + 'a,
    ) -> impl Future<Output = Output> + 'a
    where
        Fut: Future<Output = R> + 'a,
        R: ReturnsResult + 'a,
    {
        CallFuture::delivering(
            policy.layers(),
            move || result_of(call()),
            true,
            hooks,
            DeliverWith(deliver),
        )
    }
}
