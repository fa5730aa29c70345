//! Where a value came from: fresh from the source, a cache hit, a stale value with its age, or
//! a fallback's answer with its cause.
//!
//! Nothing changes for callers that do not ask. A caller that cares wraps the call in
//! [`observe`] (or [`observe_blocking`]), and gets the output together with its [`Source`]:
//!
//! ```
//! use reliable_runtime::served::{observe, Source};
//! use reliable_runtime::{cached, Rejected};
//!
//! #[derive(Clone, Debug)]
//! struct ApiError;
//! impl From<Rejected> for ApiError {
//!     fn from(_: Rejected) -> Self { ApiError }
//! }
//!
//! #[cached(ttl = 60, name = "served_doc")]
//! async fn price(symbol: &str) -> Result<f64, ApiError> {
//!     Ok(97_000.0)
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let first = observe(price("BTCUSDT")).await;
//! assert_eq!(first.source, Source::Fresh);
//! let second = observe(price("BTCUSDT")).await;
//! assert_eq!(second.source, Source::Cached);
//! assert_eq!(second.value.unwrap(), 97_000.0);
//! # }
//! ```
//!
//! The layers record what they did as they finish, the outermost last, so a call whose body
//! makes other reliable calls reports its own source, not theirs.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// Where a value came from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The call ran and answered (or failed: a failure's source is the call).
    Fresh,
    /// A fresh value from the cache; the call did not run.
    Cached,
    /// A value past its TTL, served while the source failed or while another caller refreshed
    /// it.
    Stale {
        /// How long ago it was loaded.
        age: Duration,
    },
    /// The fallback's answer; the call failed (or a layer refused it) with `cause`.
    Fallback {
        /// The failure, as text.
        cause: String,
    },
}

/// Why a retry layer stopped retrying a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GaveUp {
    /// The error is not worth another attempt (`retry_if`, or its `Classify`), or a layer
    /// refused the call.
    NotRetryable,
    /// Every attempt of `max_attempts` failed.
    AttemptsExhausted,
    /// The retry budget is spent.
    BudgetSpent,
    /// The wait before the next attempt would end past the call's deadline.
    DeadlineReached,
}

/// An output and where it came from.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Served<T> {
    /// The output.
    pub value: T,
    /// Where it came from.
    pub source: Source,
    /// How many times the call was retried (its attempts less one; 0 without a retry).
    pub retries: u32,
    /// Why the retry layer stopped, when the call failed under one.
    pub gave_up: Option<GaveUp>,
}

/// What the layers recorded for an observer.
#[derive(Default)]
struct Record {
    source: Option<Source>,
    retries: u32,
    gave_up: Option<GaveUp>,
}

impl Record {
    fn served<T>(self, value: T) -> Served<T> {
        Served {
            value,
            source: self.source.unwrap_or(Source::Fresh),
            retries: self.retries,
            gave_up: self.gave_up,
        }
    }
}

/// Observers in flight anywhere: the layers look for one only when this is not zero, so a call
/// nobody observes pays one relaxed load.
static OBSERVING: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    /// The record of the observer being polled on this thread.
    static CURRENT: Cell<Option<*mut Record>> = const { Cell::new(None) };
}

/// Records `source` for the observer whose call is being polled, if any.
#[inline(always)]
pub(crate) fn record(source: impl FnOnce() -> Source) {
    if OBSERVING.load(Ordering::Relaxed) != 0 {
        record_slow(source());
    }
}

#[cold]
fn record_slow(source: Source) {
    with_record(|record| {
        // A call that ran, or a hit, starts a new story: attempts recorded by calls its body
        // made are not its own.
        if matches!(source, Source::Fresh | Source::Cached) {
            record.retries = 0;
            record.gave_up = None;
        }
        record.source = Some(source);
    });
}

/// Records the retries of a call whose retry layer saw a failure, and why it stopped (if it
/// did).
#[cfg(feature = "retry")]
#[inline(always)]
pub(crate) fn record_retries(retries: u32, gave_up: Option<GaveUp>) {
    if OBSERVING.load(Ordering::Relaxed) != 0 {
        record_retries_slow(retries, gave_up);
    }
}

#[cfg(feature = "retry")]
#[cold]
fn record_retries_slow(retries: u32, gave_up: Option<GaveUp>) {
    with_record(|record| {
        record.retries = retries;
        record.gave_up = gave_up;
    });
}

fn with_record(change: impl FnOnce(&mut Record)) {
    CURRENT.with(|current| {
        if let Some(slot) = current.get() {
            // SAFETY: the pointer is set only while its `Observe` is being polled (or its
            // blocking call runs) on this thread, and points into it; it is unset before.
            change(unsafe { &mut *slot });
        }
    });
}

/// Runs `poll` with `slot` as this thread's observer, restoring the previous one after (so
/// observers nest).
fn with_slot<R>(slot: &mut Record, poll: impl FnOnce() -> R) -> R {
    struct Restore(Option<*mut Record>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CURRENT.with(|current| current.set(self.0));
        }
    }
    let previous = CURRENT.with(|current| current.replace(Some(slot as *mut _)));
    let _restore = Restore(previous);
    poll()
}

pin_project_lite::pin_project! {
    /// The future of [`observe`].
    #[must_use = "futures do nothing unless polled"]
    pub struct Observe<F> {
        #[pin]
        call: F,
        record: Record,
        counted: bool,
    }

    impl<F> PinnedDrop for Observe<F> {
        fn drop(this: Pin<&mut Self>) {
            if *this.project().counted {
                OBSERVING.fetch_sub(1, Ordering::Relaxed);
            }
        }
    }
}

/// `call`'s output and where it came from.
pub fn observe<F: Future>(call: F) -> Observe<F> {
    Observe {
        call,
        record: Record::default(),
        counted: false,
    }
}

impl<F: Future> Future for Observe<F> {
    type Output = Served<F::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if !*this.counted {
            OBSERVING.fetch_add(1, Ordering::Relaxed);
            *this.counted = true;
        }
        let call = this.call;
        let record = this.record;
        match with_slot(record, || call.poll(cx)) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(value) => {
                OBSERVING.fetch_sub(1, Ordering::Relaxed);
                *this.counted = false;
                Poll::Ready(std::mem::take(record).served(value))
            }
        }
    }
}

/// [`observe`] for a blocking call.
///
/// ```
/// use reliable_runtime::served::{observe_blocking, Source};
/// use reliable_runtime::{graceful_degradation, Failure};
///
/// #[graceful_degradation(fallback = Ok(0.0), name = "served_blocking_doc")]
/// fn price(symbol: &str) -> Result<f64, std::io::Error> {
///     Err(std::io::Error::other(format!("{symbol}: down")))
/// }
///
/// let served = observe_blocking(|| price("BTCUSDT"));
/// assert_eq!(served.value.unwrap(), 0.0);
/// assert!(matches!(served.source, Source::Fallback { .. }));
/// ```
pub fn observe_blocking<R>(call: impl FnOnce() -> R) -> Served<R> {
    struct Count;
    impl Drop for Count {
        fn drop(&mut self) {
            OBSERVING.fetch_sub(1, Ordering::Relaxed);
        }
    }
    OBSERVING.fetch_add(1, Ordering::Relaxed);
    let _count = Count;
    let mut record = Record::default();
    let value = with_slot(&mut record, call);
    record.served(value)
}
