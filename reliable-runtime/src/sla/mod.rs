//! SLA monitoring: latency percentiles, success rate and status per source.
//!
//! A [`SlaMonitor`] records each call's latency and outcome into per-thread rings (no lock, no
//! allocation, no sort on the hot path) and computes p50/p95/p99, the success rate and the
//! [`SlaStatus`] when read, over a rolling [`SlaWindow`].
//!
//! ```
//! use reliable_runtime::sla::{SlaMonitor, SlaStatus, SlaThresholds};
//! use std::time::Duration;
//!
//! let monitor = SlaMonitor::new("orderbook", SlaThresholds::cex()).unwrap();
//! for _ in 0..20 {
//!     monitor.record_latency(Duration::from_millis(40), false);
//! }
//! let metrics = monitor.metrics();
//! assert_eq!(metrics.status, SlaStatus::Healthy);
//! assert!((metrics.latency_p95 - 0.040).abs() < 1e-9);
//! ```

mod recorder;
pub(crate) mod status;
mod thresholds;
mod watch;

pub use status::{SlaStatus, SlaStatusChange};
pub use thresholds::{SlaThresholds, FAILED_SUCCESS_FRACTION};
pub(crate) use watch::start as start_watching;
pub use watch::{evaluate_all, EVALUATION_INTERVAL};

use crate::clock::{duration_to_nanos, Clock, Timestamp};
use crate::common::intern::intern;
use crate::common::live::Live;
use crate::error::ConfigError;
use crate::event::{self, Event};
use crate::health::Exposition;
use crossbeam_utils::CachePadded;
use recorder::{LatencyRecorder, Settled, Span, Tally, WindowFigures};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// Calls a [`SlaWindow::Time`] window keeps per thread shard at most; older ones drop out early.
pub const TIME_WINDOW_SAMPLES_PER_SHARD: usize = 1024;

/// Which calls the metrics cover.
///
/// ```
/// use reliable_runtime::sla::SlaWindow;
/// use std::time::Duration;
///
/// assert_eq!(SlaWindow::default(), SlaWindow::Calls(100));
/// let last_minute = SlaWindow::Time(Duration::from_secs(60));
/// assert!(last_minute.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SlaWindow {
    /// The last N calls (default: 100).
    Calls(u32),
    /// The calls that ended in the last span of time (up to
    /// [`TIME_WINDOW_SAMPLES_PER_SHARD`] per thread shard).
    Time(Duration),
}

impl Default for SlaWindow {
    fn default() -> Self {
        SlaWindow::Calls(100)
    }
}

impl SlaWindow {
    /// Checks the window: 1 to 1,000,000 calls, or at least 10 ms.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let check = match *self {
            SlaWindow::Calls(calls) => reliable_rules::window::calls(calls),
            SlaWindow::Time(span) => reliable_rules::window::span(span),
        };
        ConfigError::check("window", check)
    }
}

/// A source's metrics, computed when read, as `get_system_health()` shows them
/// (`data_sources`). Latencies are in seconds.
///
/// A recorded call is one attempt that reached the monitor: each call of a `#[monitored]` fn,
/// or in a pipeline each attempt the breaker, rate limit and bulkhead let through (every retry
/// is one more; refused calls and cache hits are not recorded). Its latency runs from the
/// monitor's start reading to the attempt's end; a timed-out attempt is recorded as failed
/// after about its deadline. A failure is an `Err` that `failure_if` counts (every `Err`
/// without it), a timeout or a panic.
///
/// The window fields (`latency_*`, `success_rate`, `window_calls`, and so `status`) cover the
/// monitor's [`SlaWindow`] as of the read: its last N calls, or the calls that ended within
/// its last span (at most [`TIME_WINDOW_SAMPLES_PER_SHARD`] per thread shard).
/// [`SlaMonitor::reset`] empties the window. `total_calls` and `total_failures` count from the
/// monitor's creation and are never reset.
///
/// ```
/// use reliable_runtime::sla::{SlaMonitor, SlaThresholds};
/// use std::time::Duration;
///
/// let monitor = SlaMonitor::new("metrics_doc", SlaThresholds::default()).unwrap();
/// monitor.record_latency(Duration::from_millis(100), false);
/// monitor.record_latency(Duration::from_millis(300), true);
/// let metrics = monitor.metrics();
/// assert_eq!((metrics.window_calls, metrics.total_calls, metrics.total_failures), (2, 2, 1));
/// assert_eq!(metrics.success_rate, 0.5);
/// assert!((metrics.latency_p50 - 0.2).abs() < 1e-9); // halfway between the two
/// assert_eq!(metrics.consecutive_failures, 1);
/// monitor.reset();
/// assert_eq!(monitor.metrics().window_calls, 0);
/// assert_eq!(monitor.metrics().total_calls, 2); // totals stay
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SlaMetrics {
    /// What the [`SlaThresholds`] make of these metrics: `"HEALTHY"`, `"DEGRADED"` or
    /// `"FAILED"` (see [`SlaThresholds::evaluate`]). A read whose status differs from the
    /// previous read's publishes an [`Event::SlaStatusChanged`].
    pub status: SlaStatus,
    /// Median latency of the calls in the window, in seconds: exact, interpolated linearly
    /// between the two nearest ranks. 0.0 when the window is empty.
    pub latency_p50: f64,
    /// 95th percentile latency of the calls in the window, in seconds (as `latency_p50`).
    pub latency_p95: f64,
    /// 99th percentile latency of the calls in the window, in seconds (as `latency_p50`).
    pub latency_p99: f64,
    /// Arithmetic mean latency of the calls in the window, in seconds; 0.0 when it is empty.
    pub latency_mean: f64,
    /// Share of the calls in the window that did not fail, 0.0 to 1.0; 1.0 when it is empty.
    pub success_rate: f64,
    /// Calls in the window now (at most N for a window of the last N calls).
    pub window_calls: u64,
    /// Calls recorded since the monitor was created, failed ones included, whether or not the
    /// window still holds them. Never reset.
    pub total_calls: u64,
    /// Failed calls recorded since the monitor was created. Never reset.
    pub total_failures: u64,
    /// Failed calls recorded since the last successful one: a success sets it back to 0, and
    /// so does [`SlaMonitor::reset`]. At `max_consecutive_failures` the status is `"FAILED"`.
    pub consecutive_failures: u64,
}

/// Tracks one source's latency and outcomes against its [`SlaThresholds`].
///
/// Usually created through the [`#[monitored]`](crate::monitored) attribute or
/// [`sla_registry()`](crate::registry::sla_registry); usable directly:
///
/// ```
/// use reliable_runtime::sla::{SlaMonitor, SlaStatus, SlaThresholds};
///
/// let monitor = SlaMonitor::new("twitter_search", SlaThresholds::twitter()).unwrap();
/// for _ in 0..3 {
///     let start = monitor.start();
///     monitor.finish(start, true); // three failures in a row
/// }
/// assert_eq!(monitor.status(), SlaStatus::Failed);
/// ```
pub struct SlaMonitor {
    name: Arc<str>,
    /// Read when the metrics are judged; swapped whole by [`reconfigure`](Self::reconfigure).
    thresholds: Live<SlaThresholds>,
    window: SlaWindow,
    clock: Clock,
    group: Option<Arc<str>>,
    recorder: LatencyRecorder,
    consecutive_failures: CachePadded<AtomicU64>,
    /// `max_consecutive_failures`, kept beside the count so a failure can tell that it
    /// crossed the rule without loading the thresholds.
    failed_at: AtomicU64,
    last_status: AtomicU8,
    /// The figures of the last read, with what they were read from (the read path's only
    /// lock; recording never takes it).
    memo: Mutex<Option<WindowMemo>>,
}

/// A window's figures as last read.
struct WindowMemo {
    /// The writes and clears the read saw.
    settled: Settled,
    figures: WindowFigures,
    /// The window as of that read.
    span: Span,
}

impl WindowMemo {
    /// Whether a read over `span`, with no write or clear since, keeps the same samples. A
    /// window of the last N calls does; a time window does while its oldest call is still
    /// within it (calls older than it were out and stay out), on a clock that did not go back.
    fn still_holds(&self, span: Span) -> bool {
        match (self.span, span) {
            (Span::Last(_), Span::Last(_)) => true,
            (Span::Within { now: then, .. }, Span::Within { now, span }) => {
                now >= then
                    && self
                        .figures
                        .oldest_end
                        .is_none_or(|oldest| now.saturating_duration_since(oldest) <= span)
            }
            _ => false,
        }
    }
}

impl fmt::Debug for SlaMonitor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SlaMonitor")
            .field("name", &self.name)
            .field("thresholds", &self.thresholds())
            .field("window", &self.window)
            .finish_non_exhaustive()
    }
}

/// Builds a [`SlaMonitor`] with a non-default window or clock.
///
/// ```
/// use reliable_runtime::clock::Clock;
/// use reliable_runtime::sla::{SlaMonitor, SlaThresholds, SlaWindow};
/// use std::time::Duration;
///
/// let (clock, _hand) = Clock::manual();
/// let monitor = SlaMonitor::builder("dex_quotes")
///     .thresholds(SlaThresholds::dex())
///     .window(SlaWindow::Time(Duration::from_secs(300)))
///     .clock(clock)
///     .build()
///     .unwrap();
/// assert_eq!(monitor.window(), SlaWindow::Time(Duration::from_secs(300)));
/// ```
#[derive(Debug)]
pub struct SlaMonitorBuilder {
    name: Arc<str>,
    thresholds: SlaThresholds,
    window: SlaWindow,
    clock: Clock,
    group: Option<Arc<str>>,
}

impl SlaMonitorBuilder {
    /// The thresholds (default: [`SlaThresholds::default`]).
    pub fn thresholds(mut self, thresholds: SlaThresholds) -> Self {
        self.thresholds = thresholds;
        self
    }

    /// The window (default: the last 100 calls).
    pub fn window(mut self, window: SlaWindow) -> Self {
        self.window = window;
        self
    }

    /// The clock (default: [`Clock::system`]).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// A group (e.g. one exchange) the source belongs to, for per-group health.
    pub fn group(mut self, group: impl Into<Arc<str>>) -> Self {
        self.group = Some(group.into());
        self
    }

    /// Validates the configuration and builds the monitor.
    pub fn build(self) -> Result<SlaMonitor, ConfigError> {
        self.thresholds.validate()?;
        self.window.validate()?;
        let per_shard = match self.window {
            SlaWindow::Calls(n) => n as usize,
            SlaWindow::Time(_) => TIME_WINDOW_SAMPLES_PER_SHARD,
        };
        Ok(SlaMonitor {
            name: self.name,
            thresholds: Live::new(self.thresholds),
            window: self.window,
            clock: self.clock,
            group: self.group,
            recorder: LatencyRecorder::new(per_shard),
            consecutive_failures: CachePadded::new(AtomicU64::new(0)),
            failed_at: AtomicU64::new(u64::from(self.thresholds.max_consecutive_failures)),
            last_status: AtomicU8::new(SlaStatus::Healthy as u8),
            memo: Mutex::new(None),
        })
    }
}

impl SlaMonitor {
    /// A monitor with the default window (last 100 calls) on the system clock.
    pub fn new(name: impl Into<Arc<str>>, thresholds: SlaThresholds) -> Result<Self, ConfigError> {
        SlaMonitor::builder(name).thresholds(thresholds).build()
    }

    /// Starts building a monitor named `name`.
    pub fn builder(name: impl Into<Arc<str>>) -> SlaMonitorBuilder {
        SlaMonitorBuilder {
            name: name.into(),
            thresholds: SlaThresholds::default(),
            window: SlaWindow::default(),
            clock: Clock::system(),
            group: None,
        }
    }

    /// The source's registry name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The group the source belongs to, if any.
    pub fn group(&self) -> Option<&str> {
        self.group.as_deref()
    }

    /// The thresholds now (a [`reconfigure`](Self::reconfigure) replaces them).
    pub fn thresholds(&self) -> SlaThresholds {
        **self.thresholds.load()
    }

    /// Changes the running monitor's thresholds: `change` gets the current ones and returns the
    /// new ones, which judge the metrics from the next read on. The window and the counts are
    /// kept. Invalid thresholds are an `Err` naming the field and change nothing. Each change
    /// is an [`Event::Reconfigured`] (an info alert).
    ///
    /// ```
    /// use reliable_runtime::sla::{SlaMonitor, SlaStatus, SlaThresholds};
    /// use std::time::Duration;
    ///
    /// let monitor = SlaMonitor::new("sla_reconfigure_doc", SlaThresholds::cex().min_calls(1)).unwrap();
    /// let start = monitor.start();
    /// monitor.finish(start, false);
    /// monitor.reconfigure(|sla| sla.max_consecutive_failures(5)).unwrap();
    /// assert_eq!(monitor.thresholds().max_consecutive_failures, 5);
    /// assert_eq!(monitor.metrics().total_calls, 1, "the counts are kept");
    /// let error = monitor.reconfigure(|sla| sla.min_success_rate(1.5)).unwrap_err();
    /// assert_eq!(error.field(), "min_success_rate");
    /// ```
    pub fn reconfigure(
        &self,
        change: impl FnOnce(SlaThresholds) -> SlaThresholds,
    ) -> Result<(), ConfigError> {
        let next = self
            .thresholds
            .change(("monitor", intern(&self.name)), change, |_, next| {
                next.validate()
            })?;
        self.failed_at
            .store(u64::from(next.max_consecutive_failures), Ordering::Relaxed);
        Ok(())
    }

    /// [`reconfigure`](Self::reconfigure)'s checks, changing nothing.
    pub(crate) fn check_reconfigure(
        &self,
        change: impl FnOnce(SlaThresholds) -> SlaThresholds,
    ) -> Result<(), ConfigError> {
        self.thresholds.check(change, |_, next| next.validate())
    }

    /// The window.
    pub fn window(&self) -> SlaWindow {
        self.window
    }

    /// The clock the monitor reads.
    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Reads the clock at the start of a call; pass the result to [`finish`](Self::finish).
    #[inline]
    pub fn start(&self) -> Timestamp {
        self.clock.now()
    }

    /// Records a call that started at `start` and ends now; returns the end time.
    #[inline]
    pub fn finish(&self, start: Timestamp, failed: bool) -> Timestamp {
        let end = self.clock.now();
        self.record_at(end, end.saturating_duration_since(start), failed);
        end
    }

    /// Records a call whose latency was measured elsewhere, ending now.
    pub fn record_latency(&self, latency: Duration, failed: bool) {
        self.record_at(self.clock.now(), latency, failed);
    }

    /// Records a call that ended at `end` (on this monitor's clock) after `latency`.
    #[inline]
    pub fn record_at(&self, end: Timestamp, latency: Duration, failed: bool) {
        self.recorder
            .record(end, duration_to_nanos(latency), failed);
        if failed {
            let failures = self.consecutive_failures.fetch_add(1, Ordering::Relaxed) + 1;
            if failures == self.failed_at.load(Ordering::Relaxed) {
                // The consecutive-failure rule just made the source FAILED (it decides before
                // any other rule): publish it now, not when someone next reads the health,
                // and without judging the window (which would allocate).
                self.note_status(SlaStatus::Failed);
            }
        } else if self.consecutive_failures.load(Ordering::Relaxed) != 0 {
            // Load first: a success must not write the shared line when there is nothing to reset.
            // (A recovery is judged by the window's rules: the watcher publishes it within
            // a second.)
            self.consecutive_failures.store(0, Ordering::Relaxed);
        }
    }

    /// Measures `call`, recording it as failed when `failed(&output)` says so.
    ///
    /// ```
    /// use reliable_runtime::sla::{SlaMonitor, SlaThresholds};
    ///
    /// # #[tokio::main(flavor = "current_thread")] async fn main() {
    /// let monitor = SlaMonitor::new("observe_doc", SlaThresholds::default()).unwrap();
    /// let value: Result<u32, ()> = monitor.observe(async { Ok(7) }, Result::is_err).await;
    /// assert_eq!(value, Ok(7));
    /// assert_eq!(monitor.metrics().total_calls, 1);
    /// # }
    /// ```
    pub async fn observe<F, R>(&self, call: F, failed: impl FnOnce(&R) -> bool) -> R
    where
        F: Future<Output = R>,
    {
        let start = self.start();
        let output = call.await;
        self.finish(start, failed(&output));
        output
    }

    /// Calls since the last success.
    pub fn consecutive_failures(&self) -> u64 {
        self.consecutive_failures.load(Ordering::Relaxed)
    }

    /// The metrics over the current window, computed now (sorts the window's latencies).
    ///
    /// If the status differs from the one seen at the previous read, an
    /// [`Event::SlaStatusChanged`] is published.
    pub fn metrics(&self) -> SlaMetrics {
        let (figures, tally) = self.window_figures();
        let [p50, p95, p99] = figures.quantiles_nanos.map(|nanos| nanos / 1e9);
        let mut metrics = SlaMetrics {
            status: SlaStatus::Healthy,
            latency_p50: p50,
            latency_p95: p95,
            latency_p99: p99,
            latency_mean: figures.mean_nanos / 1e9,
            success_rate: if figures.calls == 0 {
                1.0
            } else {
                (figures.calls - figures.failed) as f64 / figures.calls as f64
            },
            window_calls: figures.calls,
            // A window cannot hold more calls than were recorded, but the counts are read
            // before the samples, and an owned shard publishes a sample before counting it.
            total_calls: tally.total.max(figures.calls),
            total_failures: tally.failures.max(figures.failed),
            consecutive_failures: self.consecutive_failures(),
        };
        metrics.status = self.thresholds.load().evaluate(&metrics);
        self.note_status(metrics.status);
        metrics
    }

    /// The window's figures: those of the last read when no call has been recorded since (and,
    /// for a time window, none of its calls has aged out), computed afresh otherwise. Dashboards
    /// and scrapers read every source each second or two, and most windows have not changed.
    fn window_figures(&self) -> (WindowFigures, Tally) {
        let span = match self.window {
            SlaWindow::Calls(n) => Span::Last(n as usize),
            SlaWindow::Time(span) => Span::Within {
                now: self.clock.now(),
                span,
            },
        };
        let mut memo = self.memo.lock().unwrap_or_else(PoisonError::into_inner);
        let tally = self.recorder.tally();
        if let Some(memo) = memo.as_ref() {
            if memo.settled == tally.settled && memo.still_holds(span) {
                return (memo.figures, tally);
            }
        }
        let figures = self.recorder.figures(span);
        *memo = Some(WindowMemo {
            settled: tally.settled,
            figures,
            span,
        });
        (figures, tally)
    }

    /// The current status (computes the metrics).
    pub fn status(&self) -> SlaStatus {
        self.metrics().status
    }

    /// Judges the metrics now, publishing an [`Event::SlaStatusChanged`] if the status
    /// changed since it was last judged. Done without a reader too: the failure that reaches
    /// `max_consecutive_failures` publishes FAILED at once, and the runtime's watcher judges
    /// every registered monitor each second ([`evaluate_all`]), which publishes the rate and
    /// latency rules' changes and recoveries.
    pub fn evaluate(&self) -> SlaStatus {
        self.metrics().status
    }

    /// The status as last judged (by a read of the metrics, a crossing of the
    /// consecutive-failure rule or the watcher), without judging it again.
    pub fn last_status(&self) -> SlaStatus {
        SlaStatus::from_u8(self.last_status.load(Ordering::Acquire))
    }

    /// Forgets the window and the consecutive failures (totals stay).
    pub fn reset(&self) {
        self.recorder.clear();
        self.consecutive_failures.store(0, Ordering::Relaxed);
    }

    fn note_status(&self, status: SlaStatus) {
        let previous = SlaStatus::from_u8(self.last_status.swap(status as u8, Ordering::AcqRel));
        if previous != status {
            // At the level its alert's severity maps to (`LogHandler` leaves these to this log).
            match status {
                SlaStatus::Failed => {
                    tracing::error!(source = %self.name, from = %previous, to = %status, "SLA status changed")
                }
                SlaStatus::Degraded => {
                    tracing::warn!(source = %self.name, from = %previous, to = %status, "SLA status changed")
                }
                SlaStatus::Healthy => {
                    tracing::info!(source = %self.name, from = %previous, to = %status, "SLA status changed")
                }
            }
            event::publish(Event::SlaStatusChanged(SlaStatusChange {
                source: Arc::clone(&self.name),
                from: previous,
                to: status,
                at: SystemTime::now(),
            }));
        }
    }
}

/// The sources' Prometheus families.
pub(crate) fn write_metrics(sources: &BTreeMap<String, SlaMetrics>, out: &mut Exposition) {
    out.per_instance_by(
        (
            "reliable_source_status",
            "gauge",
            "The SLA status of the monitored source (1 for the current one)",
        ),
        ("source", "status"),
        sources,
        |metrics| {
            ["healthy", "degraded", "failed"].map(|status| {
                (
                    status,
                    u8::from(metrics.status.as_str().eq_ignore_ascii_case(status)),
                )
            })
        },
    );
    // No `_sum` and `_count`: Prometheus reads those as counters (`rate()` over them), and
    // the window's calls and their total time go down as calls leave it. The calls since the
    // monitor was created are `reliable_source_calls_total`; the window's are a gauge.
    out.per_instance_by(
        (
            "reliable_source_latency_seconds",
            "summary",
            "Latency percentiles over the source's SLA window",
        ),
        ("source", "quantile"),
        sources,
        |metrics| {
            [
                ("0.5", metrics.latency_p50),
                ("0.95", metrics.latency_p95),
                ("0.99", metrics.latency_p99),
            ]
        },
    );
    out.per_instance(
        (
            "reliable_source_window_calls",
            "gauge",
            "Calls in the source's SLA window",
        ),
        "source",
        sources,
        |metrics| metrics.window_calls,
    );
    out.per_instance(
        (
            "reliable_source_success_rate",
            "gauge",
            "Success rate over the source's SLA window (0 to 1)",
        ),
        "source",
        sources,
        |metrics| metrics.success_rate,
    );
    out.per_instance_by(
        (
            "reliable_source_calls_total",
            "counter",
            "Calls recorded for the source since it was created, by outcome",
        ),
        ("source", "outcome"),
        sources,
        |metrics| {
            [
                (
                    "success",
                    metrics.total_calls.saturating_sub(metrics.total_failures),
                ),
                ("failure", metrics.total_failures),
            ]
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manual_monitor(window: SlaWindow) -> (SlaMonitor, crate::clock::ManualClock) {
        let (clock, hand) = Clock::manual();
        let monitor = SlaMonitor::builder("test")
            .window(window)
            .clock(clock)
            .build()
            .unwrap();
        (monitor, hand)
    }

    #[test]
    fn empty_monitor_is_healthy_with_zero_latency() {
        let (monitor, _) = manual_monitor(SlaWindow::Calls(100));
        let metrics = monitor.metrics();
        assert_eq!(metrics.status, SlaStatus::Healthy);
        assert_eq!(metrics.window_calls, 0);
        assert_eq!(metrics.success_rate, 1.0);
        assert_eq!(metrics.latency_p99, 0.0);
    }

    #[test]
    fn count_window_rolls_over_to_the_last_n_calls() {
        let (monitor, hand) = manual_monitor(SlaWindow::Calls(100));
        // 100 slow failures, then 100 fast successes: only the successes remain.
        for _ in 0..100 {
            hand.advance(Duration::from_millis(1));
            monitor.record_at(hand.now(), Duration::from_secs(9), true);
        }
        assert_eq!(monitor.metrics().success_rate, 0.0);
        for _ in 0..100 {
            hand.advance(Duration::from_millis(1));
            monitor.record_at(hand.now(), Duration::from_millis(10), false);
        }
        let metrics = monitor.metrics();
        assert_eq!(metrics.window_calls, 100);
        assert_eq!(metrics.success_rate, 1.0);
        assert!((metrics.latency_p99 - 0.010).abs() < 1e-12);
        assert_eq!(metrics.total_calls, 200);
        assert_eq!(metrics.total_failures, 100);
        assert_eq!(metrics.status, SlaStatus::Healthy);
    }

    #[test]
    fn time_window_forgets_old_calls() {
        let (monitor, hand) = manual_monitor(SlaWindow::Time(Duration::from_secs(60)));
        monitor.record_at(hand.now(), Duration::from_secs(5), true);
        hand.advance(Duration::from_secs(30));
        monitor.record_at(hand.now(), Duration::from_millis(5), false);
        assert_eq!(monitor.metrics().window_calls, 2);
        hand.advance(Duration::from_secs(31));
        let metrics = monitor.metrics();
        assert_eq!(metrics.window_calls, 1);
        assert_eq!(metrics.success_rate, 1.0);
    }

    /// The figures a read keeps are used again only while nothing changed: a record, a reset,
    /// or (in a time window) a call ageing out is seen by the next read.
    #[test]
    fn kept_figures_follow_every_change() {
        let (monitor, hand) = manual_monitor(SlaWindow::Time(Duration::from_secs(10)));
        monitor.record_at(hand.now(), Duration::from_millis(10), false);
        assert_eq!(monitor.metrics().window_calls, 1);
        assert_eq!(monitor.metrics().window_calls, 1, "read again, unchanged");
        hand.advance(Duration::from_secs(5));
        monitor.record_at(hand.now(), Duration::from_millis(30), true);
        let metrics = monitor.metrics();
        assert_eq!((metrics.window_calls, metrics.success_rate), (2, 0.5));
        hand.advance(Duration::from_secs(6));
        let metrics = monitor.metrics();
        assert_eq!(
            (metrics.window_calls, metrics.success_rate),
            (1, 0.0),
            "the first aged out"
        );
        assert!((metrics.latency_p50 - 0.030).abs() < 1e-12);
        monitor.reset();
        assert_eq!(monitor.metrics().window_calls, 0);
        monitor.record_at(hand.now(), Duration::from_millis(20), false);
        assert_eq!(monitor.metrics().window_calls, 1);
    }

    /// Readers racing writers (more threads than cores, many rounds): once the writers are
    /// done, a read sees every call they recorded, never figures kept from a read that ran
    /// while a write was under way.
    #[test]
    fn a_read_after_racing_writes_sees_them_all() {
        use std::sync::Barrier;

        let writers = std::thread::available_parallelism().map_or(2, |n| n.get()) + 2;
        for round in 0..200u64 {
            let monitor = SlaMonitor::builder("race")
                .window(SlaWindow::Calls(1_000))
                .build()
                .unwrap();
            let start = Barrier::new(writers + 1);
            std::thread::scope(|scope| {
                for writer in 0..writers as u64 {
                    let (monitor, start) = (&monitor, &start);
                    scope.spawn(move || {
                        start.wait();
                        for call in 0..20 {
                            let latency = Duration::from_micros(writer * 100 + call + round);
                            monitor.record_latency(latency, call % 4 == 0);
                        }
                    });
                }
                start.wait();
                for _ in 0..20 {
                    let _ = monitor.metrics();
                }
            });
            let metrics = monitor.metrics();
            let expected = monitor.recorder.figures(Span::Last(1_000));
            assert_eq!(metrics.window_calls, writers as u64 * 20, "round {round}");
            assert_eq!(metrics.window_calls, expected.calls, "round {round}");
            assert_eq!(
                metrics.latency_p99,
                expected.quantiles_nanos[2] / 1e9,
                "round {round}"
            );
            assert_eq!(metrics.success_rate, 0.75, "round {round}");
        }
    }

    #[test]
    fn consecutive_failures_reset_on_success() {
        let (monitor, hand) = manual_monitor(SlaWindow::Calls(100));
        for _ in 0..2 {
            monitor.record_at(hand.now(), Duration::ZERO, true);
        }
        assert_eq!(monitor.consecutive_failures(), 2);
        monitor.record_at(hand.now(), Duration::ZERO, false);
        assert_eq!(monitor.consecutive_failures(), 0);
        monitor.record_at(hand.now(), Duration::ZERO, true);
        assert_eq!(monitor.consecutive_failures(), 1);
    }

    #[test]
    fn builder_rejects_bad_configuration() {
        let error = SlaMonitor::builder("bad")
            .window(SlaWindow::Calls(0))
            .build()
            .unwrap_err();
        assert_eq!(error.field(), "window");
        let error = SlaMonitor::new(
            "bad",
            SlaThresholds {
                min_success_rate: 1.5,
                ..SlaThresholds::default()
            },
        )
        .unwrap_err();
        assert_eq!(error.field(), "min_success_rate");
    }
}
