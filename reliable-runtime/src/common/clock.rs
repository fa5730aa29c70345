//! The one clock every pattern reads.
//!
//! Breakers, monitors, caches, rate limiters and retry budgets never call `Instant::now()`
//! themselves: they hold a
//! [`Clock`], so tests can drive time by hand ([`Clock::manual`]) or through tokio's paused time
//! ([`Clock::tokio`]) instead of sleeping through it.
//!
//! The default, [`Clock::system`], reads the CPU's time-stamp counter through `quanta`, which is
//! cheaper than `clock_gettime` on the hot path and still monotonic (the figures:
//! BENCHMARKS.md, section "Where the time goes").

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// A point in time on one [`Clock`]: nanoseconds since that clock's origin.
///
/// Timestamps of different clocks are not comparable.
///
/// ```
/// use reliable_runtime::clock::Clock;
/// use std::time::Duration;
///
/// let (clock, hand) = Clock::manual();
/// let start = clock.now();
/// hand.advance(Duration::from_millis(250));
/// assert_eq!(clock.now().saturating_duration_since(start), Duration::from_millis(250));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(u64);

impl Timestamp {
    /// The timestamp `nanos` nanoseconds after the clock's origin.
    pub const fn from_nanos(nanos: u64) -> Self {
        Timestamp(nanos)
    }

    /// Nanoseconds since the clock's origin.
    pub const fn as_nanos(self) -> u64 {
        self.0
    }

    /// The time from `earlier` to `self`, or zero if `earlier` is later.
    pub fn saturating_duration_since(self, earlier: Timestamp) -> Duration {
        Duration::from_nanos(self.0.saturating_sub(earlier.0))
    }

    /// `self` moved `by` into the future, saturating at the end of time.
    pub fn saturating_add(self, by: Duration) -> Timestamp {
        Timestamp(self.0.saturating_add(duration_to_nanos(by)))
    }
}

/// Converts a duration to nanoseconds, saturating at `u64::MAX` (about 584 years).
pub(crate) fn duration_to_nanos(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX)
}

/// `seconds` as a `Duration`, saturating: negative or NaN is zero, too large is
/// `Duration::MAX` (where `Duration::from_secs_f64` would panic).
pub(crate) fn saturating_secs_f64(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds.max(0.0)).unwrap_or(Duration::MAX)
}

/// A source of [`Timestamp`]s: the system clock, a manual clock for tests, or tokio's clock.
///
/// Cloning is cheap; clones read the same time.
///
/// ```
/// use reliable_runtime::clock::Clock;
///
/// let clock = Clock::system();
/// let a = clock.now();
/// let b = clock.now();
/// assert!(b >= a);
/// ```
#[derive(Clone)]
pub struct Clock {
    source: Source,
}

#[derive(Clone)]
enum Source {
    System(&'static SystemSource),
    Manual(Arc<AtomicU64>),
    Tokio(tokio::time::Instant),
}

struct SystemSource {
    clock: quanta::Clock,
    origin_raw: u64,
    origin_coarse: u64,
}

/// `CLOCK_MONOTONIC_COARSE` in nanoseconds: a vDSO read of the kernel's last tick, cheaper
/// than the time-stamp counter, with the tick's resolution (1 to 4 ms). The figures:
/// BENCHMARKS.md, section "Design notes moved from the API docs".
#[cfg(target_os = "linux")]
fn coarse_nanos() -> u64 {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `now` is a valid, writable timespec; CLOCK_MONOTONIC_COARSE exists on every Linux
    // since 2.6.32 and the call cannot fail with valid arguments.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut now) };
    (now.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(now.tv_nsec as u64)
}

fn system_source() -> &'static SystemSource {
    static SOURCE: OnceLock<SystemSource> = OnceLock::new();
    SOURCE.get_or_init(|| {
        let clock = quanta::Clock::new();
        let origin_raw = clock.raw();
        #[cfg(target_os = "linux")]
        let origin_coarse = coarse_nanos();
        #[cfg(not(target_os = "linux"))]
        let origin_coarse = 0;
        SystemSource {
            clock,
            origin_raw,
            origin_coarse,
        }
    })
}

impl Clock {
    /// The process-wide monotonic clock (the default everywhere).
    pub fn system() -> Clock {
        Clock {
            source: Source::System(system_source()),
        }
    }

    /// A clock that moves only when told to, and the hand that moves it.
    ///
    /// ```
    /// use reliable_runtime::clock::Clock;
    /// use std::time::Duration;
    ///
    /// let (clock, hand) = Clock::manual();
    /// assert_eq!(clock.now().as_nanos(), 0);
    /// hand.advance(Duration::from_secs(30));
    /// assert_eq!(clock.now().as_nanos(), 30_000_000_000);
    /// ```
    pub fn manual() -> (Clock, ManualClock) {
        let nanos = Arc::new(AtomicU64::new(0));
        (
            Clock {
                source: Source::Manual(Arc::clone(&nanos)),
            },
            ManualClock { nanos },
        )
    }

    /// A clock that follows `tokio::time::Instant`, so `tokio::time::pause()` and
    /// `tokio::time::advance()` (or `#[tokio::test(start_paused = true)]`) drive it.
    ///
    /// ```
    /// use reliable_runtime::clock::Clock;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// let clock = Clock::tokio();
    /// let start = clock.now();
    /// tokio::time::advance(Duration::from_secs(5)).await;
    /// assert!(clock.now().saturating_duration_since(start) >= Duration::from_secs(5));
    /// # }
    /// ```
    pub fn tokio() -> Clock {
        Clock {
            source: Source::Tokio(tokio::time::Instant::now()),
        }
    }

    /// The current time on this clock.
    #[inline]
    pub fn now(&self) -> Timestamp {
        match &self.source {
            Source::System(system) => Timestamp(
                system
                    .clock
                    .delta_as_nanos(system.origin_raw, system.clock.raw()),
            ),
            Source::Manual(nanos) => Timestamp(nanos.load(Ordering::Acquire)),
            Source::Tokio(origin) => Timestamp(duration_to_nanos(
                tokio::time::Instant::now().saturating_duration_since(*origin),
            )),
        }
    }

    /// The current time on this clock's *coarse* timeline: cheaper, with a resolution of a few
    /// milliseconds on the system clock (Linux), and equal to [`now`](Self::now) on manual and
    /// tokio clocks. Coarse and precise timestamps must not be compared with each other.
    ///
    /// The breaker checks its open timeout with it, so that rejecting a call costs less.
    ///
    /// ```
    /// use reliable_runtime::clock::Clock;
    ///
    /// let (clock, _hand) = Clock::manual();
    /// assert_eq!(clock.now_coarse(), clock.now());
    /// ```
    #[inline]
    pub fn now_coarse(&self) -> Timestamp {
        match &self.source {
            #[cfg(target_os = "linux")]
            Source::System(system) => {
                Timestamp(coarse_nanos().saturating_sub(system.origin_coarse))
            }
            _ => self.now(),
        }
    }

    /// Whether timestamps of `self` and `other` can be compared (they read the same source).
    pub fn same_source(&self, other: &Clock) -> bool {
        match (&self.source, &other.source) {
            (Source::System(_), Source::System(_)) => true,
            (Source::Manual(a), Source::Manual(b)) => Arc::ptr_eq(a, b),
            (Source::Tokio(a), Source::Tokio(b)) => a == b,
            _ => false,
        }
    }
}

impl Default for Clock {
    fn default() -> Self {
        Clock::system()
    }
}

impl fmt::Debug for Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.source {
            Source::System(_) => "system",
            Source::Manual(_) => "manual",
            Source::Tokio(_) => "tokio",
        };
        f.debug_struct("Clock").field("source", &kind).finish()
    }
}

/// The hand of a manual [`Clock`]: moves its time forward.
///
/// ```
/// use reliable_runtime::clock::Clock;
/// use std::time::Duration;
///
/// let (clock, hand) = Clock::manual();
/// hand.set(Duration::from_secs(10));
/// assert_eq!(clock.now().as_nanos(), 10_000_000_000);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    nanos: Arc<AtomicU64>,
}

impl ManualClock {
    /// Moves the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        self.nanos
            .fetch_add(duration_to_nanos(by), Ordering::AcqRel);
    }

    /// Sets the clock to `since_origin` after its origin (it may go backwards: tests only).
    pub fn set(&self, since_origin: Duration) {
        self.nanos
            .store(duration_to_nanos(since_origin), Ordering::Release);
    }

    /// The clock's current time.
    pub fn now(&self) -> Timestamp {
        Timestamp(self.nanos.load(Ordering::Acquire))
    }
}

/// Serializes a wall-clock time as seconds since the Unix epoch (events' `at`).
pub(crate) fn unix_seconds<S: serde::Serializer>(
    at: &std::time::SystemTime,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let seconds = at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |since| since.as_secs_f64());
    serializer.serialize_f64(seconds)
}
