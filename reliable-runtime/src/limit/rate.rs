//! Rate limiter: at most `limit` calls in any sliding window.
//!
//! Why not `governor`: governor implements GCRA, a token bucket. With a quota of 60 per minute
//! and a burst of 60 it lets 60 calls through at once and then one more every second, so up to
//! 119 calls can land within one minute, where exchange APIs, which count requests per rolling
//! minute, allow at most 60 in *any* 60 seconds. That is a sliding log: a ring of
//! the last `limit` admission times, where a call is admitted only if the admission `limit`
//! calls back is older than the window. One compare-and-swap on the ring's head per admission,
//! no lock, exact.

use crate::clock::{duration_to_nanos, Clock, Timestamp};
use crate::common::intern::intern;
use crate::common::live::Live;
use crate::common::setters::setters;
use crate::common::shard::ShardedCounter;
use crate::common::throttle::Throttle;
use crate::error::{ConfigError, Rejected};
use crate::event::{Event, LimitReached};
use crate::health::Exposition;
use crate::sync::AtomicU64;
use crossbeam_utils::CachePadded;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

/// The largest `limit` a [`RateLimit`] may have: the limiter keeps the time of each of the last
/// `limit` admissions (8 bytes each), so this bounds one limiter at 8 MB.
pub const MAX_RATE_LIMIT: u32 = reliable_rules::limit::MAX_RATE_LIMIT;

/// How many calls a [`RateLimiter`] admits.
///
/// ```
/// use reliable_runtime::limit::RateLimit;
/// use std::time::Duration;
///
/// let binance = RateLimit::per_minute(1200).with_burst(50);
/// assert_eq!(binance.window, Duration::from_secs(60));
/// assert!(binance.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct RateLimit {
    /// Calls admitted in any `window`.
    pub limit: u32,
    /// The sliding window.
    #[serde(with = "crate::common::human_duration")]
    pub window: Duration,
    /// If set, at most this many calls in any `window × burst / limit` as well, so the limit
    /// cannot be spent in one spike. `None`: the whole limit may be used at once.
    pub burst: Option<u32>,
}

impl RateLimit {
    /// `limit` calls in any second.
    pub fn per_second(limit: u32) -> Self {
        RateLimit {
            limit,
            window: Duration::from_secs(1),
            burst: None,
        }
    }

    /// `limit` calls in any minute (60 is the usual default).
    pub fn per_minute(limit: u32) -> Self {
        RateLimit {
            limit,
            window: Duration::from_secs(60),
            burst: None,
        }
    }

    /// Also at most `burst` calls in any `window × burst / limit`.
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = Some(burst);
        self
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use reliable_rules::limit;
        ConfigError::check("limit", limit::rate_limit(self.limit))?;
        ConfigError::check("window", limit::rate_window(self.window))?;
        if let Some(burst) = self.burst {
            ConfigError::check("burst", limit::burst(burst, self.limit))?;
        }
        Ok(())
    }
}

setters! { RateLimit { limit: u32, window: Duration, burst: Option<u32> } }

/// A rate limiter's configuration.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RateLimiterConfig {
    /// The limit.
    pub limit: RateLimit,
    /// The clock (default: [`Clock::system`]).
    pub clock: Clock,
}

crate::common::setters::setters! { RateLimiterConfig { clock: Clock } }

impl RateLimiterConfig {
    /// `limit` on the system clock.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiterConfig {
            limit,
            clock: Clock::system(),
        }
    }
}

/// A limit on the system clock: what `rate_limiter_registry().get_or_create(name, limit)` and a
/// configuration file's `[rate_limits.name]` make a limiter from.
///
/// ```
/// use reliable_runtime::limit::RateLimit;
/// use reliable_runtime::registry::rate_limiter_registry;
///
/// let limiter = rate_limiter_registry().get_or_create("from_limit_doc", RateLimit::per_second(5)).unwrap();
/// assert_eq!(limiter.limit(), RateLimit::per_second(5));
/// ```
impl From<RateLimit> for RateLimiterConfig {
    fn from(limit: RateLimit) -> Self {
        RateLimiterConfig::new(limit)
    }
}

/// The times of the last `capacity` admissions: a ring with one slot per admission *position*
/// (the n-th admission ever is position n, in slot `n % capacity`).
///
/// Position `n` may be admitted only when the admission `limit` positions back has left the
/// window (`limit ≤ capacity` can change while the log runs; a lower limit judges the same
/// history by fewer admissions), and so has the admission the slot still holds
/// (`n − capacity`, the same one when the limit is the capacity). The admission is claimed by
/// one compare-and-swap on the slot, which writes its time in the same step, so no reader can
/// find a claimed slot with a time not yet written. `head` (the next position) then moves on; a
/// caller that finds the slot at `head` already claimed for `head` moves it on itself, so a
/// claimer stalled before its second step delays nobody.
///
/// Each slot carries the parity of its position's lap (`n / capacity`): with `head` read the
/// same before and after the slots, the slot holds either position `head − capacity` (the
/// other parity) or `head` itself (same parity), and nothing else, and every position before
/// `head` is claimed, so the slot `limit` back holds position `head − limit`. A log is retired
/// (when its limiter outgrows it) by claiming position `head` with [`RETIRED`], which no caller
/// ever claims past; `loom_models` below checks these protocols.
///
/// `head` holds the position as its lap (high 32 bits) and its slot (low 32 bits), so finding
/// the slot and the parity takes no division. Why: BENCHMARKS.md, section "Design notes moved
/// from the API docs".
struct SlidingLog {
    /// Slots in the ring: positions wrap here.
    capacity: u64,
    /// Admissions allowed in any window, at most `capacity`.
    limit: AtomicU64,
    window_nanos: AtomicU64,
    /// The next position: `lap << 32 | slot`.
    head: CachePadded<AtomicU64>,
    /// `(admission nanos + 1) << 1 | lap parity`; [`EMPTY`] before the slot's first admission.
    slots: Box<[AtomicU64]>,
}

/// A slot before its first admission: no time (always outside the window), parity of lap −1.
const EMPTY: u64 = 1;

/// The word that claims a retired log's next position: callers finding it at `head` take the
/// limiter's new log. Never a time: those end at `MAX_SLOT_NANOS + 1`, so their words below it.
const RETIRED: u64 = u64::MAX;

/// A position's slot, in the low bits of `head`.
const SLOT_MASK: u64 = u32::MAX as u64;
/// A position's lap, in the high bits of `head`.
const LAP_SHIFT: u32 = 32;

/// Slot times saturate here (292 years after the clock's origin), so encoding never wraps and
/// never reaches [`RETIRED`].
const MAX_SLOT_NANOS: u64 = (u64::MAX >> 1) - 2;

/// Why a log did not admit.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Refused {
    /// Full: a call fits in this long.
    Wait(Duration),
    /// The log was retired; the limiter has (or is about to publish) a new one.
    Retired,
}

impl SlidingLog {
    /// A log of `capacity` slots admitting `limit` in any `window`, holding `history` (the times
    /// in nanoseconds of earlier admissions, oldest first, at most `capacity`).
    fn new(capacity: u32, limit: u32, window: Duration, history: &[u64]) -> Self {
        let capacity = capacity.max(limit).max(1);
        let log = SlidingLog {
            capacity: u64::from(capacity),
            limit: AtomicU64::new(u64::from(limit.max(1))),
            window_nanos: AtomicU64::new(window_nanos(window)),
            head: CachePadded::new(AtomicU64::new(0)),
            slots: (0..capacity).map(|_| AtomicU64::new(EMPTY)).collect(),
        };
        log.load_history(history);
        log
    }

    /// Writes `history` (admission times, oldest first, at most the capacity) into a log no
    /// caller has seen yet: lap 0's positions hold it, the rest lap −1's (nothing yet). Plain
    /// stores: publishing the log (the limiter's pointer swap) makes them visible.
    fn load_history(&self, history: &[u64]) {
        debug_assert!(history.len() as u64 <= self.capacity);
        debug_assert_eq!(self.head.load(Ordering::Relaxed), 0, "a fresh log");
        for (slot, &nanos) in self.slots.iter().zip(history) {
            slot.store(encode(nanos, 0), Ordering::Relaxed);
        }
        let admitted = history.len() as u64;
        let head = if admitted == self.capacity {
            1 << LAP_SHIFT
        } else {
            admitted
        };
        self.head.store(head, Ordering::Relaxed);
    }

    /// Judges from now on by `limit` (at most the capacity) in any `window`.
    fn set(&self, limit: u32, window: Duration) {
        debug_assert!(u64::from(limit) <= self.capacity);
        self.window_nanos
            .store(window_nanos(window), Ordering::Relaxed);
        self.limit.store(
            u64::from(limit.clamp(1, self.capacity as u32)),
            Ordering::Relaxed,
        );
    }

    #[inline]
    fn slot(&self, position: u64) -> &AtomicU64 {
        &self.slots[(position & SLOT_MASK) as usize]
    }

    /// The slot of the position `back` before `position` (`1 ≤ back ≤ capacity`).
    #[inline]
    fn slot_back(&self, position: u64, back: u64) -> &AtomicU64 {
        let slot = position & SLOT_MASK;
        let index = if slot >= back {
            slot - back
        } else {
            slot + self.capacity - back
        };
        &self.slots[index as usize]
    }

    #[inline]
    fn lap_parity(position: u64) -> u64 {
        (position >> LAP_SHIFT) & 1
    }

    /// The position after `position`: the next slot, or the first slot of the next lap.
    #[inline]
    fn next(&self, position: u64) -> u64 {
        if (position & SLOT_MASK) + 1 == self.capacity {
            (position & !SLOT_MASK).wrapping_add(1 << LAP_SHIFT)
        } else {
            position + 1
        }
    }

    /// Moves `head` past `head`, a claimed position (a no-op if another caller did).
    #[inline(always)]
    fn move_head_past(&self, head: u64) {
        let _ =
            self.head
                .compare_exchange(head, self.next(head), Ordering::AcqRel, Ordering::Relaxed);
    }

    /// How long until a call would fit (zero: one fits now). Approximate under contention; for
    /// snapshots only.
    fn wait(&self, now: Timestamp) -> Duration {
        let head = self.head.load(Ordering::Acquire);
        let seen = self.slot(head).load(Ordering::Acquire);
        if seen & 1 == Self::lap_parity(head) || seen == RETIRED {
            return Duration::ZERO; // claimed just now, or retired; the next slot decides
        }
        let limit = self.limit.load(Ordering::Relaxed);
        let oldest = self.slot_back(head, limit).load(Ordering::Acquire);
        free_in(
            seen.max(oldest),
            now,
            self.window_nanos.load(Ordering::Relaxed),
        )
    }

    /// Admits a call at `now`, or says how long until one fits.
    // Always: the limit `limit ≤ capacity` made it large enough that the compiler stopped
    // inlining it into `try_acquire_at` (+50% instructions per `try_acquire`).
    #[inline(always)]
    fn try_admit(&self, now: Timestamp) -> Result<(), Refused> {
        loop {
            let head = self.head.load(Ordering::Acquire);
            let slot = self.slot(head);
            let seen = slot.load(Ordering::Acquire);
            let limit = self.limit.load(Ordering::Relaxed);
            // The admission `limit` back: the slot's own when the limit is the capacity.
            let oldest = if limit == self.capacity {
                seen
            } else {
                self.slot_back(head, limit).load(Ordering::Acquire)
            };
            if self.head.load(Ordering::Acquire) != head {
                continue; // the slots may belong to a later lap: start again
            }
            let parity = Self::lap_parity(head);
            if seen & 1 == parity {
                if seen == RETIRED {
                    return Err(Refused::Retired);
                }
                // Position `head` is claimed and its claimer has not moved `head` yet.
                self.move_head_past(head);
                continue;
            }
            // The later of the two admissions decides (a stamp of 0, never admitted, neither).
            let latest = seen.max(oldest);
            let wait = free_in(latest, now, self.window_nanos.load(Ordering::Relaxed));
            if !wait.is_zero() {
                if seen == RETIRED {
                    return Err(Refused::Retired); // (read as unclaimed on an even lap)
                }
                return Err(Refused::Wait(wait));
            }
            // A slot's times only grow (an admission comes a window after the one the slot
            // held), so an unchanged word means position `head` is still unclaimed.
            if slot
                .compare_exchange(
                    seen,
                    encode(now.as_nanos(), parity),
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                self.move_head_past(head);
                return Ok(());
            }
        }
    }

    /// Stops the log: claims its next position with [`RETIRED`], so that no call is admitted
    /// here any more, and returns the times of its last `count` admissions (nanoseconds, oldest
    /// first; fewer if it admitted fewer), which no caller changes once it is retired.
    fn retire(&self, count: u64) -> Vec<u64> {
        let end = loop {
            let head = self.head.load(Ordering::Acquire);
            let slot = self.slot(head);
            let seen = slot.load(Ordering::Acquire);
            if self.head.load(Ordering::Acquire) != head {
                continue;
            }
            if seen & 1 == Self::lap_parity(head) {
                debug_assert_ne!(seen, RETIRED, "retired twice");
                self.move_head_past(head);
                continue;
            }
            if slot
                .compare_exchange(seen, RETIRED, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                break (head, seen);
            }
        };
        // Every position before `end` is claimed, and none from it on ever will be. The oldest,
        // `end − capacity`, was in the word the marker replaced.
        let (end, replaced) = end;
        (1..=count.min(self.capacity))
            .rev()
            .map(|back| {
                let word = if back == self.capacity {
                    replaced
                } else {
                    self.slot_back(end, back).load(Ordering::Acquire)
                };
                word >> 1
            })
            .filter(|&stamp| stamp != 0) // never admitted
            .map(|stamp| stamp - 1)
            .collect()
    }
}

/// A slot word: admission time `nanos` (saturated at [`MAX_SLOT_NANOS`]) in lap parity `parity`.
#[inline]
fn encode(nanos: u64, parity: u64) -> u64 {
    (nanos.min(MAX_SLOT_NANOS) + 1) << 1 | parity
}

/// How long until the admission in slot word `seen` leaves a window of `window` nanoseconds.
#[inline]
fn free_in(seen: u64, now: Timestamp, window: u64) -> Duration {
    let stamp = seen >> 1;
    if stamp == 0 {
        return Duration::ZERO;
    }
    let free_at = (stamp - 1).saturating_add(window);
    Duration::from_nanos(free_at.saturating_sub(now.as_nanos()))
}

fn window_nanos(window: Duration) -> u64 {
    duration_to_nanos(window).max(1)
}

/// A limiter's logs: the limit's, and the burst's if it has one.
struct Logs {
    main: SlidingLog,
    burst: Option<SlidingLog>,
}

impl Logs {
    /// Logs for `limit`, of at least the given capacities, holding the given histories.
    fn new(limit: &RateLimit, capacities: (u32, u32), histories: (&[u64], &[u64])) -> Self {
        Logs {
            main: SlidingLog::new(capacities.0, limit.limit, limit.window, histories.0),
            burst: limit.burst.map(|burst| {
                SlidingLog::new(capacities.1, burst, burst_span(limit, burst), histories.1)
            }),
        }
    }

    /// Whether `limit` fits these logs as they are.
    fn fit(&self, limit: &RateLimit) -> bool {
        u64::from(limit.limit) <= self.main.capacity
            && match (&self.burst, limit.burst) {
                (Some(log), Some(burst)) => u64::from(burst) <= log.capacity,
                (None, None) => true,
                _ => false,
            }
    }

    #[inline(always)]
    fn try_admit(&self, now: Timestamp) -> Result<(), Refused> {
        // The burst log first: when the main log then refuses, the burst log keeps an
        // admission that did not happen, which can only make it stricter for one burst span;
        // the other order would keep one in the main log for a whole window.
        if let Some(burst) = &self.burst {
            burst.try_admit(now)?;
        }
        self.main.try_admit(now)
    }
}

/// The span in which at most `burst` calls of `limit` are admitted: `window × burst / limit`.
fn burst_span(limit: &RateLimit, burst: u32) -> Duration {
    let share = f64::from(burst) / f64::from(limit.limit.max(1));
    // Checked: a window near `Duration::MAX` must not panic (the share is at most 1).
    Duration::try_from_secs_f64(limit.window.as_secs_f64() * share).unwrap_or(limit.window)
}

/// A capacity for `needed` admissions in a log that had `capacity`: doubled at least, so that a
/// limit raised step by step replaces its log only a few times.
fn grown(capacity: u64, needed: u32) -> u32 {
    if u64::from(needed) <= capacity {
        return capacity as u32;
    }
    needed.max((capacity * 2).min(u64::from(MAX_RATE_LIMIT)) as u32)
}

/// A sliding-window rate limiter, shared by every call site that names it.
///
/// ```
/// use reliable_runtime::clock::Clock;
/// use reliable_runtime::limit::{RateLimit, RateLimiter, RateLimiterConfig};
/// use std::time::Duration;
///
/// let (clock, hand) = Clock::manual();
/// let limiter = RateLimiter::new("doc_limiter", RateLimiterConfig::new(RateLimit::per_minute(2)).clock(clock)).unwrap();
/// assert!(limiter.try_acquire().is_ok());
/// assert!(limiter.try_acquire().is_ok());
/// let rejected = limiter.try_acquire().unwrap_err();
/// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(60)));
/// hand.advance(Duration::from_secs(60));
/// assert!(limiter.try_acquire().is_ok());
/// ```
pub struct RateLimiter {
    name: &'static str,
    clock: Clock,
    /// The logs calls are admitted by: one of `retired`'s or the last published.
    logs: AtomicPtr<Logs>,
    limit: Live<RateLimit>,
    /// Logs replaced by a reconfiguration, kept while the limiter lives because a caller may
    /// still be reading them (it then finds them retired and takes `logs` again). Its lock
    /// makes one reconfiguration at a time.
    // Boxed: callers hold pointers to them, which a growing `Vec<Logs>` would move.
    #[allow(clippy::vec_box)]
    retired: Mutex<Vec<Box<Logs>>>,
    admitted: ShardedCounter,
    limited: ShardedCounter,
    events: Throttle,
}

impl Drop for RateLimiter {
    fn drop(&mut self) {
        let logs = self.logs.load(Ordering::Acquire);
        // SAFETY: `logs` came from `Box::into_raw` and, unlike the retired ones, is owned by no
        // box; no caller can hold it any more (`&mut self`).
        drop(unsafe { Box::from_raw(logs) });
    }
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("limit", &*self.limit.load())
            .finish_non_exhaustive()
    }
}

/// A rate limiter's counters, as `get_system_health()` shows them (`rate_limiters`).
///
/// The counters start at zero when the limiter is created (on the first call of a fn that
/// names it, or when it is registered by hand), add up every call site that shares its name,
/// and are never reset.
///
/// ```
/// use reliable_runtime::clock::Clock;
/// use reliable_runtime::limit::{RateLimit, RateLimiter, RateLimiterConfig};
///
/// let (clock, _hand) = Clock::manual();
/// let limiter = RateLimiter::new("rate_snapshot_doc", RateLimiterConfig::new(RateLimit::per_minute(1)).clock(clock)).unwrap();
/// assert!(limiter.try_acquire().is_ok());
/// assert!(limiter.try_acquire().is_err());
/// let stats = limiter.snapshot();
/// assert_eq!((stats.limit, stats.window_seconds, stats.admitted, stats.limited), (1, 60.0, 1, 1));
/// assert_eq!(stats.next_slot_in, 60.0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimiterSnapshot {
    /// Calls admitted at most in any `window_seconds` (the configuration).
    pub limit: u32,
    /// The sliding window, in seconds (the configuration).
    pub window_seconds: f64,
    /// Calls admitted since the limiter was created.
    pub admitted: u64,
    /// Refusals since the limiter was created: each attempt to take a slot that found none,
    /// by the limit or by the `burst`. A call that waits for its slot (`wait = true`) counts
    /// one for each time it found none before it got in.
    pub limited: u64,
    /// Seconds until a call made now would be admitted (the longer of the limit's and the
    /// burst's waits); 0.0 when one would be admitted now.
    pub next_slot_in: f64,
}

impl RateLimiter {
    /// A limiter named `name`, after validating `config`.
    pub fn new(name: impl AsRef<str>, config: RateLimiterConfig) -> Result<Self, ConfigError> {
        let RateLimiterConfig { limit, clock } = config;
        limit.validate()?;
        let logs = Logs::new(&limit, (limit.limit, limit.burst.unwrap_or(0)), (&[], &[]));
        Ok(RateLimiter {
            name: intern(name.as_ref()),
            clock,
            logs: AtomicPtr::new(Box::into_raw(Box::new(logs))),
            limit: Live::new(limit),
            retired: Mutex::new(Vec::new()),
            admitted: ShardedCounter::new(),
            limited: ShardedCounter::new(),
            events: Throttle::new(),
        })
    }

    /// The limiter's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configuration now (the limit changes with [`reconfigure`](Self::reconfigure)).
    pub fn config(&self) -> RateLimiterConfig {
        RateLimiterConfig {
            limit: self.limit(),
            clock: self.clock.clone(),
        }
    }

    /// The limit now.
    pub fn limit(&self) -> RateLimit {
        **self.limit.load()
    }

    /// The clock admissions are timed by.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Changes the limit while the limiter runs, judging the admissions it has already made by
    /// the new one: lowered from 1200 to 600 a minute, a limiter that admitted 700 in the last
    /// minute admits nothing until fewer than 600 remain in the window. The counters are kept.
    /// An invalid limit is an `Err` and changes nothing. Each change is an
    /// [`Event::Reconfigured`](crate::event::Event::Reconfigured) (an info alert).
    ///
    /// Admission takes no lock meanwhile. A limit above every one the limiter has had, or
    /// adding or removing its `burst`, moves its history (the last admissions the old log
    /// held) to new logs, and the old ones are kept until the limiter is dropped (a caller may
    /// still be reading them). Limits raised step by step at least double the capacity each
    /// time, so what they keep stays below what is in use; each change of whether there is a
    /// burst keeps one more log, so do not toggle the burst in a loop.
    ///
    /// Two approximations, both at the moment of a change: a caller racing it may judge by the
    /// old limit with the new window (one admission at most, per racing caller), and a larger
    /// log holds only the admissions the old one held, so a window lengthened together with a
    /// larger limit counts no further back than the old log reached.
    ///
    /// ```
    /// use reliable_runtime::clock::Clock;
    /// use reliable_runtime::limit::{RateLimit, RateLimiter, RateLimiterConfig};
    ///
    /// let (clock, _hand) = Clock::manual();
    /// let limiter = RateLimiter::new("reconfigure_limit_doc", RateLimiterConfig::new(RateLimit::per_minute(3)).clock(clock)).unwrap();
    /// assert!(limiter.try_acquire().is_ok());
    /// assert!(limiter.try_acquire().is_ok());
    /// limiter.reconfigure(|rate| rate.limit(2)).unwrap();
    /// assert!(limiter.try_acquire().is_err(), "two admitted in this minute already");
    /// limiter.reconfigure(|rate| rate.limit(10)).unwrap();
    /// assert!(limiter.try_acquire().is_ok());
    /// let error = limiter.reconfigure(|rate| rate.limit(0)).unwrap_err();
    /// assert_eq!(error.field(), "limit");
    /// assert_eq!(limiter.limit().limit, 10, "unchanged");
    /// ```
    pub fn reconfigure(
        &self,
        change: impl FnOnce(RateLimit) -> RateLimit,
    ) -> Result<(), ConfigError> {
        let mut retired = self.retired.lock().unwrap_or_else(PoisonError::into_inner);
        let next = self
            .limit
            .change(("rate limit", self.name), change, |_, next| next.validate())?;
        let logs = self.logs();
        if logs.fit(&next) {
            logs.main.set(next.limit, next.window);
            if let (Some(log), Some(burst)) = (&logs.burst, next.burst) {
                log.set(burst, burst_span(&next, burst));
            }
            return Ok(());
        }
        // Make the new logs first (nothing below can fail or allocate much), then retire the
        // old ones (no admission there from now on; the burst's first, so that a caller it
        // admitted and the main log then refuses is not counted twice), move their history
        // over and publish: callers that find the old ones retired wait only for the copy.
        let capacity = grown(logs.main.capacity, next.limit);
        let burst_capacity = match (&logs.burst, next.burst) {
            (Some(log), Some(burst)) => grown(log.capacity, burst),
            (_, burst) => burst.unwrap_or(0),
        };
        let replacement = Box::new(Logs::new(&next, (capacity, burst_capacity), (&[], &[])));
        if let (Some(old), Some(new)) = (&logs.burst, &replacement.burst) {
            new.load_history(&old.retire(new.capacity));
        }
        replacement
            .main
            .load_history(&logs.main.retire(replacement.main.capacity));
        let old = self.logs.swap(Box::into_raw(replacement), Ordering::AcqRel);
        // SAFETY: `old` came from `Box::into_raw` and is owned by no box until now.
        retired.push(unsafe { Box::from_raw(old) });
        Ok(())
    }

    /// [`reconfigure`](Self::reconfigure)'s checks, changing nothing.
    pub(crate) fn check_reconfigure(
        &self,
        change: impl FnOnce(RateLimit) -> RateLimit,
    ) -> Result<(), ConfigError> {
        self.limit.check(change, |_, next| next.validate())
    }

    #[inline(always)]
    fn logs(&self) -> &Logs {
        // SAFETY: `logs` always points to a live `Logs`: replaced ones are kept in `retired`
        // until the limiter drops.
        unsafe { &*self.logs.load(Ordering::Acquire) }
    }

    /// Admits one call now, or refuses with `Rejected::RateLimited { retry_after }`.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejected> {
        self.try_acquire_at(self.clock.now())
    }

    /// [`try_acquire`](Self::try_acquire) at `now`, a reading of this limiter's clock taken by
    /// the caller (the pipeline shares one reading between its layers).
    // Always: with a plain hint the compiler stopped inlining it into `try_acquire` once the
    // pipeline's call paths gave it more callers (+24% instructions per `try_acquire`).
    #[inline(always)]
    pub fn try_acquire_at(&self, now: Timestamp) -> Result<(), Rejected> {
        match self.logs().try_admit(now) {
            Ok(()) => {
                self.admitted.add(1);
                Ok(())
            }
            Err(refused) => self.refused(refused, now),
        }
    }

    #[cold]
    #[inline(never)]
    fn refused(&self, mut refused: Refused, now: Timestamp) -> Result<(), Rejected> {
        let mut spins = 0u32;
        loop {
            match refused {
                Refused::Wait(retry_after) => return Err(self.limited(retry_after)),
                // A reconfiguration is moving the history to new logs: take them once
                // published (a copy of at most the capacity; yield if it takes long, so that
                // callers on more threads than cores do not hold up the copying thread).
                Refused::Retired if spins < 64 => {
                    spins += 1;
                    std::hint::spin_loop();
                }
                Refused::Retired => std::thread::yield_now(),
            }
            match self.logs().try_admit(now) {
                Ok(()) => {
                    self.admitted.add(1);
                    return Ok(());
                }
                Err(again) => refused = again,
            }
        }
    }

    /// Admits one call, waiting (on tokio's timer) for a slot when none is free.
    pub async fn acquire(&self) {
        while let Err(rejected) = self.try_acquire() {
            let wait = rejected.retry_after().unwrap_or(Duration::from_millis(1));
            tokio::time::sleep(wait.max(Duration::from_micros(1))).await;
        }
    }

    fn limited(&self, retry_after: Duration) -> Rejected {
        self.limited.add(1);
        crate::event::publish_throttled(&self.events, || {
            tracing::debug!(limiter = self.name, ?retry_after, "rate limited");
            Event::RateLimited(LimitReached {
                name: self.name,
                retry_after: Some(retry_after),
            })
        });
        Rejected::RateLimited {
            limiter: self.name,
            retry_after,
        }
    }

    /// The limiter's counters now.
    pub fn snapshot(&self) -> RateLimiterSnapshot {
        let now = self.clock.now();
        let logs = self.logs();
        let mut wait = logs.main.wait(now);
        if let Some(burst) = &logs.burst {
            wait = wait.max(burst.wait(now));
        }
        let limit = self.limit();
        RateLimiterSnapshot {
            limit: limit.limit,
            window_seconds: limit.window.as_secs_f64(),
            admitted: self.admitted.sum(),
            limited: self.limited.sum(),
            next_slot_in: wait.as_secs_f64(),
        }
    }
}

/// The rate limiters' Prometheus families (resilience4j's names).
pub(crate) fn write_metrics(
    limiters: &BTreeMap<String, RateLimiterSnapshot>,
    out: &mut Exposition,
) {
    out.per_instance(
        (
            "resilience4j_ratelimiter_limit",
            "gauge",
            "Calls the rate limiter admits per window",
        ),
        "name",
        limiters,
        |limiter| limiter.limit,
    );
    out.per_instance_by(
        (
            "reliable_ratelimiter_calls_total",
            "counter",
            "Calls the rate limiter judged, by outcome",
        ),
        ("name", "kind"),
        limiters,
        |limiter| [("admitted", limiter.admitted), ("limited", limiter.limited)],
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(limit: RateLimit) -> (RateLimiter, crate::clock::ManualClock) {
        let (clock, hand) = Clock::manual();
        (
            RateLimiter::new("unit_rate", RateLimiterConfig { limit, clock }).unwrap(),
            hand,
        )
    }

    #[test]
    fn at_most_limit_in_any_window() {
        let (limiter, hand) = limiter(RateLimit::per_minute(60));
        for second in 0..60 {
            assert!(limiter.try_acquire().is_ok(), "call at {second}s");
            hand.advance(Duration::from_millis(500));
        }
        // 60 calls in the last 30 s: the 61st waits until the first leaves the window.
        let rejected = limiter.try_acquire().unwrap_err();
        assert_eq!(rejected.retry_after(), Some(Duration::from_secs(30)));
        hand.advance(Duration::from_secs(30));
        assert!(limiter.try_acquire().is_ok());
        assert!(
            limiter.try_acquire().is_err(),
            "the second call of t=0.5s has not left yet"
        );
        assert_eq!(limiter.snapshot().limited, 2);
    }

    #[test]
    fn burst_spreads_the_limit() {
        let (limiter, hand) = limiter(RateLimit::per_second(10).with_burst(2));
        assert!(limiter.try_acquire().is_ok());
        assert!(limiter.try_acquire().is_ok());
        // At most 2 in any 200 ms.
        assert_eq!(
            limiter.try_acquire().unwrap_err().retry_after(),
            Some(Duration::from_millis(200))
        );
        hand.advance(Duration::from_millis(200));
        assert!(limiter.try_acquire().is_ok());
    }

    /// `head` keeps the lap in 32 bits; when it wraps, the parities still alternate.
    #[test]
    fn the_lap_counter_wraps_without_breaking_the_ring() {
        let log = SlidingLog::new(2, 2, Duration::from_secs(1), &[]);
        let at = |seconds: u64| Timestamp::from_nanos(seconds * 1_000_000_000);
        // The last lap before the wrap (odd), its slots holding the lap before it (even).
        log.head
            .store(u64::from(u32::MAX) << LAP_SHIFT, Ordering::Relaxed);
        for slot in log.slots.iter() {
            slot.store(1 << 1, Ordering::Relaxed);
        }
        assert!(log.try_admit(at(10)).is_ok());
        assert!(log.try_admit(at(10)).is_ok());
        assert_eq!(log.head.load(Ordering::Relaxed), 0, "lap 0, slot 0");
        assert_eq!(
            log.try_admit(at(10)),
            Err(Refused::Wait(Duration::from_secs(1)))
        );
        assert!(log.try_admit(at(11)).is_ok());
        assert!(log.try_admit(at(11)).is_ok());
        assert!(log.try_admit(at(11)).is_err());
    }

    #[test]
    fn a_lowered_limit_judges_the_calls_already_admitted() {
        let (limiter, hand) = limiter(RateLimit::per_minute(3));
        assert!(limiter.try_acquire().is_ok());
        hand.advance(Duration::from_secs(10));
        assert!(limiter.try_acquire().is_ok());
        limiter.reconfigure(|rate| rate.limit(1)).unwrap();
        // The last admission (at 10 s) leaves the window at 70 s.
        assert_eq!(
            limiter.try_acquire().unwrap_err().retry_after(),
            Some(Duration::from_secs(60))
        );
        limiter.reconfigure(|rate| rate.limit(3)).unwrap();
        assert!(limiter.try_acquire().is_ok(), "back to 3: one left");
        assert!(limiter.try_acquire().is_err());
        let stats = limiter.snapshot();
        assert_eq!((stats.limit, stats.admitted, stats.limited), (3, 3, 2));
    }

    #[test]
    fn a_limit_above_the_capacity_moves_the_history_to_a_larger_log() {
        let (limiter, hand) = limiter(RateLimit::per_minute(2));
        assert!(limiter.try_acquire().is_ok());
        hand.advance(Duration::from_secs(20));
        assert!(limiter.try_acquire().is_ok());
        assert!(limiter.try_acquire().is_err());
        limiter.reconfigure(|rate| rate.limit(5)).unwrap();
        assert_eq!(limiter.logs().main.capacity, 5);
        for _ in 0..3 {
            assert!(limiter.try_acquire().is_ok());
        }
        // Five in the window, the first (at 0 s) leaving at 60 s.
        assert_eq!(
            limiter.try_acquire().unwrap_err().retry_after(),
            Some(Duration::from_secs(40))
        );
        // Raised a step: the capacity at least doubles.
        limiter.reconfigure(|rate| rate.limit(6)).unwrap();
        assert_eq!(limiter.logs().main.capacity, 10);
        assert!(limiter.try_acquire().is_ok());
        assert!(limiter.try_acquire().is_err());
        assert_eq!(limiter.retired.lock().unwrap().len(), 2);
    }

    #[test]
    fn a_burst_can_be_added_changed_and_removed() {
        let (limiter, hand) = limiter(RateLimit::per_second(10));
        assert!(limiter.try_acquire().is_ok());
        limiter.reconfigure(|rate| rate.with_burst(2)).unwrap();
        assert!(limiter.try_acquire().is_ok());
        // At most 2 in any 200 ms (the burst log starts empty: the one before is not in it).
        assert!(limiter.try_acquire().is_ok());
        assert_eq!(
            limiter.try_acquire().unwrap_err().retry_after(),
            Some(Duration::from_millis(200))
        );
        limiter.reconfigure(|rate| rate.with_burst(1)).unwrap();
        hand.advance(Duration::from_millis(100));
        assert!(limiter.try_acquire().is_ok(), "1 in any 100 ms");
        assert!(limiter.try_acquire().is_err());
        limiter.reconfigure(|rate| rate.burst(None)).unwrap();
        for _ in 0..6 {
            assert!(limiter.try_acquire().is_ok());
        }
        assert!(limiter.try_acquire().is_err(), "10 in the second");
    }

    #[test]
    fn a_longer_window_keeps_calls_in_it_longer() {
        let (limiter, hand) = limiter(RateLimit::per_second(1));
        assert!(limiter.try_acquire().is_ok());
        hand.advance(Duration::from_secs(1));
        limiter
            .reconfigure(|rate| rate.window(Duration::from_secs(5)))
            .unwrap();
        assert_eq!(
            limiter.try_acquire().unwrap_err().retry_after(),
            Some(Duration::from_secs(4))
        );
        assert_eq!(limiter.config().limit.window, Duration::from_secs(5));
    }

    #[test]
    fn an_invalid_limit_changes_nothing() {
        let (limiter, _hand) = limiter(RateLimit::per_second(2));
        let error = limiter.reconfigure(|rate| rate.with_burst(3)).unwrap_err();
        assert_eq!(error.field(), "burst");
        assert_eq!(limiter.limit(), RateLimit::per_second(2));
        assert!(limiter.logs().burst.is_none());
    }

    /// Callers on more threads than cores admit while the limit moves up and down, through
    /// replaced logs; the clock stands still, so every admission stays in the window: at no
    /// time more than the largest limit yet, and in the end exactly the last.
    #[test]
    fn admissions_racing_reconfigurations_never_exceed_the_limit() {
        use std::sync::atomic::AtomicBool;
        for round in 0..20 {
            let (limiter, _hand) = limiter(RateLimit::per_minute(4));
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        while !done.load(Ordering::Relaxed) {
                            let _ = limiter.try_acquire();
                        }
                    });
                }
                let mut largest = 4;
                for limit in [2, 16, 8, 33, 5, 100, 64, 250] {
                    limiter.reconfigure(|rate| rate.limit(limit)).unwrap();
                    largest = largest.max(limit);
                    std::thread::yield_now();
                    let admitted = limiter.snapshot().admitted;
                    assert!(
                        admitted <= u64::from(largest),
                        "round {round}: {admitted} admitted, limit {limit}"
                    );
                }
                let started = std::time::Instant::now();
                while limiter.snapshot().admitted < 250 {
                    std::thread::yield_now();
                    if started.elapsed() > Duration::from_secs(3) {
                        panic!(
                            "round {round}: stalled at {} admitted",
                            limiter.snapshot().admitted
                        );
                    }
                }
                done.store(true, Ordering::Relaxed);
            });
            assert_eq!(limiter.snapshot().admitted, 250, "round {round}");
        }
    }

    #[test]
    fn a_burst_over_a_huge_window_does_not_overflow() {
        let limit = RateLimit::per_second(5).window(Duration::MAX).with_burst(5);
        assert_eq!(burst_span(&limit, 5), Duration::MAX);
        assert!(RateLimiter::new("huge_window", RateLimiterConfig::new(limit)).is_ok());
    }

    #[test]
    fn bad_limits_are_errors() {
        assert_eq!(
            RateLimit::per_second(0).validate().unwrap_err().field(),
            "limit"
        );
        assert_eq!(
            RateLimit::per_second(5)
                .with_burst(6)
                .validate()
                .unwrap_err()
                .field(),
            "burst"
        );
    }
}

/// Model checks of the sliding log's claim protocol over every interleaving (`--cfg
/// reliable_loom`, see `src/sync.rs`).
#[cfg(all(test, reliable_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    /// Every interleaving, or with three callers every one with up to two preemptions (the
    /// races these models guard need one or two; the bound keeps the run within CI's time).
    fn check(callers: usize, model: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if callers > 2 {
            builder.preemption_bound = Some(2);
        }
        builder.check(model);
    }

    const WINDOW: Duration = Duration::from_secs(1);

    fn at(seconds: u64) -> Timestamp {
        Timestamp::from_nanos(seconds * 1_000_000_000)
    }

    /// Callers at `times` racing on a log of `limit` (after `before` admissions): the sorted
    /// admission times.
    fn race(limit: u32, before: &[u64], times: &'static [u64]) -> Vec<u64> {
        race_in(limit, limit, before, times)
    }

    /// [`race`] on a ring of `capacity` slots judging by a lower `limit`.
    fn race_in(capacity: u32, limit: u32, before: &[u64], times: &'static [u64]) -> Vec<u64> {
        let log = Arc::new(SlidingLog::new(capacity, limit, WINDOW, &[]));
        for &time in before {
            log.try_admit(at(time)).unwrap();
        }
        let callers: Vec<_> = times
            .iter()
            .map(|&time| {
                let log = Arc::clone(&log);
                loom::thread::spawn(move || log.try_admit(at(time)).is_ok().then_some(time))
            })
            .collect();
        let mut admitted: Vec<u64> = callers
            .into_iter()
            .filter_map(|caller| caller.join().unwrap())
            .collect();
        admitted.sort_unstable();
        admitted
    }

    /// Callers in one window get exactly the limit: never more, never fewer.
    #[test]
    fn one_window_admits_exactly_the_limit() {
        check(2, || assert_eq!(race(1, &[], &[0, 0]).len(), 1));
        check(3, || assert_eq!(race(2, &[], &[0, 0, 0]).len(), 2));
    }

    /// Callers lapping a full ring: a slot is reused only by a caller a window later than the
    /// admission it replaces, and a caller never takes a slot of a later lap for the oldest.
    #[test]
    fn lapping_the_ring_keeps_the_limit_in_every_window() {
        check(2, || {
            // Limit 1, admitted at 0: the caller at 1 gets in; the caller at 2 gets in unless
            // it came first (then the caller at 1 is refused: it is within a window of it).
            let admitted = race(1, &[0], &[1, 2]);
            assert!(
                admitted == [1, 2] || admitted == [2],
                "admitted at {admitted:?}"
            );
        });
        check(2, || {
            // Limit 2, full at 0: both callers at 1 fit, as the two admissions at 0 left.
            assert_eq!(race(2, &[0, 0], &[1, 1]), [1, 1]);
        });
    }

    /// A ring larger than its limit (a lowered limit): position 1 is judged by the slot one
    /// back, position 2 (the next lap) by that and by its own slot's old admission.
    #[test]
    fn a_lowered_limit_judges_by_the_slot_limit_back() {
        check(2, || {
            let admitted = race_in(2, 1, &[0], &[1, 2]);
            assert!(
                admitted == [1, 2] || admitted == [2],
                "admitted at {admitted:?}"
            );
        });
    }
    /// A log retired while a caller admits: the caller is admitted before the retirement and
    /// its time is in the history moved on, or it finds the log retired. Never admitted and
    /// lost, never admitted after.
    #[test]
    fn retiring_loses_no_admission() {
        check(2, || {
            let log = Arc::new(SlidingLog::new(2, 2, WINDOW, &[]));
            let caller = {
                let log = Arc::clone(&log);
                loom::thread::spawn(move || log.try_admit(at(0)))
            };
            let history = log.retire(2);
            match caller.join().unwrap() {
                Ok(()) => assert_eq!(history, [0]),
                Err(refused) => {
                    assert_eq!(refused, Refused::Retired);
                    assert!(history.is_empty());
                }
            }
        });
        check(2, || {
            // A full ring: the oldest admission is the one the retiring marker replaces.
            let log = Arc::new(SlidingLog::new(1, 1, WINDOW, &[0]));
            let caller = {
                let log = Arc::clone(&log);
                loom::thread::spawn(move || log.try_admit(at(1)))
            };
            let history = log.retire(1);
            let one_second = 1_000_000_000;
            match caller.join().unwrap() {
                Ok(()) => assert_eq!(history, [one_second]),
                Err(_) => assert_eq!(history, [0]),
            }
        });
        check(3, || {
            // A lowered limit on a lapped ring: the limit-1 log, full, admits no one at 0.
            let log = Arc::new(SlidingLog::new(2, 1, WINDOW, &[0]));
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    let log = Arc::clone(&log);
                    loom::thread::spawn(move || log.try_admit(at(0)))
                })
                .collect();
            let history = log.retire(2);
            for caller in callers {
                let refused = caller.join().unwrap().unwrap_err();
                assert!(matches!(refused, Refused::Wait(_) | Refused::Retired));
            }
            assert_eq!(history, [0]);
        });
    }
}
