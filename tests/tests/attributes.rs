//! The attributes on every supported fn shape, names, pipeline order and hygiene.

use reliable_runtime::breaker::{BreakerConfig, BreakerState};
use reliable_runtime::clock::Clock;
use reliable_runtime::registry::{breaker_registry, sla_registry};
use reliable_runtime::{circuit_breaker, monitored, Rejected};
use std::fmt::Display;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, PartialEq)]
enum ApiError {
    Server(u16),
    Client(u16),
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

fn is_server_error(error: &ApiError) -> bool {
    matches!(error, ApiError::Server(_))
}

/// Doc comments and other attributes stay on the fn.
#[monitored]
#[circuit_breaker]
#[inline]
async fn free_async(fail: bool) -> Result<u32, ApiError> {
    if fail {
        return Err(ApiError::Server(503));
    }
    Ok(1)
}

#[monitored(name = "attributes_sync", p95 = "250ms", window = 10)]
fn free_sync(value: u32) -> u32 {
    value * 2
}

#[circuit_breaker(name = "attributes_sync_breaker", failure_threshold = 2)]
fn sync_breaker(fail: bool) -> Result<u32, ApiError> {
    let value = if fail {
        Err(ApiError::Server(500))
    } else {
        Ok(3)
    }?;
    Ok(value)
}

struct Client {
    calls: u32,
    prefix: String,
}

impl Client {
    #[monitored(name = "attributes_ref_self")]
    async fn by_ref(&self, symbol: &str) -> Result<String, ApiError> {
        Ok(format!("{}{symbol}", self.prefix))
    }

    #[circuit_breaker(name = "attributes_mut_self", failure_threshold = 3, timeout = "1m")]
    async fn by_mut(&mut self) -> Result<u32, ApiError> {
        self.calls += 1;
        Ok(self.calls)
    }

    #[monitored]
    #[circuit_breaker]
    async fn by_arc(self: Arc<Self>, extra: u32) -> Result<u32, ApiError> {
        Ok(self.calls + extra)
    }

    #[circuit_breaker(name = "attributes_generic")]
    async fn generic<T: Display + Send>(&self, value: T) -> Result<String, ApiError> {
        Ok(value.to_string())
    }

    #[monitored(name = "attributes_where")]
    async fn with_where<T>(&self, values: Vec<T>) -> Result<usize, ApiError>
    where
        T: Clone + Send,
    {
        Ok(values.to_vec().len())
    }

    #[circuit_breaker(name = "attributes_lifetime")]
    async fn with_lifetime<'a>(&self, text: &'a str) -> Result<&'a str, ApiError> {
        Ok(text.trim())
    }

    #[monitored(name = "attributes_impl_arg")]
    #[circuit_breaker(name = "attributes_impl_arg")]
    async fn impl_arg(&self, name: impl AsRef<str> + Send) -> Result<usize, ApiError> {
        Ok(name.as_ref().len())
    }

    #[monitored(name = "attributes_sync_method")]
    fn sync_method(&mut self) -> u32 {
        self.calls += 1;
        self.calls
    }

    #[circuit_breaker(name = "attributes_classified", failure_threshold = 1, failure_if = is_server_error)]
    async fn classified(&self, status: u16) -> Result<(), ApiError> {
        match status {
            500.. => Err(ApiError::Server(status)),
            400.. => Err(ApiError::Client(status)),
            _ => Ok(()),
        }
    }

    #[monitored(name = "attributes_returns_impl")]
    fn returns_impl(&self) -> impl Iterator<Item = u32> {
        vec![1, 2, 3].into_iter()
    }
}

trait Api {
    async fn fetch(&self) -> Result<u32, ApiError>;
}

impl Api for Client {
    #[circuit_breaker(name = "attributes_trait_impl")]
    async fn fetch(&self) -> Result<u32, ApiError> {
        Ok(7)
    }
}

fn client() -> Client {
    Client {
        calls: 0,
        prefix: "binance:".into(),
    }
}

#[tokio::test]
async fn every_fn_shape_works_and_keeps_its_behaviour() {
    assert_eq!(free_async(false).await, Ok(1));
    assert_eq!(free_sync(21), 42);
    assert_eq!(sync_breaker(false), Ok(3));
    let mut client = client();
    assert_eq!(client.by_ref("BTC").await.unwrap(), "binance:BTC");
    assert_eq!(client.by_mut().await, Ok(1));
    assert_eq!(client.by_mut().await, Ok(2));
    assert_eq!(client.generic(3.5).await.unwrap(), "3.5");
    assert_eq!(client.with_where(vec!['a', 'b']).await, Ok(2));
    assert_eq!(client.with_lifetime("  x ").await, Ok("x"));
    assert_eq!(client.impl_arg("abcd").await, Ok(4));
    assert_eq!(client.sync_method(), 3);
    assert_eq!(client.returns_impl().sum::<u32>(), 6);
    assert_eq!(client.fetch().await, Ok(7));
    assert_eq!(Arc::new(client).by_arc(10).await, Ok(13));

    assert_eq!(
        sla_registry()
            .get("attributes_sync")
            .unwrap()
            .metrics()
            .total_calls,
        1
    );
    assert_eq!(
        sla_registry()
            .get("attributes_returns_impl")
            .unwrap()
            .metrics()
            .total_calls,
        1
    );
    assert!(breaker_registry().get("attributes_trait_impl").is_some());
}

#[tokio::test]
async fn default_names_are_the_function_paths() {
    free_async(false).await.unwrap();
    Arc::new(client()).by_arc(1).await.unwrap();
    assert!(sla_registry().get("attributes::free_async").is_some());
    assert!(breaker_registry().get("attributes::free_async").is_some());
    assert!(breaker_registry()
        .get("attributes::Client::by_arc")
        .is_some());
    assert!(sla_registry().get("attributes::Client::by_arc").is_some());
}

#[tokio::test]
async fn failure_if_decides_what_counts() {
    let client = client();
    for _ in 0..5 {
        assert_eq!(client.classified(404).await, Err(ApiError::Client(404)));
    }
    let breaker = breaker_registry().get("attributes_classified").unwrap();
    assert_eq!(breaker.state(), BreakerState::Closed);
    assert_eq!(client.classified(503).await, Err(ApiError::Server(503)));
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(matches!(
        client.classified(200).await,
        Err(ApiError::Rejected(Rejected::CircuitOpen { breaker, .. })) if breaker == "attributes_classified"
    ));
}

#[test]
fn sync_breaker_opens_and_rejects_without_calling() {
    assert_eq!(sync_breaker(true), Err(ApiError::Server(500)));
    assert_eq!(sync_breaker(true), Err(ApiError::Server(500)));
    assert!(matches!(sync_breaker(false), Err(ApiError::Rejected(_))));
}

// The same stack written in both orders gives the same pipeline: breaker outside, monitor inside,
// so rejected calls never reach the monitor.
static BODY_RUNS_AB: AtomicU32 = AtomicU32::new(0);
static BODY_RUNS_BA: AtomicU32 = AtomicU32::new(0);

#[monitored(name = "order_ab_monitor")]
#[circuit_breaker(name = "order_ab_breaker", failure_threshold = 2)]
async fn order_ab() -> Result<(), ApiError> {
    BODY_RUNS_AB.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Server(500))
}

#[circuit_breaker(name = "order_ba_breaker", failure_threshold = 2)]
#[monitored(name = "order_ba_monitor")]
async fn order_ba() -> Result<(), ApiError> {
    BODY_RUNS_BA.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Server(500))
}

#[tokio::test]
async fn attribute_order_does_not_change_the_pipeline() {
    let mut outcomes = Vec::new();
    for _ in 0..5 {
        outcomes.push((
            matches!(order_ab().await, Err(ApiError::Rejected(_))),
            matches!(order_ba().await, Err(ApiError::Rejected(_))),
        ));
    }
    assert_eq!(
        outcomes,
        vec![
            (false, false),
            (false, false),
            (true, true),
            (true, true),
            (true, true)
        ]
    );
    assert_eq!(BODY_RUNS_AB.load(Ordering::SeqCst), 2);
    assert_eq!(BODY_RUNS_BA.load(Ordering::SeqCst), 2);
    for name in ["order_ab_monitor", "order_ba_monitor"] {
        let metrics = sla_registry().get(name).unwrap().metrics();
        assert_eq!(
            (metrics.total_calls, metrics.total_failures),
            (2, 2),
            "{name}"
        );
    }
}

#[circuit_breaker(name = "attributes_preregistered", failure_threshold = 1)]
async fn preregistered(fail: bool) -> Result<(), ApiError> {
    if fail {
        Err(ApiError::Server(502))
    } else {
        Ok(())
    }
}

#[tokio::test]
async fn a_registered_breaker_with_a_manual_clock_is_used_by_the_attribute() {
    let (clock, hand) = Clock::manual();
    let breaker = breaker_registry()
        .get_or_create(
            "attributes_preregistered",
            BreakerConfig::cex()
                .failure_threshold(1)
                .success_threshold(1)
                .timeout(Duration::from_secs(5))
                .clock(clock),
        )
        .unwrap();
    preregistered(true).await.unwrap_err();
    assert_eq!(breaker.state(), BreakerState::Open);
    assert!(matches!(
        preregistered(false).await,
        Err(ApiError::Rejected(_))
    ));
    hand.advance(Duration::from_secs(5));
    assert_eq!(preregistered(false).await, Ok(()));
    assert_eq!(breaker.state(), BreakerState::Closed);
}

#[monitored(name = "attributes_panics")]
fn panics(boom: bool) -> u32 {
    assert!(!boom, "boom");
    1
}

#[test]
fn a_panicking_call_counts_as_a_failure_and_still_panics() {
    assert_eq!(panics(false), 1);
    let result = std::panic::catch_unwind(|| panics(true));
    assert!(result.is_err());
    let metrics = sla_registry().get("attributes_panics").unwrap().metrics();
    assert_eq!((metrics.total_calls, metrics.total_failures), (2, 1));
}

/// `crate = path` for a renamed dependency.
mod renamed {
    use reliable_runtime as my_reliable;

    #[my_reliable::monitored(crate = my_reliable, name = "attributes_renamed")]
    pub(crate) async fn renamed() -> u8 {
        5
    }
}

/// A local module named like the runtime does not capture the generated paths.
mod hygiene {
    #[allow(dead_code)]
    mod reliable_runtime {}

    #[::reliable_runtime::monitored(name = "attributes_hygiene")]
    #[::reliable_runtime::circuit_breaker(name = "attributes_hygiene")]
    pub(crate) async fn shadowed() -> Result<u8, super::ApiError> {
        let __reliable_monitor = 1u8; // a user local with our prefix does not clash either
        Ok(__reliable_monitor)
    }
}

#[tokio::test]
async fn renamed_crate_and_hygiene() {
    assert_eq!(renamed::renamed().await, 5);
    assert_eq!(hygiene::shadowed().await, Ok(1));
    assert!(sla_registry().get("attributes_renamed").is_some());
    assert!(breaker_registry().get("attributes_hygiene").is_some());
}

/// The futures stay `Send`, so they can be spawned on a multi-threaded runtime.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn futures_are_send() {
    let handle = tokio::spawn(async { free_async(false).await });
    assert_eq!(handle.await.unwrap(), Ok(1));
    let client = Arc::new(client());
    let handle = tokio::spawn(async move { client.generic(1).await });
    assert_eq!(handle.await.unwrap().unwrap(), "1");
}

// Five failures within the last ten calls, none of them in a row long enough for the
// consecutive rule (off here): the window rule opens the breaker on the third.
#[circuit_breaker(
    name = "attributes_window_failures",
    window_failures = 3,
    window = 10,
    failure_threshold = 0
)]
async fn flaky(fail: bool) -> Result<(), ApiError> {
    if fail {
        Err(ApiError::Server(503))
    } else {
        Ok(())
    }
}

#[tokio::test]
async fn failures_within_the_window_open_the_breaker() {
    let breaker = || {
        breaker_registry()
            .get("attributes_window_failures")
            .unwrap()
    };
    for fail in [true, false, true, false, false] {
        let _ = flaky(fail).await;
    }
    assert_eq!(breaker().state(), BreakerState::Closed);
    assert_eq!(flaky(true).await, Err(ApiError::Server(503)));
    assert_eq!(breaker().state(), BreakerState::Open);
    assert!(matches!(flaky(false).await, Err(ApiError::Rejected(_))));
}
