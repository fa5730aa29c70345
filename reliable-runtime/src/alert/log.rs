//! The log handler: alerts as `tracing` events.

use super::{Alert, AlertHandler, HandlerFuture, Severity};

/// Logs each alert through `tracing`: `error!` for critical, `warn!` for warning, `info!` for
/// info, with the alert's fields as the event's fields and its message as the event's message.
///
/// ```
/// use reliable_runtime::alert::{alert_manager, LogHandler};
///
/// let id = alert_manager().register(LogHandler::new());
/// # alert_manager().unregister(id);
/// ```
#[derive(Clone, Debug, Default)]
pub struct LogHandler {
    _private: (),
}

impl LogHandler {
    /// A log handler.
    pub fn new() -> Self {
        LogHandler::default()
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
        self.log(alert);
        Box::pin(std::future::ready(Ok(())))
    }

    fn name(&self) -> String {
        "log".to_owned()
    }
}
