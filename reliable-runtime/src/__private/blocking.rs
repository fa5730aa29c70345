//! One call of a blocking fn through its policy: [`Run::try_once_blocking`] and its forms.

use super::bounds::ReturnsResult;
#[cfg(feature = "retry")]
use super::Retries;
use super::Run;
use crate::error::Failure;
use crate::policy::{Hooks, Policy};
#[cfg(feature = "retry")]
use core::ops::ControlFlow;

impl Run {
    /// [`try_once`](Self::try_once) for a blocking fn.
    #[inline]
    pub fn try_once_blocking<R>(
        policy: &Policy,
        hooks: impl Hooks<R::Error>,
        call: impl FnOnce() -> R,
    ) -> Result<R::Ok, Failure<R::Error>>
    where
        R: ReturnsResult,
    {
        policy
            .traced_blocking(|span| policy.attempt_blocking(span, &hooks, || call().into_result()))
    }

    #[cfg(feature = "retry")]
    /// [`try_call`](Self::try_call) for a blocking fn.
    pub fn try_call_blocking<R>(
        policy: &Policy,
        hooks: impl Hooks<R::Error>,
        mut call: impl FnMut() -> R,
    ) -> Result<R::Ok, Failure<R::Error>>
    where
        R: ReturnsResult,
    {
        policy.traced_blocking(|span| {
            let mut retries = Retries::start(policy);
            loop {
                let outcome = policy.attempt_blocking(span, &hooks, || call().into_result());
                match retries.after_attempt(&hooks, outcome) {
                    ControlFlow::Break(outcome) => return outcome,
                    ControlFlow::Continue(delay) => std::thread::sleep(delay),
                }
            }
        })
    }
}
