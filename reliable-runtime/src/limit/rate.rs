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
use crate::common::shard::ShardedCounter;
use crate::common::throttle::Throttle;
use crate::error::{ConfigError, Rejected};
use crate::event::{Event, LimitReached};
use crate::sync::AtomicU64;
use crossbeam_utils::CachePadded;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::Ordering;
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

/// A rate limiter's configuration.
#[derive(Clone, Debug)]
pub struct RateLimiterConfig {
    /// The limit.
    pub limit: RateLimit,
    /// The clock (default: [`Clock::system`]).
    pub clock: Clock,
}

impl RateLimiterConfig {
    /// `limit` on the system clock.
    pub fn new(limit: RateLimit) -> Self {
        RateLimiterConfig {
            limit,
            clock: Clock::system(),
        }
    }
}

/// The times of the last `limit` admissions: a ring with one slot per admission *position*
/// (the n-th admission ever is position n, in slot `n % limit`).
///
/// Position `n` may be admitted only when the admission `limit` positions back, which the slot
/// still holds, has left the window. The admission is claimed by one compare-and-swap on the
/// slot, which writes its time in the same step, so no reader can find a claimed slot with a
/// time not yet written. `head` (the next position) then moves on; a caller that finds the slot
/// at `head` already claimed for `head` moves it on itself, so a claimer stalled before its
/// second step delays nobody.
///
/// Each slot carries the parity of its position's lap (`n / limit`): with `head` read the same
/// before and after the slot, the slot holds either position `head − limit` (the other parity)
/// or `head` itself (same parity), and nothing else; `loom_models` below checks this protocol.
///
/// `head` holds the position as its lap (high 32 bits) and its slot (low 32 bits), so finding
/// the slot and the parity takes no division. Why: BENCHMARKS.md, section "Design notes moved
/// from the API docs".
struct SlidingLog {
    window_nanos: u64,
    limit: u64,
    /// The next position: `lap << 32 | slot`.
    head: CachePadded<AtomicU64>,
    /// `(admission nanos + 1) << 1 | lap parity`; [`EMPTY`] before the slot's first admission.
    slots: Box<[AtomicU64]>,
}

/// A slot before its first admission: no time (always outside the window), parity of lap −1.
const EMPTY: u64 = 1;

/// A position's slot, in the low bits of `head`.
const SLOT_MASK: u64 = u32::MAX as u64;
/// A position's lap, in the high bits of `head`.
const LAP_SHIFT: u32 = 32;

/// Slot times saturate here (292 years after the clock's origin), so encoding never wraps.
const MAX_SLOT_NANOS: u64 = (u64::MAX >> 1) - 1;

impl SlidingLog {
    fn new(limit: u32, window: Duration) -> Self {
        SlidingLog {
            window_nanos: duration_to_nanos(window).max(1),
            limit: u64::from(limit.max(1)),
            head: CachePadded::new(AtomicU64::new(0)),
            slots: (0..limit.max(1)).map(|_| AtomicU64::new(EMPTY)).collect(),
        }
    }

    #[inline]
    fn slot(&self, position: u64) -> &AtomicU64 {
        &self.slots[(position & SLOT_MASK) as usize]
    }

    #[inline]
    fn lap_parity(position: u64) -> u64 {
        (position >> LAP_SHIFT) & 1
    }

    /// The position after `position`: the next slot, or the first slot of the next lap.
    #[inline]
    fn next(&self, position: u64) -> u64 {
        if (position & SLOT_MASK) + 1 == self.limit {
            (position & !SLOT_MASK).wrapping_add(1 << LAP_SHIFT)
        } else {
            position + 1
        }
    }

    /// How long until a call would fit (zero: one fits now). Approximate under contention; for
    /// snapshots only.
    fn wait(&self, now: Timestamp) -> Duration {
        let head = self.head.load(Ordering::Acquire);
        let seen = self.slot(head).load(Ordering::Acquire);
        if seen & 1 == Self::lap_parity(head) {
            return Duration::ZERO; // claimed just now; the next slot decides
        }
        self.free_in(seen, now)
    }

    /// How long until the admission in slot word `seen` leaves the window.
    #[inline]
    fn free_in(&self, seen: u64, now: Timestamp) -> Duration {
        let stamp = seen >> 1;
        if stamp == 0 {
            return Duration::ZERO;
        }
        let free_at = (stamp - 1).saturating_add(self.window_nanos);
        Duration::from_nanos(free_at.saturating_sub(now.as_nanos()))
    }

    /// Admits a call at `now`, or says how long until one fits.
    #[inline]
    fn try_admit(&self, now: Timestamp) -> Result<(), Duration> {
        loop {
            let head = self.head.load(Ordering::Acquire);
            let slot = self.slot(head);
            let seen = slot.load(Ordering::Acquire);
            if self.head.load(Ordering::Acquire) != head {
                continue; // the slot may belong to a later lap: start again
            }
            let parity = Self::lap_parity(head);
            if seen & 1 == parity {
                // Position `head` is claimed and its claimer has not moved `head` yet.
                let _ = self.head.compare_exchange(
                    head,
                    self.next(head),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                continue;
            }
            let wait = self.free_in(seen, now);
            if !wait.is_zero() {
                return Err(wait);
            }
            let stamp = now.as_nanos().min(MAX_SLOT_NANOS) + 1;
            // A slot's times only grow (each admission comes a window after the one before it
            // in the slot), so an unchanged word means position `head` is still unclaimed.
            if slot
                .compare_exchange(
                    seen,
                    stamp << 1 | parity,
                    Ordering::AcqRel,
                    Ordering::Acquire,
                )
                .is_ok()
            {
                let _ = self.head.compare_exchange(
                    head,
                    self.next(head),
                    Ordering::AcqRel,
                    Ordering::Relaxed,
                );
                return Ok(());
            }
        }
    }
}

/// A sliding-window rate limiter, shared by every call site that names it.
///
/// ```
/// use reliable_runtime::clock::Clock;
/// use reliable_runtime::limit::{RateLimit, RateLimiter, RateLimiterConfig};
/// use std::time::Duration;
///
/// let (clock, hand) = Clock::manual();
/// let limiter = RateLimiter::new("doc_limiter", RateLimiterConfig { limit: RateLimit::per_minute(2), clock }).unwrap();
/// assert!(limiter.try_acquire().is_ok());
/// assert!(limiter.try_acquire().is_ok());
/// let rejected = limiter.try_acquire().unwrap_err();
/// assert_eq!(rejected.retry_after(), Some(Duration::from_secs(60)));
/// hand.advance(Duration::from_secs(60));
/// assert!(limiter.try_acquire().is_ok());
/// ```
pub struct RateLimiter {
    name: &'static str,
    config: RateLimiterConfig,
    log: SlidingLog,
    burst: Option<SlidingLog>,
    admitted: ShardedCounter,
    limited: ShardedCounter,
    events: Throttle,
}

impl fmt::Debug for RateLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RateLimiter")
            .field("name", &self.name)
            .field("limit", &self.config.limit)
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
/// let limiter = RateLimiter::new("rate_snapshot_doc", RateLimiterConfig { limit: RateLimit::per_minute(1), clock }).unwrap();
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
        let limit = config.limit;
        limit.validate()?;
        let burst = limit.burst.map(|burst| {
            let span = limit
                .window
                .mul_f64(f64::from(burst) / f64::from(limit.limit));
            SlidingLog::new(burst, span)
        });
        Ok(RateLimiter {
            name: intern(name.as_ref()),
            log: SlidingLog::new(limit.limit, limit.window),
            burst,
            config,
            admitted: ShardedCounter::new(),
            limited: ShardedCounter::new(),
            events: Throttle::new(),
        })
    }

    /// The limiter's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configuration.
    pub fn config(&self) -> &RateLimiterConfig {
        &self.config
    }

    /// Admits one call now, or refuses with `Rejected::RateLimited { retry_after }`.
    #[inline]
    pub fn try_acquire(&self) -> Result<(), Rejected> {
        self.try_acquire_at(self.config.clock.now())
    }

    /// [`try_acquire`](Self::try_acquire) at `now`, a reading of this limiter's clock taken by
    /// the caller (the pipeline shares one reading between its layers).
    // Always: with a plain hint the compiler stopped inlining it into `try_acquire` once the
    // pipeline's call paths gave it more callers (+24% instructions per `try_acquire`).
    #[inline(always)]
    pub fn try_acquire_at(&self, now: Timestamp) -> Result<(), Rejected> {
        // The burst log first: when the main log then refuses, the burst log keeps an
        // admission that did not happen, which can only make it stricter for one burst span;
        // the other order would keep one in the main log for a whole window.
        if let Some(burst) = &self.burst {
            if let Err(retry_after) = burst.try_admit(now) {
                return Err(self.limited(retry_after));
            }
        }
        match self.log.try_admit(now) {
            Ok(()) => {
                self.admitted.add(1);
                Ok(())
            }
            Err(retry_after) => Err(self.limited(retry_after)),
        }
    }

    /// Admits one call, waiting (on tokio's timer) for a slot when none is free.
    pub async fn acquire(&self) {
        while let Err(rejected) = self.try_acquire() {
            let wait = rejected.retry_after().unwrap_or(Duration::from_millis(1));
            tokio::time::sleep(wait.max(Duration::from_micros(1))).await;
        }
    }

    #[cold]
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
        let now = self.config.clock.now();
        let mut wait = self.log.wait(now);
        if let Some(burst) = &self.burst {
            wait = wait.max(burst.wait(now));
        }
        RateLimiterSnapshot {
            limit: self.config.limit.limit,
            window_seconds: self.config.limit.window.as_secs_f64(),
            admitted: self.admitted.sum(),
            limited: self.limited.sum(),
            next_slot_in: wait.as_secs_f64(),
        }
    }
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
        let log = SlidingLog::new(2, Duration::from_secs(1));
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
        assert_eq!(log.try_admit(at(10)), Err(Duration::from_secs(1)));
        assert!(log.try_admit(at(11)).is_ok());
        assert!(log.try_admit(at(11)).is_ok());
        assert!(log.try_admit(at(11)).is_err());
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
        let log = Arc::new(SlidingLog::new(limit, WINDOW));
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
}
