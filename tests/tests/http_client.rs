//! The hardened HTTP client against a scripted server on loopback: which answers are retried,
//! which trip the breaker, and that no request outlives its deadline. Real time, short
//! timeouts (a paused clock would fire the timeouts while the sockets wait).

use reliable_runtime::http::{Client, HttpError, Profile};
use reliable_runtime::registry::breaker_registry;
use reliable_runtime::retry::GaveUp;
use reliable_runtime::served::observe;
use reliable_runtime::Rejected;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the server does with the next request.
enum Reply {
    /// This status, these headers, this body.
    Status(u16, Vec<(&'static str, String)>, &'static str),
    /// Waits this long, then answers 200.
    Slow(Duration),
    /// Resets the connection without answering.
    Reset,
}

/// A server answering from a script, then `200 {"ok":true}`; counting the requests it read.
struct Server {
    address: SocketAddr,
    seen: Arc<AtomicU32>,
}

impl Server {
    async fn start(script: Vec<Reply>) -> Server {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let seen = Arc::new(AtomicU32::new(0));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let counted = Arc::clone(&seen);
        tokio::spawn(async move {
            loop {
                let Ok((connection, _)) = listener.accept().await else {
                    return;
                };
                tokio::spawn(serve(connection, Arc::clone(&script), Arc::clone(&counted)));
            }
        });
        Server { address, seen }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.address)
    }

    fn seen(&self) -> u32 {
        self.seen.load(Ordering::SeqCst)
    }
}

async fn serve(
    mut connection: tokio::net::TcpStream,
    script: Arc<Mutex<VecDeque<Reply>>>,
    seen: Arc<AtomicU32>,
) {
    let mut buffer = Vec::new();
    loop {
        // One request: its headers (these tests send no bodies).
        while !buffer.windows(4).any(|window| window == b"\r\n\r\n") {
            let mut chunk = [0u8; 1024];
            match connection.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(read) => buffer.extend_from_slice(&chunk[..read]),
            }
        }
        let end = buffer
            .windows(4)
            .position(|window| window == b"\r\n\r\n")
            .unwrap()
            + 4;
        buffer.drain(..end);
        seen.fetch_add(1, Ordering::SeqCst);
        let reply = script.lock().unwrap().pop_front();
        let (status, headers, body) = match reply {
            Some(Reply::Reset) => {
                // A linger of zero resets at once (only a positive one blocks on drop).
                #[allow(deprecated)]
                connection.set_linger(Some(Duration::ZERO)).unwrap();
                return;
            }
            Some(Reply::Slow(delay)) => {
                tokio::time::sleep(delay).await;
                (200, Vec::new(), r#"{"ok":true}"#)
            }
            Some(Reply::Status(status, headers, body)) => (status, headers, body),
            None => (200, Vec::new(), r#"{"ok":true}"#),
        };
        let mut response = format!(
            "HTTP/1.1 {status} Scripted\r\ncontent-length: {}\r\n",
            body.len()
        );
        for (name, value) in headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str("\r\n");
        response.push_str(body);
        if connection.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[derive(serde::Deserialize, Debug, PartialEq)]
struct Answer {
    ok: bool,
}

/// Short timeouts, retries 20 ms apart (a hint of seconds is then visibly the hint), no rate
/// limit unless a test sets one.
fn quick() -> Profile {
    Profile::default()
        .base_timeout(Duration::from_millis(300))
        .max_timeout(Duration::from_millis(300))
        .deadline(Some(Duration::from_secs(5)))
        .base_delay(Duration::from_millis(20))
        .max_delay(Duration::from_secs(5))
        .max_retries(3)
        .rate_limit_per_minute(None)
}

/// A client whose requests to `server` are source `name`, with `profile`.
fn client(server: &Server, name: &str, profile: Profile) -> Client {
    Client::builder()
        .source_with(name, server.url("/"), profile)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_burst_of_5xx_is_retried_away() {
    let server = Server::start(vec![
        Reply::Status(503, Vec::new(), "busy"),
        Reply::Status(502, Vec::new(), "bad gateway"),
    ])
    .await;
    let client = client(&server, "http_5xx_burst", quick());
    let served = observe(client.get_json::<Answer>(server.url("/api"))).await;
    assert_eq!(served.value.unwrap(), Answer { ok: true });
    assert_eq!((served.retries, server.seen()), (2, 3));
}

#[tokio::test]
async fn a_429_waits_its_retry_after_in_seconds_or_as_a_date() {
    let date = httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(3));
    let server = Server::start(vec![
        Reply::Status(429, vec![("retry-after", "1".into())], "slow down"),
        Reply::Status(429, vec![("retry-after", date)], "slow down"),
    ])
    .await;
    // Backoff of 10 s: a retry sooner than that waited the server's hint.
    let client = client(
        &server,
        "http_429",
        quick()
            .base_delay(Duration::from_secs(10))
            .max_delay(Duration::from_secs(10)),
    );
    let start = Instant::now();
    let answer = client.get_json::<Answer>(server.url("/api")).await.unwrap();
    let elapsed = start.elapsed();
    assert!(answer.ok);
    assert_eq!(server.seen(), 3);
    // 1 s, then what is left of the date's 3 s: 1 to 2 s (a date has whole seconds).
    assert!(
        elapsed >= Duration::from_secs(2) && elapsed < Duration::from_secs(4),
        "{elapsed:?}"
    );
    // 429s are the server asking, not failing: the breaker counted none.
    let breaker = breaker_registry().get("http_429").unwrap();
    assert_eq!(breaker.snapshot().failure_count, 0);
}

#[tokio::test]
async fn a_4xx_is_neither_retried_nor_counted_and_keeps_the_apis_words() {
    let server = Server::start(vec![Reply::Status(
        400,
        Vec::new(),
        r#"{"code":-1121,"msg":"Invalid symbol."}"#,
    )])
    .await;
    let client = client(&server, "http_4xx", quick());
    let error = client.get(server.url("/api")).send().await.unwrap_err();
    assert_eq!(error.status().map(|status| status.as_u16()), Some(400));
    assert!(error.to_string().contains("Invalid symbol."), "{error}");
    assert_eq!(server.seen(), 1);
    let breaker = breaker_registry().get("http_4xx").unwrap();
    assert_eq!(breaker.snapshot().failure_count, 0);
}

#[tokio::test]
async fn a_reset_connection_is_retried() {
    let server = Server::start(vec![Reply::Reset, Reply::Reset]).await;
    let client = client(&server, "http_reset", quick());
    let served = observe(client.get_json::<Answer>(server.url("/api"))).await;
    assert_eq!(served.value.unwrap(), Answer { ok: true });
    assert_eq!(served.retries, 2);
}

#[tokio::test]
async fn a_slow_answer_times_out_and_no_request_outlives_its_deadline() {
    let server = Server::start(
        (0..10)
            .map(|_| Reply::Slow(Duration::from_secs(3)))
            .collect(),
    )
    .await;
    // Two attempts of 300 ms.
    let client = client(&server, "http_slow", quick().max_retries(1));
    let start = Instant::now();
    let served = observe(client.get(server.url("/api")).send()).await;
    let elapsed = start.elapsed();
    assert!(matches!(
        served.value,
        Err(HttpError::Rejected(Rejected::Timeout { after })) if after == Duration::from_millis(300)
    ));
    assert_eq!(served.gave_up, Some(GaveUp::AttemptsExhausted));
    assert!(
        elapsed >= Duration::from_millis(600) && elapsed < Duration::from_millis(1500),
        "{elapsed:?}"
    );

    // Many retries, a deadline of 700 ms: cut there.
    let deadline = Client::builder()
        .source_with(
            "http_slow_deadline",
            server.url("/"),
            quick()
                .max_retries(10)
                .deadline(Some(Duration::from_millis(700))),
        )
        .build()
        .unwrap();
    let start = Instant::now();
    let error = deadline.get(server.url("/api")).send().await.unwrap_err();
    let elapsed = start.elapsed();
    assert!(
        matches!(
            error,
            HttpError::Rejected(Rejected::DeadlineExceeded { .. })
        ),
        "{error}"
    );
    assert!(
        elapsed >= Duration::from_millis(700) && elapsed < Duration::from_millis(1200),
        "{elapsed:?}"
    );
}

#[tokio::test]
async fn failures_trip_the_sources_breaker_and_it_stops_calling() {
    let server = Server::start(
        (0..10)
            .map(|_| Reply::Status(500, Vec::new(), "down"))
            .collect(),
    )
    .await;
    let client = client(
        &server,
        "http_breaker",
        quick().max_retries(0).breaker_threshold(2),
    );
    for _ in 0..2 {
        let error = client.get(server.url("/api")).send().await.unwrap_err();
        assert_eq!(error.status().map(|status| status.as_u16()), Some(500));
    }
    let error = client.get(server.url("/api")).send().await.unwrap_err();
    assert!(
        matches!(error, HttpError::Rejected(Rejected::CircuitOpen { breaker, .. }) if breaker == "http_breaker"),
        "{error}"
    );
    assert_eq!(server.seen(), 2, "the open breaker sent nothing");
}

#[tokio::test]
async fn each_source_has_its_own_rate_limit() {
    let server = Server::start(Vec::new()).await;
    let client = Client::builder()
        .source_with(
            "http_limited",
            server.url("/limited"),
            quick().rate_limit_per_minute(Some(2)),
        )
        .source_with("http_free", server.url("/free"), quick())
        .build()
        .unwrap();
    for _ in 0..2 {
        client.get(server.url("/limited")).send().await.unwrap();
    }
    let error = client.get(server.url("/limited")).send().await.unwrap_err();
    assert!(
        matches!(error, HttpError::Rejected(Rejected::RateLimited { .. })),
        "{error}"
    );
    // Another source of the same host is not limited by it.
    client.get(server.url("/free")).send().await.unwrap();
    assert_eq!(server.seen(), 3);
    // Sources by prefix, else by host and port.
    let url = reqwest::Url::parse(&server.url("/limited/x")).unwrap();
    assert_eq!(client.source_of(&url), "http_limited");
    let elsewhere = reqwest::Url::parse("http://127.0.0.1:9/x").unwrap();
    assert_eq!(client.source_of(&elsewhere), "127.0.0.1:9");
    // Each source's monitor is in the system's health.
    let health = reliable_runtime::get_system_health();
    assert!(health.data_sources.contains_key("http_limited"));
    assert!(health.data_sources.contains_key("http_free"));
}

#[test]
fn a_bad_profile_is_an_error_naming_its_field() {
    let error = Client::builder()
        .profile(Profile::default().max_in_flight(0))
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "max_in_flight");
    let error = Client::builder()
        .source_with(
            "http_bad",
            "http://127.0.0.1:9/",
            Profile::default().max_timeout(Duration::from_secs(1)),
        )
        .build()
        .unwrap_err();
    assert_eq!(error.field(), "max_timeout");
}

#[tokio::test]
async fn request_weights_share_a_limit_the_servers_report_corrects() {
    use reliable_runtime::clock::Clock;
    use reliable_runtime::limit::{RateLimit, WeightedLimiter};
    let server = Server::start(vec![Reply::Status(
        200,
        vec![("x-mbx-used-weight-1m", "1195".into())],
        r#"{"ok":true}"#,
    )])
    .await;
    let weight = Arc::new(
        WeightedLimiter::new(
            "http_weight",
            &[RateLimit::per_minute(1200)],
            Clock::system(),
        )
        .unwrap(),
    );
    let profile = quick()
        .weight_limit(Arc::clone(&weight))
        .used_weight_header(
            http::HeaderName::from_static("x-mbx-used-weight-1m"),
            Duration::from_secs(60),
        );
    let client = client(&server, "http_weighted", profile);
    client
        .get(server.url("/depth"))
        .weight(10)
        .send()
        .await
        .unwrap();
    // The server counts 1195 of its 1200 (other processes on this IP): a weight of 10 waits
    // a minute, past the 5 s deadline, so it is not sent; a weight of 5 fits.
    let served = observe(client.get(server.url("/depth")).weight(10).send()).await;
    assert!(
        matches!(
            served.value,
            Err(HttpError::Rejected(Rejected::RateLimited { .. }))
        ),
        "{:?}",
        served.value
    );
    assert_eq!(served.gave_up, Some(GaveUp::DeadlineReached));
    client
        .get(server.url("/depth"))
        .weight(5)
        .send()
        .await
        .unwrap();
    assert_eq!(server.seen(), 2);
    assert_eq!(weight.snapshot().windows[0].used, 1200);
}

#[tokio::test]
async fn a_post_is_sent_once_unless_marked_idempotent() {
    let server = Server::start(vec![
        Reply::Status(503, Vec::new(), "busy"),
        Reply::Status(503, Vec::new(), "busy"),
    ])
    .await;
    let client = client(&server, "http_post", quick());
    let error = client
        .post(server.url("/order"))
        .body("buy")
        .send()
        .await
        .unwrap_err();
    assert_eq!(error.status().map(|status| status.as_u16()), Some(503));
    assert_eq!(server.seen(), 1, "a POST is not sent twice");
    client
        .post(server.url("/order"))
        .body("buy")
        .idempotent()
        .send()
        .await
        .unwrap();
    assert_eq!(server.seen(), 3, "marked idempotent, it is retried");
}

#[tokio::test]
async fn what_can_never_succeed_is_refused_before_it_is_sent() {
    use reliable_runtime::clock::Clock;
    use reliable_runtime::limit::{RateLimit, WeightedLimiter};
    let server = Server::start(Vec::new()).await;
    let weight = Arc::new(
        WeightedLimiter::new(
            "http_weight_small",
            &[RateLimit::per_minute(100)],
            Clock::system(),
        )
        .unwrap(),
    );
    let client = client(&server, "http_never", quick().weight_limit(weight));
    let too_heavy = client
        .get(server.url("/x"))
        .weight(101)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&too_heavy, HttpError::Config(error) if error.field() == "weight"),
        "{too_heavy}"
    );
    // These tests build the client without `http-rustls`.
    let https = client
        .get("https://127.0.0.1:9/x")
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&https, HttpError::Config(error) if error.field() == "url"),
        "{https}"
    );
    assert_eq!(server.seen(), 0);
    // A source named for a request takes that source's profile: its weight limit applies.
    let named = client
        .get("http://127.0.0.1:9/elsewhere")
        .source("http_never")
        .weight(101)
        .send()
        .await
        .unwrap_err();
    assert!(
        matches!(&named, HttpError::Config(error) if error.field() == "weight"),
        "{named}"
    );
}
