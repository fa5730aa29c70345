//! Alerts: circuit-breaker and SLA state changes sent to pluggable handlers (log, webhook, email).
//!
//! The global [`alert_manager()`] listens to the runtime's [events](crate::event) from its first
//! use on: every breaker state change and every SLA status change becomes an [`Alert`], kept in a
//! bounded history ([`DEFAULT_HISTORY_CAPACITY`] alerts) and handed to every registered
//! [`AlertHandler`].
//!
//! | change | severity |
//! |---|---|
//! | breaker `CLOSED` → `OPEN` (service failing, calls blocked) | critical |
//! | breaker `OPEN` → `HALF_OPEN` (testing recovery) | warning |
//! | breaker `HALF_OPEN` → `CLOSED` (service recovered) | info |
//! | breaker `HALF_OPEN` → `OPEN` (recovery failed) | critical |
//! | breaker → `FORCED_OPEN` (set by hand: calls blocked on purpose) | warning |
//! | breaker → `DISABLED` (set by hand: calls no longer guarded) | warning |
//! | breaker → `CLOSED` from any other state (reset by hand) | info |
//! | SLA → `FAILED` | critical |
//! | SLA → `DEGRADED` | warning |
//! | SLA → `HEALTHY` | info |
//!
//! The severity depends on the state entered alone ([`Severity::for_breaker_state`],
//! [`Severity::for_sla_status`]), so the table has no gaps.
//!
//! # Handlers never slow a call
//!
//! Each handler has its own worker thread (running a small single-threaded tokio runtime, so a
//! handler may be `async`) fed by its own bounded queue. Raising an alert only pushes it onto
//! each queue without waiting: a slow handler delays nobody but itself, a full queue drops the
//! alert and counts it ([`HandlerStats::dropped`]), and a handler that panics is counted
//! ([`HandlerStats::panicked`]) and keeps receiving later alerts. A breaker never waits for the
//! alert manager either: it publishes its event on a bounded broadcast channel and goes on.
//!
//! ```
//! use reliable_runtime::alert::{alert_manager, Alert, LogHandler, Severity};
//! use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
//! use std::sync::mpsc;
//! use std::time::Duration;
//!
//! let manager = alert_manager();
//! manager.register(LogHandler::new()); // error!/warn!/info! through `tracing`
//!
//! let (sender, received) = mpsc::channel();
//! let id = manager.register(move |alert: &Alert| {
//!     if alert.source == "alerts_tour" {
//!         sender.send(alert.clone()).unwrap();
//!     }
//! });
//!
//! let breaker = CircuitBreaker::new("alerts_tour", BreakerConfig::default()).unwrap();
//! breaker.force_open();
//! let alert = received.recv_timeout(Duration::from_secs(10)).unwrap();
//! assert_eq!(alert.breaker_name.as_deref(), Some("alerts_tour"));
//! assert_eq!((alert.old_state.as_str(), alert.new_state.as_str()), ("CLOSED", "FORCED_OPEN"));
//! assert_eq!(alert.severity, Severity::Warning);
//! manager.unregister(id);
//! ```
//!
//! # Built-in handlers
//!
//! - [`LogHandler`]: through `tracing` (`error!` for critical, `warn!` for warning, `info!` for
//!   info).
//! - `WebhookHandler` (feature `webhook`, HTTPS with `webhook-rustls`): an HTTP POST of the
//!   alert's JSON, with a timeout, retried with the runtime's [backoff](crate::retry).
//! - `EmailHandler` (feature `email`, TLS with `email-rustls`): a mail through SMTP whose
//!   subject names the severity and the source and whose body holds the JSON.

mod handler;
mod listener;
mod log;
mod manager;
pub(crate) mod time;
mod worker;

#[cfg(feature = "email")]
mod email;
#[cfg(feature = "webhook")]
mod webhook;

#[cfg(feature = "email")]
pub use email::EmailHandler;
#[cfg(feature = "email")]
pub use email::EmailHandlerBuilder;
#[cfg(feature = "email-rustls")]
pub use email::EmailTls;
pub use handler::{async_handler, AlertHandler, AsyncFnHandler, HandlerError, HandlerFuture};
pub use log::LogHandler;
pub use manager::{
    AlertConfig, AlertManager, AlertStats, HandlerId, HandlerOptions, HandlerStats,
    DEFAULT_HISTORY_CAPACITY, DEFAULT_QUEUE_CAPACITY,
};
#[cfg(feature = "webhook")]
pub use webhook::{WebhookHandler, WebhookHandlerBuilder};

use crate::breaker::BreakerState;
use crate::event::{BreakerTransition, Event, Reconfigured, SlaStatusChange};
use crate::sla::SlaStatus;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Once, OnceLock};
use std::time::SystemTime;

/// The process-wide alert manager, fed by the runtime's breaker and SLA events.
///
/// The first call starts listening to the [event channel](crate::event::subscribe) (on a
/// dedicated thread named `reliable-alerts`, so no tokio runtime is needed); changes that
/// happen before the first call raise no alert, so call it at start-up, where the handlers
/// are registered. History: the last [`DEFAULT_HISTORY_CAPACITY`] alerts
/// ([`set_history_capacity`](AlertManager::set_history_capacity) changes it).
///
/// ```
/// use reliable_runtime::alert::{alert_manager, Alert, Severity};
///
/// let manager = alert_manager();
/// manager.raise(Alert::new("nightly_export", Severity::Warning, "export took 2 h"));
/// let last = manager.recent(1).pop().unwrap();
/// assert_eq!(last.source, "nightly_export");
/// assert!(manager.stats().raised >= 1);
/// ```
pub fn alert_manager() -> &'static AlertManager {
    static MANAGER: OnceLock<AlertManager> = OnceLock::new();
    static LISTENER: Once = Once::new();
    let manager = MANAGER.get_or_init(|| AlertManager::new(AlertConfig::default()));
    // Subscribes before returning, so a change made right after this call is seen.
    LISTENER.call_once(|| listener::start(manager));
    manager
}

/// How serious an alert is. Serializes as `"info"`, `"warning"` or `"critical"`; orders from
/// info to critical.
///
/// ```
/// use reliable_runtime::alert::Severity;
/// use reliable_runtime::breaker::BreakerState;
///
/// assert_eq!(Severity::for_breaker_state(BreakerState::Open), Severity::Critical);
/// assert_eq!(serde_json::to_string(&Severity::Warning).unwrap(), "\"warning\"");
/// assert!(Severity::Critical > Severity::Info);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Good news or routine: a service recovered.
    Info,
    /// Worth a look: recovery being tested, a degraded source, a breaker set by hand.
    Warning,
    /// Calls are failing or blocked.
    Critical,
}

impl Severity {
    /// The severity as it serializes: `"info"`, `"warning"`, `"critical"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    /// The severity of a breaker entering `state` (the module's table): `OPEN` critical,
    /// `HALF_OPEN`, `FORCED_OPEN` and `DISABLED` warning, `CLOSED` info.
    pub fn for_breaker_state(state: BreakerState) -> Severity {
        match state {
            BreakerState::Open => Severity::Critical,
            BreakerState::HalfOpen | BreakerState::ForcedOpen | BreakerState::Disabled => {
                Severity::Warning
            }
            BreakerState::Closed => Severity::Info,
        }
    }

    /// The severity of a source entering `status`: `FAILED` critical, `DEGRADED` warning,
    /// `HEALTHY` info.
    pub fn for_sla_status(status: SlaStatus) -> Severity {
        match status {
            SlaStatus::Failed => Severity::Critical,
            SlaStatus::Degraded => Severity::Warning,
            SlaStatus::Healthy => Severity::Info,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What an alert is about. Serializes as `"circuit_breaker"`, `"sla"`, `"configuration"` or
/// `"custom"`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum AlertKind {
    /// A circuit breaker changed state.
    CircuitBreaker,
    /// A monitored source's SLA status changed.
    Sla,
    /// A running instance took a new configuration ([`Event::Reconfigured`]).
    Configuration,
    /// A cache's hit rate crossed its `min_hit_rate` ([`Event::CacheHitRate`]).
    #[cfg(feature = "cache")]
    Cache,
    /// Raised by the application ([`Alert::new`]).
    Custom,
}

impl AlertKind {
    /// The kind as it serializes.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::CircuitBreaker => "circuit_breaker",
            AlertKind::Sla => "sla",
            AlertKind::Configuration => "configuration",
            #[cfg(feature = "cache")]
            AlertKind::Cache => "cache",
            AlertKind::Custom => "custom",
        }
    }
}

impl fmt::Display for AlertKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One alert: its fields (`breaker_name`, `old_state`, `new_state`, `severity`,
/// `timestamp`, `failure_count`, `message`, `metadata`) plus what it is about (`kind`,
/// `source`).
///
/// Serialized, it has this JSON shape, its fields in this order; the
/// timestamp is RFC 3339 in UTC with milliseconds:
///
/// ```
/// use reliable_runtime::alert::Alert;
/// use reliable_runtime::breaker::BreakerState;
///
/// let alert = Alert::breaker("binance_api", BreakerState::Closed, BreakerState::Open, 5);
/// let json: serde_json::Value = serde_json::from_str(&alert.to_json()).unwrap();
/// assert_eq!(json["breaker_name"], "binance_api");
/// assert_eq!(json["old_state"], "CLOSED");
/// assert_eq!(json["new_state"], "OPEN");
/// assert_eq!(json["severity"], "critical");
/// assert_eq!(json["failure_count"], 5);
/// assert_eq!(json["message"], "Circuit breaker 'binance_api' opened after 5 failures: calls are blocked");
/// assert!(json["timestamp"].as_str().unwrap().ends_with('Z')); // e.g. "2025-10-22T11:45:00.000Z"
/// assert_eq!((json["kind"].as_str(), json["source"].as_str()), (Some("circuit_breaker"), Some("binance_api")));
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Alert {
    /// The breaker's name for a breaker alert; `None` (JSON `null`) for other kinds, whose
    /// name is in [`source`](Self::source).
    pub breaker_name: Option<String>,
    /// The state left: a breaker state (`"CLOSED"`, `"OPEN"`, `"HALF_OPEN"`, `"FORCED_OPEN"`,
    /// `"DISABLED"`) or an SLA status (`"HEALTHY"`, `"DEGRADED"`, `"FAILED"`); empty when the
    /// alert is not about a change of state.
    pub old_state: String,
    /// The state entered (as `old_state`).
    pub new_state: String,
    /// How serious it is.
    pub severity: Severity,
    /// When the change happened. Serialized as RFC 3339 in UTC, e.g. `"2025-10-22T11:45:00.000Z"`.
    #[serde(serialize_with = "time::serialize_rfc3339")]
    pub timestamp: SystemTime,
    /// The breaker's failure count when it changed (consecutive failures); 0 for other kinds.
    pub failure_count: u32,
    /// A sentence for people.
    pub message: String,
    /// More context: for a breaker, the runtime's `reason` for the change.
    pub metadata: BTreeMap<String, String>,
    /// What the alert is about.
    pub kind: AlertKind,
    /// The name of the breaker, monitored source or job the alert is about (for a breaker,
    /// the same as `breaker_name`).
    pub source: String,
}

impl Alert {
    /// An application's own alert about `source`, now (kind [`AlertKind::Custom`], no states).
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, AlertKind, Severity};
    ///
    /// let alert = Alert::new("nightly_export", Severity::Warning, "export took 2 h")
    ///     .with_metadata("rows", "1200000");
    /// assert_eq!(alert.kind, AlertKind::Custom);
    /// assert_eq!(alert.breaker_name, None);
    /// assert_eq!(alert.metadata["rows"], "1200000");
    /// ```
    pub fn new(source: impl Into<String>, severity: Severity, message: impl Into<String>) -> Alert {
        Alert {
            breaker_name: None,
            old_state: String::new(),
            new_state: String::new(),
            severity,
            timestamp: SystemTime::now(),
            failure_count: 0,
            message: message.into(),
            metadata: BTreeMap::new(),
            kind: AlertKind::Custom,
            source: source.into(),
        }
    }

    /// The alert for breaker `name` moving `from` → `to` with `failure_count` failures counted,
    /// now, with the severity of the module's table and a message saying what it means.
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, Severity};
    /// use reliable_runtime::breaker::BreakerState;
    ///
    /// let alert = Alert::breaker("binance_api", BreakerState::HalfOpen, BreakerState::Closed, 0);
    /// assert_eq!(alert.severity, Severity::Info);
    /// assert_eq!(alert.message, "Circuit breaker 'binance_api' closed: service recovered");
    /// ```
    pub fn breaker(
        name: impl Into<String>,
        from: BreakerState,
        to: BreakerState,
        failure_count: u32,
    ) -> Alert {
        let name = name.into();
        let message = breaker_message(&name, from, to, failure_count);
        Alert {
            breaker_name: Some(name.clone()),
            old_state: from.as_str().to_owned(),
            new_state: to.as_str().to_owned(),
            severity: Severity::for_breaker_state(to),
            timestamp: SystemTime::now(),
            failure_count,
            message,
            metadata: BTreeMap::new(),
            kind: AlertKind::CircuitBreaker,
            source: name,
        }
    }

    /// The alert for monitored source `source` moving `from` → `to`, now.
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, AlertKind, Severity};
    /// use reliable_runtime::sla::SlaStatus;
    ///
    /// let alert = Alert::sla("dex_quote", SlaStatus::Healthy, SlaStatus::Degraded);
    /// assert_eq!((alert.kind, alert.severity), (AlertKind::Sla, Severity::Warning));
    /// assert_eq!(alert.new_state, "DEGRADED");
    /// ```
    pub fn sla(source: impl Into<String>, from: SlaStatus, to: SlaStatus) -> Alert {
        let source = source.into();
        let message = match to {
            SlaStatus::Failed => format!("Source '{source}' FAILED its SLA"),
            SlaStatus::Degraded => {
                format!("Source '{source}' is DEGRADED: SLA thresholds exceeded")
            }
            SlaStatus::Healthy => format!("Source '{source}' is HEALTHY again"),
        };
        Alert {
            breaker_name: None,
            old_state: from.as_str().to_owned(),
            new_state: to.as_str().to_owned(),
            severity: Severity::for_sla_status(to),
            timestamp: SystemTime::now(),
            failure_count: 0,
            message,
            metadata: BTreeMap::new(),
            kind: AlertKind::Sla,
            source,
        }
    }

    /// The alert for a runtime event, if the event is one that alerts (a breaker state change
    /// or an SLA status change); `None` for the others (retries, rate limits, stale values).
    ///
    /// ```
    /// use reliable_runtime::alert::Alert;
    /// use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
    /// use reliable_runtime::event::subscribe;
    ///
    /// let mut events = subscribe();
    /// let breaker = CircuitBreaker::new("from_event_doc", BreakerConfig::default()).unwrap();
    /// breaker.disable();
    /// let alert = Alert::from_event(&events.try_recv().unwrap()).unwrap();
    /// assert_eq!(alert.new_state, "DISABLED");
    /// assert_eq!(alert.metadata["reason"], "set by hand");
    /// ```
    pub fn from_event(event: &Event) -> Option<Alert> {
        match event {
            Event::BreakerStateChanged(change) => Some(Alert::from(change)),
            Event::SlaStatusChanged(change) => Some(Alert::from(change)),
            Event::Reconfigured(change) => Some(Alert::from(change)),
            #[cfg(feature = "cache")]
            Event::CacheHitRate(change) => Some(Alert::cache_hit_rate(change)),
            _ => None,
        }
    }

    /// The alert for a cache's hit rate crossing its `min_hit_rate`: a warning when it falls
    /// below (seed: "cache hit rate drops"), info when it is back above.
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, AlertKind, Severity};
    /// use reliable_runtime::cache::HitRateChange;
    ///
    /// let change = HitRateChange { cache: "orderbooks".into(), hit_rate: 0.42, min_hit_rate: 0.8, lookups: 120, low: true, at: std::time::SystemTime::now() };
    /// let alert = Alert::cache_hit_rate(&change);
    /// assert_eq!((alert.kind, alert.severity, alert.new_state.as_str()), (AlertKind::Cache, Severity::Warning, "LOW"));
    /// assert_eq!(alert.message, "Cache 'orderbooks' hit rate dropped to 42.0% (below 80.0%, 120 lookups)");
    /// ```
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub fn cache_hit_rate(change: &crate::cache::HitRateChange) -> Alert {
        let (rate, min) = (change.hit_rate * 100.0, change.min_hit_rate * 100.0);
        let (severity, from, to, message) = if change.low {
            (
                Severity::Warning,
                "OK",
                "LOW",
                format!(
                    "Cache '{}' hit rate dropped to {rate:.1}% (below {min:.1}%, {} lookups)",
                    change.cache, change.lookups
                ),
            )
        } else {
            (
                Severity::Info,
                "LOW",
                "OK",
                format!(
                    "Cache '{}' hit rate recovered to {rate:.1}% (at least {min:.1}%, {} lookups)",
                    change.cache, change.lookups
                ),
            )
        };
        let mut alert = Alert::new(change.cache.clone(), severity, message)
            .with_metadata("hit_rate", format!("{:.4}", change.hit_rate))
            .with_metadata("min_hit_rate", format!("{:.4}", change.min_hit_rate))
            .with_metadata("lookups", change.lookups.to_string());
        alert.kind = AlertKind::Cache;
        alert.old_state = from.to_owned();
        alert.new_state = to.to_owned();
        alert.timestamp = change.at;
        alert
    }

    /// Adds one metadata entry.
    pub fn with_metadata(mut self, key: impl Into<String>, value: impl Into<String>) -> Alert {
        self.metadata.insert(key.into(), value.into());
        self
    }

    /// The alert as compact JSON (the shape of [`Alert`]).
    pub fn to_json(&self) -> String {
        // Only strings, numbers and a string map: serializing cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }

    /// The alert as indented JSON, for a mail body or a log file.
    pub fn to_json_pretty(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// One line for a mail subject or a chat message, with the severity and the source:
    /// `[CRITICAL] circuit breaker binance_api: CLOSED -> OPEN`.
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, Severity};
    /// use reliable_runtime::sla::SlaStatus;
    ///
    /// let alert = Alert::sla("dex_quote", SlaStatus::Degraded, SlaStatus::Failed);
    /// assert_eq!(alert.title(), "[CRITICAL] SLA dex_quote: DEGRADED -> FAILED");
    /// let alert = Alert::new("nightly_export", Severity::Info, "done");
    /// assert_eq!(alert.title(), "[INFO] nightly_export: done");
    /// ```
    pub fn title(&self) -> String {
        let severity = self.severity.as_str().to_ascii_uppercase();
        let what = match self.kind {
            AlertKind::CircuitBreaker => "circuit breaker ",
            AlertKind::Sla => "SLA ",
            AlertKind::Configuration => "configuration of ",
            #[cfg(feature = "cache")]
            AlertKind::Cache => "cache hit rate ",
            AlertKind::Custom => "",
        };
        if self.old_state.is_empty() && self.new_state.is_empty() {
            format!("[{severity}] {what}{}: {}", self.source, self.message)
        } else {
            format!(
                "[{severity}] {what}{}: {} -> {}",
                self.source, self.old_state, self.new_state
            )
        }
    }
}

impl From<&BreakerTransition> for Alert {
    fn from(change: &BreakerTransition) -> Alert {
        let mut alert =
            Alert::breaker(change.breaker, change.from, change.to, change.failure_count);
        alert.timestamp = change.at;
        alert
            .metadata
            .insert("reason".to_owned(), change.reason.to_owned());
        alert
    }
}

impl From<&Reconfigured> for Alert {
    /// An info alert naming each changed setting (`failure_threshold: 5 -> 3`) in its
    /// message and its metadata.
    fn from(change: &Reconfigured) -> Alert {
        let settings: Vec<String> = change
            .changes
            .iter()
            .map(|setting| format!("{}: {} -> {}", setting.field, setting.from, setting.to))
            .collect();
        let mut alert = Alert::new(
            change.name,
            Severity::Info,
            format!(
                "{} '{}' reconfigured: {}",
                change.layer,
                change.name,
                if settings.is_empty() {
                    "no change".to_owned()
                } else {
                    settings.join(", ")
                }
            ),
        );
        alert.kind = AlertKind::Configuration;
        alert.timestamp = change.at;
        for setting in &change.changes {
            alert.metadata.insert(
                setting.field.clone(),
                format!("{} -> {}", setting.from, setting.to),
            );
        }
        alert
    }
}

impl From<&SlaStatusChange> for Alert {
    fn from(change: &SlaStatusChange) -> Alert {
        let mut alert = Alert::sla(&*change.source, change.from, change.to);
        alert.timestamp = change.at;
        alert
    }
}

fn breaker_message(name: &str, from: BreakerState, to: BreakerState, failures: u32) -> String {
    use BreakerState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};
    match (from, to) {
        (Closed, Open) => {
            format!("Circuit breaker '{name}' opened after {failures} failures: calls are blocked")
        }
        (HalfOpen, Open) => format!("Circuit breaker '{name}' reopened: recovery failed"),
        (_, Open) => format!("Circuit breaker '{name}' opened: calls are blocked"),
        (_, HalfOpen) => format!("Circuit breaker '{name}' is half-open: testing recovery"),
        (HalfOpen, Closed) => format!("Circuit breaker '{name}' closed: service recovered"),
        (_, Closed) => format!("Circuit breaker '{name}' closed (reset)"),
        (_, ForcedOpen) => {
            format!("Circuit breaker '{name}' forced open: every call is rejected until reset")
        }
        (_, Disabled) => format!("Circuit breaker '{name}' disabled: calls are not guarded"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use BreakerState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};

    #[test]
    fn breaker_severities_follow_the_reference_table() {
        let rows = [
            (Closed, Open, Severity::Critical),
            (Open, HalfOpen, Severity::Warning),
            (HalfOpen, Closed, Severity::Info),
            (HalfOpen, Open, Severity::Critical),
            (Closed, ForcedOpen, Severity::Warning),
            (Closed, Disabled, Severity::Warning),
            (ForcedOpen, Closed, Severity::Info),
        ];
        for (from, to, severity) in rows {
            let alert = Alert::breaker("unit", from, to, 3);
            assert_eq!(alert.severity, severity, "{from} -> {to}");
            assert!(alert.message.contains("'unit'"), "{}", alert.message);
        }
    }

    #[test]
    fn sla_severities() {
        use SlaStatus::{Degraded, Failed, Healthy};
        let severity = |from, to| Alert::sla("s", from, to).severity;
        assert_eq!(severity(Healthy, Failed), Severity::Critical);
        assert_eq!(severity(Healthy, Degraded), Severity::Warning);
        assert_eq!(severity(Failed, Degraded), Severity::Warning);
        assert_eq!(severity(Failed, Healthy), Severity::Info);
    }

    #[test]
    fn events_keep_their_time_and_reason() {
        let at = SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_761_133_500);
        let event = Event::BreakerStateChanged(BreakerTransition {
            breaker: "unit_event",
            from: Closed,
            to: Open,
            failure_count: 5,
            reason: "consecutive failures reached the threshold",
            at,
        });
        let alert = Alert::from_event(&event).unwrap();
        assert_eq!(alert.timestamp, at);
        assert_eq!(
            alert.metadata["reason"],
            "consecutive failures reached the threshold"
        );
        let json: serde_json::Value = serde_json::from_str(&alert.to_json()).unwrap();
        assert_eq!(json["timestamp"], "2025-10-22T11:45:00.000Z");
        assert_eq!(json["failure_count"], 5);
    }
}
