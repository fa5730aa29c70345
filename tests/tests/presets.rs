//! Presets: the built-ins carry the reference tables' numbers, every number can be overridden in
//! the attribute, and users' own presets (consts or registered names) apply the same way.

use reliable_runtime::breaker::BreakerConfig;
use reliable_runtime::cache::{CacheConfig, CachePolicy};
use reliable_runtime::health::{group_health, DegradationLevel, GroupSource};
use reliable_runtime::preset::{register_preset, Preset, CEX, DEX, TWITTER};
use reliable_runtime::registry::{breaker_registry, retry_registry, sla_registry};
use reliable_runtime::sla::{SlaMetrics, SlaStatus};
use reliable_runtime::{
    reliable, reliable_cex_call, reliable_dex_call, reliable_twitter_call, Rejected,
};
use std::time::Duration;

#[derive(Debug, PartialEq)]
struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

fn secs(seconds: f64) -> Duration {
    Duration::from_secs_f64(seconds)
}

#[test]
fn built_in_presets_carry_the_reference_tables() {
    // (preset, p95, p99, min success, max failures, breaker failures, open, successes,
    //  cache TTL, min, max)
    let rows = [
        (CEX, 1.0, 2.0, 0.95, 3, 5, 30.0, 2, 5.0, 2.0, 15.0),
        (DEX, 3.0, 5.0, 0.90, 5, 10, 60.0, 3, 30.0, 10.0, 120.0),
        (TWITTER, 5.0, 10.0, 0.85, 3, 3, 120.0, 1, 300.0, 60.0, 900.0),
    ];
    for (preset, p95, p99, success, failures, trips, open, closes, ttl, min, max) in rows {
        let sla = (preset.sla)();
        assert_eq!(sla.max_latency_p95, secs(p95));
        assert_eq!(sla.max_latency_p99, secs(p99));
        assert_eq!(sla.min_success_rate, success);
        assert_eq!(sla.max_consecutive_failures, failures);
        let breaker = (preset.breaker)();
        assert_eq!(breaker.failure_threshold, trips);
        assert_eq!(breaker.timeout, secs(open));
        assert_eq!(breaker.success_threshold, closes);
        let cache = (preset.cache)();
        assert_eq!(cache.ttl, secs(ttl));
        assert_eq!(cache.min_ttl, secs(min));
        assert_eq!(cache.max_ttl, secs(max));
        assert_eq!(cache.policy, CachePolicy::Adaptive);
    }
    assert_eq!((CEX.backoff)().max_attempts, 3);
    assert_eq!((DEX.backoff)().max_attempts, 4);
    assert_eq!((TWITTER.backoff)().initial_delay, secs(2.0));
}

#[reliable_cex_call(name = "preset_cex_defaults", key = symbol.to_owned())]
async fn cex_defaults(symbol: &str) -> Result<usize, ApiError> {
    Ok(symbol.len())
}

#[reliable_dex_call(
    name = "preset_dex_overrides",
    key = pair.to_owned(),
    cache_ttl = 7,
    failure_threshold = 2,
    max_attempts = 2,
    p95 = "250ms",
    group = "preset_dexscreener"
)]
async fn dex_overrides(pair: &str) -> Result<usize, ApiError> {
    Ok(pair.len())
}

#[reliable_twitter_call(name = "preset_twitter_sync", cache = false, breaker_timeout = "10s")]
fn twitter_sync(query: &str) -> Result<usize, ApiError> {
    Ok(query.len())
}

#[tokio::test]
async fn the_attribute_builds_every_layer_from_the_preset() {
    assert_eq!(cex_defaults("BTCUSDT").await, Ok(7));
    let breaker = breaker_registry().get("preset_cex_defaults").unwrap();
    assert_eq!(breaker.config().failure_threshold, 5);
    assert_eq!(breaker.config().timeout, secs(30.0));
    let monitor = sla_registry().get("preset_cex_defaults").unwrap();
    assert_eq!(monitor.thresholds().max_latency_p95, secs(1.0));
    let retry = retry_registry().get("preset_cex_defaults").unwrap();
    assert_eq!(retry.config().backoff.max_attempts, 3);
    let cache = reliable_runtime::registry::cache_registry()
        .get_or_create::<String, usize>("preset_cex_defaults", CacheConfig::default())
        .unwrap()
        .expect("the preset made this cache with these types");
    assert_eq!(cache.config().ttl, secs(5.0));
    assert_eq!(cache.config().policy, CachePolicy::Adaptive);
}

#[tokio::test]
async fn overrides_apply_on_top_of_the_preset() {
    assert_eq!(dex_overrides("SOL/USDC").await, Ok(8));
    let breaker = breaker_registry().get("preset_dex_overrides").unwrap();
    assert_eq!(breaker.config().failure_threshold, 2, "overridden");
    assert_eq!(breaker.config().timeout, secs(60.0), "from the preset");
    assert_eq!(breaker.group(), Some("preset_dexscreener"));
    let monitor = sla_registry().get("preset_dex_overrides").unwrap();
    assert_eq!(
        monitor.thresholds().max_latency_p95,
        secs(0.25),
        "overridden"
    );
    assert_eq!(
        monitor.thresholds().max_latency_p99,
        secs(5.0),
        "from the preset"
    );
    assert_eq!(monitor.group(), Some("preset_dexscreener"));
    let retry = retry_registry().get("preset_dex_overrides").unwrap();
    assert_eq!(retry.config().backoff.max_attempts, 2, "overridden");
    assert_eq!(
        retry.config().backoff.max_delay,
        secs(30.0),
        "from the preset"
    );
    let cache = reliable_runtime::registry::cache_registry()
        .get_or_create::<String, usize>("preset_dex_overrides", CacheConfig::default())
        .unwrap()
        .unwrap();
    assert_eq!(cache.config().ttl, secs(7.0), "overridden");
    assert_eq!(
        cache.config().policy,
        CachePolicy::Adaptive,
        "from the preset"
    );

    assert_eq!(twitter_sync("$SOL"), Ok(4));
    let breaker = breaker_registry().get("preset_twitter_sync").unwrap();
    assert_eq!(breaker.config().timeout, secs(10.0));
    assert_eq!(breaker.config().failure_threshold, 3);
    assert!(reliable_runtime::registry::cache_registry()
        .snapshot("preset_twitter_sync")
        .is_none());
}

/// A user's preset: the CEX numbers with a touchier breaker.
const TOUCHY: Preset = CEX.breaker(|| BreakerConfig::cex().failure_threshold(1));

#[reliable(preset = TOUCHY, name = "preset_const", cache = false, max_attempts = 1)]
async fn with_const_preset(fail: bool) -> Result<u8, ApiError> {
    if fail {
        Err(ApiError)
    } else {
        Ok(1)
    }
}

#[reliable(
    preset = "preset_test_registered",
    name = "preset_registered",
    cache = false
)]
async fn with_registered_preset() -> Result<u8, ApiError> {
    Ok(2)
}

#[tokio::test]
async fn users_define_presets_as_consts_or_names() {
    assert_eq!(with_const_preset(true).await, Err(ApiError));
    assert_eq!(
        with_const_preset(false).await,
        Err(ApiError),
        "one failure opened it"
    );
    assert_eq!(
        breaker_registry()
            .get("preset_const")
            .unwrap()
            .config()
            .failure_threshold,
        1
    );

    register_preset(
        "preset_test_registered",
        DEX.breaker(|| BreakerConfig::default().failure_threshold(42)),
    )
    .unwrap();
    assert_eq!(with_registered_preset().await, Ok(2));
    let breaker = breaker_registry().get("preset_registered").unwrap();
    assert_eq!(breaker.config().failure_threshold, 42);
    let monitor = sla_registry().get("preset_registered").unwrap();
    assert_eq!(monitor.thresholds().max_latency_p95, secs(3.0), "DEX's SLA");
}

fn metrics(status: SlaStatus, p95: f64, success_rate: f64) -> SlaMetrics {
    SlaMetrics {
        status,
        latency_p50: p95,
        latency_p95: p95,
        latency_p99: p95,
        latency_mean: p95,
        success_rate,
        window_calls: 100,
        total_calls: 100,
        total_failures: 0,
        consecutive_failures: 0,
    }
}

type Sources = [(String, SlaMetrics, Option<String>)];

fn groups(
    sources: &Sources,
    breakers: &[reliable_runtime::breaker::BreakerSnapshot],
) -> std::collections::BTreeMap<String, reliable_runtime::health::GroupHealth> {
    group_health(
        sources
            .iter()
            .map(|(name, metrics, group)| (name.as_str(), metrics, group.as_deref())),
        breakers,
    )
}

#[test]
fn degradation_score_matches_hand_computed_cases() {
    use reliable_runtime::breaker::BreakerState;
    let group = Some("binance".to_owned());
    let sources = vec![
        (
            "orderbook".to_owned(),
            metrics(SlaStatus::Healthy, 0.4, 1.0),
            group.clone(),
        ),
        (
            "futures".to_owned(),
            metrics(SlaStatus::Healthy, 0.6, 0.98),
            group.clone(),
        ),
        (
            "lonely".to_owned(),
            metrics(SlaStatus::Failed, 9.0, 0.0),
            None,
        ),
    ];
    let healthy = &groups(&sources, &[])["binance"];
    // (1 − 0.99) × 0.1
    assert!(
        (healthy.degradation_score - 0.001).abs() < 1e-9,
        "{healthy:?}"
    );
    assert_eq!(healthy.avg_latency_p95, 0.5);
    assert_eq!(healthy.avg_success_rate, 0.99);
    assert_eq!(healthy.degradation_level, DegradationLevel::None);
    assert_eq!(healthy.overall_status, SlaStatus::Healthy);
    assert_eq!(healthy.circuit_breaker_state, "CLOSED");
    assert_eq!(
        healthy.sources[0],
        GroupSource {
            name: "orderbook".into(),
            status: SlaStatus::Healthy,
            latency_p95: 0.4,
            success_rate: 1.0
        }
    );

    // One of four failed, one degraded, one of two breakers open, success 0.7 on average:
    // 0.25 × 0.5 + 0.25 × 0.3 + 0.5 × 0.2 + 0.3 × 0.1 = 0.33
    let sources: Vec<_> = [
        (SlaStatus::Failed, 0.4),
        (SlaStatus::Degraded, 0.8),
        (SlaStatus::Healthy, 0.8),
        (SlaStatus::Healthy, 0.8),
    ]
    .into_iter()
    .enumerate()
    .map(|(i, (status, rate))| (format!("s{i}"), metrics(status, 1.0, rate), group.clone()))
    .collect();
    let breaker = |state: BreakerState| {
        let mut snapshot = reliable_runtime::breaker::CircuitBreaker::new(
            "score_breaker",
            BreakerConfig::default(),
        )
        .unwrap()
        .snapshot();
        snapshot.state = state;
        snapshot.group = Some("binance".into());
        snapshot
    };
    let breakers = [breaker(BreakerState::Open), breaker(BreakerState::Closed)];
    let moderate = &groups(&sources, &breakers)["binance"];
    assert!(
        (moderate.degradation_score - 0.33).abs() < 1e-9,
        "{moderate:?}"
    );
    assert_eq!(moderate.degradation_level, DegradationLevel::Moderate);
    assert_eq!(moderate.overall_status, SlaStatus::Degraded);
    assert_eq!(moderate.circuit_breaker_state, "OPEN");

    // Everything failed and open: 0.5 + 0.2 + 0.1 = 0.8, severe.
    let sources = vec![(
        "down".to_owned(),
        metrics(SlaStatus::Failed, 0.0, 0.0),
        group.clone(),
    )];
    let severe = &groups(&sources, &[breaker(BreakerState::Open)])["binance"];
    assert!((severe.degradation_score - 0.8).abs() < 1e-9);
    assert_eq!(severe.degradation_level, DegradationLevel::Severe);
    assert_eq!(severe.overall_status, SlaStatus::Failed);

    // A half-open breaker alone: 0.5 × 0.2 = 0.1, minor.
    let minor = &groups(&[], &[breaker(BreakerState::HalfOpen)])["binance"];
    assert!((minor.degradation_score - 0.1).abs() < 1e-9);
    assert_eq!(minor.degradation_level, DegradationLevel::Minor);
    assert_eq!(minor.circuit_breaker_state, "HALF_OPEN");
    assert_eq!(minor.overall_status, SlaStatus::Degraded);
}

// Per-layer names on a preset attribute: endpoints share the exchange's breaker, each keeps its
// own monitor, and the cache and retries are named for health.
#[reliable_cex_call(
    key = symbol.to_owned(),
    breaker = "preset_named_exchange",
    monitor = "preset_named_ticker",
    cache = "preset_named_tickers",
    retry = "preset_named_retries"
)]
async fn named_ticker(symbol: &str) -> Result<f64, ApiError> {
    Ok(symbol.len() as f64)
}

#[reliable_cex_call(
    name = "preset_named_book",
    key = symbol.to_owned(),
    breaker = "preset_named_exchange"
)]
async fn named_book(symbol: &str) -> Result<f64, ApiError> {
    Ok(symbol.len() as f64 * 2.0)
}

#[tokio::test]
async fn preset_layers_take_their_own_names() {
    assert_eq!(named_ticker("BTC").await, Ok(3.0));
    assert_eq!(named_book("BTC").await, Ok(6.0));
    let shared = breaker_registry().get("preset_named_exchange").unwrap();
    assert_eq!(
        shared.config().failure_threshold,
        5,
        "the CEX preset's breaker"
    );
    assert_eq!(
        sla_registry()
            .get("preset_named_ticker")
            .unwrap()
            .metrics()
            .total_calls,
        1
    );
    // `name` names the other layers; `breaker` overrides it for the breaker.
    assert_eq!(
        sla_registry()
            .get("preset_named_book")
            .unwrap()
            .metrics()
            .total_calls,
        1
    );
    assert!(breaker_registry().get("preset_named_book").is_none());
    assert!(retry_registry().get("preset_named_retries").is_some());
    let health = reliable_runtime::get_system_health();
    assert!(health.cache_stats.contains_key("preset_named_tickers"));
    assert!(health.cache_stats.contains_key("preset_named_book"));
}

/// A custom preset the runtime refuses (no compile-time check sees a const's values).
const BROKEN: Preset = CEX.breaker(|| BreakerConfig::cex().success_threshold(0));

#[reliable(preset = BROKEN, name = "preset_broken", cache = false)]
async fn with_broken_preset(fail: bool) -> Result<u8, ApiError> {
    if fail {
        Err(ApiError)
    } else {
        Ok(1)
    }
}

#[tokio::test]
async fn a_refused_configuration_runs_the_fn_without_its_layers() {
    // Never a panic: the error is logged and the fn runs unprotected.
    assert_eq!(with_broken_preset(false).await, Ok(1));
    for _ in 0..10 {
        assert_eq!(with_broken_preset(true).await, Err(ApiError));
    }
    assert_eq!(with_broken_preset(false).await, Ok(1), "no breaker opened");
    // Nothing half-registered: the valid monitor and retry policy were not registered either.
    assert!(breaker_registry().get("preset_broken").is_none());
    assert!(sla_registry().get("preset_broken").is_none());
    assert!(retry_registry().get("preset_broken").is_none());
}
