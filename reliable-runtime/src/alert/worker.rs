//! One worker thread per handler: a single-threaded tokio runtime draining the handler's queue.

use super::{Alert, AlertHandler, HandlerError};
use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::task::Poll;
use tokio::sync::mpsc;

/// A handler's counters, shared by the manager (which counts what it queues or drops) and the
/// worker (which counts what it handled).
#[derive(Debug, Default)]
pub(super) struct Counters {
    /// Alerts queued.
    pub(super) accepted: AtomicU64,
    /// Alerts handled, whatever the outcome (written after the outcome's own counter).
    pub(super) finished: AtomicU64,
    pub(super) delivered: AtomicU64,
    pub(super) failed: AtomicU64,
    pub(super) panicked: AtomicU64,
    pub(super) dropped: AtomicU64,
}

/// Starts the worker thread of handler `id`. It ends when the queue's sender is dropped and the
/// queue is empty.
pub(super) fn spawn(
    id: u64,
    name: String,
    handler: Box<dyn AlertHandler>,
    queue: mpsc::Receiver<Arc<Alert>>,
    counters: Arc<Counters>,
) -> std::io::Result<()> {
    std::thread::Builder::new()
        .name(format!("reliable-alert-{id}"))
        .spawn(move || run(&name, &*handler, queue, &counters))
        .map(drop)
}

fn run(
    name: &str,
    handler: &dyn AlertHandler,
    mut queue: mpsc::Receiver<Arc<Alert>>,
    counters: &Counters,
) {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(error) => {
            // Dropping the queue makes every later alert count as dropped.
            tracing::error!(handler = name, %error, "could not start an alert handler's runtime");
            return;
        }
    };
    runtime.block_on(async {
        while let Some(alert) = queue.recv().await {
            match handle_caught(handler, &alert).await {
                Ok(Ok(())) => {
                    counters.delivered.fetch_add(1, Ordering::AcqRel);
                }
                Ok(Err(error)) => {
                    counters.failed.fetch_add(1, Ordering::AcqRel);
                    tracing::warn!(handler = name, source = %alert.source, %error, "alert handler failed");
                }
                Err(panic) => {
                    counters.panicked.fetch_add(1, Ordering::AcqRel);
                    tracing::error!(
                        handler = name,
                        source = %alert.source,
                        panic = panic_message(&*panic),
                        "alert handler panicked; it keeps getting later alerts"
                    );
                }
            }
            counters.finished.fetch_add(1, Ordering::AcqRel);
        }
    });
}

type Panic = Box<dyn Any + Send>;

/// Runs the handler on one alert; a panic while making, polling or dropping its future is
/// caught and returned.
async fn handle_caught(
    handler: &dyn AlertHandler,
    alert: &Alert,
) -> Result<Result<(), HandlerError>, Panic> {
    let mut future = catch_unwind(AssertUnwindSafe(|| handler.handle(alert)))?;
    let outcome = std::future::poll_fn(|cx| {
        match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(result)) => Poll::Ready(Ok(result)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(panic) => Poll::Ready(Err(panic)),
        }
    })
    .await;
    catch_unwind(AssertUnwindSafe(move || drop(future)))?;
    outcome
}

fn panic_message(panic: &(dyn Any + Send)) -> &str {
    if let Some(message) = panic.downcast_ref::<&'static str>() {
        message
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message
    } else {
        "a panic without a message"
    }
}
