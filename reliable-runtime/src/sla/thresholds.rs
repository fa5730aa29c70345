//! SLA thresholds and the rules that turn metrics into a status.

use super::{SlaMetrics, SlaStatus};
use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A source is FAILED when its success rate falls below this fraction of `min_success_rate`
/// ("far below target": under 47.5% for a 95% target).
pub const FAILED_SUCCESS_FRACTION: f64 = 0.5;

/// What a monitored source promises, and so when it is `Degraded` or `Failed`.
///
/// The rules, checked in this order on the current window:
///
/// 1. **FAILED** when `consecutive_failures >= max_consecutive_failures`, or when the window
///    holds at least `min_calls` calls and the success rate is below
///    `min_success_rate * FAILED_SUCCESS_FRACTION`.
/// 2. **DEGRADED** when the window holds at least `min_calls` calls and the success rate is below
///    `min_success_rate`, p95 latency is above `max_latency_p95`, or p99 latency is above
///    `max_latency_p99`.
/// 3. **HEALTHY** otherwise (including a source with no calls yet).
///
/// `Default` is the CEX order-book row: p95 1 s, p99 2 s, 95% success, 3 failures.
///
/// ```
/// use reliable_runtime::sla::SlaThresholds;
/// use std::time::Duration;
///
/// let critical = SlaThresholds::default().max_latency_p95(Duration::from_millis(500)).max_latency_p99(Duration::from_secs(1)).min_success_rate(0.99).max_consecutive_failures(1);
/// assert!(critical.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct SlaThresholds {
    /// Highest acceptable p95 latency.
    #[serde(with = "crate::common::human_duration")]
    pub max_latency_p95: Duration,
    /// Highest acceptable p99 latency.
    #[serde(with = "crate::common::human_duration")]
    pub max_latency_p99: Duration,
    /// Lowest acceptable success rate, in `0.0..=1.0`.
    pub min_success_rate: f64,
    /// Consecutive failures that make the source FAILED (at least 1).
    pub max_consecutive_failures: u32,
    /// Calls the window must hold before rates and percentiles are judged (at least 1), so one
    /// early failure does not fail a fresh source.
    pub min_calls: u32,
}

impl Default for SlaThresholds {
    fn default() -> Self {
        SlaThresholds::cex()
    }
}

impl SlaThresholds {
    fn preset(p95_ms: u64, p99_ms: u64, min_success_rate: f64, max_failures: u32) -> Self {
        SlaThresholds {
            max_latency_p95: Duration::from_millis(p95_ms),
            max_latency_p99: Duration::from_millis(p99_ms),
            min_success_rate,
            max_consecutive_failures: max_failures,
            min_calls: 10,
        }
    }

    /// The CEX order-book SLA: p95 1 s, p99 2 s, 95% success, 3 failures.
    pub fn cex() -> Self {
        SlaThresholds::preset(1_000, 2_000, 0.95, 3)
    }

    /// The DEX aggregator SLA: p95 3 s, p99 5 s, 90% success, 5 failures.
    pub fn dex() -> Self {
        SlaThresholds::preset(3_000, 5_000, 0.90, 5)
    }

    /// The Twitter API SLA: p95 5 s, p99 10 s, 85% success, 3 failures.
    pub fn twitter() -> Self {
        SlaThresholds::preset(5_000, 10_000, 0.85, 3)
    }

    /// Checks that the thresholds can be met at all.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use reliable_rules::sla;
        ConfigError::check(
            "min_success_rate",
            sla::min_success_rate(self.min_success_rate),
        )?;
        ConfigError::check("max_latency_p95", sla::p95(self.max_latency_p95))?;
        ConfigError::check(
            "max_latency_p99",
            sla::p99(self.max_latency_p95, self.max_latency_p99),
        )?;
        ConfigError::check(
            "max_consecutive_failures",
            sla::max_consecutive_failures(self.max_consecutive_failures),
        )?;
        ConfigError::check("min_calls", sla::min_calls(self.min_calls))
    }

    /// The status these thresholds give `metrics` (see the rules above).
    pub fn evaluate(&self, metrics: &SlaMetrics) -> SlaStatus {
        if metrics.consecutive_failures >= u64::from(self.max_consecutive_failures) {
            return SlaStatus::Failed;
        }
        if metrics.window_calls < u64::from(self.min_calls) {
            return SlaStatus::Healthy;
        }
        if metrics.success_rate < self.min_success_rate * FAILED_SUCCESS_FRACTION {
            return SlaStatus::Failed;
        }
        let too_slow = metrics.latency_p95 > self.max_latency_p95.as_secs_f64()
            || metrics.latency_p99 > self.max_latency_p99.as_secs_f64();
        if metrics.success_rate < self.min_success_rate || too_slow {
            return SlaStatus::Degraded;
        }
        SlaStatus::Healthy
    }
}

crate::common::setters::setters! { SlaThresholds {
    max_latency_p95: Duration,
    max_latency_p99: Duration,
    min_success_rate: f64,
    max_consecutive_failures: u32,
    min_calls: u32,
}}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn p99_below_p95_is_refused_whichever_was_set_first() {
        let config = SlaThresholds::default()
            .max_latency_p99(Duration::from_millis(500))
            .max_latency_p95(Duration::from_secs(1));
        let error = config.validate().unwrap_err();
        assert_eq!(error.field(), "max_latency_p99");
        assert!(error.reason().contains("p95"), "{error}");
        let config = SlaThresholds::default()
            .max_latency_p95(Duration::from_secs(1))
            .max_latency_p99(Duration::from_secs(1));
        assert!(config.validate().is_ok());
    }
}
