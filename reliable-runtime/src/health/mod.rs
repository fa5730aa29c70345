//! One snapshot of everything: [`get_system_health()`].

#[cfg(feature = "http-health")]
mod dashboard;
mod groups;
#[cfg(feature = "http-health")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-health")))]
mod http;
mod prometheus;

pub use groups::{group_health, DegradationLevel, GroupHealth, GroupSource};
#[cfg(feature = "http-health")]
#[cfg_attr(docsrs, doc(cfg(feature = "http-health")))]
pub use http::{router, HealthEndpoints};
pub use prometheus::prometheus_text;
pub(crate) use prometheus::Exposition;

use crate::breaker::{BreakerSnapshot, BreakerState, CircuitBreaker};
#[cfg(feature = "cache")]
use crate::cache::CacheSnapshot;
use crate::degrade::{degradation_registry, DegradationSnapshot};
use crate::layer::snapshots;
#[cfg(feature = "limit")]
use crate::limit::{Bulkhead, BulkheadSnapshot, RateLimiter, RateLimiterSnapshot};
use crate::limit::{TimeoutPolicy, TimeoutSnapshot};
use crate::registry::sla_registry;
#[cfg(feature = "retry")]
use crate::retry::{RetryPolicy, RetrySnapshot};
use crate::sla::{SlaMetrics, SlaStatus};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

/// The health of every registered monitor, breaker, cache, retry policy, rate limiter,
/// bulkhead, timeout and fallback site, serializable to JSON.
///
/// Each map is keyed by registry name, in name order, and holds every instance registered
/// when the snapshot was taken. Instances are registered on the first call of a fn that uses
/// them (or by hand), and their counters run from then on, in memory, until the process ends;
/// the type of each section documents what each field counts, over which span, and what
/// resets it. Window figures (percentiles, rates) are computed at the moment of the snapshot.
///
/// `overall_status` is:
///
/// - `"FAILED"` when there are monitored sources and every one of them is FAILED;
/// - `"DEGRADED"` when any source is not HEALTHY, or any breaker is OPEN, HALF_OPEN or
///   FORCED_OPEN;
/// - `"HEALTHY"` otherwise.
///
/// ```
/// use reliable_runtime::get_system_health;
///
/// let health = get_system_health();
/// let json = serde_json::to_value(&health).unwrap();
/// assert!(json["overall_status"].is_string());
/// assert!(json["data_sources"].is_object());
/// assert!(json["circuit_breakers"].is_object());
/// assert!(json["cache_stats"].is_object());
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SystemHealth {
    /// The worst of it all, by the rules above: `"HEALTHY"`, `"DEGRADED"` or `"FAILED"`.
    pub overall_status: SlaStatus,
    /// Wall-clock time of the snapshot, in seconds since the Unix epoch (with a fraction).
    pub timestamp: f64,
    /// Per SLA monitor: status, latency percentiles and success rate over its window, and
    /// totals since it was created ([`SlaMetrics`]).
    pub data_sources: BTreeMap<String, SlaMetrics>,
    /// Per circuit breaker: state, failures in a row, window rates, refusals, trips
    /// ([`BreakerSnapshot`]).
    pub circuit_breakers: BTreeMap<String, BreakerSnapshot>,
    /// Per cache: entries, hit rate, hits, misses, stale serves, loads, evictions, current TTL
    /// ([`CacheSnapshot`]).
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub cache_stats: BTreeMap<String, CacheSnapshot>,
    /// Per retry policy: calls, retries, calls given up, retries the budget refused
    /// ([`RetrySnapshot`]).
    #[cfg(feature = "retry")]
    #[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
    pub retries: BTreeMap<String, RetrySnapshot>,
    /// Per rate limiter: limit and window, calls admitted and refused, wait for the next slot
    /// ([`RateLimiterSnapshot`]).
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    pub rate_limiters: BTreeMap<String, RateLimiterSnapshot>,
    /// Per bulkhead: capacity, calls in flight, calls admitted and refused
    /// ([`BulkheadSnapshot`]).
    #[cfg(feature = "limit")]
    #[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
    pub bulkheads: BTreeMap<String, BulkheadSnapshot>,
    /// Per timeout: deadline, attempts timed, attempts timed out ([`TimeoutSnapshot`]).
    pub timeouts: BTreeMap<String, TimeoutSnapshot>,
    /// Per fallback site (`#[graceful_degradation]`, [`Policy::call_or_else`](crate::Policy::call_or_else)):
    /// fallbacks served, fallbacks that panicked ([`DegradationSnapshot`]).
    pub degradation: BTreeMap<String, DegradationSnapshot>,
    /// Per group (`group = "binance"` on sources and breakers): the group's sources, breaker
    /// state and degradation score ([`GroupHealth`]). Ungrouped sources and breakers are left
    /// out.
    pub per_exchange_degradation: BTreeMap<String, GroupHealth>,
    /// Per Redis store the shared states use (feature `redis`): commands that failed or timed
    /// out, operations answered locally, entries that did not parse
    /// ([`StoreSnapshot`](crate::shared::StoreSnapshot)). The store's breaker is in
    /// `circuit_breakers`, as `redis:<store>`.
    #[cfg(feature = "redis")]
    #[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
    pub shared_stores: BTreeMap<String, crate::shared::StoreSnapshot>,
}

impl SystemHealth {
    /// Names of the sources that are not HEALTHY.
    pub fn unhealthy_sources(&self) -> Vec<&str> {
        self.data_sources
            .iter()
            .filter(|(_, metrics)| metrics.status != SlaStatus::Healthy)
            .map(|(name, _)| name.as_str())
            .collect()
    }
}

/// Reads every registry and returns the system's health now.
///
/// It computes percentiles for every source, so call it when you need it (a health endpoint, a
/// dashboard tick), not per request.
pub fn get_system_health() -> SystemHealth {
    let monitors = sla_registry().all();
    let metrics: Vec<SlaMetrics> = monitors.iter().map(|monitor| monitor.metrics()).collect();
    let circuit_breakers = snapshots::<CircuitBreaker>();
    let per_exchange_degradation = group_health(
        monitors
            .iter()
            .zip(&metrics)
            .map(|(monitor, metrics)| (monitor.name(), metrics, monitor.group())),
        circuit_breakers.values(),
    );
    let data_sources: BTreeMap<String, SlaMetrics> = monitors
        .iter()
        .zip(metrics)
        .map(|(monitor, metrics)| (monitor.name().to_owned(), metrics))
        .collect();
    let overall_status = overall_status(&data_sources, &circuit_breakers);
    SystemHealth {
        overall_status,
        timestamp: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64()),
        data_sources,
        circuit_breakers,
        #[cfg(feature = "cache")]
        cache_stats: crate::registry::cache_registry().snapshots(),
        #[cfg(feature = "retry")]
        retries: snapshots::<RetryPolicy>(),
        #[cfg(feature = "limit")]
        rate_limiters: snapshots::<RateLimiter>(),
        #[cfg(feature = "limit")]
        bulkheads: snapshots::<Bulkhead>(),
        timeouts: snapshots::<TimeoutPolicy>(),
        degradation: degradation_registry()
            .all()
            .iter()
            .map(|site| (site.name().to_owned(), site.snapshot()))
            .collect(),
        per_exchange_degradation,
        #[cfg(feature = "redis")]
        shared_stores: crate::shared::store_snapshots(),
    }
}

fn overall_status(
    sources: &BTreeMap<String, SlaMetrics>,
    breakers: &BTreeMap<String, BreakerSnapshot>,
) -> SlaStatus {
    if !sources.is_empty() && sources.values().all(|m| m.status == SlaStatus::Failed) {
        return SlaStatus::Failed;
    }
    let source_unhealthy = sources.values().any(|m| m.status != SlaStatus::Healthy);
    let breaker_open = breakers.values().any(|b| {
        matches!(
            b.state,
            BreakerState::Open | BreakerState::HalfOpen | BreakerState::ForcedOpen
        )
    });
    if source_unhealthy || breaker_open {
        SlaStatus::Degraded
    } else {
        SlaStatus::Healthy
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metrics(status: SlaStatus) -> SlaMetrics {
        SlaMetrics {
            status,
            latency_p50: 0.0,
            latency_p95: 0.0,
            latency_p99: 0.0,
            latency_mean: 0.0,
            success_rate: 1.0,
            window_calls: 0,
            total_calls: 0,
            total_failures: 0,
            consecutive_failures: 0,
        }
    }

    fn breaker(state: BreakerState) -> BreakerSnapshot {
        BreakerSnapshot {
            state,
            failure_count: 0,
            failure_rate: None,
            slow_call_rate: None,
            window_calls: None,
            not_permitted_calls: 0,
            open_remaining: None,
            trips: 0,
            group: None,
        }
    }

    #[test]
    fn overall_status_rules() {
        let sources = |statuses: &[SlaStatus]| -> BTreeMap<String, SlaMetrics> {
            statuses
                .iter()
                .enumerate()
                .map(|(i, s)| (i.to_string(), metrics(*s)))
                .collect()
        };
        let breakers = |states: &[BreakerState]| -> BTreeMap<String, BreakerSnapshot> {
            states
                .iter()
                .enumerate()
                .map(|(i, s)| (i.to_string(), breaker(*s)))
                .collect()
        };
        use BreakerState::*;
        use SlaStatus::*;
        assert_eq!(overall_status(&sources(&[]), &breakers(&[])), Healthy);
        assert_eq!(
            overall_status(&sources(&[Healthy]), &breakers(&[Closed, Disabled])),
            Healthy
        );
        assert_eq!(
            overall_status(&sources(&[Healthy, Degraded]), &breakers(&[])),
            Degraded
        );
        assert_eq!(
            overall_status(&sources(&[Healthy, Failed]), &breakers(&[])),
            Degraded
        );
        assert_eq!(
            overall_status(&sources(&[Healthy]), &breakers(&[HalfOpen])),
            Degraded
        );
        assert_eq!(
            overall_status(&sources(&[Failed, Failed]), &breakers(&[Open])),
            Failed
        );
    }
}
