//! One call of an `async fn` through its policy: [`Run::try_once`] and its forms.

use super::bounds::{result_of, DeliverWith, ReturnsResult};
use super::Run;
use crate::error::Failure;
#[cfg(feature = "retry")]
use crate::policy::CallFuture;
use crate::policy::{Call, Hooks, Policy};
use core::future::Future;

impl Run {
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
        Self::try_once_delivered(policy, hooks, call, core::convert::identity)
    }

    #[cfg(feature = "retry")]
    /// Every attempt through the fn's policy, retried as it says (the body borrows the
    /// arguments afresh for each attempt), the outcome as a [`Failure`].
    #[inline]
    pub fn try_call<'a, R, Fut>(
        policy: &'a Policy,
        hooks: impl Hooks<R::Error> + 'a,
        call: impl FnMut() -> Fut + 'a,
    ) -> impl Future<Output = Result<R::Ok, Failure<R::Error>>> + 'a
    where
        Fut: Future<Output = R> + 'a,
        R: ReturnsResult + 'a,
    {
        Self::try_call_delivered(policy, hooks, call, core::convert::identity)
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

    #[cfg(feature = "retry")]
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
