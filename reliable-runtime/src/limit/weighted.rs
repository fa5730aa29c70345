//! Weighted limits over several windows at once, corrected by what the server reports, and
//! kept per key with bounded memory.
//!
//! Exchange APIs count request *weight*, not requests: Binance allows 1200 weight per minute
//! per IP, a depth snapshot of 5000 levels costs 250 of it, and each response says in
//! `X-MBX-USED-WEIGHT-1M` how much of the minute is used, counting requests this process never
//! made (another replica, another tool on the same IP). Orders have their own limits, per 10 s
//! and per day, and every API key has them separately.
//!
//! Why a lock here, where [`RateLimiter`](super::RateLimiter) has none: its lock-free log
//! claims one slot per admission, and a call of weight 250 would claim 250 slots one by one, so
//! a call refused half-way would have admitted half its weight. A weighted admission must check
//! every window and record itself in one step; the mutex holds for that step only (a few
//! comparisons and a push), and a weighted limit guards a network call that costs milliseconds.

use crate::clock::{duration_to_nanos, Clock, Timestamp};
use crate::common::intern::intern;
use crate::common::recency;
use crate::error::{ConfigError, Rejected};
use crate::limit::RateLimit;
use serde::Serialize;
use std::collections::VecDeque;
use std::fmt;
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The most windows one [`WeightedLimiter`] judges by (each admission records which windows it
/// counts in as a bit).
pub const MAX_WINDOWS: usize = 8;

/// Weight admitted by several sliding windows at once: a call is admitted only if its weight
/// fits every window, and then counts in all of them.
///
/// ```
/// use reliable_runtime::clock::Clock;
/// use reliable_runtime::limit::{RateLimit, WeightedLimiter};
/// use std::time::Duration;
///
/// let (clock, hand) = Clock::manual();
/// // Binance's request weight: 1200 a minute; and at most 100 in any second.
/// let binance = WeightedLimiter::new(
///     "binance_weight",
///     &[RateLimit::per_minute(1200), RateLimit::per_second(100)],
///     clock,
/// )
/// .unwrap();
/// assert!(binance.try_acquire(50).is_ok());
/// assert!(binance.try_acquire(50).is_ok());
/// // The second is full: the next weight fits in a second.
/// let refused = binance.try_acquire(1).unwrap_err();
/// assert_eq!(refused.retry_after(), Some(Duration::from_secs(1)));
/// hand.advance(Duration::from_secs(1));
/// // The server says 1150 of its minute is used (other processes on this IP): 50 are left.
/// binance.correct(Duration::from_secs(60), 1150);
/// assert!(binance.try_acquire(60).is_err());
/// assert!(binance.try_acquire(50).is_ok());
/// ```
pub struct WeightedLimiter {
    name: &'static str,
    limits: Vec<RateLimit>,
    clock: Clock,
    state: Mutex<Windows>,
    admitted: AtomicU64,
    admitted_weight: AtomicU64,
    limited: AtomicU64,
    /// When this limiter last admitted or was asked (nanoseconds of its clock), for a keyed
    /// limiter's eviction.
    last_used: AtomicU64,
}

/// The admissions still inside the longest window, oldest first, and each window's sum.
struct Windows {
    /// `(nanos, weight, windows it counts in as bits)`.
    entries: VecDeque<(u64, u32, u8)>,
    /// Per window: the index in `entries` (offset by `popped`) of its oldest entry still in it,
    /// and the weight it holds.
    starts: Vec<u64>,
    sums: Vec<u64>,
    /// Entries popped off the front since the limiter was created.
    popped: u64,
}

impl fmt::Debug for WeightedLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WeightedLimiter")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// A weighted limiter's state, as health shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WeightedSnapshot {
    /// Per window: its span in seconds, its limit, and the weight it holds now (corrections
    /// by the server included).
    pub windows: Vec<WindowUse>,
    /// Calls admitted since the limiter was created.
    pub admitted: u64,
    /// Their weight.
    pub admitted_weight: u64,
    /// Calls refused since the limiter was created.
    pub limited: u64,
}

/// One window of a [`WeightedSnapshot`].
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct WindowUse {
    /// The window, in seconds.
    pub window_seconds: f64,
    /// The weight it admits.
    pub limit: u32,
    /// The weight in it now.
    pub used: u64,
}

impl WeightedLimiter {
    /// A limiter named `name` admitting, in every window of `limits` at once, at most its
    /// `limit` of weight. At least one window and at most [`MAX_WINDOWS`]; two windows of
    /// the same span are refused (one would hide the other); a `burst` is refused (write it
    /// as a shorter window of its own). Each window's `limit` is weight, up to `u32::MAX`.
    pub fn new(
        name: impl AsRef<str>,
        limits: &[RateLimit],
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        check(limits)?;
        let now = clock.now().as_nanos();
        Ok(WeightedLimiter {
            name: intern(name.as_ref()),
            limits: limits.to_vec(),
            clock,
            state: Mutex::new(Windows {
                entries: VecDeque::new(),
                starts: vec![0; limits.len()],
                sums: vec![0; limits.len()],
                popped: 0,
            }),
            admitted: AtomicU64::new(0),
            admitted_weight: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            last_used: AtomicU64::new(now),
        })
    }

    /// The limiter's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Its windows.
    pub fn limits(&self) -> &[RateLimit] {
        &self.limits
    }

    /// Admits a call of `weight` now, or refuses with `Rejected::RateLimited { retry_after }`,
    /// the time until that weight fits every window. The weight of one call above a window's
    /// whole limit never fits ([`fits`](Self::fits) says so): `retry_after` is then the
    /// window, and a policy refuses to be built with such a weight. A weight of 0 is always
    /// admitted and counts nowhere.
    pub fn try_acquire(&self, weight: u32) -> Result<(), Rejected> {
        self.try_acquire_at(weight, self.clock.now())
    }

    /// [`try_acquire`](Self::try_acquire) at `now`, a reading of this limiter's clock.
    pub fn try_acquire_at(&self, weight: u32, now: Timestamp) -> Result<(), Rejected> {
        let now = now.as_nanos();
        self.last_used.fetch_max(now, Ordering::Relaxed);
        if weight == 0 {
            return Ok(());
        }
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire(&self.limits, now);
        let mut wait = 0u64;
        for (index, limit) in self.limits.iter().enumerate() {
            if state.sums[index] + u64::from(weight) > u64::from(limit.limit) {
                wait = wait.max(state.wait(index, limit, weight, now));
            }
        }
        if wait > 0 {
            drop(state);
            self.limited.fetch_add(1, Ordering::Relaxed);
            return Err(Rejected::RateLimited {
                limiter: self.name,
                retry_after: Duration::from_nanos(wait),
            });
        }
        state.push(now, weight, all_windows(self.limits.len()));
        drop(state);
        self.admitted.fetch_add(1, Ordering::Relaxed);
        self.admitted_weight
            .fetch_add(u64::from(weight), Ordering::Relaxed);
        Ok(())
    }

    /// Whether a call of `weight` can ever be admitted: at most every window's limit.
    pub fn fits(&self, weight: u32) -> bool {
        self.limits.iter().all(|limit| weight <= limit.limit)
    }

    /// Admits a call of `weight`, waiting (on tokio's timer) until it fits; a weight that
    /// never fits ([`fits`](Self::fits)) is refused at once rather than waited for forever.
    pub async fn acquire(&self, weight: u32) -> Result<(), Rejected> {
        loop {
            match self.try_acquire(weight) {
                Ok(()) => return Ok(()),
                Err(rejected) if !self.fits(weight) => return Err(rejected),
                Err(rejected) => {
                    let wait = rejected.retry_after().unwrap_or(Duration::from_millis(1));
                    tokio::time::sleep(wait.max(Duration::from_micros(1))).await;
                }
            }
        }
    }

    /// Takes what the server reports as used in its window of `window` (e.g. Binance's
    /// `X-MBX-USED-WEIGHT-1M: 1150` for the minute): when that is more than this limiter
    /// counts, the difference is counted in that window as if admitted now, so the calls of
    /// other processes on the same quota are not spent twice. A report of less than counted
    /// changes nothing (the difference is this process's calls the server has not counted
    /// yet, or that never reached it). A `window` this limiter does not have changes nothing;
    /// returns whether one matched.
    pub fn correct(&self, window: Duration, used: u64) -> bool {
        let Some(index) = self.limits.iter().position(|limit| limit.window == window) else {
            return false;
        };
        let now = self.clock.now().as_nanos();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire(&self.limits, now);
        let missing = used.saturating_sub(state.sums[index]);
        if missing > 0 {
            let missing = u32::try_from(missing).unwrap_or(u32::MAX);
            state.push(now, missing, 1 << index);
        }
        true
    }

    /// The weight each window holds now, and the counters.
    pub fn snapshot(&self) -> WeightedSnapshot {
        let now = self.clock.now().as_nanos();
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire(&self.limits, now);
        let windows = self
            .limits
            .iter()
            .zip(&state.sums)
            .map(|(limit, &used)| WindowUse {
                window_seconds: limit.window.as_secs_f64(),
                limit: limit.limit,
                used,
            })
            .collect();
        WeightedSnapshot {
            windows,
            admitted: self.admitted.load(Ordering::Relaxed),
            admitted_weight: self.admitted_weight.load(Ordering::Relaxed),
            limited: self.limited.load(Ordering::Relaxed),
        }
    }

    /// Whether every window is empty at `now` (a keyed limiter may then forget it).
    fn idle(&self, now: u64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.expire(&self.limits, now);
        state.entries.is_empty()
    }
}

/// Every window's bit.
fn all_windows(windows: usize) -> u8 {
    ((1u16 << windows) - 1) as u8
}

fn check(limits: &[RateLimit]) -> Result<(), ConfigError> {
    if limits.is_empty() || limits.len() > MAX_WINDOWS {
        return Err(ConfigError::new(
            "limits",
            format!("a weighted limiter has 1 to {MAX_WINDOWS} windows"),
        ));
    }
    for (index, limit) in limits.iter().enumerate() {
        if limit.limit == 0 {
            return Err(ConfigError::new("limit", "must be at least 1"));
        }
        ConfigError::check("window", reliable_rules::limit::rate_window(limit.window))?;
        if limit.burst.is_some() {
            return Err(ConfigError::new(
                "burst",
                "a weighted limiter has no burst: add the burst as a shorter window of its own",
            ));
        }
        if limits[..index]
            .iter()
            .any(|other| other.window == limit.window)
        {
            return Err(ConfigError::new(
                "window",
                format!(
                    "two windows of {:?}: the smaller limit would hide the other",
                    limit.window
                ),
            ));
        }
    }
    Ok(())
}

impl Windows {
    fn entry(&self, index: u64) -> (u64, u32, u8) {
        self.entries[(index - self.popped) as usize]
    }

    fn end(&self) -> u64 {
        self.popped + self.entries.len() as u64
    }

    /// Moves each window's start past the entries that left it, and pops those that left
    /// every window.
    fn expire(&mut self, limits: &[RateLimit], now: u64) {
        for (index, limit) in limits.iter().enumerate() {
            let span = duration_to_nanos(limit.window);
            let bit = 1u8 << index;
            while self.starts[index] < self.end() {
                let (at, weight, mask) = self.entry(self.starts[index]);
                if now.saturating_sub(at) < span {
                    break;
                }
                if mask & bit != 0 {
                    self.sums[index] -= u64::from(weight);
                }
                self.starts[index] += 1;
            }
        }
        let oldest = self.starts.iter().copied().min().unwrap_or(self.popped);
        while self.popped < oldest {
            self.entries.pop_front();
            self.popped += 1;
        }
    }

    fn push(&mut self, now: u64, weight: u32, mask: u8) {
        // Entries stay in time order: a reading behind the last one (another thread's clock
        // read raced this one) is recorded at the last one's time.
        let at = self
            .entries
            .back()
            .map_or(now, |&(last, _, _)| last.max(now));
        self.entries.push_back((at, weight, mask));
        for (index, sum) in self.sums.iter_mut().enumerate() {
            if mask & (1 << index) != 0 {
                *sum += u64::from(weight);
            }
        }
    }

    /// Nanoseconds until `weight` more fits window `index` (whose limit it exceeds now).
    fn wait(&self, index: usize, limit: &RateLimit, weight: u32, now: u64) -> u64 {
        let span = duration_to_nanos(limit.window);
        if u64::from(weight) > u64::from(limit.limit) {
            return span; // never fits; try again a window from now, and be refused again
        }
        let bit = 1u8 << index;
        let mut over = self.sums[index] + u64::from(weight) - u64::from(limit.limit);
        let mut position = self.starts[index];
        while position < self.end() {
            let (at, entry_weight, mask) = self.entry(position);
            if mask & bit != 0 {
                over = over.saturating_sub(u64::from(entry_weight));
                if over == 0 {
                    return (at + span).saturating_sub(now).max(1);
                }
            }
            position += 1;
        }
        span
    }
}

/// A [`WeightedLimiter`] per key (per API key, per IP, per account), made on a key's first
/// call, with at most `max_keys` kept: past it, keys whose windows are empty are forgotten
/// first, then the least recently used, a tenth of `max_keys` at a time (so a flood of new
/// keys pays one scan per tenth, not one per key). A key forgotten while its windows still
/// held weight starts again empty: size `max_keys` above the keys active in one window, or
/// the limit of the least recent of them is not exact.
///
/// ```
/// use reliable_runtime::clock::Clock;
/// use reliable_runtime::limit::{KeyedLimiter, RateLimit};
///
/// let (clock, _hand) = Clock::manual();
/// // 10 orders per second per API key, for at most 10,000 keys.
/// let orders = KeyedLimiter::new("orders", &[RateLimit::per_second(10)], 10_000, clock).unwrap();
/// for _ in 0..10 {
///     assert!(orders.try_acquire(&"key-a", 1).is_ok());
/// }
/// assert!(orders.try_acquire(&"key-a", 1).is_err());
/// assert!(orders.try_acquire(&"key-b", 1).is_ok(), "each key has its own limit");
/// assert_eq!(orders.len(), 2);
/// ```
pub struct KeyedLimiter<K> {
    name: &'static str,
    limits: Vec<RateLimit>,
    clock: Clock,
    max_keys: usize,
    keys: dashmap::DashMap<K, Arc<WeightedLimiter>>,
    /// Makes one eviction at a time.
    evicting: Mutex<()>,
}

impl<K: Hash + Eq> fmt::Debug for KeyedLimiter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyedLimiter")
            .field("name", &self.name)
            .field("limits", &self.limits)
            .field("max_keys", &self.max_keys)
            .field("keys", &self.keys.len())
            .finish_non_exhaustive()
    }
}

impl<K: Hash + Eq + Clone> KeyedLimiter<K> {
    /// Limits of `limits` per key, for at most `max_keys` keys (at least 1).
    pub fn new(
        name: impl AsRef<str>,
        limits: &[RateLimit],
        max_keys: usize,
        clock: Clock,
    ) -> Result<Self, ConfigError> {
        check(limits)?;
        if max_keys == 0 {
            return Err(ConfigError::new("max_keys", "must be at least 1"));
        }
        Ok(KeyedLimiter {
            name: intern(name.as_ref()),
            limits: limits.to_vec(),
            clock,
            max_keys,
            keys: dashmap::DashMap::new(),
            evicting: Mutex::new(()),
        })
    }

    /// Admits a call of `weight` for `key` now, or refuses as
    /// [`WeightedLimiter::try_acquire`] does.
    pub fn try_acquire(&self, key: &K, weight: u32) -> Result<(), Rejected> {
        self.limiter(key).try_acquire(weight)
    }

    /// The limiter of `key`, made if it has none.
    pub fn limiter(&self, key: &K) -> Arc<WeightedLimiter> {
        if let Some(limiter) = self.keys.get(key) {
            return Arc::clone(&limiter);
        }
        if self.keys.len() >= self.max_keys {
            self.evict();
        }
        let limiter = self.keys.entry(key.clone()).or_insert_with(|| {
            Arc::new(
                WeightedLimiter::new(self.name, &self.limits, self.clock.clone())
                    .expect("checked when the keyed limiter was made"),
            )
        });
        Arc::clone(&limiter)
    }

    /// Keys kept now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no key is kept.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Forgets idle keys, then the least recently used, until a tenth of `max_keys` is free.
    #[cold]
    fn evict(&self) {
        let _one = self.evicting.lock().unwrap_or_else(PoisonError::into_inner);
        let target = self.max_keys - recency::tenth(self.max_keys);
        if self.keys.len() <= target {
            return; // another caller made room meanwhile
        }
        let now = self.clock.now().as_nanos();
        self.keys.retain(|_, limiter| !limiter.idle(now));
        let excess = self.keys.len().saturating_sub(target);
        let used = |limiter: &WeightedLimiter| limiter.last_used.load(Ordering::Relaxed);
        let recencies = self.keys.iter().map(|entry| used(entry.value()));
        if let Some(cutoff) = recency::cutoff(recencies, excess) {
            self.keys.retain(|_, limiter| used(limiter) > cutoff);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    /// README's footprint: 16 bytes per admission still in the longest window.
    #[test]
    fn an_admission_takes_sixteen_bytes() {
        assert_eq!(std::mem::size_of::<(u64, u32, u8)>(), 16);
    }

    #[test]
    fn a_weight_is_admitted_only_if_it_fits_every_window() {
        let (clock, hand) = Clock::manual();
        let limiter = WeightedLimiter::new(
            "unit_weighted",
            &[RateLimit::per_minute(100), RateLimit::per_second(30)],
            clock,
        )
        .unwrap();
        assert!(limiter.try_acquire(30).is_ok());
        assert_eq!(
            limiter.try_acquire(1).unwrap_err().retry_after(),
            Some(SECOND)
        );
        for _ in 0..2 {
            hand.advance(SECOND);
            assert!(limiter.try_acquire(30).is_ok());
        }
        hand.advance(SECOND);
        // 90 in the minute: 10 left there, though the second is empty.
        assert!(limiter.try_acquire(11).is_err());
        assert!(limiter.try_acquire(10).is_ok());
        // The first 30 leave the minute 60 s after they came (57 s from now).
        assert_eq!(
            limiter.try_acquire(30).unwrap_err().retry_after(),
            Some(Duration::from_secs(57))
        );
        let snapshot = limiter.snapshot();
        assert_eq!(
            snapshot
                .windows
                .iter()
                .map(|window| window.used)
                .collect::<Vec<_>>(),
            [100, 10]
        );
        assert_eq!((snapshot.admitted, snapshot.admitted_weight), (4, 100));
    }

    #[test]
    fn a_weight_above_a_window_never_fits_and_zero_always_does() {
        let (clock, _hand) = Clock::manual();
        let limiter =
            WeightedLimiter::new("unit_weighted_big", &[RateLimit::per_second(5)], clock).unwrap();
        assert_eq!(
            limiter.try_acquire(6).unwrap_err().retry_after(),
            Some(SECOND)
        );
        assert!(limiter.try_acquire(0).is_ok());
        assert_eq!(limiter.snapshot().windows[0].used, 0);
    }

    #[tokio::test]
    async fn a_weight_that_never_fits_is_refused_not_waited_for_and_not_built() {
        let (clock, _hand) = Clock::manual();
        let limiter = Arc::new(
            WeightedLimiter::new("unit_weighted_never", &[RateLimit::per_second(5)], clock)
                .unwrap(),
        );
        assert!(!limiter.fits(6));
        assert!(limiter.acquire(6).await.is_err(), "refused at once");
        let error = crate::Policy::builder("unit_weighted_never_policy")
            .weighted_limit(Arc::clone(&limiter), 6)
            .build()
            .unwrap_err();
        assert_eq!(error.field(), "weight");
    }

    #[test]
    fn a_correction_only_tightens_and_only_its_window() {
        let (clock, hand) = Clock::manual();
        let limiter = WeightedLimiter::new(
            "unit_weighted_corrected",
            &[RateLimit::per_minute(100), RateLimit::per_second(50)],
            clock,
        )
        .unwrap();
        assert!(limiter.try_acquire(10).is_ok());
        assert!(
            limiter.correct(Duration::from_secs(60), 5),
            "less than counted"
        );
        assert!(limiter.correct(Duration::from_secs(60), 80));
        assert!(
            !limiter.correct(Duration::from_secs(10), 80),
            "no such window"
        );
        let used: Vec<u64> = limiter.snapshot().windows.iter().map(|w| w.used).collect();
        assert_eq!(used, [80, 10]);
        assert!(limiter.try_acquire(21).is_err());
        assert!(limiter.try_acquire(20).is_ok());
        // The correction leaves the minute a minute after it was made.
        hand.advance(Duration::from_secs(60));
        assert_eq!(limiter.snapshot().windows[0].used, 0);
    }

    #[test]
    fn bad_windows_are_errors_naming_the_field() {
        let clock = Clock::system();
        let field = |limits: &[RateLimit]| {
            WeightedLimiter::new("unit_weighted_bad", limits, clock.clone())
                .unwrap_err()
                .field()
        };
        assert_eq!(field(&[]), "limits");
        assert_eq!(field(&[RateLimit::per_second(0)]), "limit");
        assert_eq!(field(&[RateLimit::per_second(5).with_burst(2)]), "burst");
        assert_eq!(
            field(&[RateLimit::per_second(5), RateLimit::per_second(9)]),
            "window"
        );
        let error =
            KeyedLimiter::<u8>::new("unit_keyed_bad", &[RateLimit::per_second(1)], 0, clock)
                .unwrap_err();
        assert_eq!(error.field(), "max_keys");
    }

    #[test]
    fn keys_are_bounded_idle_ones_first_then_the_least_recently_used() {
        let (clock, hand) = Clock::manual();
        let keyed =
            KeyedLimiter::new("unit_keyed", &[RateLimit::per_second(1)], 10, clock).unwrap();
        for key in 0..10u32 {
            hand.advance(Duration::from_millis(10));
            keyed.try_acquire(&key, 1).unwrap();
        }
        assert_eq!(keyed.len(), 10);
        // Full: key 10 forgets the least recently used key (0), all windows being busy.
        keyed.try_acquire(&10, 1).unwrap();
        assert!(keyed.len() <= 10);
        assert!(!keyed.keys.contains_key(&0));
        assert!(keyed.keys.contains_key(&9));
        // A second later every window is empty: a new key forgets the idle ones.
        hand.advance(SECOND);
        keyed.try_acquire(&99, 1).unwrap();
        assert_eq!(keyed.len(), 1);
    }
}
