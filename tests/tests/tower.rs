//! `PolicyLayer` (feature `tower`) around a real HTTP client, against a scripted server on
//! loopback: 5xx bursts, 429s with `Retry-After`, slow answers.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo};
use reliable_runtime::breaker::BreakerState;
use reliable_runtime::policy::tower::{
    HttpStatus, Layer, PolicyLayer, ResponseClass, Service, SingleAttempt,
};
use reliable_runtime::retry::Jitter;
use reliable_runtime::{get_system_health, Failure, Policy, Rejected};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One scripted answer: a status, a delay before it, and an optional `Retry-After`.
#[derive(Clone)]
struct Answer {
    status: u16,
    delay: Duration,
    retry_after: Option<&'static str>,
}

fn status(status: u16) -> Answer {
    Answer {
        status,
        delay: Duration::ZERO,
        retry_after: None,
    }
}

/// A server on a loopback port it picks, answering from a script (200 once it runs out).
struct ScriptedServer {
    addr: SocketAddr,
    received: Arc<AtomicUsize>,
}

impl ScriptedServer {
    async fn start(script: impl IntoIterator<Item = Answer>) -> ScriptedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let script = Arc::new(Mutex::new(script.into_iter().collect::<VecDeque<_>>()));
        let received = Arc::new(AtomicUsize::new(0));
        let served_count = Arc::clone(&received);
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (script, received) = (Arc::clone(&script), Arc::clone(&served_count));
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |_request| {
                        received.fetch_add(1, Ordering::SeqCst);
                        let answer = script.lock().unwrap().pop_front().unwrap_or(status(200));
                        async move {
                            tokio::time::sleep(answer.delay).await;
                            let mut response = hyper::Response::builder().status(answer.status);
                            if let Some(after) = answer.retry_after {
                                response = response.header("retry-after", after);
                            }
                            Ok::<_, Infallible>(
                                response
                                    .body(Full::new(Bytes::from_static(b"body")))
                                    .unwrap(),
                            )
                        }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        ScriptedServer { addr, received }
    }

    fn received(&self) -> usize {
        self.received.load(Ordering::SeqCst)
    }

    fn request(&self) -> http::Request<Full<Bytes>> {
        http::Request::get(format!("http://{}/ticker", self.addr))
            .body(Full::new(Bytes::new()))
            .unwrap()
    }
}

fn http_client() -> Client<HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// A client whose responses carry their whole body, so a fallback can make one.
fn collecting_client() -> impl Service<
    http::Request<Full<Bytes>>,
    Response = http::Response<Bytes>,
    Error = String,
    Future = impl Send,
> + Clone
       + Send
       + 'static {
    let client = http_client();
    tower_service_fn(move |request: http::Request<Full<Bytes>>| {
        let client = client.clone();
        async move {
            let response = client.request(request).await.map_err(|e| e.to_string())?;
            let (parts, body) = response.into_parts();
            let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
            Ok(http::Response::from_parts(parts, body))
        }
    })
}

fn retrying(name: &str, attempts: u32) -> Policy {
    Policy::builder(name)
        .retry(name, move |retry| {
            retry
                .max_attempts(attempts)
                .initial_delay(Duration::from_millis(1))
                .jitter(Jitter::None)
        })
        .breaker(name, |breaker| breaker.failure_threshold(3))
        .monitor(name, |sla| sla)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_5xx_burst_is_retried_until_the_server_answers() {
    let server = ScriptedServer::start([status(503), status(502)]).await;
    let mut client = PolicyLayer::new(retrying("tower_5xx_burst", 3))
        .classify(HttpStatus)
        .layer(http_client());

    let response = client.call(server.request()).await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(server.received(), 3);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(&body[..], b"body");
}

#[tokio::test]
async fn the_breaker_opens_on_5xx_and_refuses_without_calling_and_health_shows_it() {
    let server = ScriptedServer::start(std::iter::repeat_n(status(500), 3)).await;
    let policy = Policy::builder("tower_breaker_opens")
        .breaker("tower_breaker_opens", |breaker| {
            breaker
                .failure_threshold(3)
                .timeout(Duration::from_secs(3600))
        })
        .monitor("tower_breaker_opens", |sla| sla)
        .build()
        .unwrap();
    let mut client = PolicyLayer::new(policy)
        .classify(HttpStatus)
        .layer(http_client());

    for _ in 0..3 {
        // Without retries, the failing response itself comes back.
        let response = client.call(server.request()).await.unwrap();
        assert_eq!(response.status(), 500);
    }
    let refused = client.call(server.request()).await.unwrap_err();

    assert!(
        matches!(refused, Failure::Rejected(Rejected::CircuitOpen { breaker, .. }) if breaker == "tower_breaker_opens")
    );
    assert_eq!(
        server.received(),
        3,
        "an open breaker does not call the server"
    );
    let health = get_system_health();
    let breaker = &health.circuit_breakers["tower_breaker_opens"];
    assert_eq!(breaker.state, BreakerState::Open);
    assert_eq!(health.data_sources["tower_breaker_opens"].total_failures, 3);
}

#[tokio::test]
async fn a_429_waits_for_its_retry_after_and_does_not_count_against_the_breaker() {
    let server = ScriptedServer::start([Answer {
        status: 429,
        delay: Duration::ZERO,
        retry_after: Some("1"),
    }])
    .await;
    let policy = retrying("tower_429_seconds", 2);
    let breaker = Arc::clone(policy.breaker().unwrap());
    let mut client = PolicyLayer::new(policy)
        .classify(HttpStatus)
        .layer(http_client());

    let started = Instant::now();
    let response = client.call(server.request()).await.unwrap();

    assert_eq!(response.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "retried after {:?}, before the server's Retry-After",
        started.elapsed()
    );
    assert_eq!(server.received(), 2);
    assert_eq!(breaker.snapshot().failure_count, 0);
}

#[tokio::test]
async fn a_429_with_an_http_date_is_retried_and_a_404_is_not() {
    // A date in the past: retry at once.
    let server = ScriptedServer::start([
        Answer {
            status: 429,
            delay: Duration::ZERO,
            retry_after: Some("Sun, 06 Nov 1994 08:49:37 GMT"),
        },
        status(404),
    ])
    .await;
    let mut client = PolicyLayer::new(retrying("tower_429_date", 3))
        .classify(HttpStatus)
        .layer(http_client());

    let response = client.call(server.request()).await.unwrap();

    assert_eq!(response.status(), 404, "a 4xx is given back, not retried");
    assert_eq!(server.received(), 2);
}

/// `HttpStatus` follows the classification: a 408 (the server timed the request out) is
/// retried, a 501 (it will never implement it) is given back at once.
#[tokio::test]
async fn a_408_is_retried_and_a_501_is_not() {
    let server = ScriptedServer::start([status(408), status(501)]).await;
    let policy = retrying("tower_408_501", 3);
    let breaker = Arc::clone(policy.breaker().unwrap());
    let mut client = PolicyLayer::new(policy)
        .classify(HttpStatus)
        .layer(http_client());

    let response = client.call(server.request()).await.unwrap();

    assert_eq!(response.status(), 501, "a 501 is given back, not retried");
    assert_eq!(server.received(), 2);
    assert_eq!(
        breaker.snapshot().failure_count,
        0,
        "the 501 is no failure: it ends the 408's run"
    );
}

#[tokio::test]
async fn a_slow_answer_times_out_and_is_counted() {
    let server = ScriptedServer::start([Answer {
        status: 200,
        delay: Duration::from_secs(30),
        retry_after: None,
    }])
    .await;
    let policy = Policy::builder("tower_slow")
        .timeout(Duration::from_millis(50))
        .monitor("tower_slow", |sla| sla)
        .build()
        .unwrap();
    let monitor = Arc::clone(policy.monitor().unwrap());
    let mut client = PolicyLayer::new(policy).layer(http_client());

    let started = Instant::now();
    let error = client.call(server.request()).await.unwrap_err();

    assert!(matches!(error, Failure::Rejected(Rejected::Timeout { .. })));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(monitor.metrics().total_failures, 1);
}

#[tokio::test]
async fn a_fallback_answers_for_an_open_breaker_and_is_counted() {
    let server = ScriptedServer::start([]).await;
    let policy = Policy::builder("tower_fallback")
        .breaker("tower_fallback", |breaker| breaker)
        .fallback("tower_fallback")
        .build()
        .unwrap();
    policy.breaker().unwrap().force_open();
    let layer = PolicyLayer::new(policy).fallback(|cause: &Failure<String>| {
        assert!(cause.is_rejected());
        Ok(http::Response::builder()
            .status(203)
            .body(Bytes::from_static(b"from the fallback"))
            .unwrap())
    });
    let counters = Arc::clone(layer.policy());
    let mut client = layer.layer(collecting_client());

    let response = client.call(server.request()).await.unwrap();

    assert_eq!(response.status(), 203);
    assert_eq!(&response.body()[..], b"from the fallback");
    assert_eq!(server.received(), 0);
    assert_eq!(counters.degradation().unwrap().snapshot().fallbacks, 1);
}

#[tokio::test]
async fn a_closure_classifies_responses() {
    let server = ScriptedServer::start([status(202), status(202)]).await;
    // 202 means "not ready yet" to this client: retried.
    let mut client = PolicyLayer::new(retrying("tower_closure", 3))
        .classify(|response: &hyper::Response<hyper::body::Incoming>| {
            if response.status() == 202 {
                ResponseClass::Failed
            } else {
                ResponseClass::Success
            }
        })
        .layer(http_client());

    let response = client.call(server.request()).await.unwrap();

    assert_eq!(response.status(), 200);
    assert_eq!(server.received(), 3);
}

/// A request that cannot be cloned: a single-attempt layer takes it, and refuses a policy
/// that retries when it is built.
#[tokio::test]
async fn requests_that_cannot_be_cloned_take_a_single_attempt_layer() {
    struct Unclonable(u32);
    let service =
        tower_service_fn(|request: Unclonable| async move { Ok::<_, Infallible>(request.0 * 2) });

    let error = PolicyLayer::single_attempt(retrying("tower_single_refused", 3)).unwrap_err();
    assert_eq!(error.field(), "retry");

    let policy = Policy::builder("tower_single")
        .monitor("tower_single", |sla| sla)
        .build()
        .unwrap();
    let layer: PolicyLayer<_, _, SingleAttempt> = PolicyLayer::single_attempt(policy).unwrap();
    let mut doubled = layer.layer(service);
    assert_eq!(doubled.call(Unclonable(21)).await.unwrap(), 42);
}

/// `tower::service_fn` without the `tower` crate.
fn tower_service_fn<F>(f: F) -> ServiceFn<F> {
    ServiceFn(f)
}

#[derive(Clone)]
struct ServiceFn<F>(F);

impl<F, Request, Fut, T, E> Service<Request> for ServiceFn<F>
where
    F: FnMut(Request) -> Fut,
    Fut: std::future::Future<Output = Result<T, E>>,
{
    type Response = T;
    type Error = E;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Fut {
        (self.0)(request)
    }
}

/// The policy's callbacks, typed by the service's error, apply to the layer's retries.
#[tokio::test]
async fn the_policys_error_callbacks_see_the_services_errors() {
    let calls = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&calls);
    // Fails twice with a transient error, once with a permanent one, then would answer.
    let service = tower_service_fn(move |()| {
        let n = counted.fetch_add(1, Ordering::SeqCst);
        async move {
            match n {
                0 | 1 => Err(std::io::Error::from(std::io::ErrorKind::ConnectionReset)),
                2 => Err(std::io::Error::from(std::io::ErrorKind::PermissionDenied)),
                _ => Ok(n),
            }
        }
    });
    let told = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&told);
    let policy = Policy::builder("tower_callbacks")
        .retry("tower_callbacks", |retry| {
            retry
                .max_attempts(5)
                .initial_delay(Duration::from_millis(1))
                .jitter(Jitter::None)
        })
        .retry_if(|error: &std::io::Error| error.kind() == std::io::ErrorKind::ConnectionReset)
        .on_retry(move |attempt, _delay, cause: &Failure<std::io::Error>| {
            seen.lock()
                .unwrap()
                .push((attempt, cause.inner().map(std::io::Error::kind)));
        })
        .build()
        .unwrap();
    let mut client = PolicyLayer::new(policy).layer(service);

    let error = client.call(()).await.unwrap_err();

    assert_eq!(
        error.into_inner().map(|error| error.kind()),
        Some(std::io::ErrorKind::PermissionDenied),
        "retry_if stopped the retries at the permanent error"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(
        *told.lock().unwrap(),
        [
            (2, Some(std::io::ErrorKind::ConnectionReset)),
            (3, Some(std::io::ErrorKind::ConnectionReset))
        ]
    );
}

/// Many concurrent requests through one layered client share its breaker and monitor.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_requests_share_the_policy() {
    let server = ScriptedServer::start([]).await;
    let policy = Policy::builder("tower_concurrent")
        .monitor("tower_concurrent", |sla| sla)
        .breaker("tower_concurrent", |breaker| breaker)
        .build()
        .unwrap();
    let monitor = Arc::clone(policy.monitor().unwrap());
    let client = PolicyLayer::new(policy)
        .classify(HttpStatus)
        .layer(http_client());

    let tasks: Vec<_> = (0..32)
        .map(|_| {
            let mut client = client.clone();
            let request = server.request();
            tokio::spawn(async move { client.call(request).await.unwrap().status() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), 200);
    }

    assert_eq!(server.received(), 32);
    assert_eq!(monitor.metrics().total_calls, 32);
}
