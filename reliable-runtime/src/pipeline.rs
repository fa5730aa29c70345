//! The async pipeline as hand-written futures.
//!
//! Why not `async fn`: an `async fn` stores its arguments and then moves the awaited future into
//! a second slot of its state, so wrapping a call doubled its size and cost a `memmove` per call
//! (measured: +16 ns on a trivial call). These futures hold the wrapped call once, pinned in
//! place, with a few words of state beside it.

use crate::breaker::{CircuitBreaker, Permit};
use crate::clock::Timestamp;
use crate::error::{Failure, Rejected};
use crate::limit::{Bulkhead, BulkheadSlot, RateLimiter, TimeoutPolicy};
use crate::private::{BreakerOutput, HoldsRejected};
use crate::retry::RetryState;
use crate::sla::SlaMonitor;
use pin_project_lite::pin_project;
use std::future::Future;
use std::ops::ControlFlow;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

/// Records a failure if the call panics (a cancelled call records nothing).
pub(crate) struct PanicGuard<'a> {
    pub(crate) monitor: &'a SlaMonitor,
    pub(crate) start: Timestamp,
    pub(crate) armed: bool,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if self.armed && std::thread::panicking() {
            self.monitor.finish(self.start, true);
        }
    }
}

const COMPLETED: &str = "a reliability pipeline future was polled after it completed";

pin_project! {
    /// The future of `#[monitored]` alone: measures `call`.
    #[must_use = "futures do nothing unless polled"]
    pub struct Monitored<'a, F, C> {
        guard: Option<PanicGuard<'a>>,
        monitor: &'a SlaMonitor,
        failed: Option<C>,
        #[pin]
        call: F,
    }
}

/// `#[monitored]` alone, async: measure `call`, classify its output with `failed`.
///
/// `call` comes before `failed` so the output type is known when the classifier closure is
/// type-checked (closures are checked in argument order).
#[inline]
pub fn monitored<'a, F, C>(monitor: &'a SlaMonitor, call: F, failed: C) -> Monitored<'a, F, C>
where
    F: Future,
    C: FnOnce(&F::Output) -> bool,
{
    Monitored {
        guard: None,
        monitor,
        failed: Some(failed),
        call,
    }
}

impl<F, C> Future for Monitored<'_, F, C>
where
    F: Future,
    C: FnOnce(&F::Output) -> bool,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        if this.guard.is_none() {
            *this.guard = Some(PanicGuard {
                monitor: this.monitor,
                start: this.monitor.start(),
                armed: true,
            });
        }
        let output = match this.call.poll(cx) {
            Poll::Ready(output) => output,
            Poll::Pending => return Poll::Pending,
        };
        let failed = this.failed.take().expect(COMPLETED);
        if let Some(guard) = this.guard.as_mut() {
            guard.armed = false;
            this.monitor.finish(guard.start, failed(&output));
        }
        Poll::Ready(output)
    }
}

/// Where a [`Guarded`] call stands.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Not polled yet: no permit.
    Idle,
    /// Admitted and running: the future holds a permit (as plain words).
    Running,
    /// Finished or rejected.
    Done,
}

pin_project! {
    /// The future of `#[circuit_breaker]`, optionally with `#[monitored]` inside it.
    ///
    /// The permit is kept as plain words rather than a [`Permit`] struct: copying an aggregate
    /// in and out of an `Option` between polls cost store-forwarding stalls on the hot path.
    #[must_use = "futures do nothing unless polled"]
    pub struct Guarded<'a, F, C> {
        breaker: &'a CircuitBreaker,
        monitor: Option<&'a SlaMonitor>,
        is_failure: Option<C>,
        stage: Stage,
        shared_clock: bool,
        permit_word: u64,
        permit_start: Option<Timestamp>,
        monitor_start: Timestamp,
        #[pin]
        call: F,
    }

    impl<F, C> PinnedDrop for Guarded<'_, F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.stage != Stage::Running {
                return;
            }
            // Dropped mid-call: cancelled, or unwinding from a panic in the call.
            if let (Some(monitor), true) = (*this.monitor, std::thread::panicking()) {
                monitor.finish(*this.monitor_start, true);
            }
            // The permit's own drop releases a probe slot (cancel) or counts a failure (panic).
            drop(Permit::from_raw(this.breaker, *this.permit_word, *this.permit_start));
        }
    }
}

/// `#[circuit_breaker]`, optionally with `#[monitored]` inside it, async.
///
/// At most two clock reads: the monitor's start and end (the breaker reuses them when it needs
/// timing and reads the same clock); none at all for a breaker alone without slow-call or
/// time-window rules. `call` is not polled when the breaker rejects it.
#[inline]
pub fn guarded<'a, F, C>(
    breaker: &'a CircuitBreaker,
    monitor: Option<&'a SlaMonitor>,
    is_failure: C,
    call: F,
) -> Guarded<'a, F, C>
where
    F: Future,
    F::Output: BreakerOutput,
    <F::Output as BreakerOutput>::Error: HoldsRejected,
    C: FnOnce(&<F::Output as BreakerOutput>::Error) -> bool,
{
    Guarded {
        breaker,
        monitor,
        is_failure: Some(is_failure),
        stage: Stage::Idle,
        shared_clock: false,
        permit_word: 0,
        permit_start: None,
        monitor_start: Timestamp::default(),
        call,
    }
}

impl<F, C> Future for Guarded<'_, F, C>
where
    F: Future,
    F::Output: BreakerOutput,
    <F::Output as BreakerOutput>::Error: HoldsRejected,
    C: FnOnce(&<F::Output as BreakerOutput>::Error) -> bool,
{
    type Output = F::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let breaker: &CircuitBreaker = this.breaker;
        match *this.stage {
            Stage::Running => {}
            Stage::Done => panic!("{COMPLETED}"),
            Stage::Idle => {
                if let Some(word) = breaker.admit_closed() {
                    *this.permit_word = word;
                    *this.permit_start = None;
                } else {
                    match breaker.try_acquire() {
                        Ok(permit) => (*this.permit_word, *this.permit_start) = permit.into_raw(),
                        Err(rejected) => {
                            *this.stage = Stage::Done;
                            return Poll::Ready(F::Output::from_result(Err(
                                HoldsRejected::from_rejected(rejected),
                            )));
                        }
                    }
                }
                if let Some(monitor) = *this.monitor {
                    *this.shared_clock = monitor.clock().same_source(&breaker.config().clock);
                    *this.monitor_start = match (*this.shared_clock, *this.permit_start) {
                        (true, Some(start)) => start,
                        _ => monitor.start(),
                    };
                }
                *this.stage = Stage::Running;
            }
        }
        let output = match this.call.poll(cx) {
            Poll::Ready(output) => output,
            Poll::Pending => return Poll::Pending,
        };
        *this.stage = Stage::Done;
        let is_failure = this.is_failure.take().expect(COMPLETED);
        let failed = output.error().is_some_and(is_failure);
        let timing = match *this.monitor {
            Some(monitor) => {
                let start = *this.monitor_start;
                let end = monitor.finish(start, failed);
                // Reuse the monitor's clock reads when the breaker reads the same clock.
                this.shared_clock
                    .then(|| (end.saturating_duration_since(start), end))
            }
            None => None,
        };
        breaker.record_raw(*this.permit_word, *this.permit_start, failed, timing);
        Poll::Ready(output)
    }
}

/// The per-attempt layers of a call site (each optional).
#[derive(Clone, Copy, Debug)]
pub struct Layers<'a> {
    /// The circuit breaker.
    pub breaker: Option<&'a CircuitBreaker>,
    /// The rate limiter, and whether to wait for a slot (else refuse at once).
    pub limiter: Option<(&'a RateLimiter, bool)>,
    /// The bulkhead.
    pub bulkhead: Option<&'a Bulkhead>,
    /// The SLA monitor.
    pub monitor: Option<&'a SlaMonitor>,
}

impl Layers<'_> {
    /// No layer at all.
    pub const NONE: Layers<'static> = Layers {
        breaker: None,
        limiter: None,
        bulkhead: None,
        monitor: None,
    };
}

/// One attempt through the per-attempt layers, in the pipeline's order: breaker, rate limiter,
/// bulkhead, monitor, then `call`: the user's call wrapped by [`outcome`] or, with a timeout,
/// [`timed_outcome`]. The outcome keeps a rejection apart from the call's
/// own error, so the retry layer can tell them apart; a call refused by the limiter or the
/// bulkhead does not count for the breaker.
///
/// A timed-out attempt is dropped and counts as a failure for the breaker and the monitor.
pub async fn attempt<T, E, F, C>(
    layers: Layers<'_>,
    is_failure: C,
    call: F,
) -> Result<T, Failure<E>>
where
    F: Future<Output = Result<T, Failure<E>>>,
    C: FnOnce(&E) -> bool,
{
    let permit = match layers.breaker.map(CircuitBreaker::try_acquire) {
        Some(Err(rejected)) => return Err(Failure::Rejected(rejected)),
        Some(Ok(permit)) => Some(permit),
        None => None,
    };
    // Refusals below release the breaker permit uncounted (dropping it cancels it).
    match layers.limiter {
        Some((limiter, true)) => limiter.acquire().await,
        Some((limiter, false)) => limiter.try_acquire().map_err(Failure::Rejected)?,
        None => {}
    }
    let _slot = match layers.bulkhead {
        Some(bulkhead) => Some(bulkhead.enter().await.map_err(Failure::Rejected)?),
        None => None,
    };
    let guard = start_monitor(layers.monitor);
    let outcome = call.await;
    let failed = match &outcome {
        Ok(_) => false,
        Err(Failure::Inner(error)) => is_failure(error),
        Err(Failure::Rejected(_)) => true,
    };
    report(guard, permit, failed);
    outcome
}

pin_project! {
    /// The user's call with its output as a pipeline outcome (no timeout).
    #[must_use = "futures do nothing unless polled"]
    pub struct Outcome<F> {
        #[pin]
        call: F,
    }
}

/// Wraps the user's call for [`attempt`], without a timeout.
#[inline]
pub fn outcome<F>(call: F) -> Outcome<F>
where
    F: Future,
    F::Output: BreakerOutput,
{
    Outcome { call }
}

impl<F> Future for Outcome<F>
where
    F: Future,
    F::Output: BreakerOutput,
{
    type Output =
        Result<<F::Output as BreakerOutput>::Ok, Failure<<F::Output as BreakerOutput>::Error>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().call.poll(cx) {
            Poll::Ready(output) => Poll::Ready(output.into_result().map_err(Failure::Inner)),
            Poll::Pending => Poll::Pending,
        }
    }
}

pin_project! {
    /// The user's call under a per-attempt timeout.
    #[must_use = "futures do nothing unless polled"]
    pub struct TimedOutcome<'a, F> {
        policy: &'a TimeoutPolicy,
        #[pin]
        call: tokio::time::Timeout<F>,
    }
}

/// Wraps the user's call for [`attempt`], dropping it at the policy's deadline with
/// `Rejected::Timeout`.
#[inline]
pub fn timed_outcome<F>(policy: &TimeoutPolicy, call: F) -> TimedOutcome<'_, F>
where
    F: Future,
    F::Output: BreakerOutput,
{
    policy.started();
    TimedOutcome {
        policy,
        call: tokio::time::timeout(policy.after(), call),
    }
}

impl<F> Future for TimedOutcome<'_, F>
where
    F: Future,
    F::Output: BreakerOutput,
{
    type Output =
        Result<<F::Output as BreakerOutput>::Ok, Failure<<F::Output as BreakerOutput>::Error>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        match this.call.poll(cx) {
            Poll::Ready(Ok(output)) => Poll::Ready(output.into_result().map_err(Failure::Inner)),
            Poll::Ready(Err(_)) => {
                this.policy.timed_out();
                Poll::Ready(Err(Failure::Rejected(Rejected::Timeout {
                    after: this.policy.after(),
                })))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

/// [`attempt`] for a blocking call: no timeout (a blocking call cannot be dropped midway); the
/// bulkhead refuses at once when full; a waiting rate limiter sleeps the thread.
pub fn attempt_sync<R, G, C>(
    layers: Layers<'_>,
    is_failure: C,
    call: G,
) -> Result<R::Ok, Failure<R::Error>>
where
    R: BreakerOutput,
    G: FnOnce() -> R,
    C: FnOnce(&R::Error) -> bool,
{
    let permit = match layers.breaker.map(CircuitBreaker::try_acquire) {
        Some(Err(rejected)) => return Err(Failure::Rejected(rejected)),
        Some(Ok(permit)) => Some(permit),
        None => None,
    };
    match layers.limiter {
        Some((limiter, true)) => {
            while let Err(rejected) = limiter.try_acquire() {
                let wait = rejected.retry_after().unwrap_or(Duration::from_millis(1));
                std::thread::sleep(wait.max(Duration::from_micros(1)));
            }
        }
        Some((limiter, false)) => limiter.try_acquire().map_err(Failure::Rejected)?,
        None => {}
    }
    let _slot = match layers.bulkhead {
        Some(bulkhead) => Some(bulkhead.try_enter().map_err(Failure::Rejected)?),
        None => None,
    };
    let guard = start_monitor(layers.monitor);
    let outcome = call().into_result().map_err(Failure::Inner);
    let failed = matches!(&outcome, Err(Failure::Inner(error)) if is_failure(error));
    report(guard, permit, failed);
    outcome
}

/// Starts the monitor's measurement of an attempt (a panic in the call records a failure).
fn start_monitor(monitor: Option<&SlaMonitor>) -> Option<PanicGuard<'_>> {
    monitor.map(|monitor| PanicGuard {
        monitor,
        start: monitor.start(),
        armed: true,
    })
}

/// Reports an attempt's outcome to the monitor and the breaker.
fn report(guard: Option<PanicGuard<'_>>, permit: Option<Permit<'_>>, failed: bool) {
    if let Some(mut guard) = guard {
        guard.armed = false;
        guard.monitor.finish(guard.start, failed);
    }
    match permit {
        Some(permit) if failed => permit.failure(),
        Some(permit) => permit.success(),
        None => {}
    }
}

/// After an attempt: `Break(output)` to return it, `Continue(delay)` to retry after `delay`.
///
/// `on_retry(attempt, delay, &failure)` runs before each retry (the attempt about to be made,
/// counting from 1); a panic in it is caught and logged, never propagated to the caller.
pub fn settle<R, RetryIf, RetryAfter, OnRetry>(
    outcome: Result<R::Ok, Failure<R::Error>>,
    retry: &mut RetryState<'_>,
    retry_if: RetryIf,
    retry_after: RetryAfter,
    on_retry: OnRetry,
) -> ControlFlow<R, Duration>
where
    R: BreakerOutput,
    R::Error: HoldsRejected,
    RetryIf: FnOnce(&R::Error) -> bool,
    RetryAfter: FnOnce(&R::Error) -> Option<Duration>,
    OnRetry: FnOnce(u32, Duration, &Failure<R::Error>),
{
    let failure = match outcome {
        Ok(value) => return ControlFlow::Break(R::from_result(Ok(value))),
        Err(failure) => failure,
    };
    match retry.after_outcome(&failure, retry_if, retry_after) {
        Some(delay) => {
            let attempt = retry.attempts() + 1;
            let callback = AssertUnwindSafe(|| on_retry(attempt, delay, &failure));
            if std::panic::catch_unwind(callback).is_err() {
                tracing::error!(attempt, "an `on_retry` callback panicked; retrying anyway");
            }
            ControlFlow::Continue(delay)
        }
        None => ControlFlow::Break(R::from_result(Err(into_error(failure)))),
    }
}

/// The output of a pipeline without retries.
#[inline]
pub fn settle_once<R>(outcome: Result<R::Ok, Failure<R::Error>>) -> R
where
    R: BreakerOutput,
    R::Error: HoldsRejected,
{
    R::from_result(outcome.map_err(into_error))
}

fn into_error<E: HoldsRejected>(failure: Failure<E>) -> E {
    match failure {
        Failure::Inner(error) => error,
        Failure::Rejected(rejected) => E::from_rejected(rejected),
    }
}

/// Waits before a retry (tokio's clock, so paused time drives it).
pub async fn sleep(delay: Duration) {
    tokio::time::sleep(delay).await;
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
    hint: fn(&R::Error) -> Option<Duration>,
) -> fn(&R::Error) -> Option<Duration> {
    hint
}

/// Pins an `on_retry` callback to the fn's error type.
#[inline(always)]
pub fn retry_callback<R: BreakerOutput>(
    callback: fn(u32, Duration, &Failure<R::Error>),
) -> fn(u32, Duration, &Failure<R::Error>) {
    callback
}

pin_project! {
    /// [`attempt`] as a hand-written future, for call sites whose limiter and bulkhead never
    /// wait (admission is decided on the first poll): no `async fn` state to copy around.
    #[must_use = "futures do nothing unless polled"]
    pub struct AttemptNow<'a, F, C> {
        layers: Layers<'a>,
        is_failure: Option<C>,
        stage: Stage,
        permit_word: u64,
        permit_start: Option<Timestamp>,
        monitor_start: Timestamp,
        slot: Option<BulkheadSlot<'a>>,
        #[pin]
        call: F,
    }

    impl<F, C> PinnedDrop for AttemptNow<'_, F, C> {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if *this.stage != Stage::Running {
                return;
            }
            if let (Some(monitor), true) = (this.layers.monitor, std::thread::panicking()) {
                monitor.finish(*this.monitor_start, true);
            }
            if let Some(breaker) = this.layers.breaker {
                drop(Permit::from_raw(breaker, *this.permit_word, *this.permit_start));
            }
        }
    }
}

/// [`attempt`] for layers that never wait: the limiter refuses at once (`wait = false`) and the
/// bulkhead has no `max_wait`.
#[inline]
pub fn attempt_now<'a, T, E, F, C>(
    layers: Layers<'a>,
    is_failure: C,
    call: F,
) -> AttemptNow<'a, F, C>
where
    F: Future<Output = Result<T, Failure<E>>>,
    C: FnOnce(&E) -> bool,
{
    AttemptNow {
        layers,
        is_failure: Some(is_failure),
        stage: Stage::Idle,
        permit_word: 0,
        permit_start: None,
        monitor_start: Timestamp::default(),
        slot: None,
        call,
    }
}

impl<T, E, F, C> Future for AttemptNow<'_, F, C>
where
    F: Future<Output = Result<T, Failure<E>>>,
    C: FnOnce(&E) -> bool,
{
    type Output = Result<T, Failure<E>>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let layers = *this.layers;
        match *this.stage {
            Stage::Running => {}
            Stage::Done => panic!("{COMPLETED}"),
            Stage::Idle => {
                *this.stage = Stage::Done;
                if let Some(breaker) = layers.breaker {
                    if let Some(word) = breaker.admit_closed() {
                        *this.permit_word = word;
                    } else {
                        match breaker.try_acquire() {
                            Ok(permit) => {
                                (*this.permit_word, *this.permit_start) = permit.into_raw()
                            }
                            Err(rejected) => return Poll::Ready(Err(Failure::Rejected(rejected))),
                        }
                    }
                }
                // A refusal below cancels the breaker permit: it does not count.
                let cancel = |word: u64, start: Option<Timestamp>| {
                    if let Some(breaker) = layers.breaker {
                        drop(Permit::from_raw(breaker, word, start));
                    }
                };
                if let Some((limiter, _)) = layers.limiter {
                    if let Err(rejected) = limiter.try_acquire() {
                        cancel(*this.permit_word, *this.permit_start);
                        return Poll::Ready(Err(Failure::Rejected(rejected)));
                    }
                }
                if let Some(bulkhead) = layers.bulkhead {
                    match bulkhead.try_enter() {
                        Ok(slot) => *this.slot = Some(slot),
                        Err(rejected) => {
                            cancel(*this.permit_word, *this.permit_start);
                            return Poll::Ready(Err(Failure::Rejected(rejected)));
                        }
                    }
                }
                if let Some(monitor) = layers.monitor {
                    *this.monitor_start = monitor.start();
                }
                *this.stage = Stage::Running;
            }
        }
        let outcome = match this.call.poll(cx) {
            Poll::Ready(outcome) => outcome,
            Poll::Pending => return Poll::Pending,
        };
        *this.stage = Stage::Done;
        *this.slot = None;
        let is_failure = this.is_failure.take().expect(COMPLETED);
        let failed = match &outcome {
            Ok(_) => false,
            Err(Failure::Inner(error)) => is_failure(error),
            Err(Failure::Rejected(_)) => true,
        };
        if let Some(monitor) = layers.monitor {
            monitor.finish(*this.monitor_start, failed);
        }
        if let Some(breaker) = layers.breaker {
            breaker.record_raw(*this.permit_word, *this.permit_start, failed, None);
        }
        Poll::Ready(outcome)
    }
}
