//! Rate limiter: at most `limit` calls in any sliding window (the reference's algorithm).
//!
//! Why not `governor`: governor implements GCRA, a token bucket. With a quota of 60 per minute
//! and a burst of 60 it lets 60 calls through at once and then one more every second, so up to
//! 119 calls can land within one minute; the reference (and exchange APIs that count requests
//! per rolling minute) promise at most 60 in *any* 60 seconds. That is a sliding log: a ring of
//! the last `limit` admission times, where a call is admitted only if the admission `limit`
//! calls back is older than the window. One compare-and-swap on the ring's head per admission,
//! no lock, exact.

use crate::clock::{duration_to_nanos, Clock, Timestamp};
use crate::error::{ConfigError, Rejected};
use crate::event::{Event, LimitReached, Throttle};
use crate::registry::intern;
use crate::shard::ShardedCounter;
use crossbeam_utils::CachePadded;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

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
pub struct RateLimit {
    /// Calls admitted in any `window`.
    pub limit: u32,
    /// The sliding window.
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

    /// `limit` calls in any minute (the reference's default is 60).
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
        if self.limit == 0 || self.limit > 10_000_000 {
            return Err(ConfigError::new("limit", "must be within 1..=10000000"));
        }
        if self.window.is_zero() {
            return Err(ConfigError::new("window", "must be above zero"));
        }
        if let Some(burst) = self.burst {
            if burst == 0 || burst > self.limit {
                return Err(ConfigError::new("burst", "must be within 1..=limit"));
            }
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

/// The last admission times, oldest overwritten first.
struct SlidingLog {
    window_nanos: u64,
    head: CachePadded<AtomicU64>,
    /// Admission time + 1 (0: never used).
    slots: Box<[AtomicU64]>,
}

impl SlidingLog {
    fn new(limit: u32, window: Duration) -> Self {
        SlidingLog {
            window_nanos: duration_to_nanos(window).max(1),
            head: CachePadded::new(AtomicU64::new(0)),
            slots: (0..limit).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    fn slot(&self, position: u64) -> &AtomicU64 {
        &self.slots[(position % self.slots.len() as u64) as usize]
    }

    /// How long until the oldest logged admission leaves the window (zero: a call fits now).
    fn wait(&self, now: Timestamp) -> Duration {
        let oldest = self
            .slot(self.head.load(Ordering::Acquire))
            .load(Ordering::Acquire);
        self.free_in(oldest, now)
    }

    fn free_in(&self, oldest: u64, now: Timestamp) -> Duration {
        if oldest == 0 {
            return Duration::ZERO;
        }
        let free_at = (oldest - 1).saturating_add(self.window_nanos);
        Duration::from_nanos(free_at.saturating_sub(now.as_nanos()))
    }

    /// Admits a call at `now`, or says how long until one fits.
    fn try_admit(&self, now: Timestamp) -> Result<(), Duration> {
        loop {
            let head = self.head.load(Ordering::Acquire);
            let wait = self.free_in(self.slot(head).load(Ordering::Acquire), now);
            if !wait.is_zero() {
                return Err(wait);
            }
            if self
                .head
                .compare_exchange_weak(head, head + 1, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
            {
                self.slot(head)
                    .store(now.as_nanos().saturating_add(1), Ordering::Release);
                return Ok(());
            }
        }
    }

    /// Logs an admission without checking (the burst log follows the main one).
    fn record(&self, now: Timestamp) {
        let head = self.head.fetch_add(1, Ordering::AcqRel);
        self.slot(head)
            .store(now.as_nanos().saturating_add(1), Ordering::Release);
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

/// A rate limiter's counters, as health shows them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RateLimiterSnapshot {
    /// Calls admitted in any `window_seconds`.
    pub limit: u32,
    /// The window.
    pub window_seconds: f64,
    /// Calls admitted since creation.
    pub admitted: u64,
    /// Calls refused (or made to wait) since creation.
    pub limited: u64,
    /// Seconds until the next call fits (0 when one fits now).
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
    #[inline]
    pub fn try_acquire_at(&self, now: Timestamp) -> Result<(), Rejected> {
        let burst_wait = self
            .burst
            .as_ref()
            .map_or(Duration::ZERO, |burst| burst.wait(now));
        let admitted = if burst_wait.is_zero() {
            self.log.try_admit(now)
        } else {
            Err(burst_wait)
        };
        match admitted {
            Ok(()) => {
                if let Some(burst) = &self.burst {
                    burst.record(now);
                }
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
        self.events.publish(|| {
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
