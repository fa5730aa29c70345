//! The log handler: alerts as `tracing` events.

use super::{Alert, AlertHandler, AlertKind, HandlerFuture, Severity};

/// Logs each alert through `tracing`: `error!` for critical, `warn!` for warning, `info!` for
/// info, with the alert's fields as the event's fields and its message as the event's message.
///
/// Breaker transitions, SLA status changes and reconfigurations are logged by the runtime as
/// they happen, at the level of their alert's severity (a breaker opening or a source failing
/// is an `error!`), so their alerts are not logged again (each change is logged once);
/// [`every_alert`](Self::every_alert) logs them too (e.g. when the runtime's own target,
/// `reliable_runtime`, is filtered out).
///
/// ```
/// use reliable_runtime::alert::{alert_manager, Alert, LogHandler, Severity};
/// use reliable_runtime::breaker::BreakerState;
///
/// let id = alert_manager().register(LogHandler::new());
/// # alert_manager().unregister(id);
/// let transition = Alert::breaker("log_once_doc", BreakerState::Closed, BreakerState::Open, 5);
/// assert!(!LogHandler::new().logs(&transition), "the breaker logged it already");
/// assert!(LogHandler::new().every_alert().logs(&transition));
/// assert!(LogHandler::new().logs(&Alert::new("export", Severity::Warning, "slow")));
/// ```
#[derive(Clone, Debug, Default)]
pub struct LogHandler {
    every_alert: bool,
}

impl LogHandler {
    /// A log handler.
    pub fn new() -> Self {
        LogHandler::default()
    }

    /// Logs the alerts of breaker transitions, SLA status changes and reconfigurations too,
    /// which the runtime already logs as they happen.
    pub fn every_alert(mut self) -> Self {
        self.every_alert = true;
        self
    }

    /// Whether [`handle`](AlertHandler::handle) logs `alert`.
    pub fn logs(&self, alert: &Alert) -> bool {
        self.every_alert
            || !matches!(
                alert.kind,
                AlertKind::CircuitBreaker | AlertKind::Sla | AlertKind::Configuration
            )
    }

    /// Logs `alert` now, on the caller's thread.
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, LogHandler, Severity};
    ///
    /// LogHandler::new().log(&Alert::new("log_doc", Severity::Critical, "down"));
    /// ```
    pub fn log(&self, alert: &Alert) {
        let breaker = alert.breaker_name.as_deref().unwrap_or("");
        macro_rules! event {
            ($level:ident) => {
                tracing::$level!(
                    kind = %alert.kind,
                    source = %alert.source,
                    breaker_name = breaker,
                    old_state = %alert.old_state,
                    new_state = %alert.new_state,
                    severity = %alert.severity,
                    failure_count = alert.failure_count,
                    metadata = ?alert.metadata,
                    "{}",
                    alert.message
                )
            };
        }
        match alert.severity {
            Severity::Critical => event!(error),
            Severity::Warning => event!(warn),
            Severity::Info => event!(info),
        }
    }
}

impl AlertHandler for LogHandler {
    fn handle<'a>(&'a self, alert: &'a Alert) -> HandlerFuture<'a> {
        if self.logs(alert) {
            self.log(alert);
        }
        Box::pin(std::future::ready(Ok(())))
    }

    fn name(&self) -> String {
        "log".to_owned()
    }
}
