//! The limits and checks of `reliable`'s configurations, written once.
//!
//! Two crates check the same values: `reliable-runtime` when a policy is built (a configuration
//! from code, a file or a query, answered with a `ConfigError`), and `reliable-macros` when an
//! attribute's literal arguments are compiled (answered with a compile error at the argument).
//! The macro crate cannot depend on the runtime (the runtime re-exports the macros), so both
//! depend on this one, which has no dependencies of its own. Users never name it: the runtime
//! re-exports the limits where they belong (`reliable_runtime::breaker::MAX_HALF_OPEN_CALLS`).
//!
//! Every check returns `Err(reason)`, a sentence that completes "`<field>` ...", so each side
//! can name the field in its own words (`failure_rate` in an attribute,
//! `failure_rate_threshold` in `BreakerConfig`).
//!
//! ```
//! assert!(reliable_rules::breaker::failure_rate(0.5).is_ok());
//! assert_eq!(
//!     reliable_rules::breaker::failure_rate(1.5),
//!     Err("must be a fraction above 0.0 and at most 1.0 (0.5 means 50%)")
//! );
//! ```

use core::time::Duration;

/// A check's answer: `Err` holds why the value cannot work, completing "`<field>` ...".
pub type Check = Result<(), &'static str>;

fn fraction_above_zero(value: f64) -> Check {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err("must be a fraction above 0.0 and at most 1.0 (0.5 means 50%)")
    }
}

fn at_least_one(value: u32) -> Check {
    if value >= 1 {
        Ok(())
    } else {
        Err("must be at least 1")
    }
}

/// A growth factor: finite and at least 1.0; `constant` says what 1.0 keeps the same.
fn growth(multiplier: f64, constant: &'static str) -> Result<(), &'static str> {
    if multiplier.is_finite() && multiplier >= 1.0 {
        Ok(())
    } else {
        Err(constant)
    }
}

/// A limit that must be at least `floor`.
fn at_least(value: Duration, floor: Duration, reason: &'static str) -> Check {
    if value < floor {
        Err(reason)
    } else {
        Ok(())
    }
}

fn above_zero(value: Duration) -> Check {
    if value.is_zero() {
        Err("must be above zero")
    } else {
        Ok(())
    }
}

/// Durations as people write them: in the attributes (`timeout = "30s"`) and in configuration
/// files (`timeout = "30s"`, `max_wait = "250ms"`), one grammar for both.
///
/// ```
/// use reliable_rules::duration;
/// use std::time::Duration;
///
/// assert_eq!(duration::parse("250ms"), Ok(Duration::from_millis(250)));
/// assert_eq!(duration::parse("1.5s"), Ok(Duration::from_millis(1500)));
/// assert!(duration::parse("5").is_err()); // a string needs a unit; a number is seconds
/// assert_eq!(duration::format(Duration::from_secs(90)), "90s");
/// assert_eq!(duration::format(Duration::from_millis(1500)), "1500ms");
/// ```
pub mod duration {
    use core::time::Duration;

    /// Parses a number with a unit: `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"100us"`, `"10ns"`
    /// (also `sec`/`secs`, `min`/`mins`, `hr`/`hrs`, `µs`; `_` between digits).
    pub fn parse(text: &str) -> Result<Duration, String> {
        let text = text.trim();
        let split = text
            .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
            .ok_or_else(|| format!("`{text}` has no unit"))?;
        let (number, unit) = text.split_at(split);
        let number = number.replace('_', "");
        if number.is_empty() {
            return Err(format!("`{text}` has no number"));
        }
        let value: f64 = number
            .parse()
            .map_err(|_| format!("`{number}` is not a number"))?;
        let scale = match unit.trim() {
            "ns" => 1e-9,
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" | "sec" | "secs" => 1.0,
            "m" | "min" | "mins" => 60.0,
            "h" | "hr" | "hrs" => 3600.0,
            other => return Err(format!("unknown unit `{other}`")),
        };
        from_secs_f64(value * scale)
    }

    /// A number of seconds (`30`, `0.25`) as a duration.
    pub fn from_secs_f64(secs: f64) -> Result<Duration, String> {
        if !secs.is_finite() || secs < 0.0 {
            return Err("it must be a finite, non-negative number".to_owned());
        }
        let nanos = secs * 1e9;
        if nanos >= u64::MAX as f64 {
            return Err("it is too large".to_owned());
        }
        Ok(Duration::from_nanos(nanos.round() as u64))
    }

    /// The duration in the largest unit that writes it exactly (`"90s"`, `"250ms"`, `"2h"`),
    /// which [`parse`] reads back.
    pub fn format(duration: Duration) -> String {
        let nanos = duration.as_nanos();
        const UNITS: [(u128, &str); 6] = [
            (3_600_000_000_000, "h"),
            (60_000_000_000, "m"),
            (1_000_000_000, "s"),
            (1_000_000, "ms"),
            (1_000, "us"),
            (1, "ns"),
        ];
        if nanos == 0 {
            return "0s".to_owned();
        }
        let (scale, unit) = UNITS
            .iter()
            .find(|(scale, _)| nanos % scale == 0)
            .copied()
            .unwrap_or((1, "ns"));
        format!("{}{unit}", nanos / scale)
    }
}

/// Circuit breakers.
///
/// ```
/// use reliable_rules::breaker;
/// use std::time::Duration;
///
/// assert!(breaker::failure_threshold(0, false).is_err()); // could never open
/// assert!(breaker::failure_threshold(0, true).is_ok()); // a rate rule opens it
/// assert!(breaker::max_timeout(Duration::from_secs(30), Duration::from_secs(10)).is_err());
/// assert!(breaker::half_open_max_calls(breaker::MAX_HALF_OPEN_CALLS).is_ok());
/// ```
pub mod breaker {
    use super::{above_zero, at_least_one, fraction_above_zero, Check, Duration};

    /// The most concurrent half-open probes a breaker admits (its state word keeps the count
    /// in 20 bits).
    pub const MAX_HALF_OPEN_CALLS: u32 = (1 << 20) - 1;

    /// `failure_rate_threshold`: the failure rate that opens the breaker.
    pub fn failure_rate(rate: f64) -> Check {
        fraction_above_zero(rate)
    }

    /// `window_failure_threshold`: failures in the window that open the breaker (a window of
    /// `window_calls` calls cannot hold more).
    pub fn window_failures(count: u32, window_calls: Option<u32>) -> Check {
        match window_calls {
            _ if count == 0 => Err("must be at least 1"),
            Some(calls) if count > calls => {
                Err("cannot exceed the calls the window holds (it could never fire)")
            }
            _ => Ok(()),
        }
    }

    /// `slow_call_rate_threshold`: the rate of slow calls that opens the breaker.
    pub fn slow_call_rate(rate: f64) -> Check {
        fraction_above_zero(rate)
    }

    /// `failure_threshold`: 0 turns the consecutive-failure rule off, which needs a rate rule.
    pub fn failure_threshold(threshold: u32, has_rate_rule: bool) -> Check {
        if threshold == 0 && !has_rate_rule {
            Err("set to 0 turns off the consecutive-failure rule; set a failure count, a failure rate or a slow-call rate too, or the breaker can never open")
        } else {
            Ok(())
        }
    }

    /// `slow_call_duration`.
    pub fn slow_call_duration(duration: Duration) -> Check {
        above_zero(duration)
    }

    /// `minimum_calls` in the window before a rate rule applies.
    pub fn minimum_calls(calls: u32) -> Check {
        at_least_one(calls)
    }

    /// `timeout`: how long the breaker stays open.
    pub fn timeout(timeout: Duration) -> Check {
        above_zero(timeout)
    }

    /// `timeout_multiplier`: growth of the open time per trip.
    pub fn timeout_multiplier(multiplier: f64) -> Check {
        super::growth(
            multiplier,
            "must be at least 1.0 (1.0 keeps the open time constant)",
        )
    }

    /// `max_timeout`: the cap of the growing open time.
    pub fn max_timeout(timeout: Duration, max_timeout: Duration) -> Check {
        super::at_least(max_timeout, timeout, "must be at least `timeout`")
    }

    /// `success_threshold`: probes that must succeed to close again.
    pub fn success_threshold(threshold: u32) -> Check {
        at_least_one(threshold)
    }

    /// `half_open_max_calls`: concurrent probes while half-open.
    pub fn half_open_max_calls(calls: u32) -> Check {
        if (1..=MAX_HALF_OPEN_CALLS).contains(&calls) {
            Ok(())
        } else {
            Err("must be within 1..=1048575")
        }
    }
}

/// Sliding windows (the breaker's and the SLA monitor's).
///
/// ```
/// use reliable_rules::window;
/// use std::time::Duration;
///
/// assert!(window::calls(100).is_ok());
/// assert!(window::calls(window::MAX_CALLS + 1).is_err());
/// assert!(window::span(Duration::from_millis(5)).is_err());
/// ```
pub mod window {
    use super::{Check, Duration};

    /// The most calls a count window holds.
    pub const MAX_CALLS: u32 = 1_000_000;
    /// The shortest time window.
    pub const MIN_SPAN: Duration = Duration::from_millis(10);

    /// A window of the last `calls` calls.
    pub fn calls(calls: u32) -> Check {
        if calls == 0 {
            Err("must hold at least 1 call")
        } else if calls > MAX_CALLS {
            Err("holds at most 1000000 calls")
        } else {
            Ok(())
        }
    }

    /// A window of the calls of the last `span`.
    pub fn span(span: Duration) -> Check {
        if span < MIN_SPAN {
            Err("must span at least 10ms")
        } else {
            Ok(())
        }
    }
}

/// SLA thresholds.
///
/// ```
/// use reliable_rules::sla;
/// use std::time::Duration;
///
/// assert!(sla::min_success_rate(0.95).is_ok());
/// assert!(sla::p99(Duration::from_secs(2), Duration::from_secs(1)).is_err());
/// ```
pub mod sla {
    use super::{above_zero, at_least_one, Check, Duration};

    /// `min_success_rate`.
    pub fn min_success_rate(rate: f64) -> Check {
        if (0.0..=1.0).contains(&rate) {
            Ok(())
        } else {
            Err("must be a fraction within 0.0..=1.0 (0.95 means 95%)")
        }
    }

    /// `max_latency_p95`.
    pub fn p95(p95: Duration) -> Check {
        above_zero(p95)
    }

    /// `max_latency_p99`: above zero, and not below the p95 threshold.
    pub fn p99(p95: Duration, p99: Duration) -> Check {
        above_zero(p99)?;
        if p99 < p95 {
            Err("cannot be below the p95 threshold")
        } else {
            Ok(())
        }
    }

    /// `max_consecutive_failures`.
    pub fn max_consecutive_failures(failures: u32) -> Check {
        at_least_one(failures)
    }

    /// `min_calls` in the window before the rate and latency rules apply.
    pub fn min_calls(calls: u32) -> Check {
        at_least_one(calls)
    }
}

/// Retries and their backoff.
///
/// ```
/// use reliable_rules::retry;
/// use std::time::Duration;
///
/// assert!(retry::jitter("decorrelated").is_ok());
/// assert!(retry::max_attempts(0).is_err());
/// assert!(retry::max_delay(Duration::from_secs(5), Duration::from_secs(1)).is_err());
/// ```
pub mod retry {
    use super::{Check, Duration};

    /// The jitters by name, as configurations and attributes write them, each with the
    /// runtime's `Jitter` variant it stands for.
    pub const JITTERS: &[(&str, &str)] = &[
        ("none", "None"),
        ("full", "Full"),
        ("equal", "Equal"),
        ("decorrelated", "Decorrelated"),
        ("additive", "Additive"),
    ];

    /// `jitter_factor`: the share of the delay additive jitter may add.
    pub fn jitter_factor(factor: f64) -> Check {
        if factor.is_finite() && (0.0..=1.0).contains(&factor) {
            Ok(())
        } else {
            Err("must be between 0.0 and 1.0 (0.1 adds up to 10% to each delay)")
        }
    }

    /// `max_attempts`, the first call included.
    pub fn max_attempts(attempts: u32) -> Check {
        if attempts >= 1 {
            Ok(())
        } else {
            Err("counts every attempt, the first included: at least 1 (1 means no retries)")
        }
    }

    /// `multiplier`: growth of the delay per retry.
    pub fn multiplier(multiplier: f64) -> Check {
        if multiplier.is_finite() && multiplier >= 1.0 {
            Ok(())
        } else {
            Err("must be at least 1.0 (1.0 keeps the delay constant)")
        }
    }

    /// `max_delay`: the cap of the growing delay.
    pub fn max_delay(initial_delay: Duration, max_delay: Duration) -> Check {
        if max_delay < initial_delay {
            Err("must be at least `initial_delay`")
        } else {
            Ok(())
        }
    }

    /// `budget_ratio`: retries allowed per call.
    pub fn budget_ratio(ratio: f64) -> Check {
        if ratio.is_finite() && ratio >= 0.0 {
            Ok(())
        } else {
            Err("is retries per call: a number of at least 0.0, like 0.1")
        }
    }

    /// `budget_window`.
    pub fn budget_window(window: Duration) -> Check {
        if window < Duration::from_secs(1) {
            Err("must be at least 1 s")
        } else {
            Ok(())
        }
    }

    /// A jitter's name.
    pub fn jitter(name: &str) -> Check {
        if JITTERS.iter().any(|(known, _)| *known == name) {
            Ok(())
        } else {
            Err("is one of `none`, `full`, `equal`, `decorrelated`")
        }
    }
}

/// Caches.
///
/// ```
/// use reliable_rules::cache;
/// use std::time::Duration;
///
/// assert_eq!(
///     cache::ttl_range(Duration::from_secs(10)),
///     (Duration::from_secs(4), Duration::from_secs(30))
/// );
/// assert!(cache::policy("lfu").is_ok());
/// assert!(cache::ttl_jitter(0.6).is_err());
/// ```
pub mod cache {
    use super::{above_zero, Check, Duration};

    /// The policies by name, each with the runtime's `CachePolicy` variant it stands for.
    pub const POLICIES: &[(&str, &str)] = &[
        ("ttl", "Ttl"),
        ("lru", "Lru"),
        ("lfu", "Lfu"),
        ("adaptive", "Adaptive"),
    ];
    /// An adaptive TTL moves within these fractions of the configured TTL, unless set.
    pub const MIN_TTL_FACTOR: f64 = 0.4;
    /// See [`MIN_TTL_FACTOR`].
    pub const MAX_TTL_FACTOR: u32 = 3;

    /// The adaptive range a TTL gets: 0.4× to 3× (saturating: never a panic).
    pub fn ttl_range(ttl: Duration) -> (Duration, Duration) {
        (
            ttl.mul_f64(MIN_TTL_FACTOR),
            ttl.saturating_mul(MAX_TTL_FACTOR),
        )
    }

    /// `ttl`.
    pub fn ttl(ttl: Duration) -> Check {
        above_zero(ttl)
    }

    /// The adaptive range: `0 < min_ttl <= ttl <= max_ttl`.
    pub fn adaptive_range(min_ttl: Duration, ttl: Duration, max_ttl: Duration) -> Check {
        if !min_ttl.is_zero() && min_ttl <= ttl && ttl <= max_ttl {
            Ok(())
        } else {
            Err("of an adaptive cache needs 0 < min_ttl <= ttl <= max_ttl")
        }
    }

    /// `max_entries`.
    pub fn max_entries(entries: usize) -> Check {
        if entries >= 1 {
            Ok(())
        } else {
            Err("must be at least 1")
        }
    }

    /// `eviction_ratio`: the fraction evicted at once when full.
    pub fn eviction_ratio(ratio: f64) -> Check {
        if ratio > 0.0 && ratio <= 1.0 {
            Ok(())
        } else {
            Err("is the fraction evicted at once when full: above 0.0 and at most 1.0")
        }
    }

    /// `ttl_jitter`: the spread of each entry's TTL.
    pub fn ttl_jitter(jitter: f64) -> Check {
        if (0.0..0.5).contains(&jitter) {
            Ok(())
        } else {
            Err("is a fraction within 0.0..0.5 (0.1 spreads TTLs by ±10%)")
        }
    }

    /// `min_hit_rate`: the hit rate below which the cache alerts.
    pub fn min_hit_rate(rate: f64) -> Check {
        if (0.0..=1.0).contains(&rate) {
            Ok(())
        } else {
            Err("must be a fraction within 0.0..=1.0 (0.5 alerts below half the lookups hitting)")
        }
    }

    /// A policy's name.
    pub fn policy(name: &str) -> Check {
        if POLICIES.iter().any(|(known, _)| *known == name) {
            Ok(())
        } else {
            Err("is one of `ttl`, `lru`, `lfu`, `adaptive`")
        }
    }
}

/// Rate limits, bulkheads and per-attempt timeouts.
///
/// ```
/// use reliable_rules::limit;
///
/// assert!(limit::rate_limit(1200).is_ok());
/// assert!(limit::burst(50, 10).is_err());
/// assert!(limit::max_concurrent(0).is_err());
/// ```
pub mod limit {
    use super::{above_zero, Check, Duration};

    /// The largest rate limit: the limiter keeps the time of each of the last `limit`
    /// admissions (8 bytes each), so this bounds one limiter at 8 MB.
    pub const MAX_RATE_LIMIT: u32 = 1_000_000;

    /// A rate limit's calls per window.
    pub fn rate_limit(limit: u32) -> Check {
        if (1..=MAX_RATE_LIMIT).contains(&limit) {
            Ok(())
        } else {
            Err("must be within 1..=1000000 (the limiter keeps the time of each admission, 8 bytes each)")
        }
    }

    /// A rate limit's window.
    pub fn rate_window(window: Duration) -> Check {
        above_zero(window)
    }

    /// `burst`: at most the limit.
    pub fn burst(burst: u32, limit: u32) -> Check {
        if burst == 0 {
            Err("must be at least 1")
        } else if burst > limit {
            Err("cannot exceed the limit")
        } else {
            Ok(())
        }
    }

    /// A bulkhead's `max_concurrent` (tokio's semaphore holds at most `usize::MAX >> 3`).
    pub fn max_concurrent(max: u32) -> Check {
        if max >= 1 {
            Ok(())
        } else {
            Err("must be at least 1")
        }
    }

    /// A per-attempt timeout.
    pub fn timeout(timeout: Duration) -> Check {
        above_zero(timeout)
    }

    /// The growth of a per-attempt timeout with each retry.
    pub fn timeout_multiplier(multiplier: f64) -> Check {
        super::growth(
            multiplier,
            "must be at least 1.0 (1.0 keeps the timeout fixed)",
        )
    }

    /// The cap of a growing per-attempt timeout.
    pub fn timeout_max(timeout: Duration, max: Duration) -> Check {
        super::at_least(max, timeout, "must be at least the first attempt's timeout")
    }

    /// A call's deadline, all attempts together.
    pub fn deadline(timeout: Duration, deadline: Duration) -> Check {
        super::at_least(
            deadline,
            timeout,
            "must be at least the first attempt's timeout",
        )
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn durations_parse_in_every_unit_and_format_back() {
        use super::duration::{format, parse};
        use core::time::Duration;
        for (text, expected) in [
            ("250ms", Duration::from_millis(250)),
            ("5s", Duration::from_secs(5)),
            ("2m", Duration::from_secs(120)),
            ("1.5s", Duration::from_millis(1500)),
            ("1h", Duration::from_secs(3600)),
            ("100us", Duration::from_micros(100)),
            ("1_000ms", Duration::from_secs(1)),
        ] {
            assert_eq!(parse(text), Ok(expected), "{text}");
            assert_eq!(parse(&format(expected)), Ok(expected), "{text}");
        }
        for bad in ["5", "5 parsecs", "ms", "-1s", "1e400s"] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        assert_eq!(format(Duration::ZERO), "0s");
        assert_eq!(format(Duration::from_nanos(1_500)), "1500ns");
    }

    use super::*;

    #[test]
    fn reasons_spell_the_limits_they_check() {
        assert!(breaker::half_open_max_calls(breaker::MAX_HALF_OPEN_CALLS).is_ok());
        let reason = breaker::half_open_max_calls(breaker::MAX_HALF_OPEN_CALLS + 1).unwrap_err();
        assert!(reason.contains(&breaker::MAX_HALF_OPEN_CALLS.to_string()));
        let reason = window::calls(window::MAX_CALLS + 1).unwrap_err();
        assert!(reason.contains(&window::MAX_CALLS.to_string()));
        let reason = limit::rate_limit(limit::MAX_RATE_LIMIT + 1).unwrap_err();
        assert!(reason.contains(&limit::MAX_RATE_LIMIT.to_string()));
        assert!(window::calls(window::MAX_CALLS).is_ok());
        assert!(limit::rate_limit(limit::MAX_RATE_LIMIT).is_ok());
    }

    #[test]
    fn names_lists_and_checks_agree() {
        for (name, _) in retry::JITTERS {
            assert!(retry::jitter(name).is_ok());
            assert!(retry::jitter(&name.to_uppercase()).is_err());
        }
        for (name, _) in cache::POLICIES {
            assert!(cache::policy(name).is_ok());
        }
        assert!(cache::policy("fifo").is_err());
    }

    #[test]
    fn percentiles_are_ordered_whichever_is_written_first() {
        let (p95, p99) = (Duration::from_secs(2), Duration::from_secs(1));
        assert!(sla::p99(p95, p99).is_err());
        assert!(sla::p99(p99, p95).is_ok());
        assert!(sla::p99(Duration::ZERO, Duration::ZERO).is_err());
    }

    #[test]
    fn boundaries() {
        assert!(breaker::failure_rate(1.0).is_ok());
        assert!(breaker::failure_rate(0.0).is_err());
        assert!(breaker::failure_rate(f64::NAN).is_err());
        assert!(sla::min_success_rate(0.0).is_ok());
        assert!(cache::ttl_jitter(0.5).is_err());
        assert!(cache::eviction_ratio(1.0).is_ok());
        assert!(retry::multiplier(f64::INFINITY).is_err());
        assert!(breaker::failure_threshold(0, false).is_err());
        assert!(breaker::failure_threshold(0, true).is_ok());
        assert!(limit::burst(11, 10).is_err());
        assert_eq!(
            cache::ttl_range(Duration::from_secs(5)),
            (Duration::from_secs(2), Duration::from_secs(15))
        );
    }
}
