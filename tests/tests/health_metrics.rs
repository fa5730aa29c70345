//! `/metrics` over real HTTP on loopback, checked by Prometheus' own `promtool` (in a process of
//! its own: it registers instances the health routes' tests would see).

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::StatusCode;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use reliable_runtime::health::HealthEndpoints;
use reliable_runtime::registry::sla_registry;
use reliable_runtime::sla::SlaThresholds;

mod support;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_pass_promtool() {
    use reliable_runtime::breaker::BreakerConfig;
    use reliable_runtime::registry::breaker_registry;
    use std::io::Write;
    use std::process::{Command, Stdio};
    let breaker = breaker_registry()
        .get_or_create("http_metrics \"quoted\" breaker", BreakerConfig::default())
        .unwrap();
    breaker.force_open();
    let monitor = sla_registry()
        .get_or_create("http_metrics_source", SlaThresholds::cex())
        .unwrap();
    monitor.finish(monitor.start(), false);
    monitor.finish(monitor.start(), true);
    let address = support::serve_health(HealthEndpoints::default()).await;

    let client = Client::builder(TokioExecutor::new()).build_http::<Empty<Bytes>>();
    let response = client
        .get(
            format!("http://{address}/api/health/metrics")
                .parse()
                .unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(text.contains(
        r#"resilience4j_circuitbreaker_state{name="http_metrics \"quoted\" breaker",state="forced_open"} 1"#
    ), "{text}");
    assert!(text.contains(
        r#"reliable_source_calls_total{source="http_metrics_source",outcome="failure"} 1"#
    ));

    // Prometheus' own checker: the format, and its naming lints (counters end in `_total`,
    // every family has help), with no problem reported.
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/promtool.sh");
    let mut promtool = Command::new("bash")
        .args([script, "check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs");
    promtool
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let output = promtool.wait_with_output().unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "promtool refused the metrics:\n{report}\n{text}"
    );
    assert!(report.trim().is_empty(), "promtool reported:\n{report}");
}
