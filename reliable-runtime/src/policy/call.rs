//! Calling through a [`Policy`]: one attempt ([`Attempt`]), the retry loop around it, the
//! blocking form, the fallback and the monitor-only measurement.

use super::Policy;
use crate::degrade::Degradation;
use crate::error::{Failure, Rejected};
use crate::pipeline::{failed, monitored, settle_outcome, AttemptState};
use crate::private::start_fallback;
use crate::retry::{RetryPolicy, RetryState};
use pin_project_lite::pin_project;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

const COMPLETED: &str = "a policy's call future was polled after it completed";

pin_project! {
    /// One attempt through the policy's per-attempt layers (breaker, rate limit, bulkhead,
    /// monitor, timeout). The call is made only once the layers admit it, so a refused
    /// attempt builds nothing.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Attempt<'a, Make, Fut> {
        // Declared first, so dropped first: a cancelled call ends (its drop code runs) before
        // its probe or bulkhead slot frees for the next caller.
        #[pin]
        call: Option<Fut>,
        // Armed when the call starts: an attempt refused by a layer never counts as a
        // timeout attempt, nor spends its deadline waiting.
        #[pin]
        deadline: Option<tokio::time::Sleep>,
        state: AttemptState<'a>,
        make: Option<Make>,
        policy: &'a Policy,
    }
}

impl<'a, Make, Fut> Attempt<'a, Make, Fut> {
    /// An attempt the layers have not admitted yet (admitted on its first poll).
    #[inline]
    fn new(policy: &'a Policy, make: Make) -> Self {
        Attempt::admitted(policy, AttemptState::new(&policy.layers), make)
    }

    /// An attempt with `state` already admitted (by a layer that waited).
    #[inline]
    fn admitted(policy: &'a Policy, state: AttemptState<'a>, make: Make) -> Self {
        Attempt {
            call: None,
            deadline: None,
            state,
            make: Some(make),
            policy,
        }
    }
}

impl<Make, Fut, T, E> Future for Attempt<'_, Make, Fut>
where
    Make: FnOnce() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    E: 'static,
{
    type Output = Result<T, Failure<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if this.call.is_none() {
            if this.state.is_idle() {
                if let Err(rejected) = this.state.admit_now() {
                    return Poll::Ready(Err(Failure::Rejected(rejected)));
                }
            }
            let make = this.make.take().expect(COMPLETED);
            this.call.set(Some(make()));
            if let Some(timeout) = this.policy.timeout.as_deref() {
                timeout.started();
                this.deadline.set(Some(tokio::time::sleep(timeout.after())));
            }
        }
        let Some(call) = this.call.as_mut().as_pin_mut() else {
            panic!("{COMPLETED}")
        };
        // The call first, as tokio's `Timeout` does: an answer ready at the deadline wins.
        let outcome = match call.poll(cx) {
            Poll::Ready(output) => output.map_err(Failure::Inner),
            Poll::Pending => match this.deadline.as_pin_mut().map(|deadline| deadline.poll(cx)) {
                Some(Poll::Ready(())) => {
                    let timeout = this
                        .policy
                        .timeout
                        .as_deref()
                        .expect("armed with a timeout");
                    timeout.timed_out();
                    // The call ends before its layers let go.
                    this.call.set(None);
                    Err(Failure::Rejected(Rejected::Timeout {
                        after: timeout.after(),
                    }))
                }
                _ => return Poll::Pending,
            },
        };
        let hooks = &this.policy.hooks;
        this.state
            .finish(failed(&outcome, |error| hooks.is_failure(error)));
        Poll::Ready(outcome)
    }
}

pin_project! {
    /// [`Policy::call`]'s future: the failure as the call's own error.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct IntoError<F> {
        #[pin]
        inner: F,
    }
}

impl<F, T, E> Future for IntoError<F>
where
    F: Future<Output = Result<T, Failure<E>>>,
    E: From<Rejected>,
{
    type Output = Result<T, E>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().inner.poll(cx) {
            Poll::Ready(outcome) => Poll::Ready(outcome.map_err(Failure::into_error)),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl Policy {
    /// Calls `call` through every layer; a refusal becomes the call's own error through
    /// `E: From<Rejected>`. `call` makes one attempt each time it is called (retries call it
    /// again); it is not called at all when a layer refuses.
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// #[derive(Debug)]
    /// struct ApiError;
    /// impl From<Rejected> for ApiError {
    ///     fn from(_: Rejected) -> Self { ApiError }
    /// }
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let policy = Policy::builder("call_doc").breaker("call_doc", |b| b.failure_threshold(1)).build().unwrap();
    /// assert!(policy.call(|| async { Err::<(), _>(ApiError) }).await.is_err());
    /// // The breaker is open now: the next call is refused without running.
    /// let mut ran = false;
    /// assert!(policy.call(|| { ran = true; async { Ok::<_, ApiError>(()) } }).await.is_err());
    /// assert!(!ran);
    /// # }
    /// ```
    #[inline]
    pub fn call<'a, T, E, F, Fut>(&'a self, call: F) -> impl Future<Output = Result<T, E>> + 'a
    where
        F: FnMut() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        T: 'a,
        E: From<Rejected> + 'static,
    {
        IntoError {
            inner: self.try_call(call),
        }
    }

    /// [`call`](Self::call) for any error type: the failure says whether the call failed
    /// ([`Failure::Inner`]) or a layer refused it ([`Failure::Rejected`]).
    ///
    /// ```
    /// use reliable_runtime::{Failure, Policy};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let policy = Policy::builder("try_call_doc").breaker("try_call_doc", |b| b.failure_threshold(1)).build().unwrap();
    /// let first = policy.try_call(|| async { Err::<(), _>(std::io::Error::other("down")) }).await;
    /// assert!(matches!(first, Err(Failure::Inner(_))));
    /// let second = policy.try_call(|| async { Ok::<_, std::io::Error>(()) }).await;
    /// assert!(matches!(second, Err(Failure::Rejected(_))));
    /// # }
    /// ```
    #[inline]
    pub async fn try_call<T, E, F, Fut>(&self, mut call: F) -> Result<T, Failure<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        let Some(retry) = self.retry.as_deref() else {
            return self.attempt(&mut call).await;
        };
        self.retried(retry, call).await
    }

    /// [`call`](Self::call) for a body that can run only once (it moves what it captures):
    /// one attempt, not retried.
    #[inline]
    pub fn call_once<'a, T, E, F, Fut>(&'a self, call: F) -> impl Future<Output = Result<T, E>> + 'a
    where
        F: FnOnce() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        T: 'a,
        E: From<Rejected> + 'static,
    {
        IntoError {
            inner: self.try_call_once(call),
        }
    }

    /// [`call_once`](Self::call_once) for any error type.
    #[inline]
    pub async fn try_call_once<T, E, F, Fut>(&self, call: F) -> Result<T, Failure<E>>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        self.attempt(call).await
    }

    /// One attempt: admitted on its first poll, or first by an async path when a layer may
    /// wait for a slot.
    #[inline]
    async fn attempt<T, E, Fut>(&self, make: impl FnOnce() -> Fut) -> Result<T, Failure<E>>
    where
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        if !self.waits {
            return Attempt::new(self, make).await;
        }
        let mut state = AttemptState::new(&self.layers);
        state.admit().await.map_err(Failure::Rejected)?;
        Attempt::admitted(self, state, make).await
    }

    /// The retry loop: attempts until one succeeds, fails for good, or retries run out.
    async fn retried<T, E, F, Fut>(&self, retry: &RetryPolicy, mut call: F) -> Result<T, Failure<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        let mut progress = retry.start();
        loop {
            let outcome = self.attempt(&mut call).await;
            match self.settle(outcome, &mut progress) {
                ControlFlow::Break(outcome) => return outcome,
                ControlFlow::Continue(delay) => tokio::time::sleep(delay).await,
            }
        }
    }

    /// After an attempt: `Break` to give the outcome back, `Continue(delay)` to retry.
    fn settle<T, E: 'static>(
        &self,
        outcome: Result<T, Failure<E>>,
        progress: &mut RetryState<'_>,
    ) -> ControlFlow<Result<T, Failure<E>>, Duration> {
        let hooks = &self.hooks;
        settle_outcome::<Result<T, E>, _, _, _>(
            outcome,
            progress,
            |error| hooks.retry_if(error),
            |error| hooks.retry_after(error),
            |attempt, delay, cause| hooks.on_retry(attempt, delay, cause),
        )
    }

    /// [`call`](Self::call) for a blocking fn: a waiting rate limit sleeps the thread, a
    /// full bulkhead refuses at once, retries sleep the thread, and the timeout does not apply
    /// (a blocking call cannot be stopped midway).
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("blocking_doc").monitor("blocking_doc", |sla| sla).build().unwrap();
    /// let answer = policy.try_call_blocking(|| Ok::<_, std::io::Error>(42)).unwrap();
    /// assert_eq!(answer, 42);
    /// assert_eq!(policy.monitor().unwrap().metrics().total_calls, 1);
    /// ```
    pub fn call_blocking<T, E>(&self, call: impl FnMut() -> Result<T, E>) -> Result<T, E>
    where
        E: From<Rejected> + 'static,
    {
        self.try_call_blocking(call).map_err(Failure::into_error)
    }

    /// [`call_blocking`](Self::call_blocking) for any error type.
    pub fn try_call_blocking<T, E>(
        &self,
        mut call: impl FnMut() -> Result<T, E>,
    ) -> Result<T, Failure<E>>
    where
        E: 'static,
    {
        let mut progress = self.retry.as_deref().map(RetryPolicy::start);
        loop {
            let outcome = self.attempt_blocking(&mut call);
            let Some(progress) = progress.as_mut() else {
                return outcome;
            };
            match self.settle(outcome, progress) {
                ControlFlow::Break(outcome) => return outcome,
                ControlFlow::Continue(delay) => std::thread::sleep(delay),
            }
        }
    }

    fn attempt_blocking<T, E: 'static>(
        &self,
        call: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Failure<E>> {
        let mut state = AttemptState::new(&self.layers);
        state.admit_blocking().map_err(Failure::Rejected)?;
        let outcome = call().map_err(Failure::Inner);
        state.finish(failed(&outcome, |error| self.hooks.is_failure(error)));
        outcome
    }

    /// [`call`](Self::call) with a fallback: when the call fails for good (its error, or a
    /// refusal), `fallback` answers from the cause, and the policy's fallback counters count
    /// it. A fallback that panics gives the caller the original error.
    ///
    /// ```
    /// use reliable_runtime::{Failure, Policy};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let policy = Policy::builder("or_else_doc").build().unwrap();
    /// let price = policy
    ///     .try_call_or_else(
    ///         || async { Err::<f64, _>(std::io::Error::other("down")) },
    ///         |cause: &Failure<std::io::Error>| {
    ///             assert!(!cause.is_rejected());
    ///             async { Ok(97_000.0) }
    ///         },
    ///     )
    ///     .await;
    /// assert_eq!(price.unwrap(), 97_000.0);
    /// assert_eq!(policy.degradation().unwrap().snapshot().fallbacks, 1);
    /// # }
    /// ```
    pub async fn call_or_else<T, E, F, Fut, Fallback, Answer>(
        &self,
        call: F,
        fallback: Fallback,
    ) -> Result<T, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        Fallback: FnOnce(&Failure<E>) -> Answer,
        Answer: Future<Output = Result<T, E>>,
        E: From<Rejected> + 'static,
    {
        self.try_call_or_else(call, fallback)
            .await
            .map_err(Failure::into_error)
    }

    /// [`call_or_else`](Self::call_or_else) for any error type.
    pub async fn try_call_or_else<T, E, F, Fut, Fallback, Answer>(
        &self,
        call: F,
        fallback: Fallback,
    ) -> Result<T, Failure<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        Fallback: FnOnce(&Failure<E>) -> Answer,
        Answer: Future<Output = Result<T, E>>,
        E: 'static,
    {
        let failure = match self.try_call(call).await {
            Ok(value) => return Ok(value),
            Err(failure) => failure,
        };
        self.fall_back(failure, fallback).await
    }

    /// The fallback's answer for `failure`, or `failure` itself if the fallback panicked.
    pub(crate) async fn fall_back<T, E, Fallback, Answer>(
        &self,
        failure: Failure<E>,
        fallback: Fallback,
    ) -> Result<T, Failure<E>>
    where
        Fallback: FnOnce(&Failure<E>) -> Answer,
        Answer: Future<Output = Result<T, E>>,
    {
        let answer = match start_fallback(|| fallback(&failure)) {
            Some(answer) => answer.await,
            None => None,
        };
        finish_fallback(self.fallback.counters(), answer, failure)
    }

    /// Measures `call` with the monitor alone, whatever it returns: `is_failure` says whether
    /// an output counts as a failure. The other layers do not apply (they need a `Result`).
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let policy = Policy::builder("measure_doc").monitor("measure_doc", |sla| sla).build().unwrap();
    /// let quotes = policy.measure(async { vec![1.0, 2.0] }, |quotes| quotes.is_empty()).await;
    /// assert_eq!(quotes.len(), 2);
    /// assert_eq!(policy.monitor().unwrap().metrics().total_calls, 1);
    /// # }
    /// ```
    #[inline]
    pub fn measure<'a, F>(
        &'a self,
        call: F,
        is_failure: impl FnOnce(&F::Output) -> bool + 'a,
    ) -> impl Future<Output = F::Output> + 'a
    where
        F: Future + 'a,
    {
        monitored(&self.monitor_only, call, is_failure)
    }

    /// [`measure`](Self::measure) for a blocking call.
    pub fn measure_blocking<R>(
        &self,
        call: impl FnOnce() -> R,
        is_failure: impl FnOnce(&R) -> bool,
    ) -> R {
        crate::pipeline::monitored_sync(&self.monitor_only, call, is_failure)
    }
}

/// Counts the fallback's answer; a fallback that panicked (no answer) gives back `failure`.
fn finish_fallback<T, E>(
    counters: &Degradation,
    answer: Option<Result<T, E>>,
    failure: Failure<E>,
) -> Result<T, Failure<E>> {
    match answer {
        Some(answer) => {
            counters.record_fallback();
            answer.map_err(Failure::Inner)
        }
        None => {
            counters.record_panic();
            tracing::error!(
                site = counters.name(),
                "a fallback panicked; the caller gets the original error"
            );
            Err(failure)
        }
    }
}
