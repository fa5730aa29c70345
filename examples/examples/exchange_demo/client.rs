//! The app's exchange client: plain HTTP calls made reliable by attributes.
//!
//! Each endpoint has two methods. `fetch_*` is the HTTP call under one
//! `#[reliable(preset = DEMO_EXCHANGE, ...)]`: the CEX preset's monitor, breaker, retries and
//! cache with the demo's shorter timings (a user-defined preset), each endpoint's cache TTL, a
//! per-attempt timeout and a fallback. The public method is what the app calls and
//! counts: it never fails, because a call that fails after every layer (and has no stale value
//! left) is answered by `*_fallback`, which also gets why (`Failure`: the exchange's error, or
//! a refusal such as an open breaker).

use reliable_runtime::breaker::{BreakerConfig, BreakerWindow};
use reliable_runtime::cache::{CacheConfig, CachePolicy};
use reliable_runtime::degrade::degradation_registry;
use reliable_runtime::preset::Preset;
use reliable_runtime::retry::{BackoffConfig, Jitter};
use reliable_runtime::sla::SlaThresholds;
use reliable_runtime::{reliable, Failure, Rejected};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The CEX preset with the demo's timings, short enough that a 30 s run (or a 4 s test) goes
/// through every state:
///
/// - retries: transient errors twice more, full jitter, 50 ms growing to 1 s (a 429's
///   Retry-After replaces the delay, up to 1 s);
/// - breaker: 5 failures in a row, or half of the last 20 calls, open it for 1 s, doubling on
///   each failed probe up to 4 s, so a long outage raises a few alerts, not one a second;
/// - monitor: p95 250 ms, p99 800 ms;
/// - cache: plain TTL (each endpoint gives its own), not the preset's adaptive one.
const DEMO_EXCHANGE: Preset = reliable_runtime::preset::CEX
    .sla(|| {
        SlaThresholds::cex()
            .max_latency_p95(Duration::from_millis(250))
            .max_latency_p99(Duration::from_millis(800))
    })
    .breaker(|| {
        BreakerConfig::cex()
            .failure_threshold(5)
            .failure_rate_threshold(0.5)
            .window(BreakerWindow::Calls(20))
            .minimum_calls(10)
            .timeout(Duration::from_secs(1))
            .timeout_multiplier(2.0)
            .max_timeout(Duration::from_secs(4))
            .success_threshold(2)
    })
    .backoff(|| {
        BackoffConfig::cex()
            .initial_delay(Duration::from_millis(50))
            .max_delay(Duration::from_secs(1))
            .max_attempts(3)
            .jitter(Jitter::Full)
    })
    .cache(|| CacheConfig::orderbooks().policy(CachePolicy::Ttl));

/// The one breaker of the exchange, which both endpoints name (`breaker = "binance_api"`): when
/// the exchange goes down, the first endpoint to see it cuts both off. Each endpoint keeps its
/// own monitor, retries and cache, named after it.
pub(crate) const EXCHANGE_BREAKER: &str = "binance_api";

/// What the app asks the exchange for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    OrderBook,
    Ticker,
}

impl Source {
    pub(crate) const ALL: [Source; 2] = [Source::OrderBook, Source::Ticker];

    /// The name its attributes register under: the monitor, retry policy and cache of an
    /// endpoint share it, so health reads them all by one name (the breaker is the exchange's,
    /// [`EXCHANGE_BREAKER`]). It must match the `name` arguments of the attribute stacks below.
    pub(crate) fn registry_name(self) -> &'static str {
        match self {
            Source::OrderBook => "binance_orderbook",
            Source::Ticker => "binance_ticker",
        }
    }

    pub(crate) fn label(self) -> &'static str {
        match self {
            Source::OrderBook => "order book",
            Source::Ticker => "ticker",
        }
    }

    /// Its position in [`Source::ALL`], for per-source arrays.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

/// Why a call to the exchange failed.
#[derive(Debug)]
pub(crate) enum ExchangeError {
    /// An error status other than 429: 5xx is the exchange's trouble, 4xx the caller's.
    Status(u16),
    /// 429: the exchange wants us to slow down and says for how long.
    RateLimited { retry_after: Duration },
    /// No answer: connection refused, reset or closed.
    Transport(reqwest::Error),
    /// An answer that is not what the API documents.
    Decode(String),
    /// A reliability layer did not make the call (open breaker) or gave up on it (timeout).
    Rejected(Rejected),
}

impl From<Rejected> for ExchangeError {
    fn from(rejected: Rejected) -> Self {
        ExchangeError::Rejected(rejected)
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Status(status) => write!(f, "the exchange answered {status}"),
            ExchangeError::RateLimited { retry_after } => write!(
                f,
                "rate limited (429), retry after {} s",
                retry_after.as_secs_f64()
            ),
            ExchangeError::Transport(error) => write!(f, "no answer: {error}"),
            ExchangeError::Decode(why) => write!(f, "unexpected answer: {why}"),
            ExchangeError::Rejected(rejected) => write!(f, "{rejected}"),
        }
    }
}

/// Worth another attempt: the exchange may answer next time. A 4xx other than 429 will not
/// change, and an open breaker is never retried by the runtime anyway.
fn is_transient(error: &ExchangeError) -> bool {
    match error {
        ExchangeError::Status(status) => *status >= 500,
        ExchangeError::RateLimited { .. } | ExchangeError::Transport(_) => true,
        ExchangeError::Rejected(rejected) => matches!(rejected, Rejected::Timeout { .. }),
        ExchangeError::Decode(_) => false,
    }
}

/// Counts against the exchange's breaker: its own failures and its 429s (an exchange that keeps
/// answering 429 bans the caller's IP next, so backing off hard is right), not our 4xx mistakes.
fn is_exchange_failure(error: &ExchangeError) -> bool {
    match error {
        ExchangeError::Status(status) => *status >= 500,
        ExchangeError::RateLimited { .. }
        | ExchangeError::Transport(_)
        | ExchangeError::Decode(_)
        | ExchangeError::Rejected(_) => true,
    }
}

/// The 429's `Retry-After`, which replaces the backoff delay (capped by `max_delay`).
fn retry_after_hint(error: &ExchangeError) -> Option<Duration> {
    match error {
        ExchangeError::RateLimited { retry_after } => Some(*retry_after),
        _ => None,
    }
}

/// An order book: (price, quantity) levels, best first.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct OrderBook {
    pub(crate) bids: Vec<(f64, f64)>,
    pub(crate) asks: Vec<(f64, f64)>,
    /// Not the exchange's book but the fallback's (empty): show it, do not trade on it.
    pub(crate) degraded: bool,
}

impl OrderBook {
    pub(crate) fn spread(&self) -> Option<f64> {
        Some(self.asks.first()?.0 - self.bids.first()?.0)
    }
}

/// A last price.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Ticker {
    /// `None` only from the fallback, before any price was ever seen.
    pub(crate) price: Option<f64>,
    /// From the fallback: the last price seen, however old.
    pub(crate) degraded: bool,
}

#[derive(Deserialize)]
struct DepthBody {
    bids: Vec<(String, String)>,
    asks: Vec<(String, String)>,
}

#[derive(Deserialize)]
struct PriceBody {
    price: String,
}

#[derive(Default)]
struct SourceCounters {
    calls: AtomicU64,
    /// When and why it last fell back.
    last_fallback: Mutex<Option<(Instant, String)>>,
}

/// The app's client for the (simulated) exchange.
pub(crate) struct BinanceClient {
    http: reqwest::Client,
    base_url: String,
    counters: [SourceCounters; 2],
    /// The last price seen per symbol, of any age: the ticker's fallback, once the cache's stale
    /// window is over too.
    last_prices: Mutex<HashMap<String, f64>>,
}

impl BinanceClient {
    /// A client for the exchange at `base_url` (`http://host:port`).
    pub(crate) fn new(base_url: String) -> Result<Self, reqwest::Error> {
        let http = reqwest::Client::builder()
            // Loopback only: a proxy from the environment must not see these requests.
            .no_proxy()
            .connect_timeout(Duration::from_millis(500))
            .build()?;
        Ok(BinanceClient {
            http,
            base_url,
            counters: Default::default(),
            last_prices: Mutex::default(),
        })
    }

    /// The order book for `symbol`; an empty, degraded one when the exchange cannot give one.
    pub(crate) async fn order_book(&self, symbol: &str) -> OrderBook {
        self.counted(Source::OrderBook);
        // The fallback answers every failure; an error here means the fallback itself
        // panicked (the runtime caught it): show an empty book all the same.
        self.fetch_order_book(symbol).await.unwrap_or(OrderBook {
            bids: Vec::new(),
            asks: Vec::new(),
            degraded: true,
        })
    }

    /// The last price of `symbol`; the last one seen, degraded, when the exchange cannot say.
    pub(crate) async fn ticker(&self, symbol: &str) -> Ticker {
        self.counted(Source::Ticker);
        match self.fetch_ticker(symbol).await {
            Ok(ticker) => {
                if let Some(price) = ticker.price {
                    self.lock_last_prices().insert(symbol.to_owned(), price);
                }
                ticker
            }
            Err(_) => Ticker {
                price: None,
                degraded: true,
            },
        }
    }

    /// Calls the app made to `source`.
    pub(crate) fn calls(&self, source: Source) -> u64 {
        self.counters[source.index()].calls.load(Ordering::Relaxed)
    }

    /// Calls to `source` answered by its fallback.
    pub(crate) fn fallbacks(&self, source: Source) -> u64 {
        // The runtime counts them per `#[graceful_degradation]` site (registered at the first).
        degradation_registry()
            .get(source.registry_name())
            .map_or(0, |site| site.snapshot().fallbacks)
    }

    /// When and why `source` last fell back, if it did.
    pub(crate) fn last_fallback(&self, source: Source) -> Option<(Instant, String)> {
        self.counters[source.index()]
            .last_fallback
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    // Order books go stale fast (fresh 250 ms, usable 500 ms more); tickers ride out longer
    // trouble (fresh 1 s, stale 2 s). The rest of each stack is the `DEMO_EXCHANGE` preset. The
    // monitors judge the last 10 s, so the table follows the exchange. The `name`s must match
    // `Source::registry_name`, and `breaker` must be `EXCHANGE_BREAKER`.

    #[reliable(
        preset = DEMO_EXCHANGE,
        name = "binance_orderbook",
        breaker = "binance_api",
        group = "binance",
        key = symbol,
        cache_ttl = "250ms",
        cache_stale = "500ms",
        retry_if = is_transient,
        retry_after = retry_after_hint,
        failure_if = is_exchange_failure,
        sla_window = "10s",
        timeout = "800ms",
        fallback = Self::order_book_fallback
    )]
    async fn fetch_order_book(&self, symbol: &str) -> Result<OrderBook, ExchangeError> {
        let body: DepthBody = self.get_json("/api/v3/depth", symbol).await?;
        Ok(OrderBook {
            bids: levels(&body.bids)?,
            asks: levels(&body.asks)?,
            degraded: false,
        })
    }

    #[reliable(
        preset = DEMO_EXCHANGE,
        name = "binance_ticker",
        breaker = "binance_api",
        group = "binance",
        key = symbol,
        cache_ttl = "1s",
        cache_stale = "2s",
        retry_if = is_transient,
        retry_after = retry_after_hint,
        failure_if = is_exchange_failure,
        sla_window = "10s",
        timeout = "800ms",
        fallback = Self::ticker_fallback
    )]
    async fn fetch_ticker(&self, symbol: &str) -> Result<Ticker, ExchangeError> {
        let body: PriceBody = self.get_json("/api/v3/ticker/price", symbol).await?;
        Ok(Ticker {
            price: Some(number(&body.price)?),
            degraded: false,
        })
    }

    // The fallbacks: what the app gets when the cache has nothing usable left and the exchange
    // gave no answer (breaker open, retries spent, permanent error).

    fn order_book_fallback(
        &self,
        _symbol: &str,
        cause: &Failure<ExchangeError>,
    ) -> Result<OrderBook, ExchangeError> {
        self.fell_back(Source::OrderBook, cause);
        Ok(OrderBook {
            bids: Vec::new(),
            asks: Vec::new(),
            degraded: true,
        })
    }

    fn ticker_fallback(
        &self,
        symbol: &str,
        cause: &Failure<ExchangeError>,
    ) -> Result<Ticker, ExchangeError> {
        self.fell_back(Source::Ticker, cause);
        Ok(Ticker {
            price: self.lock_last_prices().get(symbol).copied(),
            degraded: true,
        })
    }

    fn counted(&self, source: Source) {
        self.counters[source.index()]
            .calls
            .fetch_add(1, Ordering::Relaxed);
    }

    fn fell_back(&self, source: Source, cause: &Failure<ExchangeError>) {
        *self.counters[source.index()]
            .last_fallback
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some((Instant::now(), cause.to_string()));
    }

    fn lock_last_prices(&self) -> std::sync::MutexGuard<'_, HashMap<String, f64>> {
        self.last_prices
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// One GET of the API, its status mapped to [`ExchangeError`] and its JSON body decoded.
    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        symbol: &str,
    ) -> Result<T, ExchangeError> {
        // Symbols are checked against the listing when the options are parsed, so they need no
        // escaping in the query.
        let url = format!("{}{path}?symbol={symbol}", self.base_url);
        let response = self
            .http
            .get(url)
            .send()
            .await
            .map_err(ExchangeError::Transport)?;
        let status = response.status();
        if status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            let retry_after = response
                .headers()
                .get(reqwest::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                // Binance documents seconds; without a usable header, wait a second too.
                .map_or(Duration::from_secs(1), Duration::from_secs);
            return Err(ExchangeError::RateLimited { retry_after });
        }
        if !status.is_success() {
            return Err(ExchangeError::Status(status.as_u16()));
        }
        response.json().await.map_err(|error| {
            if error.is_decode() {
                ExchangeError::Decode(error.to_string())
            } else {
                ExchangeError::Transport(error)
            }
        })
    }
}

fn levels(raw: &[(String, String)]) -> Result<Vec<(f64, f64)>, ExchangeError> {
    raw.iter()
        .map(|(price, quantity)| Ok((number(price)?, number(quantity)?)))
        .collect()
}

fn number(raw: &str) -> Result<f64, ExchangeError> {
    raw.parse()
        .map_err(|_| ExchangeError::Decode(format!("`{raw}` is not a decimal number")))
}
