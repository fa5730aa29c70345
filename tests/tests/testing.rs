//! `testing::Scope`: tests sharing one binary (and its registries) each get their own
//! instances and clock.

use reliable_runtime::breaker::BreakerState;
use reliable_runtime::clock::Clock;
use reliable_runtime::registry::{breaker_registry, sla_registry};
use reliable_runtime::testing::{bind, Scope};
use reliable_runtime::{cached, circuit_breaker, get_system_health, monitored, Rejected};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
enum ApiError {
    Down,
    Refused,
}

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError::Refused
    }
}

#[monitored(name = "scoped_exchange")]
#[circuit_breaker(name = "scoped_exchange", failure_threshold = 2, timeout = "30s")]
async fn exchange(up: bool) -> Result<u32, ApiError> {
    if up {
        Ok(7)
    } else {
        Err(ApiError::Down)
    }
}

/// Many scopes at once on more threads than cores, half of them tripping the breaker: each
/// sees only its own calls, and nothing reaches the process-wide registries.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_scopes_each_see_their_own_instances() {
    for round in 0..20 {
        let tests: Vec<_> = (0..16)
            .map(|test| {
                tokio::spawn(Scope::new().run(async move {
                    let failing = test % 2 == 1;
                    for _ in 0..2 {
                        let _ = exchange(!failing).await;
                        tokio::task::yield_now().await; // moves between worker threads
                    }
                    let breaker = breaker_registry().get("scoped_exchange").unwrap();
                    let monitor = sla_registry().get("scoped_exchange").unwrap();
                    let expected = if failing {
                        BreakerState::Open
                    } else {
                        BreakerState::Closed
                    };
                    assert_eq!(breaker.state(), expected, "round {round}, test {test}");
                    assert_eq!(
                        monitor.metrics().total_calls,
                        2,
                        "round {round}, test {test}"
                    );
                    let health = get_system_health();
                    assert_eq!(health.circuit_breakers.len(), 1);
                    assert_eq!(health.circuit_breakers["scoped_exchange"].state, expected);
                    if failing {
                        assert_eq!(exchange(true).await, Err(ApiError::Refused));
                    }
                }))
            })
            .collect();
        for test in tests {
            test.await.unwrap();
        }
    }
    assert!(
        breaker_registry().get("scoped_exchange").is_none(),
        "outside every scope"
    );
}

#[tokio::test]
async fn a_scope_clock_drives_every_layer_without_restating_configurations() {
    let (clock, hand) = Clock::manual();
    Scope::new()
        .clock(clock)
        .run(async move {
            let _ = exchange(false).await;
            let _ = exchange(false).await;
            assert_eq!(exchange(true).await, Err(ApiError::Refused));
            hand.advance(Duration::from_secs(30));
            assert_eq!(
                exchange(true).await,
                Ok(7),
                "the probe after the scope's 30 s"
            );
            let breaker = breaker_registry().get("scoped_exchange").unwrap();
            assert_eq!(
                breaker.state(),
                BreakerState::HalfOpen,
                "one success of two"
            );
        })
        .await;
}

static LOADS: AtomicU32 = AtomicU32::new(0);

#[cached(ttl = 60, key = symbol, name = "scoped_prices")]
async fn price(symbol: u32) -> Result<u32, ApiError> {
    LOADS.fetch_add(1, Ordering::SeqCst);
    Ok(symbol * 10)
}

#[tokio::test]
async fn caches_clear_and_spawned_tasks_bind_to_the_scope() {
    let loads_before = LOADS.load(Ordering::SeqCst);
    Scope::new()
        .run(async {
            assert_eq!(price(1).await, Ok(10));
            assert_eq!(price(1).await, Ok(10));
            assert_eq!(get_system_health().cache_stats["scoped_prices"].hits, 1);
            // A spawned task sees the scope's cache only when bound to it.
            let bound = tokio::spawn(bind(async { price(1).await })).await.unwrap();
            assert_eq!(bound, Ok(10));
            assert_eq!(get_system_health().cache_stats["scoped_prices"].hits, 2);
        })
        .await;
    // A new scope starts with an empty cache: the value is loaded again.
    Scope::new()
        .run(async {
            assert_eq!(price(1).await, Ok(10));
            assert_eq!(get_system_health().cache_stats["scoped_prices"].hits, 0);
        })
        .await;
    // Only this test calls `price`: one load per scope.
    assert_eq!(LOADS.load(Ordering::SeqCst) - loads_before, 2);
}

#[test]
fn a_blocking_test_enters_a_scope_and_clear_starts_it_afresh() {
    #[circuit_breaker(name = "scoped_blocking", failure_threshold = 1)]
    fn blocking(up: bool) -> Result<u32, ApiError> {
        if up {
            Ok(1)
        } else {
            Err(ApiError::Down)
        }
    }

    let scope = Scope::new();
    let _in_scope = scope.enter();
    let _ = blocking(false);
    assert_eq!(blocking(true), Err(ApiError::Refused));
    scope.clear();
    assert_eq!(blocking(true), Ok(1), "a fresh breaker after clear");
}
