//! Every configuration type reads from TOML and JSON with durations as people write them, and
//! refuses a field it does not know.

use reliable_runtime::breaker::{BreakerConfig, BreakerWindow};
use reliable_runtime::cache::CacheConfig;
use reliable_runtime::limit::{BulkheadConfig, RateLimit};
use reliable_runtime::retry::{BackoffConfig, RetryConfig};
use reliable_runtime::sla::SlaThresholds;
use std::time::Duration;

#[test]
fn a_breaker_reads_human_durations_from_toml_and_keeps_the_rest_default() {
    let config: BreakerConfig = toml::from_str(
        r#"
        failure_threshold = 3
        timeout = "20s"
        slow_call_duration = "1500ms"
        max_timeout = 600
        window = { time = "1m" }
        "#,
    )
    .unwrap();
    assert_eq!(config.failure_threshold, 3);
    assert_eq!(config.timeout, Duration::from_secs(20));
    assert_eq!(config.slow_call_duration, Duration::from_millis(1500));
    assert_eq!(config.max_timeout, Duration::from_secs(600));
    assert_eq!(config.window, BreakerWindow::Time(Duration::from_secs(60)));
    assert_eq!(
        config.success_threshold,
        BreakerConfig::default().success_threshold
    );
    config.validate().unwrap();
}

#[test]
fn every_configuration_reads_from_json_and_writes_back_the_same() {
    let sla: SlaThresholds = serde_json::from_str(
        r#"{"max_latency_p95": "800ms", "max_latency_p99": "2s", "min_success_rate": 0.9}"#,
    )
    .unwrap();
    assert_eq!(sla.max_latency_p95, Duration::from_millis(800));
    let retry: RetryConfig = serde_json::from_str(
        r#"{"backoff": {"max_attempts": 4, "initial_delay": "250ms", "jitter": "equal"}, "budget": {"ratio": 0.2, "window": "10s"}}"#,
    )
    .unwrap();
    assert_eq!(retry.backoff.max_attempts, 4);
    assert_eq!(retry.backoff.initial_delay, Duration::from_millis(250));
    assert_eq!(retry.budget.unwrap().window, Duration::from_secs(10));
    let bulkhead: BulkheadConfig =
        serde_json::from_str(r#"{"max_concurrent": 5, "max_wait": "100ms"}"#).unwrap();
    assert_eq!(bulkhead.max_wait, Duration::from_millis(100));
    let limit: RateLimit =
        serde_json::from_str(r#"{"limit": 1200, "window": "1m", "burst": 50}"#).unwrap();
    assert_eq!(
        limit,
        RateLimit {
            limit: 1200,
            window: Duration::from_secs(60),
            burst: Some(50)
        }
    );
    let cache: CacheConfig = serde_json::from_str(
        r#"{"ttl": "5s", "min_ttl": "2s", "max_ttl": "15s", "max_entries": 1000}"#,
    )
    .unwrap();
    assert_eq!(cache.ttl, Duration::from_secs(5));

    // Written back: durations in the largest exact unit, read back to the same values.
    let written = serde_json::to_value(&retry).unwrap();
    assert_eq!(written["backoff"]["initial_delay"], "250ms");
    let read: RetryConfig = serde_json::from_value(written).unwrap();
    assert_eq!(read.backoff, retry.backoff);
    let backoff: BackoffConfig =
        serde_json::from_str(&serde_json::to_string(&BackoffConfig::cex()).unwrap()).unwrap();
    assert_eq!(backoff, BackoffConfig::cex());
}

#[test]
fn an_unknown_field_or_a_bad_duration_is_an_error_naming_it() {
    let unknown = toml::from_str::<BreakerConfig>("failure_treshold = 3")
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("failure_treshold"), "{unknown}");
    assert!(unknown.contains("line 1"), "{unknown}");
    let unknown = serde_json::from_str::<SlaThresholds>(r#"{"p95": "1s"}"#)
        .unwrap_err()
        .to_string();
    assert!(unknown.contains("p95"), "{unknown}");
    let nested = serde_json::from_str::<RetryConfig>(r#"{"backoff": {"attempts": 3}}"#)
        .unwrap_err()
        .to_string();
    assert!(nested.contains("attempts"), "{nested}");
    let no_unit = toml::from_str::<BulkheadConfig>("max_concurrent = 5\nmax_wait = \"100\"")
        .unwrap_err()
        .to_string();
    assert!(
        no_unit.contains("has no unit") && no_unit.contains("line 2"),
        "{no_unit}"
    );
    let negative = serde_json::from_str::<BreakerConfig>(r#"{"timeout": -5}"#)
        .unwrap_err()
        .to_string();
    assert!(negative.contains("negative"), "{negative}");
}
