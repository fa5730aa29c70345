//! The handler trait, and handlers made from closures.

use super::Alert;
use std::fmt;
use std::future::Future;
use std::pin::Pin;

/// Why a handler could not deliver an alert (counted in [`HandlerStats::failed`] and logged).
///
/// [`HandlerStats::failed`]: super::HandlerStats::failed
pub type HandlerError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// The future an [`AlertHandler`] returns for one alert.
pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<(), HandlerError>> + Send + 'a>>;

/// Something that does something with alerts: logs them, posts them, mails them.
///
/// Each registered handler runs on its own worker thread, inside a single-threaded tokio
/// runtime (timers and sockets work), one alert at a time, in the order they were raised.
/// Blocking in a handler is allowed: it delays that handler's later alerts, nothing else.
///
/// Closures `Fn(&Alert)` are handlers; so are `async` closures wrapped by [`async_handler`].
/// For a type of your own:
///
/// ```
/// use reliable_runtime::alert::{alert_manager, Alert, AlertHandler, HandlerFuture, Severity};
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use std::sync::Arc;
///
/// /// Counts critical alerts.
/// struct CriticalCounter(Arc<AtomicU64>);
///
/// impl AlertHandler for CriticalCounter {
///     fn handle<'a>(&'a self, alert: &'a Alert) -> HandlerFuture<'a> {
///         Box::pin(async move {
///             if alert.severity == Severity::Critical {
///                 self.0.fetch_add(1, Ordering::SeqCst);
///             }
///             Ok(())
///         })
///     }
///
///     fn name(&self) -> String {
///         "critical_counter".to_owned()
///     }
/// }
///
/// let count = Arc::new(AtomicU64::new(0));
/// let id = alert_manager().register(CriticalCounter(Arc::clone(&count)));
/// alert_manager().raise(Alert::new("handler_doc", Severity::Critical, "down"));
/// assert!(alert_manager().flush(std::time::Duration::from_secs(10)));
/// assert!(count.load(Ordering::SeqCst) >= 1);
/// assert_eq!(alert_manager().handler_stats(id).unwrap().name, "critical_counter");
/// ```
pub trait AlertHandler: Send + Sync + 'static {
    /// Handles one alert. An `Err` is counted and logged; a panic is caught, counted and
    /// logged; either way the handler gets the next alert.
    fn handle<'a>(&'a self, alert: &'a Alert) -> HandlerFuture<'a>;

    /// The handler's name in stats and logs (default: its type's name).
    fn name(&self) -> String {
        std::any::type_name::<Self>().to_owned()
    }
}

/// A closure is a handler: `alert_manager().register(|alert: &Alert| println!("{}", alert.message))`.
///
/// The closure runs on the handler's worker thread, so it may block.
impl<F> AlertHandler for F
where
    F: Fn(&Alert) + Send + Sync + 'static,
{
    fn handle<'a>(&'a self, alert: &'a Alert) -> HandlerFuture<'a> {
        self(alert);
        Box::pin(std::future::ready(Ok(())))
    }
}

/// A handler made of an `async` closure by [`async_handler`].
pub struct AsyncFnHandler<F> {
    handle: F,
}

impl<F> fmt::Debug for AsyncFnHandler<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AsyncFnHandler").finish_non_exhaustive()
    }
}

/// Makes a handler of a closure that returns a future: it gets its own copy of each alert.
///
/// ```
/// use reliable_runtime::alert::{alert_manager, async_handler, Alert, HandlerError, Severity};
/// use std::time::Duration;
///
/// let id = alert_manager().register(async_handler(|alert: Alert| async move {
///     tokio::time::sleep(Duration::from_millis(1)).await; // e.g. an HTTP call
///     if alert.message.is_empty() {
///         return Err(HandlerError::from("an empty alert"));
///     }
///     Ok(())
/// }));
/// alert_manager().raise(Alert::new("async_handler_doc", Severity::Info, "hello"));
/// assert!(alert_manager().flush(Duration::from_secs(10)));
/// assert!(alert_manager().handler_stats(id).unwrap().delivered >= 1);
/// ```
pub fn async_handler<F, Fut>(handle: F) -> AsyncFnHandler<F>
where
    F: Fn(Alert) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    AsyncFnHandler { handle }
}

impl<F, Fut> AlertHandler for AsyncFnHandler<F>
where
    F: Fn(Alert) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = Result<(), HandlerError>> + Send + 'static,
{
    fn handle<'a>(&'a self, alert: &'a Alert) -> HandlerFuture<'a> {
        Box::pin((self.handle)(alert.clone()))
    }

    fn name(&self) -> String {
        std::any::type_name::<F>().to_owned()
    }
}
