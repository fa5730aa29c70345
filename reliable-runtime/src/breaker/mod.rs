//! Circuit breaker: stop calling a service that keeps failing, probe it, recover.
//!
//! ```text
//! CLOSED --(a trip rule fires)--> OPEN --(timeout passes, next call looks)--> HALF_OPEN
//!    ^                                                                        |      |
//!    +--------------------(success_threshold successes)----------------------+      |
//!                         OPEN <---------------(one failure)-------------------------+
//! ```
//!
//! No timer runs per breaker: an open breaker turns half-open when the next call reads the clock
//! and finds the timeout over. A call through a closed breaker is one atomic load to admit and
//! one or two to record; no lock, no allocation.
//!
//! ```
//! use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
//! use reliable_runtime::clock::Clock;
//! use reliable_runtime::{Failure, Rejected};
//! use std::time::Duration;
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let (clock, hand) = Clock::manual();
//! let config = BreakerConfig::cex().failure_threshold(2).success_threshold(1).clock(clock);
//! let breaker = CircuitBreaker::new("exchange", config).unwrap();
//!
//! for _ in 0..2 {
//!     let result = breaker.call(async { Err::<(), _>("502") }).await;
//!     assert_eq!(result, Err(Failure::Inner("502")));
//! }
//! assert_eq!(breaker.state(), BreakerState::Open);
//! let rejected = breaker.call(async { Ok::<_, &str>(1) }).await.unwrap_err();
//! assert!(matches!(rejected, Failure::Rejected(Rejected::CircuitOpen { .. })));
//!
//! hand.advance(Duration::from_secs(30));
//! assert_eq!(breaker.call(async { Ok::<_, &str>(1) }).await, Ok(1)); // the probe succeeds
//! assert_eq!(breaker.state(), BreakerState::Closed);
//! # }
//! ```

mod config;
pub(crate) mod state;

pub use config::{BreakerConfig, BreakerWindow, MAX_HALF_OPEN_CALLS};
pub use state::{BreakerState, BreakerTransition};

use crate::clock::{duration_to_nanos, Clock, Timestamp};
use crate::common::intern::intern;
use crate::common::live::Live;
use crate::common::shard::ShardedCounter;
use crate::common::window::{OutcomeWindow, WindowCounts};
use crate::error::{catch_callback, ConfigError, Failure, Rejected};
use crate::event::{self, Event};
use crate::health::Exposition;
use crate::sync::{AtomicU32, AtomicU64, Mutex};
use crossbeam_utils::CachePadded;
use serde::Serialize;
use state::{Word, ONE_PROBE};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU32 as StdAtomicU32, AtomicU64 as StdAtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A circuit breaker. Share it (`Arc`, the registry, or a `static`) between the calls it guards.
pub struct CircuitBreaker {
    name: &'static str,
    group: Option<Arc<str>>,
    /// Swapped whole by [`reconfigure`](Self::reconfigure); read where a decision needs it
    /// (a trip, a probe, the open timeout), never on a closed call.
    config: Live<BreakerConfig>,
    /// The clock, fixed at creation (a reconfiguration keeps it).
    clock: Clock,
    /// What every closed call reads of the configuration, kept beside it as plain words the
    /// compiler may read once per call: whether to time calls, and whether a slow-call rule
    /// runs. Fixed at creation (what the window holds depends on them).
    needs_timing: bool,
    slow_rule: bool,
    /// The slow-call duration, read by closed calls when a slow-call rule runs.
    slow_call_nanos: StdAtomicU64,
    /// And what a half-open admission reads: probes allowed in flight at once.
    half_open_max_calls: StdAtomicU32,
    word: CachePadded<AtomicU64>,
    consecutive_failures: CachePadded<AtomicU32>,
    /// Successful probes of the current half-open period: the period's generation in the high
    /// 32 bits (see [`successes_tag`]), the count in the low 32.
    half_open_successes: AtomicU64,
    /// When an open breaker may probe, on the clock's coarse timeline (millisecond precision is
    /// plenty for an open timeout, and the coarse reading makes each rejection cheaper).
    open_until: AtomicU64,
    window: Option<OutcomeWindow>,
    not_permitted: ShardedCounter,
    /// Serializes transitions (rare) so each one's side data is written before its word is
    /// published; never taken on the call path.
    transitions: Mutex<Transitions>,
}

#[derive(Default)]
struct Transitions {
    /// Trips since the breaker last closed; grows the open timeout.
    trips: u32,
    /// Transitions ever made.
    total: u64,
}

impl fmt::Debug for CircuitBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CircuitBreaker")
            .field("name", &self.name)
            .field("state", &self.state())
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// A breaker's counters at one moment, as `get_system_health()` shows them
/// (`circuit_breakers`).
///
/// The counters start at zero when the breaker is created (on the first call of a fn that
/// names it, or when it is registered by hand) and live in memory until the process ends.
/// Entering `CLOSED` (successful probes, or [`reset`](CircuitBreaker::reset)) clears
/// `failure_count`, the rate window and `trips`; `not_permitted_calls` is never cleared. Only
/// calls admitted while `CLOSED` feed `failure_count` and the window: probe outcomes, calls
/// while `DISABLED`, cancelled calls and outcomes that arrive after the state changed count
/// for nothing there. A failure is an `Err` that `failure_if` counts (every `Err` without it),
/// a timed-out attempt, or a panic.
///
/// ```
/// use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
///
/// let breaker = CircuitBreaker::new("snapshot_doc", BreakerConfig::cex().failure_threshold(2)).unwrap();
/// breaker.try_acquire().unwrap().failure();
/// breaker.try_acquire().unwrap().failure(); // the second failure in a row trips it
/// assert!(breaker.try_acquire().is_err()); // refused while open
/// let snapshot = breaker.snapshot();
/// assert_eq!(snapshot.state.as_str(), "OPEN");
/// assert_eq!((snapshot.failure_count, snapshot.trips, snapshot.not_permitted_calls), (2, 1, 1));
/// assert!(snapshot.open_remaining.is_some());
/// assert_eq!(snapshot.failure_rate, None); // no rate rule configured
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BreakerSnapshot {
    /// The state now: `"CLOSED"`, `"OPEN"`, `"HALF_OPEN"`, `"FORCED_OPEN"` or `"DISABLED"`. An
    /// open breaker whose timeout has passed reads `"OPEN"` until the next call looks.
    pub state: BreakerState,
    /// Failures in a row among the calls admitted while `CLOSED`: each failure adds one, each
    /// success sets it back to 0, and so does entering `CLOSED`. Opening leaves it as it was,
    /// so while `OPEN` or `HALF_OPEN` it shows the run that tripped the breaker. The
    /// consecutive-failures rule trips at `failure_threshold`.
    pub failure_count: u32,
    /// Share of failed calls (0.0 to 1.0) in the rate rules' window now. The window holds the
    /// outcomes of calls admitted while `CLOSED`: the last N calls, or those of the last span
    /// (kept in 10 buckets of a tenth of the span each); entering `CLOSED` empties it. `None`
    /// (`null`) when no rate rule (`failure_rate`, `slow_call_rate`) is configured, or the
    /// window is empty.
    pub failure_rate: Option<f64>,
    /// Share of calls (0.0 to 1.0) in the same window that took `slow_call_duration` or longer.
    /// Calls are timed only for the slow-call rule, so with the failure-rate rule alone it is
    /// always 0.0. `None` as for `failure_rate`.
    pub slow_call_rate: Option<f64>,
    /// Calls in the window now (at most N for a window of the last N calls). `None` without a
    /// rate rule.
    pub window_calls: Option<u32>,
    /// Calls refused without running since the breaker was created: while `OPEN` before its
    /// timeout passed, while `FORCED_OPEN`, and while `HALF_OPEN` with every probe slot taken.
    /// Never reset.
    pub not_permitted_calls: u64,
    /// Seconds until the `OPEN` breaker lets the next call through as a probe, on its coarse
    /// clock (a few milliseconds' resolution on the system clock); 0.0 once the open timeout
    /// has passed and no call has looked yet. `None` (`null`) in every other state,
    /// `FORCED_OPEN` included.
    pub open_remaining: Option<f64>,
    /// Times the breaker entered `OPEN` since it last entered `CLOSED` (or was created): the
    /// trip itself, each failed half-open probe that reopened it, and each
    /// [`set_state(Open)`](CircuitBreaker::set_state) by hand. The open timeout is `timeout ×
    /// timeout_multiplier^(trips − 1)`, capped at `max_timeout`. Back to 0 when the breaker
    /// enters `CLOSED`; `FORCED_OPEN` and `DISABLED` leave it as it is.
    pub trips: u32,
    /// The group (e.g. an exchange) the breaker belongs to, for `per_exchange_degradation`;
    /// left out of the JSON when there is none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group: Option<Arc<str>>,
}

/// Admission to make one call through a breaker; report the outcome with
/// [`success`](Permit::success), [`failure`](Permit::failure) or [`record`](Permit::record).
///
/// Dropped without a report (the call was cancelled), it frees its half-open slot and counts
/// nothing; dropped while the thread panics, it counts a failure.
///
/// ```
/// use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
///
/// let breaker = CircuitBreaker::new("permit_doc", BreakerConfig::default()).unwrap();
/// let permit = breaker.try_acquire().expect("closed breakers admit");
/// permit.failure();
/// assert_eq!(breaker.snapshot().failure_count, 1);
/// ```
#[must_use = "report the call's outcome, or drop the permit to cancel"]
pub struct Permit<'a> {
    breaker: &'a CircuitBreaker,
    word: Word,
    start: Option<Timestamp>,
    reported: bool,
}

impl fmt::Debug for Permit<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Permit")
            .field("breaker", &self.breaker.name)
            .field("state", &self.word.state())
            .finish()
    }
}

impl Permit<'_> {
    /// A permit from its plain words (kept by a pipeline future across polls).
    #[inline(always)]
    pub(crate) fn from_raw(
        breaker: &CircuitBreaker,
        word: u64,
        start: Option<Timestamp>,
    ) -> Permit<'_> {
        Permit {
            breaker,
            word: Word(word),
            start,
            reported: false,
        }
    }

    /// The call succeeded.
    #[inline(always)]
    pub fn success(self) {
        self.finish(false, None);
    }

    /// The call failed.
    #[inline(always)]
    pub fn failure(self) {
        self.finish(true, None);
    }

    /// The call ended at `end` (on the breaker's clock) after `latency`; used when the caller
    /// already read the clock (a monitor did), so the breaker does not read it again.
    #[inline(always)]
    pub fn record(self, failed: bool, latency: Duration, end: Timestamp) {
        self.finish(failed, Some((latency, end)));
    }

    #[inline(always)]
    fn finish(mut self, failed: bool, timing: Option<(Duration, Timestamp)>) {
        self.reported = true;
        self.breaker
            .record_raw(self.word.0, self.start, failed, timing);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.reported {
            return;
        }
        if std::thread::panicking() {
            let end = self.breaker.clock.now();
            let latency = end.saturating_duration_since(self.start.unwrap_or(end));
            self.breaker
                .on_outcome(self.word, true, Some((latency, end)));
        } else if self.word.state() == BreakerState::HalfOpen {
            self.breaker.release_probe(self.word);
        }
    }
}

impl CircuitBreaker {
    /// A breaker named `name`, after validating `config`.
    ///
    /// Names are interned for the life of the process (each distinct name is stored once), so a
    /// rejection carries the name as a `&'static str` without touching a reference count.
    pub fn new(name: impl AsRef<str>, config: BreakerConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let window = config.uses_window().then(|| match config.window {
            BreakerWindow::Calls(calls) => OutcomeWindow::calls(calls),
            BreakerWindow::Time(span) => OutcomeWindow::time(span),
        });
        Ok(CircuitBreaker {
            name: intern(name.as_ref()),
            group: None,
            needs_timing: config.needs_timing(),
            slow_rule: config.slow_call_rate_threshold.is_some(),
            slow_call_nanos: StdAtomicU64::new(duration_to_nanos(config.slow_call_duration)),
            half_open_max_calls: StdAtomicU32::new(config.half_open_max_calls),
            clock: config.clock.clone(),
            config: Live::new(config),
            word: CachePadded::new(AtomicU64::new(Word::INITIAL.0)),
            consecutive_failures: CachePadded::new(AtomicU32::new(0)),
            half_open_successes: AtomicU64::new(0),
            open_until: AtomicU64::new(0),
            window,
            not_permitted: ShardedCounter::new(),
            transitions: Mutex::new(Transitions::default()),
        })
    }

    /// Puts the breaker in a group (e.g. an exchange) for per-group health.
    pub fn with_group(mut self, group: impl Into<Arc<str>>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// The breaker's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The group, if any.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The clock the breaker reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// The configuration now (a [`reconfigure`](Self::reconfigure) swaps it).
    pub fn config(&self) -> Arc<BreakerConfig> {
        self.config.load_full()
    }

    /// Changes the running breaker's configuration: `change` gets the current one and returns
    /// the new one, which takes effect for the next decision (a trip, a probe, an open
    /// timeout). Its state, counts, window and trips are kept. An invalid configuration, or a
    /// change of what the state is made of (the `window`, a rate rule the breaker was created
    /// without), is an `Err` and changes nothing. Each change is an
    /// [`Event::Reconfigured`] (an info alert).
    ///
    /// ```
    /// use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
    /// use std::time::Duration;
    ///
    /// let breaker = CircuitBreaker::new("reconfigure_doc", BreakerConfig::default()).unwrap();
    /// breaker.try_acquire().unwrap().failure();
    /// breaker.reconfigure(|config| config.failure_threshold(2).timeout(Duration::from_secs(10))).unwrap();
    /// assert_eq!(breaker.config().failure_threshold, 2);
    /// breaker.try_acquire().unwrap().failure(); // the second failure in a row: kept count
    /// assert!(breaker.state().is_open());
    /// let error = breaker.reconfigure(|config| config.success_threshold(0)).unwrap_err();
    /// assert_eq!(error.field(), "success_threshold");
    /// assert_eq!(breaker.config().timeout, Duration::from_secs(10), "unchanged");
    /// ```
    pub fn reconfigure(
        &self,
        change: impl FnOnce(BreakerConfig) -> BreakerConfig,
    ) -> Result<(), ConfigError> {
        // None during a transition, which reads the configuration.
        let _transitions = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        let next = self
            .config
            .change(("breaker", self.name), change, |current, next| {
                self.check_change(current, next)
            })?;
        self.slow_call_nanos.store(
            duration_to_nanos(next.slow_call_duration),
            Ordering::Relaxed,
        );
        self.half_open_max_calls
            .store(next.half_open_max_calls, Ordering::Relaxed);
        Ok(())
    }

    /// [`reconfigure`](Self::reconfigure)'s checks, changing nothing.
    pub(crate) fn check_reconfigure(
        &self,
        change: impl FnOnce(BreakerConfig) -> BreakerConfig,
    ) -> Result<(), ConfigError> {
        self.config
            .check(change, |current, next| self.check_change(current, next))
    }

    fn check_change(
        &self,
        current: &BreakerConfig,
        next: &mut BreakerConfig,
    ) -> Result<(), ConfigError> {
        let slow_rule = self.slow_rule;
        next.clock = self.clock.clone();
        next.validate()?;
        if next.window != current.window && current.uses_window() {
            return Err(ConfigError::new(
                "window",
                "cannot change while the breaker runs: it holds the calls it has seen",
            ));
        }
        if next.uses_window() && !current.uses_window() {
            let field = if next.window_failure_threshold.is_some() {
                "window_failure_threshold"
            } else if next.failure_rate_threshold.is_some() {
                "failure_rate_threshold"
            } else {
                "slow_call_rate_threshold"
            };
            return Err(ConfigError::new(
                field,
                "cannot be turned on while the breaker runs: it was created without a window to judge rates over",
            ));
        }
        if next.slow_call_rate_threshold.is_some() != slow_rule {
            return Err(ConfigError::new(
                "slow_call_rate_threshold",
                "cannot be turned on or off while the breaker runs (its calls are timed or not from creation); its value can change",
            ));
        }
        Ok(())
    }

    /// Whether recording an outcome needs the call's latency and end time.
    pub fn needs_timing(&self) -> bool {
        self.needs_timing
    }

    /// The current state. An open breaker whose timeout has passed still reads `Open` until a
    /// call looks (the transition is lazy).
    pub fn state(&self) -> BreakerState {
        self.load().state()
    }

    #[inline(always)]
    fn load(&self) -> Word {
        Word(self.word.load(Ordering::Acquire))
    }

    /// Asks to make one call now. `Err` means do not call: the breaker is open, forced open, or
    /// half-open with every probe slot taken.
    #[inline(always)]
    pub fn try_acquire(&self) -> Result<Permit<'_>, Rejected> {
        let start = self.needs_timing.then(|| self.clock.now());
        self.acquire(start)
    }

    /// Reports the outcome of a call admitted under `word` (a permit taken apart), reading the
    /// clock only if the breaker needs timing and `timing` was not given.
    #[inline(always)]
    pub(crate) fn record_raw(
        &self,
        word: u64,
        start: Option<Timestamp>,
        failed: bool,
        timing: Option<(Duration, Timestamp)>,
    ) {
        let timing = match timing {
            Some(timing) => Some(timing),
            None if self.needs_timing => {
                let end = self.clock.now();
                let start = start.unwrap_or(end);
                Some((end.saturating_duration_since(start), end))
            }
            None => None,
        };
        self.on_outcome(Word(word), failed, timing);
    }

    #[inline(always)]
    fn acquire(&self, start: Option<Timestamp>) -> Result<Permit<'_>, Rejected> {
        let word = self.load();
        if word.is_closed() {
            return Ok(self.permit(word, start));
        }
        self.acquire_slow(word, start)
    }

    #[inline(always)]
    fn permit(&self, word: Word, start: Option<Timestamp>) -> Permit<'_> {
        Permit {
            breaker: self,
            word,
            start,
            reported: false,
        }
    }

    #[cold]
    fn acquire_slow(&self, word: Word, start: Option<Timestamp>) -> Result<Permit<'_>, Rejected> {
        match self.acquire_word_slow(word) {
            Ok(word) => Ok(self.permit(Word(word), start)),
            Err(retry_after) => Err(self.rejection(retry_after)),
        }
    }

    /// Admission for the pipeline: the state word of the permit and the start reading, or
    /// the rejection. Its slow path answers in two registers (a `Result<u64, u64>`), where a
    /// `Result<Permit, Rejected>` would go through memory and stall the caller that reads it
    /// back. Why: BENCHMARKS.md, section "Design notes moved from the API docs".
    ///
    /// Without timing, the word loaded for the closed test goes to the slow path as it is
    /// (one load of the state, one test of the flag, on a refusal as on an admission).
    #[inline(always)]
    pub(crate) fn admit_raw(&self) -> Result<(u64, Option<Timestamp>), Rejected> {
        if !self.needs_timing {
            let word = self.load();
            if word.is_closed() {
                return Ok((word.0, None));
            }
            return match self.acquire_word_slow(word) {
                Ok(word) => Ok((word, None)),
                Err(retry_after) => Err(self.rejection(retry_after)),
            };
        }
        let start = Some(self.clock.now());
        let word = self.load();
        if word.is_closed() {
            return Ok((word.0, start));
        }
        match self.acquire_word_slow(word) {
            Ok(word) => Ok((word, start)),
            Err(retry_after) => Err(self.rejection(retry_after)),
        }
    }

    /// The slow path of an admission: the state word the permit was taken under, or the
    /// rejection's retry-after in nanoseconds ([`NO_RETRY_AFTER`] for none). Counts the
    /// rejection.
    #[cold]
    #[inline(never)]
    fn acquire_word_slow(&self, mut word: Word) -> Result<u64, u64> {
        loop {
            match word.state() {
                BreakerState::Closed | BreakerState::Disabled => return Ok(word.0),
                BreakerState::ForcedOpen => return Err(self.reject(NO_RETRY_AFTER)),
                BreakerState::Open => {
                    let now = self.clock.now_coarse();
                    let until = Timestamp::from_nanos(self.open_until.load(Ordering::Acquire));
                    if now < until {
                        let remaining = until.as_nanos().saturating_sub(now.as_nanos());
                        return Err(self.reject(remaining.min(NO_RETRY_AFTER - 1)));
                    }
                    self.transition(word, BreakerState::HalfOpen, "open timeout elapsed");
                    word = self.load();
                }
                BreakerState::HalfOpen => {
                    if word.in_flight()
                        >= u64::from(self.half_open_max_calls.load(Ordering::Relaxed))
                    {
                        return Err(self.reject(NO_RETRY_AFTER));
                    }
                    match self.word.compare_exchange_weak(
                        word.0,
                        word.0 + ONE_PROBE,
                        Ordering::AcqRel,
                        Ordering::Acquire,
                    ) {
                        Ok(_) => return Ok(word.0),
                        Err(current) => word = Word(current),
                    }
                }
            }
        }
    }

    // Inlined into the (already cold) slow path: rejecting is that path's hot case.
    #[inline(always)]
    fn reject(&self, retry_after: u64) -> u64 {
        self.not_permitted.add(1);
        retry_after
    }

    /// The rejection of a call, with its retry-after in nanoseconds (or [`NO_RETRY_AFTER`]).
    #[inline(always)]
    fn rejection(&self, retry_after: u64) -> Rejected {
        Rejected::CircuitOpen {
            breaker: self.name,
            retry_after: (retry_after != NO_RETRY_AFTER).then(|| Duration::from_nanos(retry_after)),
        }
    }

    /// Runs `call` through the breaker; every `Err` counts as a failure.
    ///
    /// `call` is not polled when the breaker rejects it.
    pub async fn call<T, E, F>(&self, call: F) -> Result<T, Failure<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        self.call_with(call, |_| true).await
    }

    /// Runs `call` through the breaker; an `Err` counts as a failure only when
    /// `is_failure(&error)` says so (e.g. a 404 is the caller's fault, not the service's).
    ///
    /// ```
    /// use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let breaker = CircuitBreaker::new("call_with_doc", BreakerConfig::default()).unwrap();
    /// let not_found = breaker.call_with(async { Err::<(), u16>(404) }, |status| *status >= 500).await;
    /// assert!(not_found.is_err());
    /// assert_eq!(breaker.snapshot().failure_count, 0);
    /// # }
    /// ```
    pub async fn call_with<T, E, F>(
        &self,
        call: F,
        is_failure: impl FnOnce(&E) -> bool,
    ) -> Result<T, Failure<E>>
    where
        F: Future<Output = Result<T, E>>,
    {
        let permit = self.try_acquire().map_err(Failure::Rejected)?;
        let result = call.await;
        match &result {
            Ok(_) => permit.success(),
            Err(error) if catch_callback("failure_if", true, || is_failure(error)) => {
                permit.failure()
            }
            Err(_) => permit.success(),
        }
        result.map_err(Failure::Inner)
    }

    /// Runs a blocking `call` through the breaker; every `Err` counts as a failure.
    ///
    /// ```
    /// use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new("call_sync_doc", BreakerConfig::default()).unwrap();
    /// assert_eq!(breaker.call_sync(|| Ok::<_, ()>(3)), Ok(3));
    /// ```
    pub fn call_sync<T, E>(&self, call: impl FnOnce() -> Result<T, E>) -> Result<T, Failure<E>> {
        let permit = self.try_acquire().map_err(Failure::Rejected)?;
        let result = call();
        if result.is_ok() {
            permit.success();
        } else {
            permit.failure();
        }
        result.map_err(Failure::Inner)
    }

    #[inline(always)]
    fn on_outcome(&self, permit: Word, failed: bool, timing: Option<(Duration, Timestamp)>) {
        let current = self.load();
        if !current.same_epoch(permit) {
            // Admitted under an earlier state: its outcome says nothing about this one (and
            // its probe slot, if any, went with that state).
            return;
        }
        match permit.state() {
            BreakerState::Closed => self.on_closed_outcome(permit, failed, timing),
            BreakerState::HalfOpen => self.on_probe_outcome(permit, failed),
            _ => {}
        }
    }

    #[inline(always)]
    fn on_closed_outcome(&self, permit: Word, failed: bool, timing: Option<(Duration, Timestamp)>) {
        let slow = self.slow_rule
            && timing.is_some_and(|(latency, _)| {
                duration_to_nanos(latency) >= self.slow_call_nanos.load(Ordering::Relaxed)
            });
        if let Some(window) = &self.window {
            let now = timing.map_or_else(Timestamp::default, |(_, end)| end);
            window.record(now, failed, slow);
        }
        if failed {
            let consecutive = self.consecutive_failures.fetch_add(1, Ordering::AcqRel) + 1;
            self.check_trip(permit, consecutive, timing);
        } else {
            if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
                self.consecutive_failures.store(0, Ordering::Relaxed);
            }
            if slow {
                self.check_trip(permit, 0, timing);
            }
        }
    }

    #[cold]
    fn check_trip(&self, permit: Word, consecutive: u32, timing: Option<(Duration, Timestamp)>) {
        let config = self.config.load();
        let threshold = config.failure_threshold;
        if threshold > 0 && consecutive >= threshold {
            self.transition(
                permit,
                BreakerState::Open,
                "consecutive failures reached the threshold",
            );
            return;
        }
        let Some(window) = &self.window else { return };
        let now = timing.map_or_else(|| self.clock.now(), |(_, end)| end);
        let counts = window.counts(now);
        if config
            .window_failure_threshold
            .is_some_and(|limit| counts.failures >= limit)
        {
            self.transition(
                permit,
                BreakerState::Open,
                "failures in the window reached the threshold",
            );
            return;
        }
        if counts.calls < config.minimum_calls {
            return;
        }
        if let (Some(limit), Some(rate)) = (config.failure_rate_threshold, counts.failure_rate()) {
            if rate >= limit {
                self.transition(
                    permit,
                    BreakerState::Open,
                    "failure rate reached the threshold",
                );
                return;
            }
        }
        if let (Some(limit), Some(rate)) = (config.slow_call_rate_threshold, counts.slow_rate()) {
            if rate >= limit {
                self.transition(
                    permit,
                    BreakerState::Open,
                    "slow-call rate reached the threshold",
                );
            }
        }
    }

    #[cold]
    fn on_probe_outcome(&self, permit: Word, failed: bool) {
        if failed {
            // Reopen while this probe still holds its slot: freeing the slot first would let
            // another caller probe the failing service in the same half-open period.
            self.transition(permit, BreakerState::Open, "a half-open probe failed");
            return;
        }
        match self.count_probe_success(permit) {
            Some(successes) if successes >= self.config.load().success_threshold => {
                // The new generation starts with every slot free.
                self.transition(permit, BreakerState::Closed, "half-open probes succeeded");
            }
            Some(_) => self.release_probe(permit),
            None => {} // the half-open period of this probe is over
        }
    }

    /// Counts a successful probe of `permit`'s half-open period; `None` if that period is over.
    ///
    /// The counter carries the period's generation, so a success that arrives after the breaker
    /// left the period (and perhaps entered a new half-open one) is never counted in another.
    fn count_probe_success(&self, permit: Word) -> Option<u32> {
        let tag = successes_tag(permit);
        let mut current = self.half_open_successes.load(Ordering::Acquire);
        loop {
            if current & !SUCCESS_COUNT_MASK != tag {
                return None;
            }
            let next = current + 1;
            match self.half_open_successes.compare_exchange_weak(
                current,
                next,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Some((next & SUCCESS_COUNT_MASK) as u32),
                Err(now) => current = now,
            }
        }
    }

    /// Frees the probe slot a half-open permit took, if its generation is still current.
    fn release_probe(&self, permit: Word) {
        let mut current = self.load();
        while current.same_epoch(permit) && current.in_flight() > 0 {
            match self.word.compare_exchange_weak(
                current.0,
                current.0 - ONE_PROBE,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => current = Word(now),
            }
        }
    }

    /// Moves from the epoch of `from` to `to`; does nothing if another transition got there first.
    fn transition(&self, from: Word, to: BreakerState, reason: &'static str) -> bool {
        let mut transitions = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.load();
        if !current.same_epoch(from) {
            return false;
        }
        self.enter(current, to, reason, &mut transitions);
        true
    }

    /// Writes `to`'s side data, then publishes its word. Caller holds the transitions lock.
    fn enter(
        &self,
        current: Word,
        to: BreakerState,
        reason: &'static str,
        transitions: &mut Transitions,
    ) {
        self.enter_with(current, to, reason, transitions, None);
    }

    /// Opens until `until` (nanoseconds on the coarse timeline) instead of the configured
    /// timeout. Caller holds the transitions lock.
    #[cfg(feature = "redis")]
    fn enter_open_until(
        &self,
        current: Word,
        until: u64,
        reason: &'static str,
        transitions: &mut Transitions,
    ) {
        self.enter_with(
            current,
            BreakerState::Open,
            reason,
            transitions,
            Some(until),
        );
    }

    fn enter_with(
        &self,
        current: Word,
        to: BreakerState,
        reason: &'static str,
        transitions: &mut Transitions,
        open_until: Option<u64>,
    ) {
        let failure_count = self.consecutive_failures.load(Ordering::Acquire);
        match to {
            BreakerState::Open => {
                // Trips grow the timeout only while the breaker fails to recover.
                transitions.trips = transitions.trips.saturating_add(1);
                let until = open_until.unwrap_or_else(|| {
                    let timeout = self.config.load().open_timeout(transitions.trips);
                    self.clock
                        .now_coarse()
                        .as_nanos()
                        .saturating_add(duration_to_nanos(timeout))
                });
                self.open_until.store(until, Ordering::Release);
            }
            BreakerState::HalfOpen => self
                .half_open_successes
                .store(successes_tag(current.next(to)), Ordering::Release),
            BreakerState::Closed => {
                transitions.trips = 0;
                self.consecutive_failures.store(0, Ordering::Release);
                if let Some(window) = &self.window {
                    window.reset();
                }
            }
            BreakerState::ForcedOpen | BreakerState::Disabled => {}
        }
        transitions.total += 1;
        // Swapped in, not stored: probe slots are taken and freed without the lock, and a plain
        // store could be ordered before such a change and be lost to it (the model check in
        // `loom_models` found this). The generation moves only under the lock, so `next`
        // stays right whatever the probe count is when the swap lands.
        let next = current.next(to);
        let mut seen = current;
        while let Err(now) =
            self.word
                .compare_exchange_weak(seen.0, next.0, Ordering::AcqRel, Ordering::Acquire)
        {
            seen = Word(now);
        }
        let from = current.state();
        // At the level its alert's severity maps to (`LogHandler` leaves these to this log):
        // OPEN critical, CLOSED info, the others warnings.
        match to {
            BreakerState::Open => {
                tracing::error!(breaker = %self.name, %from, %to, failure_count, reason, "circuit breaker opened")
            }
            BreakerState::Closed => {
                tracing::info!(breaker = %self.name, %from, %to, failure_count, reason, "circuit breaker closed")
            }
            BreakerState::HalfOpen | BreakerState::ForcedOpen | BreakerState::Disabled => {
                tracing::warn!(breaker = %self.name, %from, %to, failure_count, reason, "circuit breaker state changed")
            }
        }
        event::publish(Event::BreakerStateChanged(BreakerTransition {
            breaker: self.name,
            from,
            to,
            failure_count,
            reason,
            at: SystemTime::now(),
        }));
    }

    /// Sets the state by hand, whatever it is now (an event is published if it changes).
    ///
    /// `Open` starts a fresh open timeout and counts a trip; `Closed` clears the failure
    /// count, the rate window and the trips (`not_permitted_calls` stays).
    ///
    /// ```
    /// use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
    ///
    /// let breaker = CircuitBreaker::new("set_state_doc", BreakerConfig::default()).unwrap();
    /// breaker.set_state(BreakerState::Disabled);
    /// assert_eq!(breaker.state(), BreakerState::Disabled);
    /// ```
    pub fn set_state(&self, to: BreakerState) {
        let mut transitions = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.load();
        if current.state() != to {
            self.enter(current, to, "set by hand", &mut transitions);
        }
    }

    /// Keeps an open breaker open for at least `at_least` more (the fleet is open, or its
    /// probe slots are other instances'). A breaker in another state is left alone. Moving
    /// the open-until is all a hold takes: the call path reads nothing new.
    #[cfg(feature = "redis")]
    pub(crate) fn hold_open(&self, at_least: Duration) {
        let _transitions = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        if self.load().state() == BreakerState::Open {
            let until = self
                .clock
                .now_coarse()
                .as_nanos()
                .saturating_add(duration_to_nanos(at_least));
            self.open_until.fetch_max(until, Ordering::AcqRel);
        }
    }

    /// Ends a hold: an open breaker may half-open on its next call (this instance has a
    /// probe slot, or the fleet no longer holds it).
    #[cfg(feature = "redis")]
    pub(crate) fn release_hold(&self) {
        let _transitions = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        if self.load().state() == BreakerState::Open {
            let now = self.clock.now_coarse().as_nanos();
            self.open_until.fetch_min(now, Ordering::AcqRel);
        }
    }

    /// Whether the breaker is open and its open timeout has elapsed (it would half-open on the
    /// next call, unless held).
    #[cfg(feature = "redis")]
    pub(crate) fn open_elapsed(&self) -> bool {
        self.load().state() == BreakerState::Open
            && self.clock.now_coarse()
                >= Timestamp::from_nanos(self.open_until.load(Ordering::Acquire))
    }

    /// The breaker's state word now: which transition it is at (see
    /// [`close_if_unchanged`](Self::close_if_unchanged)).
    #[cfg(feature = "redis")]
    pub(crate) fn epoch(&self) -> u64 {
        self.load().0
    }

    /// Closes an open or half-open breaker with `reason`, if no transition was made since
    /// `epoch` was read (its own probe failing meanwhile, say); `false` otherwise.
    #[cfg(feature = "redis")]
    pub(crate) fn close_if_unchanged(&self, epoch: u64, reason: &'static str) -> bool {
        let mut transitions = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.load();
        if !current.same_epoch(Word(epoch))
            || !matches!(current.state(), BreakerState::Open | BreakerState::HalfOpen)
        {
            return false;
        }
        self.enter(current, BreakerState::Closed, reason, &mut transitions);
        true
    }

    /// Opens a closed breaker for `remaining` (what is left of the fleet's open period), with
    /// `reason`. Does nothing in any other state. Counts a trip, like any opening.
    #[cfg(feature = "redis")]
    pub(crate) fn open_with_fleet(&self, remaining: Duration, reason: &'static str) -> bool {
        let mut transitions = self.transitions.lock().unwrap_or_else(|e| e.into_inner());
        let current = self.load();
        if current.state() != BreakerState::Closed {
            return false;
        }
        // Written before the word publishes the state, like any opening's.
        let until = self
            .clock
            .now_coarse()
            .as_nanos()
            .saturating_add(duration_to_nanos(remaining));
        self.enter_open_until(current, until, reason, &mut transitions);
        true
    }

    /// Rejects every call until [`reset`](Self::reset).
    pub fn force_open(&self) {
        self.set_state(BreakerState::ForcedOpen);
    }

    /// Lets every call through and counts nothing until [`reset`](Self::reset).
    pub fn disable(&self) {
        self.set_state(BreakerState::Disabled);
    }

    /// Back to `Closed`, with the failure count, the rate window and the trips cleared
    /// (`not_permitted_calls` stays).
    pub fn reset(&self) {
        self.set_state(BreakerState::Closed);
    }

    /// The breaker's counters now.
    pub fn snapshot(&self) -> BreakerSnapshot {
        let word = self.load();
        let now = self.clock.now();
        let counts = self.window.as_ref().map(|window| window.counts(now));
        let open_remaining = (word.state() == BreakerState::Open).then(|| {
            Timestamp::from_nanos(self.open_until.load(Ordering::Acquire))
                .saturating_duration_since(self.clock.now_coarse())
                .as_secs_f64()
        });
        let trips = self
            .transitions
            .lock()
            .map_or(0, |transitions| transitions.trips);
        BreakerSnapshot {
            state: word.state(),
            failure_count: self.consecutive_failures.load(Ordering::Acquire),
            failure_rate: counts.and_then(|c: WindowCounts| c.failure_rate()),
            slow_call_rate: counts.and_then(|c| c.slow_rate()),
            window_calls: counts.map(|c| c.calls),
            not_permitted_calls: self.not_permitted.sum(),
            open_remaining,
            trips,
            group: self.group.clone(),
        }
    }
}

const SUCCESS_COUNT_MASK: u64 = u32::MAX as u64;

/// A rejection without a retry-after, in `acquire_word_slow`'s answer.
const NO_RETRY_AFTER: u64 = u64::MAX;

/// The half-open success counter's value at the start of `word`'s period: its generation (low
/// 32 bits of it: a period is never confused with one 2^32 transitions away) and no successes.
fn successes_tag(word: Word) -> u64 {
    (word.generation() & SUCCESS_COUNT_MASK) << 32
}

/// The breakers' Prometheus families (resilience4j's names).
pub(crate) fn write_metrics(breakers: &BTreeMap<String, BreakerSnapshot>, out: &mut Exposition) {
    let states = ["closed", "open", "half_open", "forced_open", "disabled"];
    out.per_instance_by(
        (
            "resilience4j_circuitbreaker_state",
            "gauge",
            "The states of the circuit breaker (1 for the current one)",
        ),
        ("name", "state"),
        breakers,
        |breaker| {
            states.map(|state| {
                (
                    state,
                    u8::from(breaker.state.as_str().eq_ignore_ascii_case(state)),
                )
            })
        },
    );
    out.per_instance(
        (
            "resilience4j_circuitbreaker_not_permitted_calls_total",
            "counter",
            "Calls the circuit breaker refused",
        ),
        "name",
        breakers,
        |breaker| breaker.not_permitted_calls,
    );
    out.family("resilience4j_circuitbreaker_failure_rate", "gauge", "The failure rate of the circuit breaker's window, in percent (absent until the window has its minimum of calls)");
    for (name, breaker) in breakers {
        if let Some(rate) = breaker.failure_rate {
            out.sample(&[("name", name)], rate * 100.0);
        }
    }
    out.per_instance(
        (
            "reliable_circuitbreaker_trips_total",
            "counter",
            "Times the circuit breaker opened",
        ),
        "name",
        breakers,
        |breaker| breaker.trips,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::{Clock, ManualClock};

    fn breaker(config: BreakerConfig) -> (CircuitBreaker, ManualClock) {
        let (clock, hand) = Clock::manual();
        let breaker = CircuitBreaker::new("unit", BreakerConfig { clock, ..config }).unwrap();
        (breaker, hand)
    }

    #[test]
    fn consecutive_failures_trip_and_success_resets_them() {
        let (breaker, _) = breaker(BreakerConfig {
            failure_threshold: 3,
            ..BreakerConfig::cex()
        });
        breaker.try_acquire().unwrap().failure();
        breaker.try_acquire().unwrap().failure();
        breaker.try_acquire().unwrap().success();
        breaker.try_acquire().unwrap().failure();
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        let rejected = breaker.try_acquire().unwrap_err();
        assert_eq!(rejected.retry_after(), Some(Duration::from_secs(30)));
        assert_eq!(breaker.snapshot().not_permitted_calls, 1);
    }

    #[test]
    fn half_open_admits_the_cap_and_closes_after_successes() {
        let (breaker, hand) = breaker(BreakerConfig {
            failure_threshold: 1,
            half_open_max_calls: 2,
            success_threshold: 2,
            ..BreakerConfig::cex()
        });
        breaker.try_acquire().unwrap().failure();
        hand.advance(Duration::from_secs(30));
        let first = breaker.try_acquire().unwrap();
        let second = breaker.try_acquire().unwrap();
        assert!(
            breaker.try_acquire().is_err(),
            "a third probe exceeds the cap"
        );
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        first.success();
        assert_eq!(breaker.state(), BreakerState::HalfOpen);
        second.success();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn failed_probe_reopens_with_a_growing_timeout() {
        let (breaker, hand) = breaker(BreakerConfig {
            failure_threshold: 1,
            timeout: Duration::from_secs(10),
            timeout_multiplier: 2.0,
            max_timeout: Duration::from_secs(15),
            ..BreakerConfig::cex()
        });
        breaker.try_acquire().unwrap().failure();
        hand.advance(Duration::from_secs(10));
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(
            breaker.try_acquire().unwrap_err().retry_after(),
            Some(Duration::from_secs(15))
        );
        assert_eq!(breaker.snapshot().trips, 2);
    }

    #[test]
    fn cancelled_probe_frees_its_slot() {
        let (breaker, hand) = breaker(BreakerConfig {
            failure_threshold: 1,
            ..BreakerConfig::cex()
        });
        breaker.try_acquire().unwrap().failure();
        hand.advance(Duration::from_secs(30));
        drop(breaker.try_acquire().unwrap());
        assert!(breaker.try_acquire().is_ok());
    }

    #[test]
    fn stale_outcomes_are_ignored() {
        let (breaker, _) = breaker(BreakerConfig {
            failure_threshold: 1,
            ..BreakerConfig::cex()
        });
        let slow_call = breaker.try_acquire().unwrap();
        breaker.try_acquire().unwrap().failure();
        breaker.reset();
        slow_call.failure(); // admitted before the reset
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn forced_open_and_disabled() {
        let (breaker, _) = breaker(BreakerConfig::cex());
        breaker.force_open();
        assert_eq!(breaker.try_acquire().unwrap_err().retry_after(), None);
        breaker.disable();
        for _ in 0..10 {
            breaker.try_acquire().unwrap().failure();
        }
        assert_eq!(breaker.state(), BreakerState::Disabled);
        breaker.reset();
        assert_eq!(breaker.state(), BreakerState::Closed);
    }

    #[test]
    fn failure_rate_rule_waits_for_minimum_calls() {
        let (breaker, _) = breaker(BreakerConfig {
            failure_threshold: 0,
            failure_rate_threshold: Some(0.5),
            minimum_calls: 4,
            window: BreakerWindow::Calls(4),
            ..BreakerConfig::cex()
        });
        breaker.try_acquire().unwrap().failure();
        breaker.try_acquire().unwrap().failure();
        breaker.try_acquire().unwrap().success();
        assert_eq!(breaker.state(), BreakerState::Closed);
        breaker.try_acquire().unwrap().failure(); // 3 of 4 failed
        assert_eq!(breaker.state(), BreakerState::Open);
    }

    #[test]
    fn slow_calls_trip_the_slow_rate_rule() {
        let (breaker, hand) = breaker(BreakerConfig {
            failure_threshold: 0,
            slow_call_rate_threshold: Some(1.0),
            slow_call_duration: Duration::from_secs(2),
            minimum_calls: 2,
            ..BreakerConfig::cex()
        });
        for _ in 0..2 {
            let permit = breaker.try_acquire().unwrap();
            hand.advance(Duration::from_secs(3));
            permit.success();
        }
        assert_eq!(breaker.state(), BreakerState::Open);
        assert_eq!(breaker.snapshot().slow_call_rate, Some(1.0));
    }
}

/// Model checks of half-open admission and the transitions out of it, over every interleaving
/// (`--cfg reliable_loom`, see `src/sync.rs`).
#[cfg(all(test, reliable_loom))]
mod loom_models {
    use super::*;
    use crate::clock::{Clock, ManualClock};
    use loom::sync::atomic::AtomicUsize;
    use loom::sync::Arc;

    /// An open breaker whose timeout has passed, with `config` otherwise.
    fn ready_to_probe(config: BreakerConfig) -> (Arc<CircuitBreaker>, ManualClock) {
        let (clock, hand) = Clock::manual();
        let breaker = CircuitBreaker::new(
            "loom",
            BreakerConfig {
                failure_threshold: 1,
                timeout_multiplier: 1.0,
                clock,
                ..config
            },
        )
        .unwrap();
        breaker.try_acquire().unwrap().failure();
        hand.advance(breaker.config().timeout);
        (Arc::new(breaker), hand)
    }

    /// One probe slot, probes that fail: exactly one caller probes; its failure reopens the
    /// breaker before any other caller can take the slot.
    #[test]
    fn a_failed_probe_reopens_before_another_probe() {
        loom::model(|| {
            let (breaker, _hand) = ready_to_probe(BreakerConfig {
                half_open_max_calls: 1,
                ..BreakerConfig::cex()
            });
            let probes = Arc::new(AtomicUsize::new(0));
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    let (breaker, probes) = (Arc::clone(&breaker), Arc::clone(&probes));
                    loom::thread::spawn(move || {
                        if let Ok(permit) = breaker.try_acquire() {
                            probes.fetch_add(1, Ordering::Relaxed);
                            permit.failure();
                        }
                    })
                })
                .collect();
            for caller in callers {
                caller.join().unwrap();
            }
            assert_eq!(probes.load(Ordering::Relaxed), 1);
            assert_eq!(breaker.state(), BreakerState::Open);
            assert_eq!(
                breaker.snapshot().trips,
                2,
                "the probe's failure reopened it"
            );
        });
    }

    /// Two probe slots, two successes needed, probes racing: the breaker closes.
    #[test]
    fn concurrent_successful_probes_close_the_breaker() {
        loom::model(|| {
            let (breaker, _hand) = ready_to_probe(BreakerConfig {
                half_open_max_calls: 2,
                success_threshold: 2,
                ..BreakerConfig::cex()
            });
            let first = breaker.try_acquire().unwrap(); // turns it half-open
            let other = {
                let breaker = Arc::clone(&breaker);
                loom::thread::spawn(move || breaker.try_acquire().map(Permit::success).is_ok())
            };
            first.success();
            assert!(other.join().unwrap(), "a second slot was free");
            assert_eq!(breaker.state(), BreakerState::Closed);
        });
    }

    /// A probe's success that arrives after its half-open period ended (another probe failed
    /// and reopened the breaker, and a new period began) is not counted in the new period.
    #[test]
    fn a_late_success_is_not_counted_in_a_later_period() {
        loom::model(|| {
            let (breaker, hand) = ready_to_probe(BreakerConfig {
                half_open_max_calls: 2,
                success_threshold: 2,
                ..BreakerConfig::cex()
            });
            let failing = breaker.try_acquire().unwrap();
            let (word, start) = breaker.admit_raw().unwrap();
            let late = {
                let breaker = Arc::clone(&breaker);
                loom::thread::spawn(move || Permit::from_raw(&breaker, word, start).success())
            };
            failing.failure();
            hand.advance(breaker.config().timeout);
            let probe = breaker.try_acquire();
            late.join().unwrap();
            probe.expect("the new period has free slots").success();
            // One success of the two the new period needs.
            assert_eq!(breaker.state(), BreakerState::HalfOpen);
        });
    }
}
