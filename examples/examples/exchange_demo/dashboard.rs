//! What the demo shows while it runs: breaker alerts as they happen, and a health table each
//! second read from the runtime (`get_system_health()`) and the client's own counters.

use super::client::{BinanceClient, OrderBook, Source, Ticker, EXCHANGE_BREAKER};
use super::exchange::{ExchangeStats, Timeline};
use reliable_runtime::breaker::BreakerState;
use reliable_runtime::event::{BreakerTransition, Event};
use reliable_runtime::get_system_health;
use reliable_runtime::registry::breaker_registry;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::broadcast::error::{RecvError, TryRecvError};
use tokio::sync::{broadcast, oneshot};

/// State changes of the exchange's breaker, counted as alerts.
///
/// Every state change of the breaker is an alert (the runtime's alert manager, which the demo
/// starts, sends one for each), as an on-call engineer would want to hear of it.
#[derive(Default)]
pub(crate) struct Alerts {
    changes: AtomicU64,
    /// Changes to OPEN: the exchange was cut off.
    opened: AtomicU64,
    /// Events the watcher fell too far behind to see (the channel is bounded).
    missed: AtomicU64,
}

impl Alerts {
    pub(crate) fn total(&self) -> u64 {
        self.changes.load(Ordering::Relaxed)
    }

    pub(crate) fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    pub(crate) fn missed(&self) -> u64 {
        self.missed.load(Ordering::Relaxed)
    }

    /// Counts `event` if it is the exchange's breaker changing state; returns the change if so.
    fn record(&self, event: Event) -> Option<BreakerTransition> {
        let Event::BreakerStateChanged(change) = event else {
            return None;
        };
        if change.breaker != EXCHANGE_BREAKER {
            return None;
        }
        self.changes.fetch_add(1, Ordering::Relaxed);
        if change.to == BreakerState::Open {
            self.opened.fetch_add(1, Ordering::Relaxed);
        }
        Some(change)
    }
}

/// Counts (and unless `quiet`, prints) breaker alerts from `events` until `stop` fires, then
/// counts what was already published, so that the summary misses none.
pub(crate) async fn watch_breakers(
    mut events: broadcast::Receiver<Event>,
    alerts: std::sync::Arc<Alerts>,
    timeline: Timeline,
    quiet: bool,
    mut stop: oneshot::Receiver<()>,
) {
    let report = |change: Option<BreakerTransition>| {
        if let (Some(change), false) = (change, quiet) {
            let failures = match change.to {
                BreakerState::Open => format!(" ({} failures)", change.failure_count),
                _ => String::new(),
            };
            println!(
                "  ALERT  [{:>5.1}s] breaker `{}` {} -> {}: {}{failures}",
                timeline.elapsed().as_secs_f64(),
                change.breaker,
                change.from,
                change.to,
                change.reason,
            );
        }
    };
    loop {
        tokio::select! {
            // Events first: at the stop, everything already received is counted.
            biased;
            event = events.recv() => match event {
                Ok(event) => report(alerts.record(event)),
                Err(RecvError::Lagged(missed)) => {
                    alerts.missed.fetch_add(missed, Ordering::Relaxed);
                }
                Err(RecvError::Closed) => return,
            },
            _ = &mut stop => break,
        }
    }
    loop {
        match events.try_recv() {
            Ok(event) => report(alerts.record(event)),
            Err(TryRecvError::Lagged(missed)) => {
                alerts.missed.fetch_add(missed, Ordering::Relaxed);
            }
            Err(TryRecvError::Empty | TryRecvError::Closed) => return,
        }
    }
}

/// The latest answer each symbol got, for the table's last line.
#[derive(Default)]
pub(crate) struct Board {
    quotes: Mutex<BTreeMap<String, (OrderBook, Ticker)>>,
}

impl Board {
    pub(crate) fn update(&self, symbol: &str, book: OrderBook, ticker: Ticker) {
        self.quotes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(symbol.to_owned(), (book, ticker));
    }

    fn line(&self, symbols: &[String]) -> String {
        let quotes = self.quotes.lock().unwrap_or_else(PoisonError::into_inner);
        let mut parts = Vec::new();
        for symbol in symbols {
            let Some((book, ticker)) = quotes.get(symbol) else {
                continue;
            };
            let price = ticker.price.map_or_else(|| "?".to_owned(), decimal);
            // `*`: the ticker's fallback, the last price seen, however old.
            let mark = if ticker.degraded { "*" } else { "" };
            let book = match book.spread() {
                Some(spread) if !book.degraded => format!("spread {}", decimal(spread)),
                _ => "no book: degraded".to_owned(),
            };
            parts.push(format!("{symbol} {price}{mark} ({book})"));
        }
        parts.join("   ")
    }
}

/// A price or spread with the decimals its size needs.
fn decimal(value: f64) -> String {
    match value.abs() {
        size if size >= 1.0 => format!("{value:.2}"),
        size if size >= 0.01 => format!("{value:.4}"),
        _ => format!("{value:.6}"),
    }
}

/// One second's table: the exchange's breaker, then per source the monitor's window, the cache
/// and the fallbacks, with the exchange's phase above and the latest prices below.
pub(crate) struct Table<'a> {
    pub(crate) timeline: &'a Timeline,
    pub(crate) client: &'a BinanceClient,
    pub(crate) exchange: ExchangeStats,
    pub(crate) alerts: &'a Alerts,
    pub(crate) board: &'a Board,
    pub(crate) symbols: &'a [String],
}

impl fmt::Display for Table<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let health = get_system_health();
        let elapsed = self.timeline.elapsed();
        let app_calls: u64 = Source::ALL
            .into_iter()
            .map(|source| self.client.calls(source))
            .sum();
        writeln!(
            f,
            "[{:>5.1}s] exchange: {:<36} app calls {app_calls:>6}   reached the exchange {:>5}",
            elapsed.as_secs_f64(),
            self.timeline.phase_at(elapsed).describe(),
            self.exchange.requests,
        )?;
        // The shared breaker itself, from its registry: no health entry to match by name.
        let breaker = breaker_registry()
            .get(EXCHANGE_BREAKER)
            .map_or("-", |breaker| breaker.state().as_str());
        writeln!(
            f,
            "  breaker `{EXCHANGE_BREAKER}` (both endpoints): {breaker:<10} alerts {}",
            self.alerts.total()
        )?;
        writeln!(
            f,
            "  {:<11}{:>8}{:>9}{:>12}{:>8}{:>11}",
            "source", "p95", "success", "cache hits", "stale", "fallbacks"
        )?;
        for source in Source::ALL {
            let name = source.registry_name();
            // The monitor's window: the calls that reached the exchange in the last 10 s.
            let (p95, success) = health.data_sources.get(name).map_or_else(
                || ("-".to_owned(), "-".to_owned()),
                |source| {
                    (
                        format!("{:.0} ms", source.latency_p95 * 1_000.0),
                        format!("{:.1}%", source.success_rate * 100.0),
                    )
                },
            );
            let (hit_rate, stale) = health.cache_stats.get(name).map_or_else(
                || ("-".to_owned(), 0),
                |cache| (format!("{:.1}%", cache.hit_rate * 100.0), cache.stale_hits),
            );
            writeln!(
                f,
                "  {:<11}{p95:>8}{success:>9}{hit_rate:>12}{stale:>8}{:>11}",
                source.label(),
                self.client.fallbacks(source),
            )?;
        }
        for source in Source::ALL {
            if let Some((at, why)) = self.client.last_fallback(source) {
                if at.elapsed() < Duration::from_secs(1) {
                    writeln!(f, "  {} fell back: {why}", source.label())?;
                }
            }
        }
        writeln!(f, "  {}", self.board.line(self.symbols))
    }
}
