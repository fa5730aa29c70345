//! The dashboard's routes over real HTTP on loopback: the page (self-contained, with a policy
//! that forbids loading anything from elsewhere), the data it draws, its own request budget,
//! and turning it off. (The page itself runs in a real browser in the examples' tests.)

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use reliable_runtime::health::HealthEndpoints;
use reliable_runtime::registry::{breaker_registry, sla_registry};
use reliable_runtime::sla::{SlaMonitor, SlaThresholds};
use serde_json::{json, Value};
use std::net::SocketAddr;

mod support;

use support::serve_health as serve;

/// `GET path`: the status, the headers, and the body.
async fn get(address: SocketAddr, path: &str) -> (StatusCode, hyper::HeaderMap, Bytes) {
    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client
        .get(format!("http://{address}{path}").parse().unwrap())
        .await
        .unwrap();
    let (parts, body) = response.into_parts();
    (
        parts.status,
        parts.headers,
        body.collect().await.unwrap().to_bytes(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_is_served_self_contained_with_or_without_a_trailing_slash() {
    let address = serve(HealthEndpoints::default()).await;
    for path in ["/api/health/dashboard", "/api/health/dashboard/"] {
        let (status, headers, body) = get(address, path).await;
        assert_eq!(status, StatusCode::OK, "{path}");
        assert_eq!(headers["content-type"], "text/html; charset=utf-8");
        let policy = headers["content-security-policy"].to_str().unwrap();
        assert!(policy.starts_with("default-src 'none'"), "{policy}");
        assert!(policy.contains("connect-src 'self'"), "{policy}");
        let page = String::from_utf8(body.to_vec()).unwrap();
        assert!(page.starts_with("<!doctype html>"));
        // It fetches its data from beside itself, wherever the router is mounted.
        assert!(page.contains("\"/data\""), "the page's data route");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_has_every_source_breaker_group_and_the_newest_alerts() {
    let monitor = sla_registry().register(
        SlaMonitor::builder("dashboard_orderbook")
            .thresholds(SlaThresholds::cex())
            .group("dashboard_exchange")
            .build()
            .unwrap(),
    );
    monitor.finish(monitor.start(), false);
    let breaker = breaker_registry().register(
        CircuitBreaker::new("dashboard_api", BreakerConfig::cex())
            .unwrap()
            .with_group("dashboard_exchange"),
    );
    breaker.set_state(BreakerState::Open);
    reliable_runtime::alert::alert_manager().raise(reliable_runtime::alert::Alert::new(
        "dashboard_orderbook",
        reliable_runtime::alert::Severity::Warning,
        "shown on the dashboard",
    ));

    let address = serve(HealthEndpoints::default()).await;
    let (status, headers, body) = get(address, "/api/health/dashboard/data").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers["content-type"], "application/json");
    let data: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(data["overall_status"], "DEGRADED", "a breaker is open");
    assert!(data["timestamp"].as_str().unwrap().ends_with('Z'));
    let source = data["sources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|source| source["name"] == "dashboard_orderbook")
        .expect("the source");
    assert_eq!(source["group"], "dashboard_exchange");
    assert_eq!(source["status"], "HEALTHY");
    assert_eq!(source["window_calls"], 1);
    assert!(source["latency_p95"].is_number() && source["success_rate"] == json!(1.0));
    let listed = data["breakers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|breaker| breaker["name"] == "dashboard_api")
        .expect("the breaker");
    assert_eq!(
        (&listed["state"], &listed["group"]),
        (&json!("OPEN"), &json!("dashboard_exchange"))
    );
    let group = data["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .find(|group| group["exchange"] == "dashboard_exchange")
        .expect("the group");
    assert_eq!(group["circuit_breaker_state"], "OPEN");
    assert!(group["degradation_score"].as_f64().unwrap() > 0.0);
    let alerts = data["alerts"].as_array().unwrap();
    assert!(alerts.len() <= 20, "the newest 20 at most");
    assert!(alerts
        .iter()
        .any(|alert| alert["message"] == "shown on the dashboard"));
}

/// The page refreshes each second: its routes have their own budget, so a dashboard left
/// open neither starves nor is starved by the API's 60 a minute.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_has_its_own_budget_and_can_be_turned_off() {
    let address = serve(
        HealthEndpoints::default()
            .per_minute(2)
            .dashboard_per_minute(4),
    )
    .await;
    for _ in 0..2 {
        assert_eq!(get(address, "/api/health/breakers").await.0, StatusCode::OK);
    }
    assert_eq!(
        get(address, "/api/health/breakers").await.0,
        StatusCode::TOO_MANY_REQUESTS
    );
    assert_eq!(
        get(address, "/api/health/dashboard").await.0,
        StatusCode::OK
    );
    for _ in 0..3 {
        let (status, _, _) = get(address, "/api/health/dashboard/data").await;
        assert_eq!(status, StatusCode::OK);
    }
    let (status, headers, body) = get(address, "/api/health/dashboard/data").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    let seconds: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&seconds), "Retry-After {seconds}");
    let error: Value = serde_json::from_slice(&body).unwrap();
    assert!(error["error"].is_string());

    let off = serve(HealthEndpoints::default().dashboard(false)).await;
    assert_eq!(
        get(off, "/api/health/dashboard").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        get(off, "/api/health/dashboard/data").await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(get(off, "/api/health/breakers").await.0, StatusCode::OK);

    let error = HealthEndpoints::default()
        .dashboard_per_minute(0)
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "dashboard_per_minute");
}
