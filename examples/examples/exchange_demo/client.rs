//! The app's exchange client: its HTTP calls go through `reliable_runtime::http::Client`, which
//! gives each endpoint (a source, mapped by URL prefix) the demo's timeouts, retries of
//! transient errors and 429s, and the exchange's one breaker; the attributes add what is the
//! app's own: each endpoint's cache and its fallback.
//!
//! Each endpoint has two methods. `fetch_*` is the HTTP call under `#[graceful_degradation]`
//! and `#[cached]`. The public method is what the app calls and counts: it never fails,
//! because a call that fails after every layer (and has no stale value left) is answered by
//! `*_fallback`, which also gets why (`Failure`: the client's error, or a refusal such as an
//! open breaker).

use reliable_runtime::breaker::{BreakerConfig, BreakerWindow};
use reliable_runtime::degrade::degradation_registry;
use reliable_runtime::http::{Client, HttpError, Profile};
use reliable_runtime::limit::RateLimit;
use reliable_runtime::shared::SharedRateLimiter;
use reliable_runtime::sla::{SlaThresholds, SlaWindow};
use reliable_runtime::{cached, graceful_degradation, Failure, Rejected};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The client's profile of both endpoints, with the demo's timings, short enough that a 30 s
/// run (or a 4 s test) goes through every state:
///
/// - each attempt 800 ms at most, the whole call 3 s;
/// - retries: transient errors and 429s twice more, 50 ms growing to 1 s with 10% jitter (a
///   429's Retry-After replaces the delay, up to 1 s);
/// - breaker (the exchange's, shared): 5 failures in a row, or half of the last 20 calls, open
///   it for 1 s, doubling on each failed probe up to 4 s, so a long outage raises a few alerts,
///   not one a second;
/// - monitor: p95 250 ms, p99 800 ms over the last 10 s, so the table follows the exchange;
/// - no client-side rate limit alone (the exchange's own 429s are part of the show); with
///   replicas, the exchange's limit kept by each or shared through Redis ([`ClientLimit`]),
///   waited for within the call's deadline.
fn demo_profile(limit: ClientLimit) -> Profile {
    Profile::default()
        .base_timeout(Duration::from_millis(800))
        .max_timeout(Duration::from_millis(800))
        .deadline(Some(Duration::from_secs(3)))
        .max_retries(2)
        .base_delay(Duration::from_millis(50))
        .max_delay(Duration::from_secs(1))
        .rate_limit_per_minute(None)
        .breaker(EXCHANGE_BREAKER)
        .group("binance")
        .customize(move |builder, source| {
            let builder = builder
                .monitor(source, |_| {
                    SlaThresholds::cex()
                        .max_latency_p95(Duration::from_millis(250))
                        .max_latency_p99(Duration::from_millis(800))
                })
                .breaker(EXCHANGE_BREAKER, |_| {
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
                .monitor_window(SlaWindow::Time(Duration::from_secs(10)));
            match &limit {
                ClientLimit::None => builder,
                // One limiter, by name, for both endpoints.
                ClientLimit::Local(per_second) => builder
                    .rate_limit(LOCAL_LIMIT, RateLimit::per_second(*per_second))
                    .wait_for_rate_limit(),
                ClientLimit::Shared(limiter) => builder
                    .shared_rate_limit(Arc::clone(limiter), 1)
                    .wait_for_rate_limit(),
            }
        })
}

/// The limit this process keeps on its requests to the exchange.
#[derive(Clone)]
pub(crate) enum ClientLimit {
    /// None: the exchange's 429s do the limiting (one process).
    None,
    /// Requests a second for this process alone (replicas that do not share: together they
    /// send as many times it as there are replicas).
    Local(u32),
    /// One limit for every replica, through Redis.
    Shared(Arc<SharedRateLimiter>),
}

/// The local limiter's name, when each replica keeps the limit alone.
const LOCAL_LIMIT: &str = "binance_requests";

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
    /// The client's error: an error status, no answer, an undecodable body, or a refusal of
    /// its layers (open breaker, timeout, deadline).
    Http(HttpError),
    /// An answer that is not what the API documents.
    Decode(String),
    /// A layer of the app's own (the cache's single flight) did not make the call.
    Rejected(Rejected),
}

impl From<Rejected> for ExchangeError {
    fn from(rejected: Rejected) -> Self {
        ExchangeError::Rejected(rejected)
    }
}

impl From<HttpError> for ExchangeError {
    fn from(error: HttpError) -> Self {
        ExchangeError::Http(error)
    }
}

impl fmt::Display for ExchangeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExchangeError::Http(error) => write!(f, "{error}"),
            ExchangeError::Decode(why) => write!(f, "unexpected answer: {why}"),
            ExchangeError::Rejected(rejected) => write!(f, "{rejected}"),
        }
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
    http: Client,
    base_url: String,
    counters: [SourceCounters; 2],
    /// The last price seen per symbol, of any age: the ticker's fallback, once the cache's stale
    /// window is over too.
    last_prices: Mutex<HashMap<String, f64>>,
}

impl BinanceClient {
    /// A client for the exchange at `base_url` (`http://host:port`): each endpoint a source
    /// named as its cache and fallback are ([`Source::registry_name`]).
    pub(crate) fn new(
        base_url: String,
        limit: ClientLimit,
    ) -> Result<Self, reliable_runtime::ConfigError> {
        let profile = demo_profile(limit);
        let http = Client::builder()
            .source_with(
                Source::OrderBook.registry_name(),
                format!("{base_url}/api/v3/depth"),
                profile.clone(),
            )
            .source_with(
                Source::Ticker.registry_name(),
                format!("{base_url}/api/v3/ticker"),
                profile,
            )
            // Loopback only: a proxy from the environment must not see these requests.
            .configure_reqwest(|reqwest| reqwest.no_proxy())
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
    // trouble (fresh 1 s, stale 2 s). The `name`s must match `Source::registry_name`, the
    // client's source of each endpoint.

    #[graceful_degradation(fallback = Self::order_book_fallback, name = "binance_orderbook")]
    #[cached(name = "binance_orderbook", key = symbol, ttl = "250ms", stale = "500ms")]
    async fn fetch_order_book(&self, symbol: &str) -> Result<OrderBook, ExchangeError> {
        let body: DepthBody = self.get_json("/api/v3/depth", symbol).await?;
        Ok(OrderBook {
            bids: levels(&body.bids)?,
            asks: levels(&body.asks)?,
            degraded: false,
        })
    }

    #[graceful_degradation(fallback = Self::ticker_fallback, name = "binance_ticker")]
    #[cached(name = "binance_ticker", key = symbol, ttl = "1s", stale = "2s")]
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

    /// One GET of the API through the client (its source's policy), its JSON body decoded.
    async fn get_json<T: DeserializeOwned>(
        &self,
        path: &str,
        symbol: &str,
    ) -> Result<T, ExchangeError> {
        let url = format!("{}{path}", self.base_url);
        Ok(self
            .http
            .get(url)
            .query(&[("symbol", symbol)])
            .fetch_json()
            .await?)
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
