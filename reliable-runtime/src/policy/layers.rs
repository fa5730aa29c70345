//! The per-attempt pipeline: breaker, rate limiter, bulkhead, monitor, timeout, the call.
//!
//! One mechanism serves every shape: [`AttemptState`] admits an attempt through the layers,
//! starts and finishes its measurement, and settles the breaker permit, reading the clock at
//! most twice (one reading is shared by every layer on the same clock at admission, one at the
//! end). The futures around it are hand-written rather than `async fn`s: an `async fn` stores
//! its arguments and then moves the awaited future into a second slot of its state, and the
//! copies of that state (and of a `Permit` struct kept across polls) cost store-forwarding
//! stalls and a `memmove` per call; these hold the call once, pinned, with plain words beside.

use crate::breaker::{CircuitBreaker, Permit};
use crate::clock::{Clock, Timestamp};
use crate::error::{catch_callback, Failure, Rejected};
use crate::limit::TimeoutPolicy;
#[cfg(feature = "limit")]
use crate::limit::{Bulkhead, RateLimiter, WeightedLimiter};
use crate::policy::ErrorHooks;
#[cfg(feature = "retry")]
use crate::retry::{RetryPolicy, RetryState};
use crate::sla::SlaMonitor;
use pin_project_lite::pin_project;
use std::future::Future;
#[cfg(feature = "retry")]
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
#[cfg(any(feature = "retry", feature = "limit"))]
use std::time::Duration;

const COMPLETED: &str = "a reliability pipeline future was polled after it completed";

/// The per-attempt layers of a call site or [`Policy`](crate::Policy) (each optional).
///
/// Owned (`Arc`s of the registered instances), so a `Policy` can be built, cloned and dropped
/// like any value; an attempt borrows them, so the hot path takes no reference count.
#[derive(Clone, Debug)]
pub(crate) struct Layers {
    /// The policy's name (for the `trace` feature's spans).
    #[cfg_attr(not(feature = "trace"), allow(dead_code))]
    pub(crate) name: &'static str,
    /// The circuit breaker.
    pub(crate) breaker: Option<Arc<CircuitBreaker>>,
    /// The rate limiter.
    #[cfg(feature = "limit")]
    pub(crate) limiter: Option<Arc<RateLimiter>>,
    /// Whether to wait for a rate-limit slot (else refuse at once).
    #[cfg(feature = "limit")]
    pub(crate) limiter_waits: bool,
    /// The weighted limiter and the weight of one call. Admitted on the path that may wait
    /// (its lock is no place for the fast path), so a policy with one always takes that path.
    #[cfg(feature = "limit")]
    pub(crate) weighted: Option<(Arc<WeightedLimiter>, u32)>,
    /// The bulkhead.
    #[cfg(feature = "limit")]
    pub(crate) bulkhead: Option<Arc<Bulkhead>>,
    /// The SLA monitor.
    pub(crate) monitor: Option<Arc<SlaMonitor>>,
    /// The per-attempt timeout.
    pub(crate) timeout: Option<Arc<TimeoutPolicy>>,
    /// The retry policy around the attempts.
    #[cfg(feature = "retry")]
    pub(crate) retry: Option<Arc<RetryPolicy>>,
    /// The breaker and the monitor read the same clock, so the breaker reuses the monitor's
    /// readings; set by [`Layers::ready`].
    pub(crate) shared_clock: bool,
    /// The error-typed callbacks (`failure_if`, `retry_if`, ...).
    pub(crate) hooks: ErrorHooks,
    /// An admission may wait (a rate-limit slot, a bulkhead's `max_wait`); set by
    /// [`Layers::ready`].
    pub(crate) waits: bool,
    /// The flags a call through these layers starts with; set by [`Layers::ready`].
    pub(crate) call_flags: u16,
    /// A limit shared by every instance through Redis, and the weight of one call: admitted
    /// on the path that may wait (it asks the server). Last: the fields every call reads keep
    /// their places.
    #[cfg(feature = "redis")]
    pub(crate) shared_limit: Option<(Arc<crate::shared::SharedRateLimiter>, u32)>,
}

impl Layers {
    /// No layer at all.
    pub(crate) const NONE: Layers = Layers {
        name: "",
        breaker: None,
        #[cfg(feature = "limit")]
        limiter: None,
        #[cfg(feature = "limit")]
        limiter_waits: false,
        #[cfg(feature = "limit")]
        weighted: None,
        #[cfg(feature = "limit")]
        bulkhead: None,
        monitor: None,
        timeout: None,
        #[cfg(feature = "retry")]
        retry: None,
        shared_clock: false,
        hooks: ErrorHooks::NONE,
        waits: false,
        call_flags: 0,
        #[cfg(feature = "redis")]
        shared_limit: None,
    };

    #[cfg(feature = "limit")]
    fn has_shared_limit(&self) -> bool {
        #[cfg(feature = "redis")]
        return self.shared_limit.is_some();
        #[cfg(not(feature = "redis"))]
        false
    }

    /// The layers with the facts derived from them filled in (done once per call site).
    pub(crate) fn ready(mut self) -> Self {
        self.shared_clock = match (&self.breaker, &self.monitor) {
            (Some(breaker), Some(monitor)) => breaker.clock().same_source(monitor.clock()),
            _ => false,
        };
        #[cfg(feature = "limit")]
        {
            self.waits = (self.limiter.is_some() && self.limiter_waits)
                || self.weighted.is_some()
                || self.has_shared_limit()
                || self
                    .bulkhead
                    .as_ref()
                    .is_some_and(|bulkhead| !bulkhead.config().max_wait.is_zero());
        }
        self.call_flags = crate::policy::call_flags(&self);
        self
    }
}

/// `AttemptState::permit_start` when the breaker took no reading. Zero, so that a new
/// attempt's state is the layers' pointer and zeros, which the compiler writes in fewer stores
/// (a reading of exactly 0 is kept as 1 ns).
const NO_READING: u64 = 0;

/// A clock reading taken during admission, reused by later layers on the same clock.
#[derive(Clone, Copy)]
struct Reading<'a> {
    at: Timestamp,
    clock: &'a Clock,
}

/// Reuses `reading` if it comes from `clock`'s source, else reads `clock`.
#[inline]
fn read<'a>(reading: &mut Option<Reading<'a>>, clock: &'a Clock) -> Timestamp {
    match reading {
        Some(reading) if reading.clock.same_source(clock) => reading.at,
        _ => {
            let at = clock.now();
            *reading = Some(Reading { at, clock });
            at
        }
    }
}

/// Half a word, with `AttemptState::holds_slot` and `flags` as the other half: a byte-sized field written
/// when the future is built and then copied as part of a word when the future is moved stalls
/// the copy (a failed store-to-load forward).
#[derive(Clone, Copy, PartialEq, Eq)]
#[repr(u32)]
///
/// Numbered so that the stages holding something (`Admitted`, `Running`) are the two high
/// ones: the drop of every completed or refused attempt tests one comparison.
enum Stage {
    /// Nothing taken yet.
    Idle = 0,
    /// Reported, refused or cancelled.
    Done = 1,
    /// A breaker permit is held (as plain words); the call has not started.
    Admitted = 2,
    /// The call runs and is being measured.
    Running = 3,
}

/// One attempt's passage through the layers, kept as plain words so the futures holding it
/// across polls copy nothing. Dropped mid-call it reports a panic as a failure and otherwise
/// releases what it took (a half-open probe slot) without counting anything.
pub(crate) struct AttemptState<'a> {
    /// By reference to the call site's `static` layers: the futures holding this state are
    /// moved into place, and a larger state turns that move into a `memmove` call.
    layers: &'a Layers,
    stage: Stage,
    permit_word: u64,
    /// The breaker's start reading, or [`NO_READING`] (a word, where an `Option` would take
    /// two and grow every call's future).
    permit_start: u64,
    monitor_start: Timestamp,
    /// Whether the attempt holds a bulkhead slot (a flag beside `stage`, where the permit
    /// itself would take two more words of every call's future).
    holds_slot: u16,
    /// Bits its owner keeps here rather than in a field of its own, which would take a word
    /// of padding (`CallFuture`'s facts about the call).
    pub(crate) flags: u16,
}

impl<'a> AttemptState<'a> {
    /// An attempt through `layers`, not admitted yet.
    #[inline]
    pub(crate) fn new(layers: &'a Layers) -> Self {
        AttemptState {
            layers,
            stage: Stage::Idle,
            permit_word: 0,
            permit_start: NO_READING,
            monitor_start: Timestamp::default(),
            holds_slot: 0,
            flags: 0,
        }
    }

    /// The breaker's start reading, if it took one.
    #[inline(always)]
    fn permit_start(&self) -> Option<Timestamp> {
        (self.permit_start != NO_READING).then_some(Timestamp::from_nanos(self.permit_start))
    }

    /// The layers this attempt goes through.
    #[inline(always)]
    pub(crate) fn layers(&self) -> &'a Layers {
        self.layers
    }

    /// Takes a breaker permit, if there is a breaker.
    #[inline(always)]
    fn admit_breaker(&mut self) -> Result<(), Rejected> {
        if let Some(breaker) = self.layers.breaker.as_deref() {
            let (word, start) = breaker.admit_raw()?;
            self.permit_word = word;
            if let Some(start) = start {
                self.permit_start = start.as_nanos().max(1);
            }
        }
        self.stage = Stage::Admitted;
        Ok(())
    }

    /// Releases the permit uncounted (a later layer refused the call).
    #[cfg(feature = "limit")]
    fn refuse(&mut self, rejected: Rejected) -> Rejected {
        self.release();
        rejected
    }

    /// Frees the bulkhead slot, if the attempt holds one.
    #[inline(always)]
    fn give_back_slot(&mut self) {
        if self.holds_slot != 0 {
            self.holds_slot = 0;
            #[cfg(feature = "limit")]
            #[cfg(feature = "limit")]
            if let Some(bulkhead) = self.layers.bulkhead.as_deref() {
                bulkhead.give_back();
            }
        }
    }

    #[cold]
    fn release(&mut self) {
        self.give_back_slot();
        if let (Stage::Admitted | Stage::Running, Some(breaker)) =
            (self.stage, self.layers.breaker.as_deref())
        {
            // Not panicking: the permit's drop frees a half-open slot and counts nothing.
            drop(Permit::from_raw(
                breaker,
                self.permit_word,
                self.permit_start(),
            ));
        }
        self.stage = Stage::Done;
    }

    /// Admits the attempt through every layer that decides at once (breaker, a non-waiting
    /// limiter, the bulkhead without waiting), then starts the measurement.
    #[inline(always)]
    pub(crate) fn admit_now(&mut self) -> Result<(), Rejected> {
        self.admit_breaker()?;
        #[cfg_attr(not(feature = "limit"), allow(unused_mut))]
        let mut reading = self.breaker_reading();
        #[cfg(feature = "limit")]
        if let Some(limiter) = self.layers.limiter.as_deref() {
            let now = read(&mut reading, limiter.clock());
            if let Err(rejected) = limiter.try_acquire_at(now) {
                return Err(self.refuse(rejected));
            }
        }
        #[cfg(feature = "limit")]
        if let Some(bulkhead) = self.layers.bulkhead.as_deref() {
            match bulkhead.try_take() {
                Ok(()) => self.holds_slot = 1,
                Err(rejected) => return Err(self.refuse(rejected)),
            }
        }
        self.start(reading);
        Ok(())
    }

    /// [`admit_now`](Self::admit_now) for layers that may wait: for a rate-limit slot
    /// (`wait = true`) and a bulkhead slot (`max_wait`).
    pub(crate) async fn admit(&mut self) -> Result<(), Rejected> {
        self.admit_breaker()?;
        #[cfg(feature = "limit")]
        match (self.layers.limiter.as_deref(), self.layers.limiter_waits) {
            (Some(limiter), true) => limiter.acquire().await,
            (Some(limiter), false) => {
                if let Err(rejected) = limiter.try_acquire() {
                    return Err(self.refuse(rejected));
                }
            }
            (None, _) => {}
        }
        #[cfg(feature = "limit")]
        if let Some((limiter, weight)) = &self.layers.weighted {
            let admitted = if self.layers.limiter_waits {
                limiter.acquire(*weight).await
            } else {
                limiter.try_acquire(*weight)
            };
            if let Err(rejected) = admitted {
                return Err(self.refuse(rejected));
            }
        }
        // Boxed as a trait object: the server's answer is a large, deep future, which would
        // otherwise grow every call's future (and its moves) and deepen its type past what a
        // caller's `Send` check can follow.
        #[cfg(feature = "redis")]
        if let Some((limiter, weight)) = &self.layers.shared_limit {
            let waits = self.layers.limiter_waits;
            let admission: std::pin::Pin<
                Box<dyn Future<Output = Result<(), Rejected>> + Send + '_>,
            > = Box::pin(async move {
                if waits {
                    limiter.acquire(*weight).await
                } else {
                    limiter.try_acquire(*weight).await
                }
            });
            let admitted = admission.await;
            if let Err(rejected) = admitted {
                return Err(self.refuse(rejected));
            }
        }
        #[cfg(feature = "limit")]
        if let Some(bulkhead) = self.layers.bulkhead.as_deref() {
            match bulkhead.take().await {
                Ok(()) => self.holds_slot = 1,
                Err(rejected) => return Err(self.refuse(rejected)),
            }
        }
        let reading = self.breaker_reading();
        self.start(reading);
        Ok(())
    }

    /// [`admit_now`](Self::admit_now) for a blocking call: a waiting limiter sleeps the thread;
    /// the bulkhead refuses at once when full.
    pub(crate) fn admit_blocking(&mut self) -> Result<(), Rejected> {
        self.admit_breaker()?;
        #[cfg(feature = "limit")]
        match (self.layers.limiter.as_deref(), self.layers.limiter_waits) {
            (Some(limiter), true) => {
                while let Err(rejected) = limiter.try_acquire() {
                    let wait = rejected.retry_after().unwrap_or(Duration::from_millis(1));
                    std::thread::sleep(wait.max(Duration::from_micros(1)));
                }
            }
            (Some(limiter), false) => {
                if let Err(rejected) = limiter.try_acquire() {
                    return Err(self.refuse(rejected));
                }
            }
            (None, _) => {}
        }
        #[cfg(feature = "limit")]
        if let Some((limiter, weight)) = &self.layers.weighted {
            loop {
                match limiter.try_acquire(*weight) {
                    Ok(()) => break,
                    Err(rejected) if self.layers.limiter_waits && limiter.fits(*weight) => {
                        let wait = rejected.retry_after().unwrap_or(Duration::from_millis(1));
                        std::thread::sleep(wait.max(Duration::from_micros(1)));
                    }
                    Err(rejected) => return Err(self.refuse(rejected)),
                }
            }
        }
        // A blocking call cannot wait on the server: it takes from the local share.
        #[cfg(feature = "redis")]
        if let Some((limiter, weight)) = &self.layers.shared_limit {
            if let Err(rejected) = limiter.try_acquire_locally(*weight) {
                return Err(self.refuse(rejected));
            }
        }
        #[cfg(feature = "limit")]
        if let Some(bulkhead) = self.layers.bulkhead.as_deref() {
            match bulkhead.try_take() {
                Ok(()) => self.holds_slot = 1,
                Err(rejected) => return Err(self.refuse(rejected)),
            }
        }
        let reading = self.breaker_reading();
        self.start(reading);
        Ok(())
    }

    /// The breaker's start time, if it read the clock for this attempt.
    #[inline(always)]
    fn breaker_reading(&self) -> Option<Reading<'a>> {
        let breaker = self.layers.breaker.as_deref()?;
        Some(Reading {
            at: self.permit_start()?,
            clock: breaker.clock(),
        })
    }

    /// Starts measuring, reusing an admission reading of the monitor's clock.
    #[inline(always)]
    fn start(&mut self, mut reading: Option<Reading<'a>>) {
        if let Some(monitor) = self.layers.monitor.as_deref() {
            self.monitor_start = read(&mut reading, monitor.clock());
        }
        self.stage = Stage::Running;
    }

    /// Reports the attempt's outcome to the monitor and the breaker and frees its slot.
    #[inline(always)]
    pub(crate) fn finish(&mut self, failed: bool) {
        if self.stage != Stage::Running {
            return;
        }
        self.stage = Stage::Done;
        self.give_back_slot();
        let mut timing = None;
        if let Some(monitor) = self.layers.monitor.as_deref() {
            let end = monitor.finish(self.monitor_start, failed);
            if self.layers.shared_clock {
                timing = Some((end.saturating_duration_since(self.monitor_start), end));
            }
        }
        if let Some(breaker) = self.layers.breaker.as_deref() {
            breaker.record_raw(self.permit_word, self.permit_start(), failed, timing);
        }
    }
}

impl Drop for AttemptState<'_> {
    // Inlined, and only the stage test: a completed or refused attempt (`Done`, `Idle`) is
    // one comparison. With the report of an abandoned attempt inlined as well, the drop glue
    // grew too large to inline and cost a call on every refusal.
    #[inline(always)]
    fn drop(&mut self) {
        if matches!(self.stage, Stage::Admitted | Stage::Running) {
            self.abandon();
        }
    }
}

impl AttemptState<'_> {
    /// Dropped while admitted or running: a panic counts as a failure, a cancellation
    /// releases what the attempt took without counting anything.
    #[cold]
    #[inline(never)]
    fn abandon(&mut self) {
        if self.stage == Stage::Running && std::thread::panicking() {
            self.finish(true);
        } else {
            self.release();
        }
    }
}

/// Whether an attempt's outcome counts as a failure: the call's own error by `is_failure`, and
/// every rejection that reached it (a timeout).
#[inline]
pub(crate) fn failed<T, E>(
    outcome: &Result<T, Failure<E>>,
    is_failure: impl FnOnce(&E) -> bool,
) -> bool {
    match outcome {
        Ok(_) => false,
        Err(Failure::Inner(error)) => catch_callback("failure_if", true, || is_failure(error)),
        Err(Failure::Rejected(_)) => true,
    }
}

pin_project! {
    /// The future of `#[monitored]` alone: measures `call`, whatever it returns.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct Monitored<'a, F, C> {
        // Declared first, so dropped first: a cancelled call ends before its layers let go.
        #[pin]
        call: F,
        state: AttemptState<'a>,
        failed: Option<C>,
    }
}

/// `#[monitored]` alone, async: measure `call`, classify its output with `failed`.
///
/// `call` comes before `failed` so the output type is known when the classifier closure is
/// type-checked (closures are checked in argument order).
#[inline]
pub(crate) fn monitored<'a, F, C>(layers: &'a Layers, call: F, failed: C) -> Monitored<'a, F, C>
where
    F: Future,
    C: FnOnce(&F::Output) -> bool,
{
    Monitored {
        state: AttemptState::new(layers),
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
        if this.state.stage == Stage::Idle {
            this.state.start(None);
        }
        let output = match this.call.poll(cx) {
            Poll::Ready(output) => output,
            Poll::Pending => return Poll::Pending,
        };
        let failed = this.failed.take().expect(COMPLETED);
        this.state.finish(failed(&output));
        crate::served::record(|| crate::served::Source::Fresh);
        Poll::Ready(output)
    }
}

/// `#[monitored]` alone, blocking.
#[inline]
pub(crate) fn monitored_sync<R>(
    layers: &Layers,
    call: impl FnOnce() -> R,
    failed: impl FnOnce(&R) -> bool,
) -> R {
    let mut state = AttemptState::new(layers);
    state.start(None);
    let output = call();
    state.finish(failed(&output));
    crate::served::record(|| crate::served::Source::Fresh);
    output
}

/// After a failed attempt: `Break(outcome)` to give it back, `Continue(delay)` to retry
/// after `delay`.
///
/// `on_retry(attempt, delay, &failure)` runs before each retry (the attempt about to be made,
/// counting from 1); a panic in it is caught and logged, never propagated to the caller.
#[cfg(feature = "retry")]
pub(crate) fn retry_or_return<T, E, RetryIf, RetryAfter, OnRetry>(
    outcome: Result<T, Failure<E>>,
    retry: &mut RetryState<'_>,
    retry_if: RetryIf,
    retry_after: RetryAfter,
    on_retry: OnRetry,
) -> ControlFlow<Result<T, Failure<E>>, Duration>
where
    RetryIf: FnOnce(&E) -> bool,
    RetryAfter: FnOnce(&E) -> Option<Duration>,
    OnRetry: FnOnce(u32, Duration, &Failure<E>),
{
    let failure = match outcome {
        Ok(value) => return ControlFlow::Break(Ok(value)),
        Err(failure) => failure,
    };
    match retry.after_outcome(&failure, retry_if, retry_after) {
        Some(delay) => {
            let attempt = retry.attempts() + 1;
            catch_callback("on_retry", (), || on_retry(attempt, delay, &failure));
            ControlFlow::Continue(delay)
        }
        None => ControlFlow::Break(Err(failure)),
    }
}
