//! `#[cached]` on every fn shape, with the rest of the pipeline, and serving stale data
//! through an outage.

use reliable_runtime::cache::CacheConfig;
use reliable_runtime::clock::Clock;
use reliable_runtime::registry::cache_registry;
use reliable_runtime::{cached, circuit_breaker, with_backoff, Rejected};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
enum ApiError {
    Down,
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

static FREE_LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60)]
async fn default_key(symbol: &str, depth: u32) -> Result<String, ApiError> {
    FREE_LOADS.fetch_add(1, Ordering::SeqCst);
    Ok(format!("{symbol}:{depth}"))
}

#[tokio::test]
async fn default_key_is_the_arguments() {
    assert_eq!(default_key("BTC", 5).await.unwrap(), "BTC:5");
    assert_eq!(default_key("BTC", 5).await.unwrap(), "BTC:5");
    assert_eq!(default_key("BTC", 10).await.unwrap(), "BTC:10");
    assert_eq!(FREE_LOADS.load(Ordering::SeqCst), 2);
    let stats = cache_registry().snapshot("cached::default_key").unwrap();
    assert_eq!((stats.hits, stats.size), (1, 2));
}

struct Exchange {
    name: &'static str,
    loads: AtomicU32,
}

impl Exchange {
    // `self.name` is evaluated as written; `symbol`, an argument, is looked up borrowed.
    #[cached(ttl = 60, key = (self.name, symbol), name = "cached_per_instance")]
    async fn ticker(&self, symbol: &str) -> Result<u64, ApiError> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        Ok(symbol.len() as u64)
    }

    #[cached(ttl = 60, key = symbol)]
    fn blocking(&self, symbol: &str) -> Option<usize> {
        self.loads.fetch_add(1, Ordering::SeqCst);
        (!symbol.is_empty()).then_some(symbol.len())
    }
}

#[tokio::test]
async fn methods_key_per_instance_when_told() {
    let binance = Exchange {
        name: "binance",
        loads: AtomicU32::new(0),
    };
    let bybit = Exchange {
        name: "bybit",
        loads: AtomicU32::new(0),
    };
    assert_eq!(binance.ticker("BTC").await, Ok(3));
    assert_eq!(binance.ticker("BTC").await, Ok(3));
    assert_eq!(bybit.ticker("BTC").await, Ok(3));
    assert_eq!(binance.loads.load(Ordering::SeqCst), 1);
    assert_eq!(bybit.loads.load(Ordering::SeqCst), 1);
}

#[test]
fn blocking_fns_cache_some_but_not_none() {
    let exchange = Exchange {
        name: "x",
        loads: AtomicU32::new(0),
    };
    assert_eq!(exchange.blocking("ETH"), Some(3));
    assert_eq!(exchange.blocking("ETH"), Some(3));
    assert_eq!(exchange.blocking(""), None);
    assert_eq!(exchange.blocking(""), None);
    assert_eq!(
        exchange.loads.load(Ordering::SeqCst),
        3,
        "None is not cached"
    );
}

static SOURCE_UP: AtomicBool = AtomicBool::new(true);
static SOURCE_CALLS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 5, key = symbol.to_owned(), name = "cached_outage")]
#[with_backoff(
    max_attempts = 2,
    initial_delay = "10ms",
    jitter = "none",
    budget = false
)]
#[circuit_breaker(name = "cached_outage", failure_threshold = 4)]
async fn orderbook(symbol: &str) -> Result<u64, ApiError> {
    SOURCE_CALLS.fetch_add(1, Ordering::SeqCst);
    if SOURCE_UP.load(Ordering::SeqCst) {
        Ok(symbol.len() as u64 * 100)
    } else {
        Err(ApiError::Down)
    }
}

#[tokio::test(start_paused = true)]
async fn stale_data_flows_through_an_outage() {
    cache_registry()
        .get_or_create::<String, u64>(
            "cached_outage",
            CacheConfig::default()
                .ttl(std::time::Duration::from_secs(5))
                .stale(Duration::from_secs(60))
                .clock(Clock::tokio()),
        )
        .unwrap()
        .unwrap();
    assert_eq!(orderbook("BTC").await, Ok(300));
    assert_eq!(orderbook("BTC").await, Ok(300), "a hit calls nothing");
    assert_eq!(SOURCE_CALLS.load(Ordering::SeqCst), 1);

    SOURCE_UP.store(false, Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(10)).await;
    // Stale, the refresh fails after its retries: the stale value is served.
    assert_eq!(orderbook("BTC").await, Ok(300));
    assert_eq!(SOURCE_CALLS.load(Ordering::SeqCst), 3);
    assert_eq!(orderbook("BTC").await, Ok(300));
    // The breaker opened after 4 failed attempts: the next refresh is rejected, still stale.
    assert_eq!(orderbook("BTC").await, Ok(300));
    assert_eq!(SOURCE_CALLS.load(Ordering::SeqCst), 5);
    let stats = cache_registry().snapshot("cached_outage").unwrap();
    assert!(stats.stale_if_error >= 3, "{stats:?}");
    // A key never loaded has nothing stale to fall back on.
    assert!(matches!(orderbook("ETH").await, Err(ApiError::Rejected(_))));

    SOURCE_UP.store(true, Ordering::SeqCst);
    reliable_runtime::registry::breaker_registry()
        .get("cached_outage")
        .unwrap()
        .reset();
    assert_eq!(orderbook("BTC").await, Ok(300));
    assert_eq!(orderbook("ETH").await, Ok(300));
}

/// Loads counted per test fn, each failing after 20 ms (paused time).
static CLONE_LOADS: AtomicU32 = AtomicU32::new(0);
static REJECTING_LOADS: AtomicU32 = AtomicU32::new(0);
static ALONE_LOADS: AtomicU32 = AtomicU32::new(0);

async fn fail_after_20ms(loads: &AtomicU32) {
    loads.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(20)).await;
}

/// `Clone`: the waiting callers get a clone of the one load's error.
#[cached(ttl = 5, key = symbol, name = "cached_shared_clone")]
async fn shared_clone(symbol: &str) -> Result<u64, ApiError> {
    let _ = symbol;
    fail_after_20ms(&CLONE_LOADS).await;
    Err(ApiError::Down)
}

/// Not `Clone`, but holds a `Rejected` (a breaker is on the fn): the waiting callers get
/// `Rejected::LoadFailed`.
#[derive(Debug)]
enum TransportError {
    Io(std::io::Error),
    Rejected(Rejected),
}

impl From<Rejected> for TransportError {
    fn from(rejected: Rejected) -> Self {
        TransportError::Rejected(rejected)
    }
}

#[circuit_breaker(name = "cached_shared_rejecting", failure_threshold = 1000)]
#[cached(ttl = 5, key = symbol, name = "cached_shared_rejecting")]
async fn shared_rejecting(symbol: &str) -> Result<u64, TransportError> {
    let _ = symbol;
    fail_after_20ms(&REJECTING_LOADS).await;
    Err(TransportError::Io(
        std::io::ErrorKind::ConnectionReset.into(),
    ))
}

/// Neither: the waiting callers load on their own, all at once rather than one after another.
#[cached(ttl = 5, key = symbol, name = "cached_load_alone")]
async fn load_alone(symbol: &str) -> Result<u64, std::io::Error> {
    let _ = symbol;
    fail_after_20ms(&ALONE_LOADS).await;
    Err(std::io::ErrorKind::ConnectionReset.into())
}

/// Runs `calls` (callers of one key) at once; their results and when each finished.
async fn all_at_once<T, F>(calls: impl Iterator<Item = F>) -> Vec<(T, Duration)>
where
    T: Send + 'static,
    F: std::future::Future<Output = T> + Send + 'static,
{
    let start = tokio::time::Instant::now();
    let tasks: Vec<_> = calls
        .map(|call| tokio::spawn(async move { (call.await, start.elapsed()) }))
        .collect();
    let mut finished = Vec::new();
    for task in tasks {
        finished.push(task.await.unwrap());
    }
    finished
}

#[tokio::test(start_paused = true)]
async fn waiting_callers_share_a_failed_load_by_the_error_type() {
    let cloned = all_at_once((0..10).map(|_| shared_clone("BTC"))).await;
    assert_eq!(CLONE_LOADS.load(Ordering::Relaxed), 1);
    for (result, at) in cloned {
        assert_eq!(result, Err(ApiError::Down));
        assert_eq!(at, Duration::from_millis(20));
    }

    let rejecting = all_at_once((0..10).map(|_| shared_rejecting("BTC"))).await;
    assert_eq!(REJECTING_LOADS.load(Ordering::Relaxed), 1);
    let load_failed = rejecting
        .iter()
        .filter(|(result, _)| {
            matches!(
                result,
                Err(TransportError::Rejected(Rejected::LoadFailed {
                    cache: "cached_shared_rejecting"
                }))
            )
        })
        .count();
    assert_eq!(load_failed, 9);
    let own_error = rejecting
        .iter()
        .filter(|(result, _)| {
            matches!(result, Err(TransportError::Io(error)) if error.kind() == std::io::ErrorKind::ConnectionReset)
        })
        .count();
    assert_eq!(own_error, 1, "the leader gets the load's own error");
    assert!(rejecting
        .iter()
        .all(|(_, at)| *at == Duration::from_millis(20)));

    let alone = all_at_once((0..10).map(|_| load_alone("BTC"))).await;
    assert_eq!(ALONE_LOADS.load(Ordering::Relaxed), 10);
    // Once the first load failed, the nine others ran together: 40 ms, not 200.
    assert!(alone
        .iter()
        .all(|(result, at)| result.is_err() && *at <= Duration::from_millis(40)));
}
