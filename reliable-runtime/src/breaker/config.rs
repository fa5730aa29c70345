//! Breaker configuration: when to trip, how long to stay open, how to recover.

use crate::clock::{saturating_secs_f64, Clock};
use crate::error::ConfigError;
use reliable_rules as rules;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Largest `half_open_max_calls` (the in-flight probe count shares the breaker's state word).
pub const MAX_HALF_OPEN_CALLS: u32 = rules::breaker::MAX_HALF_OPEN_CALLS;

/// The calls the failure-rate and slow-call-rate rules look at.
///
/// ```
/// use reliable_runtime::breaker::BreakerWindow;
/// use std::time::Duration;
///
/// assert_eq!(BreakerWindow::default(), BreakerWindow::Calls(100));
/// let last_minute = BreakerWindow::Time(Duration::from_secs(60));
/// # let _ = last_minute;
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerWindow {
    /// The last N calls. Exact; costs one shared atomic per call, so multi-core hot paths
    /// prefer [`BreakerWindow::Time`].
    Calls(u32),
    /// The calls of the last span, in 10 buckets of `span / 10` (so the rules see between 90%
    /// and 100% of the span). Sharded per thread: no shared write per call.
    Time(#[serde(with = "crate::common::human_duration")] Duration),
}

impl BreakerWindow {
    fn check(self) -> rules::Check {
        match self {
            BreakerWindow::Calls(calls) => rules::window::calls(calls),
            BreakerWindow::Time(span) => rules::window::span(span),
        }
    }
}

impl BreakerWindow {
    /// The calls a count window holds, `None` for a time window.
    fn calls(self) -> Option<u32> {
        match self {
            BreakerWindow::Calls(calls) => Some(calls),
            BreakerWindow::Time(_) => None,
        }
    }
}

impl Default for BreakerWindow {
    fn default() -> Self {
        BreakerWindow::Calls(100)
    }
}

/// How a [`CircuitBreaker`](super::CircuitBreaker) trips and recovers.
///
/// Four trip rules, each optional; the breaker opens when any one fires:
///
/// - **consecutive failures**: `failure_threshold` failures in a row (0 turns the rule off);
/// - **failures in a window**: with `window_failure_threshold = Some(n)`, when the window holds
///   `n` failures, whatever else it holds; with `window = BreakerWindow::Time(t)` that is "`n`
///   failures within `t`" (it does not wait for `minimum_calls`);
/// - **failure rate**: with `failure_rate_threshold = Some(r)`, when the window holds at least
///   `minimum_calls` calls and at least a fraction `r` of them failed;
/// - **slow-call rate**: with `slow_call_rate_threshold = Some(r)`, when at least a fraction `r`
///   of at least `minimum_calls` calls took `slow_call_duration` or longer.
///
/// Open, it rejects calls for `timeout`; each further trip without a full recovery multiplies the
/// timeout by `timeout_multiplier`, up to `max_timeout`. Then it lets up to
/// `half_open_max_calls` probes through at once: `success_threshold` successes close it, one
/// failure reopens it.
///
/// `Default` is the CEX breaker: 5 failures, 30 s, 2 successes.
///
/// ```
/// use reliable_runtime::breaker::{BreakerConfig, BreakerWindow};
/// use std::time::Duration;
///
/// let config = BreakerConfig::default()
///     .failure_threshold(0) // only the rate rule
///     .failure_rate_threshold(0.5)
///     .window(BreakerWindow::Time(Duration::from_secs(60)))
///     .minimum_calls(20)
///     .timeout(Duration::from_secs(10))
///     .timeout_multiplier(2.0)
///     .max_timeout(Duration::from_secs(300));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BreakerConfig {
    /// Consecutive failures that open the breaker; 0 disables the rule. Default 5.
    pub failure_threshold: u32,
    /// Failures in the window that open the breaker (with a time window: N failures within
    /// T). Default off.
    pub window_failure_threshold: Option<u32>,
    /// Failure rate (0..=1) over the window that opens the breaker. Default off.
    pub failure_rate_threshold: Option<f64>,
    /// Slow-call rate (0..=1) over the window that opens the breaker. Default off.
    pub slow_call_rate_threshold: Option<f64>,
    /// A call taking this long or longer is slow. Default 60 s.
    #[serde(with = "crate::common::human_duration")]
    pub slow_call_duration: Duration,
    /// The window of the rate rules. Default: the last 100 calls.
    pub window: BreakerWindow,
    /// Calls the window must hold before the rate rules judge. Default 10.
    pub minimum_calls: u32,
    /// How long the breaker stays open before probing. Default 30 s.
    #[serde(with = "crate::common::human_duration")]
    pub timeout: Duration,
    /// Factor applied to the open timeout on each trip that follows a failed probe. Default 1.0.
    pub timeout_multiplier: f64,
    /// Cap of the growing open timeout. Default 10 min.
    #[serde(with = "crate::common::human_duration")]
    pub max_timeout: Duration,
    /// Successful probes that close the breaker. Default 2.
    pub success_threshold: u32,
    /// Probes allowed in flight at once while half-open. Default 1.
    pub half_open_max_calls: u32,
    /// The clock (default: [`Clock::system`]; tests pass a manual or tokio clock).
    #[serde(skip)]
    pub clock: Clock,
}

impl Default for BreakerConfig {
    fn default() -> Self {
        BreakerConfig::cex()
    }
}

impl BreakerConfig {
    fn preset(failure_threshold: u32, timeout_secs: u64, success_threshold: u32) -> Self {
        BreakerConfig {
            failure_threshold,
            window_failure_threshold: None,
            failure_rate_threshold: None,
            slow_call_rate_threshold: None,
            slow_call_duration: Duration::from_secs(60),
            window: BreakerWindow::default(),
            minimum_calls: 10,
            timeout: Duration::from_secs(timeout_secs),
            timeout_multiplier: 1.0,
            max_timeout: Duration::from_secs(600),
            success_threshold,
            half_open_max_calls: 1,
            clock: Clock::system(),
        }
    }

    /// The CEX breaker: 5 failures, 30 s open, 2 successes.
    pub fn cex() -> Self {
        BreakerConfig::preset(5, 30, 2)
    }

    /// The DEX breaker: 10 failures, 60 s open, 3 successes.
    pub fn dex() -> Self {
        BreakerConfig::preset(10, 60, 3)
    }

    /// The Twitter breaker: 3 failures, 120 s open, 1 success.
    pub fn twitter() -> Self {
        BreakerConfig::preset(3, 120, 1)
    }

    /// Whether the window rules (count and rates) need a window at all.
    pub(crate) fn uses_window(&self) -> bool {
        self.window_failure_threshold.is_some()
            || self.failure_rate_threshold.is_some()
            || self.slow_call_rate_threshold.is_some()
    }

    /// Whether recording a call needs its latency and end time.
    pub(crate) fn needs_timing(&self) -> bool {
        self.slow_call_rate_threshold.is_some()
            || (self.uses_window() && matches!(self.window, BreakerWindow::Time(_)))
    }

    /// The open timeout after `trips` trips in a row (1 for the first).
    pub(crate) fn open_timeout(&self, trips: u32) -> Duration {
        let growth = self
            .timeout_multiplier
            .powi(trips.saturating_sub(1).min(64) as i32);
        let grown = self.timeout.as_secs_f64() * growth;
        if grown.is_finite() && grown < self.max_timeout.as_secs_f64() {
            saturating_secs_f64(grown).max(self.timeout.min(self.max_timeout))
        } else {
            self.max_timeout.max(self.timeout)
        }
    }

    /// Checks every field; the breaker constructors call this.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(count) = self.window_failure_threshold {
            ConfigError::check(
                "window_failure_threshold",
                rules::breaker::window_failures(count, self.window.calls()),
            )?;
        }
        if let Some(rate) = self.failure_rate_threshold {
            ConfigError::check("failure_rate_threshold", rules::breaker::failure_rate(rate))?;
        }
        if let Some(rate) = self.slow_call_rate_threshold {
            ConfigError::check(
                "slow_call_rate_threshold",
                rules::breaker::slow_call_rate(rate),
            )?;
        }
        ConfigError::check(
            "failure_threshold",
            rules::breaker::failure_threshold(self.failure_threshold, self.uses_window()),
        )?;
        ConfigError::check(
            "slow_call_duration",
            rules::breaker::slow_call_duration(self.slow_call_duration),
        )?;
        ConfigError::check("window", self.window.check())?;
        ConfigError::check(
            "minimum_calls",
            rules::breaker::minimum_calls(self.minimum_calls),
        )?;
        ConfigError::check("timeout", rules::breaker::timeout(self.timeout))?;
        ConfigError::check(
            "timeout_multiplier",
            rules::breaker::timeout_multiplier(self.timeout_multiplier),
        )?;
        ConfigError::check(
            "max_timeout",
            rules::breaker::max_timeout(self.timeout, self.max_timeout),
        )?;
        ConfigError::check(
            "success_threshold",
            rules::breaker::success_threshold(self.success_threshold),
        )?;
        ConfigError::check(
            "half_open_max_calls",
            rules::breaker::half_open_max_calls(self.half_open_max_calls),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_match_the_reference_table() {
        let cex = BreakerConfig::cex();
        assert_eq!(
            (cex.failure_threshold, cex.timeout, cex.success_threshold),
            (5, Duration::from_secs(30), 2)
        );
        let dex = BreakerConfig::dex();
        assert_eq!(
            (dex.failure_threshold, dex.timeout, dex.success_threshold),
            (10, Duration::from_secs(60), 3)
        );
        let twitter = BreakerConfig::twitter();
        assert_eq!(
            (
                twitter.failure_threshold,
                twitter.timeout,
                twitter.success_threshold
            ),
            (3, Duration::from_secs(120), 1)
        );
    }

    #[test]
    fn open_timeout_grows_and_caps() {
        let config = BreakerConfig {
            timeout: Duration::from_secs(10),
            timeout_multiplier: 2.0,
            max_timeout: Duration::from_secs(50),
            ..BreakerConfig::default()
        };
        let timeouts: Vec<u64> = (1..=5).map(|t| config.open_timeout(t).as_secs()).collect();
        assert_eq!(timeouts, vec![10, 20, 40, 50, 50]);
        assert_eq!(
            BreakerConfig::default().open_timeout(7),
            Duration::from_secs(30)
        );
    }

    #[test]
    fn validate_names_the_bad_field() {
        let bad = |config: BreakerConfig| config.validate().unwrap_err().field();
        let base = BreakerConfig::default;
        assert_eq!(
            bad(BreakerConfig {
                failure_rate_threshold: Some(1.5),
                ..base()
            }),
            "failure_rate_threshold"
        );
        assert_eq!(
            bad(BreakerConfig {
                failure_threshold: 0,
                ..base()
            }),
            "failure_threshold"
        );
        assert_eq!(
            bad(BreakerConfig {
                timeout: Duration::ZERO,
                ..base()
            }),
            "timeout"
        );
        assert_eq!(
            bad(BreakerConfig {
                half_open_max_calls: 0,
                ..base()
            }),
            "half_open_max_calls"
        );
        assert_eq!(
            bad(BreakerConfig {
                timeout_multiplier: 0.5,
                ..base()
            }),
            "timeout_multiplier"
        );
        assert_eq!(
            bad(BreakerConfig {
                window: BreakerWindow::Calls(0),
                ..base()
            }),
            "window"
        );
    }
}

impl BreakerConfig {
    /// Sets `timeout` (see the field), and raises `max_timeout` to it when that was lower: a
    /// cap below the first open time would make the breaker reopen for less than asked.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self.max_timeout = self.max_timeout.max(timeout);
        self
    }
}

crate::common::setters::setters! { BreakerConfig {
    failure_threshold: u32,
    window_failure_threshold: u32 => Some,
    failure_rate_threshold: f64 => Some,
    slow_call_rate_threshold: f64 => Some,
    slow_call_duration: Duration,
    window: BreakerWindow,
    minimum_calls: u32,
    timeout_multiplier: f64,
    max_timeout: Duration,
    success_threshold: u32,
    half_open_max_calls: u32,
    clock: Clock,
}}
