//! Calling through a [`Policy`]: one attempt ([`Attempt`]), the retry loop around it, the
//! blocking form, the fallback and the monitor-only measurement.

use super::catch_unwind::start_fallback;
use super::{FromPolicy, Hooks, Policy};
use crate::degrade::Degradation;
use crate::error::{Failure, Rejected};
use crate::policy::layers::{failed, monitored, AttemptState, Layers};
use crate::policy::span::CallSpan;
use crate::served::Source;
#[cfg(feature = "retry")]
use crate::{
    policy::layers::retry_or_return,
    retry::{RetryPolicy, RetryState},
};
use pin_project_lite::pin_project;
use std::future::Future;
use std::mem::ManuallyDrop;
#[cfg(feature = "retry")]
use std::ops::ControlFlow;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

const COMPLETED: &str = "a policy's call future was polled after it completed";

/// A waiting admission (a rate-limit or bulkhead slot).
type Admission<'a> = Pin<Box<dyn Future<Output = Result<AttemptState<'a>, Rejected>> + Send + 'a>>;

/// What only some calls need, boxed so that every call's future stays small (it is moved into
/// place on every call, and a large one is copied by `memmove`): allocated when an attempt
/// fails under a retry policy, when a timed body waits, or when a layer may wait for a slot.
#[derive(Default)]
struct Slow<'a> {
    /// The attempt's deadline, or the delay before the next attempt (never both at once).
    timer: Option<tokio::time::Sleep>,
    /// What the attempt's timer stands for.
    limit: TimerLimit,
    /// When the call first waited or failed: what its deadline counts from.
    started: Option<tokio::time::Instant>,
    admission: Option<Admission<'a>>,
    #[cfg(feature = "retry")]
    retry: Option<RetryState<'a>>,
}

/// What an attempt's timer ends: the attempt's own timeout, or the call's deadline.
#[derive(Clone, Copy)]
enum TimerLimit {
    Attempt(Duration),
    Deadline(Duration),
}

impl Default for TimerLimit {
    fn default() -> Self {
        TimerLimit::Attempt(Duration::ZERO)
    }
}

/// How a [`CallFuture`] gives its outcome to the caller: [`OwnError`] (the call's own error,
/// a refusal converted by `E: From<Rejected>`) or [`WithFailure`] (a [`Failure`]).
///
/// Converting where the outcome is made, rather than mapping a finished `Result`, lets the
/// compiler drop a refusal's details the caller's error does not keep.
pub trait Deliver<T, E> {
    /// What the caller gets.
    type Output;
    /// The outcome as the caller gets it.
    fn deliver(&self, outcome: Result<T, Failure<E>>) -> Self::Output;
}

/// [`Deliver`] the call's own error: [`Policy::call`].
#[derive(Debug, Default, Clone, Copy)]
pub struct OwnError;

impl<T, E: From<Rejected>> Deliver<T, E> for OwnError {
    type Output = Result<T, E>;

    #[inline(always)]
    fn deliver(&self, outcome: Result<T, Failure<E>>) -> Result<T, E> {
        outcome.map_err(Failure::into_error)
    }
}

/// [`Deliver`] a [`Failure`]: [`Policy::try_call`].
#[derive(Debug, Default, Clone, Copy)]
pub struct WithFailure;

impl<T, E> Deliver<T, E> for WithFailure {
    type Output = Result<T, Failure<E>>;

    #[inline(always)]
    fn deliver(&self, outcome: Result<T, Failure<E>>) -> Result<T, Failure<E>> {
        outcome
    }
}

/// The slow part's box, dropped out of line only when there is one: the drop glue of a plain
/// `Option<Box<_>>` is a call on every completed call.
struct SlowPart<'a>(ManuallyDrop<Option<Box<Slow<'a>>>>);

impl<'a> std::ops::Deref for SlowPart<'a> {
    type Target = Option<Box<Slow<'a>>>;

    #[inline(always)]
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for SlowPart<'_> {
    #[inline(always)]
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for SlowPart<'_> {
    #[inline(always)]
    fn drop(&mut self) {
        // Tested before taking: `take` would also write the slot back on every call.
        if self.0.is_some() {
            drop_slow(&mut self.0);
        }
    }
}

#[cold]
#[inline(never)]
fn drop_slow(slow: &mut Option<Box<Slow<'_>>>) {
    drop(slow.take());
}

/// `CallFuture::flags`: the policy retries, and this call may be retried (not a `call_once`).
const RETRIES: u16 = 1;
/// `CallFuture::flags`: the timer holds the delay before the next attempt.
const BACKING_OFF: u16 = 2;
/// `CallFuture::flags`: the policy has a timeout.
const TIMED: u16 = 4;
/// `CallFuture::flags`: an admission may wait for a slot.
const WAITS: u16 = 8;
/// `CallFuture::flags`: the call was counted by the retry policy.
#[cfg(feature = "retry")]
const COUNTED: u16 = 16;
/// `CallFuture::flags`: an attempt failed and the retry layer decided on it (a flag, tested
/// where the success path already holds the flags, rather than a look into the slow part).
#[cfg(feature = "retry")]
const FAILED_BEFORE: u16 = 32;

/// The flags every call through `layers` starts with (`RETRIES` dropped for a one-shot call);
/// computed once, when the layers are ready, so building a call reads one half-word.
pub(crate) fn call_flags(layers: &Layers) -> u16 {
    #[cfg(feature = "retry")]
    let retries = if layers.retry.is_some() { RETRIES } else { 0 };
    #[cfg(not(feature = "retry"))]
    let retries = 0;
    retries
        | (if layers.timeout.is_some() { TIMED } else { 0 })
        | (if layers.waits { WAITS } else { 0 })
}

pin_project! {
    /// A call through a policy: each attempt through the per-attempt layers (breaker, rate
    /// limit, bulkhead, monitor, timeout), and the retries between attempts.
    ///
    /// Hand-written rather than `async`: nested `async fn`s would each keep their own state
    /// and copy the call's future between them, where this holds it once, pinned. The body is
    /// made only once the layers admit the attempt, so a refused attempt builds nothing.
    #[must_use = "futures do nothing unless polled"]
    pub struct CallFuture<'a, F, Fut, D, H = FromPolicy> {
        #[pin]
        call: Call<'a, Repeat<F, Fut>, D, H>,
    }
}

impl<'a, F, Fut, D, H> CallFuture<'a, F, Fut, D, H> {
    #[inline]
    pub(crate) fn new(layers: &'a Layers, make: F, retries: bool, hooks: H) -> Self
    where
        D: Default,
    {
        Self::delivering(layers, make, retries, hooks, D::default())
    }

    /// [`new`](Self::new), the outcome given to the caller by `deliver`.
    #[inline]
    pub(crate) fn delivering(
        layers: &'a Layers,
        make: F,
        retries: bool,
        hooks: H,
        deliver: D,
    ) -> Self {
        CallFuture {
            call: Call::new(layers, Repeat { make, body: None }, retries, hooks, deliver),
        }
    }
}

impl<F, Fut, T, E, D, H> Future for CallFuture<'_, F, Fut, D, H>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, E>>,
    D: Deliver<T, E>,
    H: Hooks<E>,
{
    type Output = D::Output;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.project().call.poll(cx)
    }
}

/// Where a call keeps its body: what makes an attempt, and the attempt running.
pub(crate) trait Slot {
    /// The body's output.
    type Output;
    /// Whether a body runs (made and not yet done).
    fn running(&self) -> bool;
    /// Makes the next attempt's body.
    fn start(self: Pin<&mut Self>);
    /// Polls the running body.
    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output>;
    /// Drops the body once done.
    fn end(self: Pin<&mut Self>);
}

pin_project! {
    /// The slot of a call that may be retried: the maker stays beside the body.
    pub(crate) struct Repeat<F, Fut> {
        #[pin]
        body: Option<Fut>,
        make: F,
    }
}

impl<F, Fut> Slot for Repeat<F, Fut>
where
    F: FnMut() -> Fut,
    Fut: Future,
{
    type Output = Fut::Output;

    #[inline(always)]
    fn running(&self) -> bool {
        self.body.is_some()
    }

    #[inline(always)]
    fn start(self: Pin<&mut Self>) {
        let mut this = self.project();
        let body = (this.make)();
        this.body.set(Some(body));
    }

    #[inline(always)]
    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        let Some(body) = self.project().body.as_pin_mut() else {
            panic!("{COMPLETED}")
        };
        body.poll(cx)
    }

    #[inline(always)]
    fn end(self: Pin<&mut Self>) {
        self.project().body.set(None);
    }
}

pin_project! {
    /// The slot of a one-shot call: the maker, then in its place the body it made. One slot
    /// where a maker beside the body would take both their sizes in every call's future
    /// (which is moved into place on every call).
    #[project = OnceProj]
    #[project_replace = OnceTaken]
    pub(crate) enum Once<F, Fut> {
        Make { make: F },
        Body { #[pin] body: Fut },
        Spent,
    }
}

impl<F, Fut> Slot for Once<F, Fut>
where
    F: FnOnce() -> Fut,
    Fut: Future,
{
    type Output = Fut::Output;

    #[inline(always)]
    fn running(&self) -> bool {
        matches!(self, Once::Body { .. })
    }

    #[inline(always)]
    fn start(mut self: Pin<&mut Self>) {
        let OnceTaken::Make { make } = self.as_mut().project_replace(Once::Spent) else {
            panic!("{COMPLETED}")
        };
        self.set(Once::Body { body: make() });
    }

    #[inline(always)]
    fn poll_body(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Fut::Output> {
        let OnceProj::Body { body } = self.project() else {
            panic!("{COMPLETED}")
        };
        body.poll(cx)
    }

    #[inline(always)]
    fn end(mut self: Pin<&mut Self>) {
        self.set(Once::Spent);
    }
}

pin_project! {
    /// [`CallFuture`] over any [`Slot`]: the one-shot calls (`call_once` and the attributes)
    /// use [`Once`], whose future is smaller.
    #[must_use = "futures do nothing unless polled"]
    #[project = CallProj]
    pub(crate) struct Call<'a, S, D, H> {
        // Declared first, so dropped first: a cancelled call ends (its drop code runs) before
        // its probe or bulkhead slot frees for the next caller.
        #[pin]
        slot: S,
        state: AttemptState<'a>,
        slow: SlowPart<'a>,
        hooks: H,
        deliver: D,
        // Zero-sized without the `trace` feature.
        span: CallSpan,
    }
}

impl<'a, S, D, H> Call<'a, S, D, H> {
    #[inline]
    fn new(layers: &'a Layers, slot: S, retries: bool, hooks: H, deliver: D) -> Self {
        let mut state = AttemptState::new(layers);
        // The layers' facts as bits the hot path reads instead of the layers.
        state.flags = if retries {
            layers.call_flags
        } else {
            layers.call_flags & !RETRIES
        };
        Call {
            slot,
            state,
            slow: SlowPart(ManuallyDrop::new(None)),
            hooks,
            deliver,
            span: CallSpan::new(layers),
        }
    }
}

impl<'a, F, Fut, D, H> Call<'a, Once<F, Fut>, D, H> {
    /// One attempt, not retried: `make` is called at most once.
    #[inline]
    pub(crate) fn once(layers: &'a Layers, make: F, hooks: H) -> Self
    where
        D: Default,
    {
        Self::once_delivering(layers, make, hooks, D::default())
    }

    /// [`once`](Self::once), the outcome given to the caller by `deliver`.
    #[inline]
    pub(crate) fn once_delivering(layers: &'a Layers, make: F, hooks: H, deliver: D) -> Self {
        Call::new(layers, Once::Make { make }, false, hooks, deliver)
    }
}

impl<S, T, E, D, H> Future for Call<'_, S, D, H>
where
    S: Slot<Output = Result<T, E>>,
    D: Deliver<T, E>,
    H: Hooks<E>,
{
    type Output = D::Output;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.state.flags != 0 {
            return poll_layered(self, cx);
        }
        let mut this = self.project();
        let _span = this.span.enter();
        let layers = this.state.layers();
        // No retry, timeout or waiting layer: one attempt, admitted at once.
        if !this.slot.running() {
            if let Err(rejected) = this.state.admit_now() {
                let outcome = Err(Failure::Rejected(rejected));
                this.span.finish(&outcome, layers);
                return Poll::Ready(this.deliver.deliver(outcome));
            }
            this.span.attempt();
            this.slot.as_mut().start();
        }
        let outcome = match this.slot.as_mut().poll_body(cx) {
            Poll::Ready(output) => output.map_err(Failure::Inner),
            Poll::Pending => return Poll::Pending,
        };
        this.slot.as_mut().end();
        let hooks = &*this.hooks;
        this.state.finish(failed(&outcome, |error| {
            hooks.is_failure(&layers.hooks, error)
        }));
        this.span.finish(&outcome, layers);
        Poll::Ready(this.deliver.deliver(outcome))
    }
}

/// [`CallFuture::poll`] for a call that may retry, time out or wait for a slot. Out of line:
/// inlined, it made every caller's poll (and the frame of whatever polls it) several times
/// larger, though a call without those layers never takes it. Given the pinned future, not
/// its projection: a projection passed by reference is built in memory on every call.
#[inline(never)]
// Without the `retry` feature an attempt is never made again: the loop runs once.
#[cfg_attr(not(feature = "retry"), allow(clippy::never_loop))]
fn poll_layered<S, T, E, D, H>(
    future: Pin<&mut Call<'_, S, D, H>>,
    cx: &mut Context<'_>,
) -> Poll<D::Output>
where
    S: Slot<Output = Result<T, E>>,
    D: Deliver<T, E>,
    H: Hooks<E>,
{
    let mut this = future.project();
    let this = &mut this;
    let _span = this.span.enter_detached();
    let layers = this.state.layers();
    loop {
        if this.state.flags & BACKING_OFF != 0 {
            let slow = this.slow.as_mut().expect("backing off with a timer");
            if let Some(delay) = slow.timer.as_mut() {
                // SAFETY: the timer is boxed with `slow` and never moved out of it while
                // set; it is dropped in place (set to `None`) once done.
                if unsafe { Pin::new_unchecked(delay) }.poll(cx).is_pending() {
                    return Poll::Pending;
                }
            }
            slow.timer = None;
            this.state.flags &= !BACKING_OFF;
        }
        match start(this, layers, cx) {
            Poll::Pending => return Poll::Pending,
            // A refusal at admission is never retried: given back where it is made.
            Poll::Ready(Err(rejected)) => {
                #[cfg(feature = "retry")]
                if let Some(progress) = retried(this.state.flags, this.slow) {
                    crate::served::record_retries(
                        progress.attempts(),
                        Some(crate::served::GaveUp::NotRetryable),
                    );
                }
                let outcome = Err(Failure::Rejected(rejected));
                this.span.finish(&outcome, layers);
                return Poll::Ready(this.deliver.deliver(outcome));
            }
            Poll::Ready(Ok(())) => {}
        }
        let outcome = match run(this, layers, cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome,
        };
        #[cfg(not(feature = "retry"))]
        {
            this.span.finish(&outcome, layers);
            return Poll::Ready(this.deliver.deliver(outcome));
        }
        #[cfg(feature = "retry")]
        let retry = match (&outcome, layers.retry.as_deref()) {
            (Err(_), Some(retry)) if this.state.flags & RETRIES != 0 => retry,
            _ => {
                if let Some(progress) = retried(this.state.flags, this.slow) {
                    record_success(progress);
                }
                this.span.finish(&outcome, layers);
                return Poll::Ready(this.deliver.deliver(outcome));
            }
        };
        #[cfg(feature = "retry")]
        let slow = this.slow.get_or_insert_with(Box::default);
        #[cfg(feature = "retry")]
        let left = deadline_left(layers, slow);
        #[cfg(feature = "retry")]
        let progress = slow.retry.get_or_insert_with(|| retry.resume());
        #[cfg(feature = "retry")]
        {
            this.state.flags |= FAILED_BEFORE;
        }
        #[cfg(feature = "retry")]
        if let Some(left) = left {
            progress.time_left(left);
        }
        #[cfg(feature = "retry")]
        match after_attempt(layers, &*this.hooks, outcome, progress) {
            ControlFlow::Break(outcome) => {
                if progress.gave_up() == Some(crate::served::GaveUp::DeadlineReached) {
                    if let Some(timeout) = layers.timeout.as_deref() {
                        timeout.deadline_exceeded();
                    }
                }
                this.span.finish(&outcome, layers);
                return Poll::Ready(this.deliver.deliver(outcome));
            }
            ControlFlow::Continue(delay) => {
                let flags = this.state.flags;
                *this.state = AttemptState::new(layers);
                this.state.flags = flags;
                slow.timer = Some(tokio::time::sleep(delay));
                this.state.flags |= BACKING_OFF;
            }
        }
    }
}

/// Admits the attempt and starts its body (once); `Ready(Ok)` once the body runs.
#[inline(always)]
fn start<'a, S: Slot, D, H>(
    this: &mut CallProj<'_, 'a, S, D, H>,
    layers: &'a Layers,
    cx: &mut Context<'_>,
) -> Poll<Result<(), Rejected>> {
    if this.slot.running() {
        return Poll::Ready(Ok(()));
    }
    #[cfg(feature = "retry")]
    if this.state.flags & (RETRIES | COUNTED) == RETRIES {
        if let Some(retry) = layers.retry.as_deref() {
            // Counted when the call starts: the retry budget's share is of calls made.
            retry.count_call();
        }
        this.state.flags |= COUNTED;
    }
    if this.state.flags & WAITS != 0 {
        let slow = this.slow.get_or_insert_with(Box::default);
        let admission = slow
            .admission
            .get_or_insert_with(|| Box::pin(admit_waiting(layers)));
        let admitted = match admission.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(admitted) => admitted,
        };
        slow.admission = None;
        let flags = this.state.flags;
        *this.state = admitted?;
        this.state.flags = flags;
    } else {
        this.state.admit_now()?;
    }
    this.span.attempt();
    this.slot.as_mut().start();
    if this.state.flags & TIMED != 0 {
        if let Some(timeout) = layers.timeout.as_deref() {
            timeout.started();
        }
    }
    Poll::Ready(Ok(()))
}

/// Polls the running body against its deadline; reports the outcome to the layers.
#[inline(always)]
fn run<S, D, H, T, E>(
    this: &mut CallProj<'_, '_, S, D, H>,
    layers: &Layers,
    cx: &mut Context<'_>,
) -> Poll<Result<T, Failure<E>>>
where
    S: Slot<Output = Result<T, E>>,
    H: Hooks<E>,
{
    // The body first, as tokio's `Timeout` does: an answer ready at the deadline wins.
    let outcome = match this.slot.as_mut().poll_body(cx) {
        Poll::Ready(output) => output.map_err(Failure::Inner),
        Poll::Pending => {
            let Some(timeout) = layers
                .timeout
                .as_deref()
                .filter(|_| this.state.flags & TIMED != 0)
            else {
                return Poll::Pending;
            };
            // Armed when the body first waits: the deadline counts from the end of its
            // first poll, which in async code returns at once.
            let slow = this.slow.get_or_insert_with(Box::default);
            if slow.timer.is_none() {
                arm(slow, timeout);
            }
            let Some(timer) = slow.timer.as_mut() else {
                unreachable!("armed above")
            };
            // SAFETY: the timer is boxed with `slow` and never moved out of it while set; it
            // is dropped in place (set to `None`) once done.
            match unsafe { Pin::new_unchecked(timer) }.poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) => match slow.limit {
                    TimerLimit::Attempt(after) => {
                        timeout.timed_out();
                        Err(Failure::Rejected(Rejected::Timeout { after }))
                    }
                    TimerLimit::Deadline(deadline) => {
                        timeout.deadline_exceeded();
                        Err(Failure::Rejected(Rejected::DeadlineExceeded { deadline }))
                    }
                },
            }
        }
    };
    // The body ends before its layers let go.
    this.slot.as_mut().end();
    if this.state.flags & TIMED != 0 {
        if let Some(slow) = this.slow.as_mut() {
            slow.timer = None;
        }
    }
    let hooks = &*this.hooks;
    this.state.finish(failed(&outcome, |error| {
        hooks.is_failure(&layers.hooks, error)
    }));
    Poll::Ready(outcome)
}

/// The number of the attempt running (1 for the first).
fn attempt_number(slow: &Slow<'_>) -> u32 {
    #[cfg(feature = "retry")]
    if let Some(progress) = &slow.retry {
        return progress.attempts() + 1;
    }
    let _ = slow;
    1
}

/// Arms the running attempt's timer: its timeout (grown by the retries before it), or the
/// call's deadline when that comes first.
#[cold]
fn arm(slow: &mut Slow<'_>, timeout: &crate::limit::TimeoutPolicy) {
    let (after, deadline) = timeout.limits(attempt_number(slow));
    let now = tokio::time::Instant::now();
    let mut until = later(now, after);
    slow.limit = TimerLimit::Attempt(after);
    if let Some(deadline) = deadline {
        let end = later(*slow.started.get_or_insert(now), deadline);
        if end < until {
            until = end;
            slow.limit = TimerLimit::Deadline(deadline);
        }
    }
    slow.timer = Some(tokio::time::sleep_until(until));
}

/// Before the retry layer decides on a failed attempt: what is left of the call's deadline,
/// if it has one (the clock read here, on the failure path only).
#[cfg(feature = "retry")]
fn deadline_left(layers: &Layers, slow: &mut Slow<'_>) -> Option<Duration> {
    let deadline = layers.timeout.as_deref()?.deadline()?;
    let now = tokio::time::Instant::now();
    let started = *slow.started.get_or_insert(now);
    Some(later(started, deadline).saturating_duration_since(now))
}

/// `at + by`, or about 30 years from `at` when that overflows (`Duration::MAX` says "no
/// limit"; `Instant + Duration` would panic), as tokio's own `sleep` does.
fn later(at: tokio::time::Instant, by: Duration) -> tokio::time::Instant {
    at.checked_add(by)
        .unwrap_or_else(|| at + Duration::from_secs(86_400 * 365 * 30))
}

/// After a failed attempt: `Break` to give the outcome back, `Continue(delay)` to retry.
#[cfg(feature = "retry")]
pub(crate) fn after_attempt<T, E>(
    layers: &Layers,
    hooks: &impl Hooks<E>,
    outcome: Result<T, Failure<E>>,
    progress: &mut RetryState<'_>,
) -> ControlFlow<Result<T, Failure<E>>, Duration> {
    let policy = &layers.hooks;
    if outcome.is_ok() {
        record_success(progress);
    }
    let decision = retry_or_return(
        outcome,
        progress,
        |error| hooks.retry_if(policy, error),
        |error| hooks.retry_after(policy, error),
        |attempt, delay, cause| hooks.on_retry(policy, attempt, delay, cause),
    );
    if let ControlFlow::Break(Err(_)) = &decision {
        // Given up: the attempts less the first were retries.
        crate::served::record_retries(progress.attempts().saturating_sub(1), progress.gave_up());
    }
    decision
}

/// The retry layer's progress, once an attempt of the call has failed (a flag tested first:
/// the success path already holds the flags).
#[cfg(feature = "retry")]
#[inline(always)]
fn retried<'s, 'a>(flags: u16, slow: &'s SlowPart<'a>) -> Option<&'s RetryState<'a>> {
    if flags & FAILED_BEFORE == 0 {
        return None;
    }
    slow.as_ref().and_then(|slow| slow.retry.as_ref())
}

/// A success after failures: each failure was followed by a retry.
#[cfg(feature = "retry")]
#[inline(always)]
pub(crate) fn record_success(progress: &RetryState<'_>) {
    if progress.attempts() > 0 {
        crate::served::record_retries(progress.attempts(), None);
    }
}

/// An attempt admitted by layers that may wait for a slot.
async fn admit_waiting(layers: &Layers) -> Result<AttemptState<'_>, Rejected> {
    let mut state = AttemptState::new(layers);
    state.admit().await?;
    Ok(state)
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
    pub fn call<T, E, F, Fut>(&self, call: F) -> CallFuture<'_, F, Fut, OwnError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: From<Rejected> + 'static,
    {
        CallFuture::new(&self.layers, call, true, FromPolicy)
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
    pub fn try_call<T, E, F, Fut>(&self, call: F) -> CallFuture<'_, F, Fut, WithFailure>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
        E: 'static,
    {
        CallFuture::new(&self.layers, call, true, FromPolicy)
    }

    /// [`call`](Self::call) for a body that can run only once (it moves what it captures):
    /// one attempt, not retried.
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// let policy = Policy::builder("call_once_doc").build().unwrap();
    /// let order = String::from("BTCUSDT buy 0.1");
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// // The body moves `order` into the request: it could not run twice.
    /// let sent = policy.call_once(|| async move { Ok::<_, Rejected>(order.len()) }).await;
    /// assert_eq!(sent, Ok(15));
    /// # });
    /// ```
    #[inline]
    pub fn call_once<'a, T, E, F, Fut>(&'a self, call: F) -> impl Future<Output = Result<T, E>> + 'a
    where
        F: FnOnce() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        T: 'a,
        E: From<Rejected> + 'static,
    {
        // Made at most once: the call is not retried, and a refused attempt makes nothing.
        Call::<_, OwnError, _>::once(&self.layers, call, FromPolicy)
    }

    /// [`call_once`](Self::call_once) for any error type.
    ///
    /// ```
    /// use reliable_runtime::{Failure, Policy};
    ///
    /// let policy = Policy::builder("try_call_once_doc").build().unwrap();
    /// let order = String::from("BTCUSDT sell 0.1");
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let sent = policy.try_call_once(|| async move { Err::<(), _>(std::io::Error::other(order)) }).await;
    /// assert!(matches!(sent, Err(Failure::Inner(error)) if error.to_string() == "BTCUSDT sell 0.1"));
    /// # });
    /// ```
    #[inline]
    pub fn try_call_once<'a, T, E, F, Fut>(
        &'a self,
        call: F,
    ) -> impl Future<Output = Result<T, Failure<E>>> + 'a
    where
        F: FnOnce() -> Fut + 'a,
        Fut: Future<Output = Result<T, E>> + 'a,
        T: 'a,
        E: 'static,
    {
        // Made at most once: the call is not retried, and a refused attempt makes nothing.
        Call::<_, WithFailure, _>::once(&self.layers, call, FromPolicy)
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
    ///
    /// ```
    /// use reliable_runtime::{Failure, Policy};
    ///
    /// let policy = Policy::builder("try_call_blocking_doc").breaker("try_call_blocking_doc", |b| b.failure_threshold(1)).build().unwrap();
    /// let failed = policy.try_call_blocking(|| Err::<(), _>(std::io::Error::other("down")));
    /// assert!(matches!(failed, Err(Failure::Inner(_))));
    /// let refused = policy.try_call_blocking(|| Ok::<_, std::io::Error>(()));
    /// assert!(matches!(refused, Err(Failure::Rejected(_))), "the breaker opened");
    /// ```
    pub fn try_call_blocking<T, E>(
        &self,
        mut call: impl FnMut() -> Result<T, E>,
    ) -> Result<T, Failure<E>>
    where
        E: 'static,
    {
        self.traced_blocking(|span| {
            #[cfg(not(feature = "retry"))]
            return self.attempt_blocking(span, &FromPolicy, &mut call);
            #[cfg(feature = "retry")]
            let mut progress = self.layers.retry.as_deref().map(RetryPolicy::start);
            #[cfg(feature = "retry")]
            loop {
                let outcome = self.attempt_blocking(span, &FromPolicy, &mut call);
                let Some(progress) = progress.as_mut() else {
                    return outcome;
                };
                match after_attempt(&self.layers, &FromPolicy, outcome, progress) {
                    ControlFlow::Break(outcome) => return outcome,
                    ControlFlow::Continue(delay) => std::thread::sleep(delay),
                }
            }
        })
    }

    /// [`call_blocking`](Self::call_blocking) for a body that can run only once: one
    /// attempt, not retried.
    ///
    /// ```
    /// use reliable_runtime::{Policy, Rejected};
    ///
    /// let policy = Policy::builder("call_once_blocking_doc").build().unwrap();
    /// let report = vec![1u8, 2, 3];
    /// let written = policy.call_once_blocking(move || Ok::<_, Rejected>(report.into_iter().count()));
    /// assert_eq!(written, Ok(3));
    /// ```
    pub fn call_once_blocking<T, E>(&self, call: impl FnOnce() -> Result<T, E>) -> Result<T, E>
    where
        E: From<Rejected> + 'static,
    {
        self.try_call_once_blocking(call)
            .map_err(Failure::into_error)
    }

    /// [`call_once_blocking`](Self::call_once_blocking) for any error type.
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("try_call_once_blocking_doc").build().unwrap();
    /// let report = vec![1u8, 2, 3];
    /// let written = policy.try_call_once_blocking(move || Ok::<_, std::io::Error>(report.len()));
    /// assert_eq!(written.unwrap(), 3);
    /// ```
    pub fn try_call_once_blocking<T, E>(
        &self,
        call: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Failure<E>>
    where
        E: 'static,
    {
        self.traced_blocking(|span| self.attempt_blocking(span, &FromPolicy, call))
    }

    /// One attempt of a blocking call.
    pub(crate) fn attempt_blocking<T, E>(
        &self,
        span: &CallSpan,
        hooks: &impl Hooks<E>,
        call: impl FnOnce() -> Result<T, E>,
    ) -> Result<T, Failure<E>> {
        let mut state = AttemptState::new(&self.layers);
        state.admit_blocking().map_err(Failure::Rejected)?;
        span.attempt();
        let outcome = call().map_err(Failure::Inner);
        let policy = &self.layers.hooks;
        state.finish(failed(&outcome, |error| hooks.is_failure(policy, error)));
        outcome
    }

    /// A blocking call inside its span (feature `trace`), its attempts counted by
    /// [`attempt_blocking`](Self::attempt_blocking), its outcome recorded.
    #[inline]
    pub(crate) fn traced_blocking<T, E>(
        &self,
        call: impl FnOnce(&CallSpan) -> Result<T, Failure<E>>,
    ) -> Result<T, Failure<E>> {
        let span = CallSpan::new(&self.layers);
        let _entered = span.enter();
        let outcome = call(&span);
        span.finish(&outcome, &self.layers);
        outcome
    }

    /// The layers, for the attributes' helpers.
    pub(crate) fn layers(&self) -> &Layers {
        &self.layers
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
    ///
    /// ```
    /// use reliable_runtime::{Failure, Policy};
    ///
    /// let policy = Policy::builder("try_call_or_else_doc").build().unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let price = policy
    ///     .try_call_or_else(
    ///         || async { Err::<f64, _>(std::io::Error::other("down")) },
    ///         |_cause: &Failure<std::io::Error>| async { Ok(96_500.0) },
    ///     )
    ///     .await;
    /// assert_eq!(price.unwrap(), 96_500.0);
    /// # });
    /// ```
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

    /// [`fall_back`](Self::fall_back) for a blocking call.
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("fall_back_blocking_doc").build().unwrap();
    /// let failure = policy.try_call_blocking(|| Err::<u32, _>(std::io::Error::other("down"))).unwrap_err();
    /// assert_eq!(policy.fall_back_blocking(failure, |_cause| Ok(0)).unwrap(), 0);
    /// assert_eq!(policy.degradation().unwrap().snapshot().fallbacks, 1);
    /// ```
    pub fn fall_back_blocking<T, E>(
        &self,
        failure: Failure<E>,
        fallback: impl FnOnce(&Failure<E>) -> Result<T, E>,
    ) -> Result<T, Failure<E>> {
        let answer =
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| fallback(&failure))).ok();
        finish_fallback(self.fallback.counters(), answer, failure)
    }

    /// The fallback's answer for a call that failed with `failure`, counted by the policy's
    /// fallback counters; `failure` itself if the fallback panicked (while it was made or
    /// polled). [`call_or_else`](Self::call_or_else) is [`try_call`](Self::try_call) and this.
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("fall_back_doc").build().unwrap();
    /// # tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap().block_on(async {
    /// let failure = policy.try_call(|| async { Err::<u32, _>(std::io::Error::other("down")) }).await.unwrap_err();
    /// // A fallback that panics gives the original failure back.
    /// let answer: Result<u32, _> = policy.fall_back(failure, |_cause| async { panic!("no last price") }).await;
    /// assert!(answer.unwrap_err().inner().is_some());
    /// # });
    /// ```
    pub async fn fall_back<T, E, Fallback, Answer>(
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

    /// [`fall_back`](Self::fall_back) with a fallback whose future may borrow the cause (an
    /// `async fn` taking `&Failure<E>`). Closures passed to `fall_back` get their argument's
    /// type inferred, which `AsyncFnOnce` bounds do not give, and a generic `FnOnce` returning
    /// a future is not an `AsyncFnOnce`, hence two methods.
    pub(crate) async fn fall_back_borrowing<T, E, Fallback>(
        &self,
        failure: Failure<E>,
        fallback: Fallback,
    ) -> Result<T, Failure<E>>
    where
        Fallback: AsyncFnOnce(&Failure<E>) -> Result<T, E>,
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
    ///
    /// ```
    /// use reliable_runtime::Policy;
    ///
    /// let policy = Policy::builder("measure_blocking_doc").monitor("measure_blocking_doc", |sla| sla).build().unwrap();
    /// let rows = policy.measure_blocking(|| vec!["BTC", "ETH"], |rows| rows.is_empty());
    /// assert_eq!(rows.len(), 2);
    /// assert_eq!(policy.monitor().unwrap().metrics().total_calls, 1);
    /// ```
    pub fn measure_blocking<R>(
        &self,
        call: impl FnOnce() -> R,
        is_failure: impl FnOnce(&R) -> bool,
    ) -> R {
        crate::policy::layers::monitored_sync(&self.monitor_only, call, is_failure)
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
            crate::served::record(|| Source::Fallback {
                cause: match &failure {
                    Failure::Rejected(rejected) => rejected.to_string(),
                    Failure::Inner(_) => {
                        format!("the call failed with a `{}`", std::any::type_name::<E>())
                    }
                },
            });
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
