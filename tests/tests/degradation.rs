//! `#[graceful_degradation]`: values, fns, causes, async fallbacks, panics, and stale data
//! preferred to the fallback.

use reliable_runtime::cache::CacheConfig;
use reliable_runtime::clock::Clock;
use reliable_runtime::degrade::degradation_registry;
use reliable_runtime::registry::{breaker_registry, cache_registry};
use reliable_runtime::{
    cached, circuit_breaker, graceful_degradation, monitored, with_backoff, Failure, Rejected,
};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
enum ApiError {
    Down(u32),
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

fn fallbacks(name: &str) -> (u64, u64) {
    // A site registers its counters at its first failure.
    degradation_registry().get(name).map_or((0, 0), |site| {
        let snapshot = site.snapshot();
        (snapshot.fallbacks, snapshot.fallback_panics)
    })
}

#[graceful_degradation(fallback = Ok(-1), name = "degrade_value")]
async fn value_fallback(fail: bool) -> Result<i64, ApiError> {
    if fail {
        Err(ApiError::Down(1))
    } else {
        Ok(7)
    }
}

#[tokio::test]
async fn a_value_answers_only_failed_calls() {
    assert_eq!(value_fallback(false).await, Ok(7));
    assert_eq!(value_fallback(true).await, Ok(-1));
    assert_eq!(fallbacks("degrade_value"), (1, 0));
}

#[graceful_degradation(fallback = Err(ApiError::Down(99)), name = "degrade_sync_value")]
fn sync_value_fallback(fail: bool) -> Result<i64, ApiError> {
    if fail {
        Err(ApiError::Down(1))
    } else {
        Ok(7)
    }
}

#[test]
fn a_value_can_be_an_error_too() {
    assert_eq!(sync_value_fallback(false), Ok(7));
    assert_eq!(sync_value_fallback(true), Err(ApiError::Down(99)));
}

static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());

fn book_from_arguments(exchange: &String, symbol: &str, depth: &u32) -> Result<String, ApiError> {
    SEEN.lock()
        .unwrap()
        .push(format!("{exchange}:{symbol}:{depth}"));
    Ok(format!("empty {symbol}"))
}

#[graceful_degradation(fallback = book_from_arguments)]
async fn fn_fallback(exchange: String, symbol: &str, depth: u32) -> Result<String, ApiError> {
    Err(ApiError::Down(
        depth + exchange.len() as u32 + symbol.len() as u32,
    ))
}

#[tokio::test]
async fn a_fn_gets_the_arguments_by_reference() {
    let answer = fn_fallback("binance".to_owned(), "BTCUSDT", 20).await;
    assert_eq!(answer, Ok("empty BTCUSDT".to_owned()));
    assert_eq!(SEEN.lock().unwrap().as_slice(), ["binance:BTCUSDT:20"]);
}

static CAUSES: Mutex<Vec<String>> = Mutex::new(Vec::new());
static CAUSE_SOURCE_DOWN: AtomicBool = AtomicBool::new(true);

struct Client {
    exchange: &'static str,
}

impl Client {
    fn degraded(&self, symbol: &str, cause: &Failure<ApiError>) -> Result<String, ApiError> {
        let cause = match cause {
            Failure::Inner(ApiError::Down(code)) => format!("down {code}"),
            Failure::Inner(other) => format!("inner {other:?}"),
            Failure::Rejected(Rejected::CircuitOpen { breaker, .. }) => format!("open {breaker}"),
            Failure::Rejected(other) => format!("rejected {other}"),
        };
        CAUSES.lock().unwrap().push(cause);
        Ok(format!("{}:{symbol}:degraded", self.exchange))
    }

    #[graceful_degradation(fallback = Self::degraded, name = "degrade_cause")]
    #[circuit_breaker(name = "degrade_cause", failure_threshold = 2)]
    #[monitored(name = "degrade_cause")]
    async fn ticker(&self, symbol: &str) -> Result<String, ApiError> {
        if CAUSE_SOURCE_DOWN.load(Ordering::SeqCst) {
            Err(ApiError::Down(503))
        } else {
            Ok(format!("{}:{symbol}", self.exchange))
        }
    }
}

#[tokio::test]
async fn the_cause_tells_failures_from_refusals() {
    let client = Client { exchange: "bybit" };
    for _ in 0..3 {
        assert_eq!(
            client.ticker("ETH").await,
            Ok("bybit:ETH:degraded".to_owned())
        );
    }
    assert_eq!(
        CAUSES.lock().unwrap().as_slice(),
        ["down 503", "down 503", "open degrade_cause"],
        "two failures open the breaker; the third call is refused and says so"
    );
    assert_eq!(fallbacks("degrade_cause"), (3, 0));
    CAUSE_SOURCE_DOWN.store(false, Ordering::SeqCst);
    breaker_registry().get("degrade_cause").unwrap().reset();
    assert_eq!(client.ticker("ETH").await, Ok("bybit:ETH".to_owned()));
    assert_eq!(fallbacks("degrade_cause"), (3, 0));
}

async fn from_the_other_exchange(symbol: &str) -> Result<String, ApiError> {
    tokio::task::yield_now().await;
    Ok(format!("okx:{symbol}"))
}

async fn from_the_other_exchange_too(
    symbol: &str,
    _attempts: &AtomicU32,
) -> Result<String, ApiError> {
    from_the_other_exchange(symbol).await
}

#[graceful_degradation(fallback = from_the_other_exchange_too)]
#[with_backoff(
    max_attempts = 3,
    initial_delay = "1ms",
    jitter = "none",
    budget = false
)]
async fn async_fallback_all_arguments(
    symbol: &str,
    attempts: &AtomicU32,
) -> Result<String, ApiError> {
    attempts.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Down(500))
}

#[tokio::test(start_paused = true)]
async fn an_async_fallback_runs_after_the_retries() {
    let attempts = AtomicU32::new(0);
    assert_eq!(
        async_fallback_all_arguments("SOL", &attempts).await,
        Ok("okx:SOL".to_owned())
    );
    assert_eq!(attempts.load(Ordering::SeqCst), 3, "retries come first");
}

/// An async fallback that takes the cause and holds it across an `.await`.
async fn from_the_other_exchange_knowing_why(
    symbol: &str,
    cause: &Failure<ApiError>,
) -> Result<String, ApiError> {
    let why = match cause {
        Failure::Inner(ApiError::Down(code)) => format!("down {code}"),
        other => format!("{other:?}"),
    };
    tokio::task::yield_now().await;
    // Still borrowed after the await.
    let refused = cause.is_rejected();
    Ok(format!("okx:{symbol} ({why}, refused: {refused})"))
}

#[graceful_degradation(fallback = from_the_other_exchange_knowing_why, name = "degrade_async_cause")]
async fn async_fallback_with_the_cause(symbol: &str) -> Result<String, ApiError> {
    let _ = symbol;
    Err(ApiError::Down(502))
}

#[tokio::test]
async fn an_async_fallback_may_borrow_the_cause() {
    assert_eq!(
        async_fallback_with_the_cause("DOT").await,
        Ok("okx:DOT (down 502, refused: false)".to_owned())
    );
    assert_eq!(fallbacks("degrade_async_cause"), (1, 0));
}

fn panicking(_symbol: &str) -> Result<u64, ApiError> {
    panic!("the fallback is broken too")
}

#[graceful_degradation(fallback = panicking, name = "degrade_panics")]
fn sync_with_panicking_fallback(symbol: &str) -> Result<u64, ApiError> {
    Err(ApiError::Down(symbol.len() as u32))
}

async fn panicking_async(_symbol: &str) -> Result<u64, ApiError> {
    tokio::task::yield_now().await;
    panic!("the async fallback is broken too")
}

#[graceful_degradation(fallback = panicking_async, name = "degrade_panics_async")]
async fn async_with_panicking_fallback(symbol: &str) -> Result<u64, ApiError> {
    Err(ApiError::Down(symbol.len() as u32))
}

#[graceful_degradation(fallback = Ok(unreachable_value()), name = "degrade_panicking_value")]
async fn async_with_panicking_value(symbol: &str) -> Result<u64, ApiError> {
    Err(ApiError::Down(symbol.len() as u32))
}

fn unreachable_value() -> u64 {
    panic!("evaluating the fallback value panicked")
}

#[tokio::test]
async fn a_panicking_fallback_gives_the_original_error() {
    assert_eq!(sync_with_panicking_fallback("BTC"), Err(ApiError::Down(3)));
    assert_eq!(fallbacks("degrade_panics"), (0, 1));
    assert_eq!(
        async_with_panicking_fallback("ETHUSDT").await,
        Err(ApiError::Down(7))
    );
    assert_eq!(fallbacks("degrade_panics_async"), (0, 1));
    assert_eq!(
        async_with_panicking_value("SOL").await,
        Err(ApiError::Down(3))
    );
    assert_eq!(fallbacks("degrade_panicking_value"), (0, 1));
}

static STALE_SOURCE_UP: AtomicBool = AtomicBool::new(true);

#[graceful_degradation(fallback = Ok(0), name = "degrade_stale")]
#[cached(ttl = 5, stale = "60s", key = symbol.to_owned(), name = "degrade_stale")]
async fn stale_first(symbol: &str) -> Result<u64, ApiError> {
    if STALE_SOURCE_UP.load(Ordering::SeqCst) {
        Ok(symbol.len() as u64)
    } else {
        Err(ApiError::Down(503))
    }
}

#[tokio::test(start_paused = true)]
async fn a_stale_value_is_preferred_to_the_fallback() {
    cache_registry()
        .get_or_create::<String, u64>(
            "degrade_stale",
            CacheConfig::default()
                .ttl(Duration::from_secs(5))
                .stale(Duration::from_secs(60))
                .clock(Clock::tokio()),
        )
        .unwrap()
        .unwrap();
    assert_eq!(stale_first("BTCUSDT").await, Ok(7));
    STALE_SOURCE_UP.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(10)).await;
    assert_eq!(
        stale_first("BTCUSDT").await,
        Ok(7),
        "stale, not the fallback"
    );
    assert_eq!(fallbacks("degrade_stale"), (0, 0));
    assert_eq!(
        stale_first("ETH").await,
        Ok(0),
        "nothing stale: the fallback"
    );
    assert_eq!(fallbacks("degrade_stale"), (1, 0));
    tokio::time::advance(Duration::from_secs(120)).await;
    assert_eq!(stale_first("BTCUSDT").await, Ok(0), "too old to serve");
    assert_eq!(fallbacks("degrade_stale"), (2, 0));
    let health = serde_json::to_value(reliable_runtime::get_system_health()).unwrap();
    assert_eq!(health["degradation"]["degrade_stale"]["fallbacks"], 2);
}
