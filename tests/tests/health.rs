//! Health through the attributes: a scripted outage and recovery, read as JSON.

use reliable_runtime::breaker::BreakerConfig;
use reliable_runtime::clock::Clock;
use reliable_runtime::registry::breaker_registry;
use reliable_runtime::{circuit_breaker, get_system_health, monitored, Rejected};
use serde_json::Value;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Debug)]
enum ExchangeError {
    Down,
    Unavailable(Rejected),
}

impl From<Rejected> for ExchangeError {
    fn from(rejected: Rejected) -> Self {
        ExchangeError::Unavailable(rejected)
    }
}

static EXCHANGE_UP: AtomicBool = AtomicBool::new(true);

#[monitored(
    name = "health_orderbook",
    p95 = "1s",
    p99 = "2s",
    min_success_rate = 0.95,
    max_consecutive_failures = 3
)]
#[circuit_breaker(
    name = "health_exchange_api",
    failure_threshold = 5,
    timeout = 30,
    success_threshold = 2
)]
async fn fetch_orderbook(symbol: &str) -> Result<String, ExchangeError> {
    if EXCHANGE_UP.load(Ordering::SeqCst) {
        Ok(format!("book:{symbol}"))
    } else {
        Err(ExchangeError::Down)
    }
}

fn health_json() -> Value {
    serde_json::to_value(get_system_health()).unwrap()
}

#[tokio::test]
async fn outage_and_recovery_show_in_health_json() {
    // The breaker's clock is driven by hand: register it before the first call.
    let (clock, hand) = Clock::manual();
    breaker_registry()
        .get_or_create(
            "health_exchange_api",
            BreakerConfig::cex()
                .failure_threshold(5)
                .timeout(Duration::from_secs(30))
                .success_threshold(2)
                .clock(clock),
        )
        .unwrap();

    for _ in 0..20 {
        fetch_orderbook("BTCUSDT").await.unwrap();
    }
    let json = health_json();
    assert_eq!(json["overall_status"], "HEALTHY");
    assert_eq!(
        json["data_sources"]["health_orderbook"]["status"],
        "HEALTHY"
    );
    assert_eq!(
        json["data_sources"]["health_orderbook"]["success_rate"],
        1.0
    );
    assert_eq!(
        json["circuit_breakers"]["health_exchange_api"]["state"],
        "CLOSED"
    );
    assert_eq!(
        json["circuit_breakers"]["health_exchange_api"]["failure_count"],
        0
    );
    assert!(
        json["data_sources"]["health_orderbook"]["latency_p95"]
            .as_f64()
            .unwrap()
            < 1.0
    );
    assert!(json["cache_stats"].as_object().unwrap().is_empty());

    // Outage: five failures open the breaker; later calls are rejected without reaching the source.
    EXCHANGE_UP.store(false, Ordering::SeqCst);
    for _ in 0..5 {
        assert!(matches!(
            fetch_orderbook("BTCUSDT").await,
            Err(ExchangeError::Down)
        ));
    }
    for _ in 0..10 {
        assert!(matches!(
            fetch_orderbook("BTCUSDT").await,
            Err(ExchangeError::Unavailable(Rejected::CircuitOpen { .. }))
        ));
    }
    let json = health_json();
    assert_eq!(
        json["circuit_breakers"]["health_exchange_api"]["state"],
        "OPEN"
    );
    assert_eq!(
        json["circuit_breakers"]["health_exchange_api"]["failure_count"],
        5
    );
    assert_eq!(
        json["circuit_breakers"]["health_exchange_api"]["not_permitted_calls"],
        10
    );
    assert_eq!(json["data_sources"]["health_orderbook"]["status"], "FAILED");
    assert_eq!(
        json["data_sources"]["health_orderbook"]["consecutive_failures"],
        5
    );
    assert_eq!(
        json["data_sources"]["health_orderbook"]["total_calls"], 25,
        "rejected calls never reach the monitor"
    );
    assert_ne!(json["overall_status"], "HEALTHY");

    // Recovery: after the timeout, two good probes close the breaker.
    EXCHANGE_UP.store(true, Ordering::SeqCst);
    hand.advance(Duration::from_secs(30));
    fetch_orderbook("BTCUSDT").await.unwrap();
    assert_eq!(
        health_json()["circuit_breakers"]["health_exchange_api"]["state"],
        "HALF_OPEN"
    );
    fetch_orderbook("BTCUSDT").await.unwrap();
    let json = health_json();
    assert_eq!(
        json["circuit_breakers"]["health_exchange_api"]["state"],
        "CLOSED"
    );
    // 5 failures among the last 27 calls: below 95%, so still DEGRADED...
    assert_eq!(
        json["data_sources"]["health_orderbook"]["status"],
        "DEGRADED"
    );
    assert_eq!(json["overall_status"], "DEGRADED");
    // ...until the failures leave the 100-call window.
    for _ in 0..100 {
        fetch_orderbook("BTCUSDT").await.unwrap();
    }
    let json = health_json();
    assert_eq!(
        json["data_sources"]["health_orderbook"]["status"],
        "HEALTHY"
    );
    assert_eq!(json["overall_status"], "HEALTHY");
}
