//! [`Retries`]: the retry loop generated code writes out itself, for a body that borrows an
//! argument mutably (a closure the runtime kept could not hand out that borrow again).

use crate::error::Failure;
use crate::policy::{after_attempt, Hooks, Policy};
use crate::retry::RetryState;
use core::ops::ControlFlow;
use std::time::Duration;

/// A call's retry progress through its policy (counted by the retry budget).
pub struct Retries<'a> {
    policy: &'a Policy,
    progress: Option<RetryState<'a>>,
}

impl<'a> Retries<'a> {
    /// The progress of a new call (no retries without a retry layer).
    #[inline]
    pub fn start(policy: &'a Policy) -> Self {
        Retries {
            policy,
            progress: policy.retry().map(|retry| retry.start()),
        }
    }

    /// After an attempt: `Break(outcome)` to give it back, `Continue(delay)` to retry.
    #[inline]
    pub fn after_attempt<T, E>(
        &mut self,
        hooks: impl Hooks<E>,
        outcome: Result<T, Failure<E>>,
    ) -> ControlFlow<Result<T, Failure<E>>, Duration> {
        match (outcome, self.progress.as_mut()) {
            (Ok(value), progress) => {
                if let Some(progress) = progress {
                    crate::policy::record_success(progress);
                }
                ControlFlow::Break(Ok(value))
            }
            (outcome, None) => ControlFlow::Break(outcome),
            (outcome, Some(progress)) => {
                after_attempt(self.policy.layers(), &hooks, outcome, progress)
            }
        }
    }

    /// Waits before a retry (tokio's clock, so paused time drives it).
    pub async fn sleep(delay: Duration) {
        tokio::time::sleep(delay).await;
    }
}
