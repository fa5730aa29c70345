//! The exchange demo's logic, shared by the example's `main` and its integration test
//! (`tests/demo.rs` includes this module with `#[path]` and calls [`run`]).
//!
//! - `exchange`: the simulated exchange and its fault script;
//! - `client`: the app's client, reliable through attributes, with its fallbacks;
//! - `dashboard`: alerts, the table printed each second;
//! - `options`: the command line;
//! - `replicas`: several client processes sharing the exchange's limit through Redis.

mod client;
mod dashboard;
mod exchange;
mod options;
mod replicas;

pub(crate) use options::{parse_args, usage, Command, Options};

use client::{BinanceClient, Source};
use dashboard::{watch_breakers, Alerts, Board, Table};
use exchange::{Exchange, ExchangeStats, Phase, Timeline};
use reliable_runtime::{event, get_system_health};
use std::error::Error;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinSet;
use tokio::time::{Instant, MissedTickBehavior};

/// How often each consumer asks for a symbol's order book and ticker.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Consumers per symbol (say, a strategy and a UI): concurrent callers of one key are what
/// single-flight loads and stale-while-revalidate are for.
const CONSUMERS_PER_SYMBOL: u32 = 2;

/// How long calls in flight at the end may take to finish. The slowest possible call is three
/// attempts of 800 ms with up to 1 s between them (4.4 s); at the end of the script the exchange
/// is calm, so this is only a bound against a stuck run.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

/// What a run did, from the app's side and the exchange's.
#[derive(Clone, Debug)]
pub(crate) struct Summary {
    pub(crate) options: Options,
    /// From start to the last call finished.
    pub(crate) elapsed: Duration,
    /// Calls the app made (order books and tickers).
    pub(crate) app_calls: u64,
    /// What reached the exchange, retries included, counted by the exchange.
    pub(crate) exchange: ExchangeStats,
    /// Calls answered by a fresh cached value.
    pub(crate) cache_hits: u64,
    /// Calls answered by a value past its TTL: while another caller refreshed it, or because
    /// the refresh failed.
    pub(crate) stale_serves: u64,
    /// Of those, the ones served because the refresh failed (stale-if-error).
    pub(crate) stale_after_errors: u64,
    /// Calls answered by a fallback (empty book, last price seen): degraded answers.
    pub(crate) fallbacks: u64,
    /// Retries made, and calls whose retries ran out.
    pub(crate) retries: u64,
    pub(crate) gave_up: u64,
    /// Breaker state changes (alerts), and how many of them opened a breaker.
    pub(crate) alerts: u64,
    pub(crate) breaker_trips: u64,
    /// Events the alert watcher missed because it fell behind (should be 0).
    pub(crate) missed_events: u64,
    /// Critical alerts the runtime's alert manager raised for the client's sources.
    pub(crate) critical_alerts: u64,
    /// The `binance` group's degradation score at the end (0 healthy .. 1).
    pub(crate) degradation_score: f64,
    /// The other replicas' summaries (`--replicas`), as they printed them.
    pub(crate) replicas: Vec<String>,
}

/// Runs the demo: starts the exchange, polls it for `options.duration`, and returns what
/// happened. Prints the table and alerts unless `options.quiet`; the summary is the caller's to
/// print.
///
/// The runtime's registries are process-wide, so one process should make one run: a second
/// run would start with the first one's breakers, caches and counters.
pub(crate) async fn run(options: &Options) -> Result<Summary, Box<dyn Error + Send + Sync>> {
    run_serving(options, |_| {}).await
}

/// [`run`], telling `serving` where the health endpoints and the dashboard listen once they do
/// (with `options.serve`; a port 0 there is a free one, picked when binding).
pub(crate) async fn run_serving(
    options: &Options,
    serving: impl FnOnce(SocketAddr),
) -> Result<Summary, Box<dyn Error + Send + Sync>> {
    // Subscribe, and start the alert manager, before the first call, so that no breaker change
    // goes uncounted.
    let events = event::subscribe();
    reliable_runtime::alert::alert_manager();
    // Replicas without a Redis named: one started for the run (before the clock starts: on a
    // fresh machine it is installed first).
    let redis = match (options.replicas > 1, &options.redis, &options.join) {
        (true, None, None) if !options.unshared => Some(replicas::RedisProcess::start()?),
        _ => None,
    };
    let redis_url = redis.as_ref().map(|redis| redis.url().to_owned());
    let timeline = Timeline::start(options.duration);
    // The exchange: this process's own, or the one it joins as a replica.
    let (exchange, base_url) = match &options.join {
        None => {
            let exchange = Exchange::start(timeline, options.seed).await?;
            let url = exchange.base_url();
            (Some(exchange), url)
        }
        Some(url) => (None, url.clone()),
    };
    let limit = replicas::client_limit(options, redis_url.as_deref())?;
    let client = Arc::new(BinanceClient::new(base_url.clone(), limit)?);
    let others = match (&exchange, options.replicas > 1) {
        (Some(_), true) => Some(replicas::Replicas::start(
            options,
            &base_url,
            redis_url.as_deref().or(options.redis.as_deref()),
            options.duration.saturating_sub(timeline.elapsed()),
        )?),
        _ => None,
    };
    let exchange_stats = || exchange.as_ref().map(Exchange::stats).unwrap_or_default();
    let alerts = Arc::new(Alerts::default());
    let (stop_watching, stop) = oneshot::channel();
    let watcher = tokio::spawn(watch_breakers(
        events,
        Arc::clone(&alerts),
        timeline,
        options.quiet,
        stop,
    ));
    if !options.quiet {
        print_intro(options, &base_url, &timeline);
    }
    let (stop_serving, server) = match options.serve {
        Some(address) => {
            let (stop, server, bound) = serve_health(address).await?;
            println!("dashboard: http://{bound}/dashboard  (health JSON at http://{bound}/, Prometheus at http://{bound}/metrics)\n");
            serving(bound);
            (Some(stop), Some(server))
        }
        None => (None, None),
    };

    let start = Instant::from_std(timeline.started());
    let deadline = start + options.duration;
    let board = Arc::new(Board::default());
    let mut pollers = JoinSet::new();
    let consumers = options.symbols.len() as u32 * CONSUMERS_PER_SYMBOL;
    for (index, symbol) in options.symbols.iter().enumerate() {
        for consumer in 0..CONSUMERS_PER_SYMBOL {
            // Spread the consumers over the interval instead of calling all at once.
            let slot = consumer * options.symbols.len() as u32 + index as u32;
            let first = start + POLL_INTERVAL * slot / consumers;
            pollers.spawn(poll(
                Arc::clone(&client),
                Arc::clone(&board),
                symbol.clone(),
                first,
                deadline,
            ));
        }
    }

    let table = || Table {
        timeline: &timeline,
        client: &client,
        exchange: exchange_stats(),
        alerts: &alerts,
        board: &board,
        symbols: &options.symbols,
    };
    let finished = async {
        while let Some(joined) = pollers.join_next().await {
            if let Err(error) = joined {
                if error.is_panic() {
                    std::panic::resume_unwind(error.into_panic());
                }
            }
        }
    };
    let dashboard = async {
        let mut every =
            tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
        loop {
            // The table after the run is printed below, whatever the length of the run.
            if every.tick().await + Duration::from_millis(200) >= deadline {
                std::future::pending::<()>().await;
            }
            if !options.quiet {
                println!("{}", table());
            }
        }
    };
    tokio::select! {
        () = finished => {}
        () = dashboard => {}
        () = tokio::time::sleep_until(deadline + SHUTDOWN_GRACE) => {
            eprintln!("exchange_demo: calls still running {SHUTDOWN_GRACE:?} after the end; stopping them");
        }
    }
    // Pollers still running (only after the grace period) are cancelled here.
    drop(pollers);
    let elapsed = timeline.elapsed();

    // An error only means the watcher already ended (the event channel closed).
    let _ = stop_watching.send(());
    watcher.await?;
    if !options.quiet {
        println!("{}", table());
    }
    if let (Some(stop), Some(server)) = (stop_serving, server) {
        let _ = stop.send(());
        server.await??;
    }
    // The exchange answers until every replica is done.
    let replicas = match others {
        Some(others) => others.finish().await,
        None => Vec::new(),
    };
    let mut summary = summarize(options, elapsed, &client, exchange_stats(), &alerts);
    summary.replicas = replicas;
    drop(redis);
    Ok(summary)
}

/// Serves the runtime's health router (endpoints and dashboard) at `address` until the sender
/// returned is used; returns it, the server's task and the address bound.
async fn serve_health(
    address: SocketAddr,
) -> Result<
    (
        oneshot::Sender<()>,
        tokio::task::JoinHandle<std::io::Result<()>>,
        SocketAddr,
    ),
    Box<dyn Error + Send + Sync>,
> {
    let listener = tokio::net::TcpListener::bind(address)
        .await
        .map_err(|error| format!("cannot serve the dashboard at {address}: {error}"))?;
    let bound = listener.local_addr()?;
    let (stop, stopped) = oneshot::channel::<()>();
    let app = reliable_runtime::health::router();
    let server = tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async {
            let _ = stopped.await;
        })
        .await
    });
    Ok((stop, server, bound))
}

/// One consumer of `symbol`: order book and ticker together, every [`POLL_INTERVAL`], until
/// `deadline`.
async fn poll(
    client: Arc<BinanceClient>,
    board: Arc<Board>,
    symbol: String,
    first: Instant,
    deadline: Instant,
) {
    let mut ticks = tokio::time::interval_at(first, POLL_INTERVAL);
    // A slow call delays this consumer's next poll; it does not make it burst to catch up.
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        if ticks.tick().await >= deadline {
            return;
        }
        let (book, ticker) = tokio::join!(client.order_book(&symbol), client.ticker(&symbol));
        board.update(&symbol, book, ticker);
    }
}

fn print_intro(options: &Options, base_url: &str, timeline: &Timeline) {
    println!(
        "exchange_demo: simulated exchange at {base_url}, {:.1} s, seed {}",
        options.duration.as_secs_f64(),
        options.seed
    );
    if options.replicas > 1 {
        println!(
            "{} client processes, {} {} requests a second (the exchange's limit: {})",
            options.replicas,
            if options.unshared {
                "each keeping alone"
            } else {
                "sharing through Redis"
            },
            replicas::CLIENT_LIMIT_PER_SECOND,
            exchange::LIMIT_PER_SECOND
        );
    }
    println!(
        "polling {} with {CONSUMERS_PER_SYMBOL} consumers each, every {} ms (order book + ticker)",
        options.symbols.join(", "),
        POLL_INTERVAL.as_millis()
    );
    let script: Vec<String> = Phase::ALL
        .into_iter()
        .map(|phase| {
            format!(
                "{:.1}s {}",
                timeline.phase_start(phase).as_secs_f64(),
                phase.describe()
            )
        })
        .collect();
    println!("script: {}", script.join(" | "));
    println!();
}

fn summarize(
    options: &Options,
    elapsed: Duration,
    client: &BinanceClient,
    exchange: ExchangeStats,
    alerts: &Alerts,
) -> Summary {
    let health = get_system_health();
    let mut summary = Summary {
        options: options.clone(),
        elapsed,
        app_calls: 0,
        exchange,
        cache_hits: 0,
        stale_serves: 0,
        stale_after_errors: 0,
        fallbacks: 0,
        retries: 0,
        gave_up: 0,
        alerts: alerts.total(),
        breaker_trips: alerts.opened(),
        missed_events: alerts.missed(),
        critical_alerts: reliable_runtime::alert::alert_manager()
            .history()
            .iter()
            .filter(|alert| {
                alert.severity == reliable_runtime::alert::Severity::Critical
                    && (alert.source == client::EXCHANGE_BREAKER
                        || Source::ALL
                            .iter()
                            .any(|source| alert.source == source.registry_name()))
            })
            .count() as u64,
        degradation_score: health
            .per_exchange_degradation
            .get("binance")
            .map_or(0.0, |group| group.degradation_score),
        replicas: Vec::new(),
    };
    for source in Source::ALL {
        let name = source.registry_name();
        summary.app_calls += client.calls(source);
        summary.fallbacks += client.fallbacks(source);
        if let Some(cache) = health.cache_stats.get(name) {
            summary.cache_hits += cache.hits;
            summary.stale_serves += cache.stale_hits;
            summary.stale_after_errors += cache.stale_if_error;
        }
        if let Some(retry) = health.retries.get(name) {
            summary.retries += retry.retries;
            summary.gave_up += retry.gave_up;
        }
    }
    summary
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let replica = if self.options.join.is_some() {
            " of a replica"
        } else {
            ""
        };
        writeln!(
            f,
            "summary{replica}: {:.1} s, seed {}, {}",
            self.elapsed.as_secs_f64(),
            self.options.seed,
            self.options.symbols.join(", ")
        )?;
        writeln!(
            f,
            "  calls made by the app            {:>7}",
            self.app_calls
        )?;
        // A replica runs no exchange: what reached it is the first process's to say.
        if self.options.join.is_none() {
            self.fmt_exchange(f)?;
        }
        writeln!(
            f,
            "  served from cache (fresh)        {:>7}",
            self.cache_hits
        )?;
        writeln!(
            f,
            "  served stale                     {:>7}   {} of them because the exchange failed",
            self.stale_serves, self.stale_after_errors
        )?;
        writeln!(
            f,
            "  fell back (degraded answers)     {:>7}",
            self.fallbacks
        )?;
        writeln!(
            f,
            "  retries                          {:>7}   gave up after every attempt: {}",
            self.retries, self.gave_up
        )?;
        write!(
            f,
            "  alerts (breaker state changes)   {:>7}   breakers opened {} times",
            self.alerts, self.breaker_trips
        )?;
        if self.missed_events > 0 {
            write!(f, " ({} events missed)", self.missed_events)?;
        }
        write!(
            f,
            "\n  critical alerts (alert manager)  {:>7}\n  binance degradation score at the end  {:.2}",
            self.critical_alerts, self.degradation_score
        )?;
        for (index, replica) in self.replicas.iter().enumerate() {
            write!(f, "\n\nreplica {}: {replica}", index + 2)?;
        }
        Ok(())
    }
}

impl Summary {
    /// What the exchange counted: every replica's requests together.
    fn fmt_exchange(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let exchange = &self.exchange;
        writeln!(
            f,
            "  requests that reached exchange   {:>7}   200: {}, 429: {}, 5xx: {}, 503 in the outage: {}{}",
            exchange.requests,
            exchange.ok,
            exchange.throttled,
            exchange.server_errors,
            exchange.unavailable,
            match exchange.client_errors {
                0 => String::new(),
                n => format!(", 4xx: {n}"),
            }
        )?;
        let per_phase: Vec<String> = Phase::ALL
            .into_iter()
            .zip(exchange.per_phase)
            .map(|(phase, requests)| format!("{} {requests}", phase.name()))
            .collect();
        writeln!(f, "    by phase: {}", per_phase.join(", "))?;
        if self.options.replicas > 1 {
            writeln!(
                f,
                "  busiest second at the exchange   {:>7}   its limit: {} a second; requests over it: {}",
                exchange.peak_per_second,
                exchange::LIMIT_PER_SECOND,
                exchange.over_limit
            )?;
        }
        Ok(())
    }
}
