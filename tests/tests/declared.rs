//! A layer configured once, by name, and referred to elsewhere; two configurations of one name
//! are never a silent choice.

use reliable_runtime::breaker::BreakerConfig;
use reliable_runtime::event::{subscribe, Event};
use reliable_runtime::registry::{breaker_registry, sla_registry};
use reliable_runtime::{circuit_breaker, Policy, Rejected};
use std::time::Duration;

#[derive(Debug)]
struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[test]
fn a_policy_asking_other_settings_under_a_registered_name_is_refused_and_registers_nothing() {
    Policy::builder("declared_orderbook")
        .breaker("declared_binance", |breaker| breaker.failure_threshold(3))
        .build()
        .unwrap();

    let error = Policy::builder("declared_ticker")
        .monitor("declared_ticker_monitor", |sla| sla)
        .breaker("declared_binance", |breaker| {
            breaker
                .failure_threshold(3)
                .timeout(Duration::from_secs(90))
        })
        .build()
        .unwrap_err();

    assert_eq!(error.field(), "timeout");
    assert_eq!(error.layer(), Some("breaker `declared_binance`"));
    assert!(
        error
            .to_string()
            .contains("shared_breaker(\"declared_binance\")"),
        "{error}"
    );
    assert!(
        sla_registry().get("declared_ticker_monitor").is_none(),
        "nothing registered"
    );
    // The same settings again are the same instance; so is a reference by name.
    let again = Policy::builder("declared_depth")
        .breaker("declared_binance", |breaker| breaker.failure_threshold(3))
        .build()
        .unwrap();
    let shared = Policy::builder("declared_trades")
        .shared_breaker("declared_binance")
        .build()
        .unwrap();
    assert!(std::sync::Arc::ptr_eq(
        again.breaker().unwrap(),
        shared.breaker().unwrap()
    ));
}

#[test]
fn every_layer_kind_names_what_differs() {
    use reliable_runtime::limit::RateLimit;
    Policy::builder("declared_kinds")
        .retry("declared_kinds", |retry| retry.max_attempts(3))
        .rate_limit("declared_kinds", RateLimit::per_second(10))
        .named_timeout("declared_kinds", Duration::from_secs(2))
        .build()
        .unwrap();
    let retry = Policy::builder("declared_kinds_2")
        .retry("declared_kinds", |retry| retry.max_attempts(4))
        .build()
        .unwrap_err();
    assert_eq!(retry.field(), "backoff.max_attempts");
    let limit = Policy::builder("declared_kinds_3")
        .rate_limit("declared_kinds", RateLimit::per_second(20))
        .build()
        .unwrap_err();
    assert_eq!(limit.field(), "limit");
    let timeout = Policy::builder("declared_kinds_4")
        .named_timeout("declared_kinds", Duration::from_secs(3))
        .build()
        .unwrap_err();
    assert_eq!(timeout.field(), "after");
    assert!(timeout.to_string().contains(r#"after = "2s""#), "{timeout}");
}

/// Declared in code before any call; the endpoints name it and take its settings.
#[circuit_breaker(name = "declared_kraken")]
async fn kraken_ticker() -> Result<u32, ApiError> {
    Ok(1)
}

/// Asks for settings of its own under the declared name: it runs with the declared breaker, and
/// says so (a warning and an event), since a fn cannot refuse to run.
#[circuit_breaker(name = "declared_kraken", failure_threshold = 2)]
async fn kraken_depth() -> Result<u32, ApiError> {
    Ok(2)
}

#[tokio::test]
async fn attributes_take_the_declared_layer_and_report_a_conflicting_one() {
    let declared = breaker_registry()
        .get_or_create(
            "declared_kraken",
            BreakerConfig::default().failure_threshold(9),
        )
        .unwrap();
    let mut events = subscribe();

    assert_eq!(kraken_ticker().await.unwrap(), 1);
    assert_eq!(kraken_depth().await.unwrap(), 2);

    assert_eq!(
        declared.config().failure_threshold,
        9,
        "the declaration stands"
    );
    let conflicts: Vec<_> = std::iter::from_fn(|| events.try_recv().ok())
        .filter_map(|event| match event {
            Event::ConfigConflict(conflict) if &*conflict.name == "declared_kraken" => {
                Some(conflict)
            }
            _ => None,
        })
        .collect();
    assert_eq!(
        conflicts.len(),
        1,
        "only the fn that asked for settings: {conflicts:?}"
    );
    let conflict = &conflicts[0];
    assert_eq!(conflict.layer, "breaker");
    assert_eq!(conflict.field, "failure_threshold");
    assert_eq!(
        (conflict.registered.as_str(), conflict.requested.as_str()),
        ("9", "2")
    );
    // The attribute's `name` names its policy too.
    assert_eq!(&*conflict.policy, "declared_kraken");
}
