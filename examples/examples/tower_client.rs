//! A `Policy` as tower middleware around a real HTTP client.
//!
//! `cargo run --example tower_client`
//!
//! A scripted server on a loopback port answers a burst of 503s, a 429 with `Retry-After: 1`,
//! then goes down for good. The client is hyper's, wrapped in `PolicyLayer` with
//! `HttpStatus` classification: the 503s are retried away, the 429 waits the second the server
//! asked for, and the outage opens the breaker, after which requests are refused without
//! reaching the server. The run ends with the breaker's and the monitor's health.

use bytes::Bytes;
use http_body_util::Full;
use hyper::server::conn::http1;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use reliable_runtime::policy::tower::{HttpStatus, Layer, PolicyLayer, Service};
use reliable_runtime::retry::Jitter;
use reliable_runtime::{get_system_health, Failure, Policy};
use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The server's answer to its `n`th request (from 0).
fn scripted(n: usize) -> (u16, Option<&'static str>) {
    match n {
        0 | 1 => (503, None),
        2 => (200, None),
        3 => (429, Some("1")),
        4 => (200, None),
        _ => (500, None),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = listener.local_addr()?;
    let received = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&received);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let counter = Arc::clone(&counter);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |_request| {
                    let (status, retry_after) = scripted(counter.fetch_add(1, Ordering::SeqCst));
                    let mut response = hyper::Response::builder().status(status);
                    if let Some(after) = retry_after {
                        response = response.header("retry-after", after);
                    }
                    std::future::ready(Ok::<_, Infallible>(
                        response.body(Full::new(Bytes::from_static(b"{}"))).unwrap(),
                    ))
                });
                let _ = http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .await;
            });
        }
    });

    let policy = Policy::builder("tower_client")
        .retry("tower_client", |retry| {
            retry
                .max_attempts(3)
                .initial_delay(Duration::from_millis(20))
                .jitter(Jitter::None)
        })
        .breaker("tower_client", |breaker| {
            breaker
                .failure_threshold(3)
                .timeout(Duration::from_secs(30))
        })
        .monitor("tower_client", |sla| sla)
        .timeout(Duration::from_secs(2))
        .build()?;
    let http = Client::builder(TokioExecutor::new()).build_http::<Full<Bytes>>();
    let mut client = PolicyLayer::new(policy).classify(HttpStatus).layer(http);

    let started = Instant::now();
    for request in 1..=6 {
        let sent = Instant::now();
        let outcome = client
            .call(http::Request::get(format!("http://{address}/ticker")).body(Full::default())?)
            .await;
        let what = match outcome {
            Ok(response) => format!("HTTP {}", response.status()),
            Err(Failure::Rejected(rejected)) => format!("refused: {rejected}"),
            Err(Failure::Inner(error)) => format!("client error: {error}"),
        };
        println!(
            "request {request}: {what} after {:>4} ms (server has seen {} requests)",
            sent.elapsed().as_millis(),
            received.load(Ordering::SeqCst)
        );
    }
    println!("done in {:.1} s", started.elapsed().as_secs_f64());

    let health = get_system_health();
    println!(
        "breaker: {}",
        serde_json::to_string_pretty(&health.circuit_breakers["tower_client"])?
    );
    println!(
        "monitor: {}",
        serde_json::to_string_pretty(&health.data_sources["tower_client"])?
    );
    Ok(())
}
