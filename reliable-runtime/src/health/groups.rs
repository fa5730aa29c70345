//! Per-group (per-exchange) degradation: the sources and breakers that share a `group`, scored
//! together.

use crate::breaker::{BreakerSnapshot, BreakerState};
use crate::sla::{SlaMetrics, SlaStatus};
use serde::Serialize;
use std::collections::{BTreeMap, HashMap};

/// One source of a group, as the group section lists it: figures copied from its
/// [`SlaMetrics`] in the same snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupSource {
    /// The source's (its SLA monitor's) registry name.
    pub name: String,
    /// Its SLA status: `"HEALTHY"`, `"DEGRADED"` or `"FAILED"`.
    pub status: SlaStatus,
    /// Its p95 latency over its window, in seconds (0.0 with an empty window).
    pub latency_p95: f64,
    /// Its success rate over its window, 0.0 to 1.0 (1.0 with an empty window).
    pub success_rate: f64,
}

/// The health of one group (an exchange, typically): the per-exchange section.
///
/// `degradation_score` is this formula, within 0.0..=1.0:
///
/// ```text
/// failed_sources / sources × 0.5 + degraded_sources / sources × 0.3
///   + breaker_penalty × 0.2 + (1 − avg_success_rate) × 0.1
/// ```
///
/// where `breaker_penalty` is the share of the group's breakers that are open (OPEN and
/// FORCED_OPEN count 1, HALF_OPEN 0.5). Its bands are [`DegradationLevel`]s, and
/// `overall_status` follows them: HEALTHY below 0.1 with every source HEALTHY and every breaker
/// CLOSED (or DISABLED), FAILED from 0.6 or when every source is FAILED, DEGRADED otherwise.
///
/// ```
/// use reliable_runtime::health::{group_health, DegradationLevel};
/// use reliable_runtime::sla::{SlaMonitor, SlaThresholds};
///
/// let monitor = SlaMonitor::builder("group_doc_orderbook")
///     .thresholds(SlaThresholds::cex())
///     .group("group_doc_exchange")
///     .build()
///     .unwrap();
/// monitor.record_latency(std::time::Duration::from_millis(40), false);
/// let metrics = monitor.metrics();
/// let groups = group_health([("group_doc_orderbook", &metrics, monitor.group())], []);
/// let exchange = &groups["group_doc_exchange"];
/// assert_eq!(exchange.degradation_score, 0.0);
/// assert_eq!(exchange.degradation_level, DegradationLevel::None);
/// assert_eq!(exchange.circuit_breaker_state, "CLOSED");
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupHealth {
    /// The group's name (`exchange` in the JSON): the `group` its sources and breakers name.
    pub exchange: String,
    /// `"HEALTHY"`, `"DEGRADED"` or `"FAILED"`, from the score's bands and the rules above.
    pub overall_status: SlaStatus,
    /// Its monitored sources, each with its status, p95 latency and success rate.
    pub sources: Vec<GroupSource>,
    /// Mean of its sources' p95 latencies, unweighted, in seconds (0.0 without sources).
    pub avg_latency_p95: f64,
    /// Mean of its sources' success rates, unweighted, 0.0 to 1.0 (1.0 without sources).
    pub avg_success_rate: f64,
    /// The most open state among its breakers: `"OPEN"` or `"FORCED_OPEN"` over
    /// `"HALF_OPEN"`; `"CLOSED"` when every breaker is CLOSED or DISABLED, or it has none.
    pub circuit_breaker_state: &'static str,
    /// The score, 0.0 (healthy) to 1.0, by the formula above.
    pub degradation_score: f64,
    /// The score's band: `"none"`, `"minor"`, `"moderate"` or `"severe"`.
    pub degradation_level: DegradationLevel,
}

/// The bands of the degradation score.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DegradationLevel {
    /// Below 0.1.
    None,
    /// 0.1 to 0.3.
    Minor,
    /// 0.3 to 0.6.
    Moderate,
    /// 0.6 and above.
    Severe,
}

impl DegradationLevel {
    /// The band of `score`.
    ///
    /// ```
    /// use reliable_runtime::health::DegradationLevel;
    ///
    /// assert_eq!(DegradationLevel::of(0.05), DegradationLevel::None);
    /// assert_eq!(DegradationLevel::of(0.3), DegradationLevel::Moderate);
    /// assert_eq!(DegradationLevel::of(0.75), DegradationLevel::Severe);
    /// ```
    pub fn of(score: f64) -> Self {
        if score < 0.1 {
            DegradationLevel::None
        } else if score < 0.3 {
            DegradationLevel::Minor
        } else if score < 0.6 {
            DegradationLevel::Moderate
        } else {
            DegradationLevel::Severe
        }
    }
}

/// Groups sources (`(name, metrics, group)`) and breakers (by their snapshot's `group`) and
/// scores each group. Ungrouped ones are left out.
pub fn group_health<'a>(
    sources: impl IntoIterator<Item = (&'a str, &'a SlaMetrics, Option<&'a str>)>,
    breakers: impl IntoIterator<Item = &'a BreakerSnapshot>,
) -> BTreeMap<String, GroupHealth> {
    let mut groups = Groups::default();
    for (name, metrics, group) in sources {
        if let Some(group) = group {
            groups.of(group).sources.push(GroupSource {
                name: name.to_owned(),
                status: metrics.status,
                latency_p95: metrics.latency_p95,
                success_rate: metrics.success_rate,
            });
        }
    }
    for snapshot in breakers {
        if let Some(group) = &snapshot.group {
            groups.of(group).breakers.push(snapshot.state);
        }
    }
    groups
        .members
        .into_iter()
        .map(|group| {
            let name = group.name.to_owned();
            (name.clone(), score(name, group.sources, &group.breakers))
        })
        .collect()
}

/// The groups being gathered, keyed by borrowed names: one String per group, not one per
/// source.
#[derive(Default)]
struct Groups<'a> {
    index: HashMap<&'a str, usize>,
    members: Vec<Members<'a>>,
}

struct Members<'a> {
    name: &'a str,
    sources: Vec<GroupSource>,
    breakers: Vec<BreakerState>,
}

impl<'a> Groups<'a> {
    fn of(&mut self, group: &'a str) -> &mut Members<'a> {
        // A group's sources are usually neighbours in name order: try the last group first.
        let at = match self.members.last() {
            Some(last) if last.name == group => self.members.len() - 1,
            _ => *self.index.entry(group).or_insert_with(|| {
                self.members.push(Members {
                    name: group,
                    sources: Vec::new(),
                    breakers: Vec::new(),
                });
                self.members.len() - 1
            }),
        };
        &mut self.members[at]
    }
}

fn score(exchange: String, sources: Vec<GroupSource>, breakers: &[BreakerState]) -> GroupHealth {
    let count = sources.len() as f64;
    let share = |status: SlaStatus| {
        if sources.is_empty() {
            0.0
        } else {
            sources.iter().filter(|s| s.status == status).count() as f64 / count
        }
    };
    let (failed, degraded) = (share(SlaStatus::Failed), share(SlaStatus::Degraded));
    let mean = |value: fn(&GroupSource) -> f64, empty: f64| {
        if sources.is_empty() {
            empty
        } else {
            sources.iter().map(value).sum::<f64>() / count
        }
    };
    let avg_latency_p95 = mean(|s| s.latency_p95, 0.0);
    let avg_success_rate = mean(|s| s.success_rate, 1.0);
    let openness = |state: &BreakerState| match state {
        BreakerState::Open | BreakerState::ForcedOpen => 1.0,
        BreakerState::HalfOpen => 0.5,
        BreakerState::Closed | BreakerState::Disabled => 0.0,
    };
    let breaker_penalty = if breakers.is_empty() {
        0.0
    } else {
        breakers.iter().map(openness).sum::<f64>() / breakers.len() as f64
    };
    let degradation_score = (failed * 0.5
        + degraded * 0.3
        + breaker_penalty * 0.2
        + (1.0 - avg_success_rate).clamp(0.0, 1.0) * 0.1)
        .clamp(0.0, 1.0);
    let worst = breakers
        .iter()
        .max_by(|a, b| openness(a).total_cmp(&openness(b)));
    let circuit_breaker_state = match worst {
        Some(state) if openness(state) > 0.0 => state.as_str(),
        _ => "CLOSED",
    };
    let level = DegradationLevel::of(degradation_score);
    let all_failed = !sources.is_empty() && failed == 1.0;
    let overall_status = if all_failed || level == DegradationLevel::Severe {
        SlaStatus::Failed
    } else if level != DegradationLevel::None || failed + degraded > 0.0 || breaker_penalty > 0.0 {
        SlaStatus::Degraded
    } else {
        SlaStatus::Healthy
    };
    GroupHealth {
        exchange,
        overall_status,
        sources,
        avg_latency_p95,
        avg_success_rate,
        circuit_breaker_state,
        degradation_score,
        degradation_level: level,
    }
}
