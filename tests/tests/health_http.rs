//! The health endpoints over real HTTP on loopback: routes and shapes, the status code that
//! follows the health, malformed queries, and a flood past the per-client limit.

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reliable_runtime::alert::{alert_manager, Alert, Severity};
use reliable_runtime::health::HealthEndpoints;
use reliable_runtime::registry::sla_registry;
use reliable_runtime::sla::SlaThresholds;
use serde_json::Value;
use std::net::SocketAddr;

mod support;

use support::serve_health as serve;

/// `GET path`: the status, the `Retry-After` header if any, and the JSON body.
async fn get(address: SocketAddr, path: &str) -> (StatusCode, Option<String>, Value) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client
        .get(format!("http://{address}{path}").parse().unwrap())
        .await
        .unwrap();
    let status = response.status();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|value| value.to_str().unwrap().to_owned());
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&body).unwrap_or_else(|error| {
        panic!(
            "{path}: not JSON ({error}): {}",
            String::from_utf8_lossy(&body)
        )
    });
    (status, retry_after, json)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_routes_answer_with_the_health_and_its_status_code() {
    let address = serve(HealthEndpoints::default().per_minute(1_000)).await;

    let (status, _, live) = get(address, "/api/health/live").await;
    assert_eq!(
        (status, live["status"].as_str()),
        (StatusCode::OK, Some("alive"))
    );

    let healthy = sla_registry()
        .get_or_create("http_only_source", SlaThresholds::cex())
        .unwrap();
    healthy.finish(healthy.start(), false);
    let (status, _, overview) = get(address, "/api/health/overview").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(overview["overall_status"], "HEALTHY");
    assert_eq!(
        overview["healthy_sources"],
        serde_json::json!(["http_only_source"])
    );
    assert_eq!(overview["failed_sources"], serde_json::json!([]));
    let timestamp = overview["timestamp"].as_str().unwrap();
    assert!(
        timestamp.ends_with('Z') && timestamp.contains('T'),
        "{timestamp}"
    );

    // Its only source FAILED: the whole is FAILED, and a load balancer sees 503.
    for _ in 0..3 {
        healthy.finish(healthy.start(), true);
    }
    let (status, _, overview) = get(address, "/api/health").await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(overview["overall_status"], "FAILED");
    assert_eq!(
        overview["failed_sources"],
        serde_json::json!(["http_only_source"])
    );

    for n in 0..3 {
        alert_manager().raise(Alert::new("http_alerts", Severity::Info, n.to_string()));
    }
    let (status, _, alerts) = get(address, "/api/health/alerts?limit=2").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(alerts["count"], 2);
    assert_eq!(alerts["alerts"].as_array().unwrap().len(), 2);
    assert!(alerts["timestamp"].is_string());

    for path in [
        "/api/health/exchanges",
        "/api/health/breakers",
        "/api/health/caches",
        "/api/health/limits",
    ] {
        let (status, _, body) = get(address, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert!(body["timestamp"].is_string(), "{path}: {body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_query_is_a_400_with_a_json_error() {
    let address = serve(HealthEndpoints::default().per_minute(1_000)).await;
    for query in [
        "limit=abc",
        "limit=-1",
        "limit=0",
        "limit=100000000000000000000000",
        "limit=",
        "verbose=1",
    ] {
        let (status, _, body) = get(address, &format!("/api/health/alerts?{query}")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query}");
        assert!(
            body["error"].as_str().unwrap().contains('`'),
            "{query}: {body}"
        );
    }
    let most = alert_manager().history_capacity();
    let (status, _, _) = get(address, &format!("/api/health/alerts?limit={}", most + 1)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "above the history's size");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_is_refused_with_429_and_retry_after_while_liveness_answers() {
    let address = serve(HealthEndpoints::default().per_minute(5)).await;
    for n in 0..5 {
        let (status, _, _) = get(address, "/api/health/breakers").await;
        assert_eq!(status, StatusCode::OK, "request {n}");
    }
    for _ in 0..20 {
        let (status, retry_after, body) = get(address, "/api/health/overview").await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let seconds: u64 = retry_after.expect("a Retry-After").parse().unwrap();
        assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
        assert!(body["error"].is_string());
    }
    let (status, _, _) = get(address, "/api/health/live").await;
    assert_eq!(status, StatusCode::OK, "liveness is never limited");
}
