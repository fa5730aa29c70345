//! Alerts: the JSON shape, the severities of real breaker and SLA changes, the bounded history,
//! handler isolation (slow, panicking, full), and the webhook and email handlers against real
//! servers on loopback (a small HTTP server here; aiosmtpd, installed by
//! `scripts/smtp-test-server.sh`).
//!
//! Tests that watch the global manager filter alerts by a source name of their own, since
//! every test of this binary shares it; the others use a manager of their own.

use reliable_runtime::alert::{
    alert_manager, async_handler, Alert, AlertConfig, AlertKind, AlertManager, EmailHandler,
    HandlerError, HandlerId, HandlerOptions, Severity, WebhookHandler, DEFAULT_HISTORY_CAPACITY,
};
use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use reliable_runtime::clock::Clock;
use reliable_runtime::retry::{BackoffConfig, Jitter};
use reliable_runtime::sla::{SlaMonitor, SlaStatus, SlaThresholds};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Long enough for a loaded CI machine; a passing run waits milliseconds.
const PATIENCE: Duration = Duration::from_secs(10);

/// Polls `done` every 2 ms until it holds or `timeout` passes; returns whether it held.
fn wait_until(timeout: Duration, mut done: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if done() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Registers on the global manager a handler that forwards the alerts about `source`.
fn forward_global(source: &'static str) -> (HandlerId, Receiver<Alert>) {
    let (sender, alerts) = mpsc::channel();
    let id = alert_manager().register(move |alert: &Alert| {
        if alert.source == source {
            let _ = sender.send(alert.clone());
        }
    });
    (id, alerts)
}

fn states(alert: &Alert) -> (&str, &str, Severity) {
    (&alert.old_state, &alert.new_state, alert.severity)
}

#[test]
fn alert_json_has_the_reference_fields() {
    let alert = Alert::breaker("binance_api", BreakerState::Closed, BreakerState::Open, 5)
        .with_metadata("exchange", "binance");
    let json: Value = serde_json::from_str(&alert.to_json()).unwrap();
    let object = json.as_object().unwrap();
    let keys: Vec<&str> = object.keys().map(String::as_str).collect();
    let mut expected = [
        "breaker_name",
        "old_state",
        "new_state",
        "severity",
        "timestamp",
        "failure_count",
        "message",
        "metadata",
        "kind",
        "source",
    ];
    expected.sort_unstable();
    let mut sorted = keys.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, expected, "fields: {keys:?}");

    assert_eq!(json["breaker_name"], "binance_api");
    assert_eq!(json["old_state"], "CLOSED");
    assert_eq!(json["new_state"], "OPEN");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["failure_count"], 5);
    assert_eq!(json["metadata"]["exchange"], "binance");
    assert_eq!(json["kind"], "circuit_breaker");
    assert_eq!(json["source"], "binance_api");
    let message = json["message"].as_str().unwrap();
    assert!(
        message.contains("'binance_api'") && message.contains("opened"),
        "{message}"
    );

    // RFC 3339 in UTC, as the reference's "2025-10-22T11:45:00Z" (with milliseconds).
    let timestamp = json["timestamp"].as_str().unwrap();
    let bytes = timestamp.as_bytes();
    assert_eq!(
        timestamp.len(),
        "2025-10-22T11:45:00.000Z".len(),
        "{timestamp}"
    );
    for (at, separator) in [
        (4, b'-'),
        (7, b'-'),
        (10, b'T'),
        (13, b':'),
        (16, b':'),
        (19, b'.'),
    ] {
        assert_eq!(bytes[at], separator, "{timestamp}");
    }
    assert!(timestamp.ends_with('Z'), "{timestamp}");
    let year: u32 = timestamp[..4].parse().unwrap();
    assert!(year >= 2024, "{timestamp}");

    // Other kinds keep the reference's fields; `breaker_name` is null.
    let sla: Value = serde_json::from_str(
        &Alert::sla("dex_quote", SlaStatus::Healthy, SlaStatus::Failed).to_json(),
    )
    .unwrap();
    assert_eq!(sla["breaker_name"], Value::Null);
    assert_eq!(
        (sla["kind"].as_str(), sla["source"].as_str()),
        (Some("sla"), Some("dex_quote"))
    );
    assert_eq!(
        (sla["new_state"].as_str(), sla["severity"].as_str()),
        (Some("FAILED"), Some("critical"))
    );
}

#[test]
fn breaker_transitions_raise_alerts_with_the_reference_severities() {
    const NAME: &str = "alerts_breaker_severities";
    let (id, alerts) = forward_global(NAME);
    let (clock, hand) = Clock::manual();
    let breaker = CircuitBreaker::new(
        NAME,
        BreakerConfig::default()
            .failure_threshold(2)
            .success_threshold(1)
            .timeout(Duration::from_secs(30))
            .clock(clock),
    )
    .unwrap();
    let fail = || breaker.call_sync(|| Err::<(), _>("502")).unwrap_err();
    let succeed = || breaker.call_sync(|| Ok::<_, &str>(())).unwrap();

    fail();
    fail(); // CLOSED -> OPEN
    hand.advance(Duration::from_secs(30));
    fail(); // OPEN -> HALF_OPEN, then the probe fails: HALF_OPEN -> OPEN
    hand.advance(Duration::from_secs(30));
    succeed(); // OPEN -> HALF_OPEN -> CLOSED
    breaker.force_open();
    breaker.reset();
    breaker.disable();
    breaker.reset();

    use BreakerState::{Closed, Disabled, ForcedOpen, HalfOpen, Open};
    use Severity::{Critical, Info, Warning};
    let expected = [
        (Closed, Open, Critical),
        (Open, HalfOpen, Warning),
        (HalfOpen, Open, Critical),
        (Open, HalfOpen, Warning),
        (HalfOpen, Closed, Info),
        (Closed, ForcedOpen, Warning),
        (ForcedOpen, Closed, Info),
        (Closed, Disabled, Warning),
        (Disabled, Closed, Info),
    ];
    let mut received = Vec::new();
    for (from, to, _) in expected {
        let alert = alerts
            .recv_timeout(PATIENCE)
            .unwrap_or_else(|_| panic!("no alert for {from} -> {to}; got {received:?}"));
        received.push(alert);
    }
    for (alert, (from, to, severity)) in received.iter().zip(expected) {
        assert_eq!(states(alert), (from.as_str(), to.as_str(), severity));
        assert_eq!(alert.kind, AlertKind::CircuitBreaker);
        assert_eq!(alert.breaker_name.as_deref(), Some(NAME));
        assert!(alert.message.contains(NAME), "{}", alert.message);
        assert!(alert.metadata.contains_key("reason"), "{alert:?}");
    }
    assert_eq!(received[0].failure_count, 2);
    assert_eq!(
        received[0].metadata["reason"],
        "consecutive failures reached the threshold"
    );
    assert_eq!(received[2].metadata["reason"], "a half-open probe failed");

    // The same alerts, in the same order, are in the global history (newest last).
    let history: Vec<Alert> = alert_manager()
        .recent(DEFAULT_HISTORY_CAPACITY)
        .into_iter()
        .filter(|alert| alert.source == NAME)
        .collect();
    assert_eq!(history, received);
    assert!(alert_manager().unregister(id).is_some());
}

#[test]
fn sla_status_changes_raise_alerts() {
    const NAME: &str = "alerts_sla_source";
    let (id, alerts) = forward_global(NAME);
    let monitor = SlaMonitor::new(NAME, SlaThresholds::cex()).unwrap();

    for _ in 0..10 {
        monitor.record_latency(Duration::from_millis(1_500), false); // p95 above 1 s
    }
    assert_eq!(monitor.status(), SlaStatus::Degraded);
    monitor.reset();
    for _ in 0..3 {
        monitor.record_latency(Duration::from_millis(10), true); // 3 failures in a row
    }
    assert_eq!(monitor.status(), SlaStatus::Failed);
    monitor.reset();
    assert_eq!(monitor.status(), SlaStatus::Healthy);

    let expected = [
        ("HEALTHY", "DEGRADED", Severity::Warning),
        ("DEGRADED", "FAILED", Severity::Critical),
        ("FAILED", "HEALTHY", Severity::Info),
    ];
    for expected in expected {
        let alert = alerts.recv_timeout(PATIENCE).expect("an SLA alert");
        assert_eq!(states(&alert), expected);
        assert_eq!(alert.kind, AlertKind::Sla);
        assert_eq!(alert.breaker_name, None);
    }
    alert_manager().unregister(id);
}

#[test]
fn history_keeps_the_newest_alerts_up_to_its_capacity() {
    let manager = AlertManager::new(AlertConfig::default());
    for n in 0..150 {
        manager.raise(Alert::new("alerts_history", Severity::Info, n.to_string()));
    }
    let messages = |alerts: Vec<Alert>| -> Vec<usize> {
        alerts
            .iter()
            .map(|alert| alert.message.parse().unwrap())
            .collect()
    };
    // Oldest first, newest last.
    assert_eq!(messages(manager.history()), (50..150).collect::<Vec<_>>());
    assert_eq!(messages(manager.recent(10)), (140..150).collect::<Vec<_>>());
    assert_eq!(
        messages(manager.recent(1_000)).len(),
        DEFAULT_HISTORY_CAPACITY
    );
    let stats = manager.stats();
    assert_eq!(
        (stats.raised, stats.history_len, stats.history_capacity),
        (150, 100, 100)
    );

    manager.set_history_capacity(20);
    assert_eq!(messages(manager.history()), (130..150).collect::<Vec<_>>());
    manager.raise(Alert::new("alerts_history", Severity::Info, "150"));
    assert_eq!(messages(manager.recent(2)), [149, 150]);
    assert_eq!(manager.history().len(), 20);

    let configured = AlertManager::new(AlertConfig {
        history_capacity: 5,
        ..AlertConfig::default()
    });
    for n in 0..8 {
        configured.raise(Alert::new("alerts_history", Severity::Info, n.to_string()));
    }
    assert_eq!(messages(configured.history()), [3, 4, 5, 6, 7]);
    configured.clear_history();
    assert!(configured.history().is_empty());
    assert_eq!(configured.stats().raised, 8);
}

#[test]
fn slow_and_panicking_handlers_delay_neither_raising_nor_a_fast_handler() {
    let manager = AlertManager::new(AlertConfig::default());
    let panicking = manager.register_with(
        |_: &Alert| panic!("a deliberate panic in an alert handler (this test expects it)"),
        HandlerOptions::new().name("panicking"),
    );
    let slow = manager.register_with(
        |_: &Alert| std::thread::sleep(Duration::from_secs(2)),
        HandlerOptions::new().name("slow"),
    );
    let (sender, received) = mpsc::channel();
    let fast = manager.register_with(
        move |alert: &Alert| sender.send(alert.message.clone()).unwrap(),
        HandlerOptions::new().name("fast"),
    );

    for n in 0..3 {
        let started = Instant::now();
        manager.raise(Alert::new(
            "alerts_isolation",
            Severity::Critical,
            n.to_string(),
        ));
        let raising = started.elapsed();
        // It takes microseconds; the bound only has to be far below the slow handler's 2 s.
        assert!(
            raising < Duration::from_millis(250),
            "raise took {raising:?}"
        );
        // The fast handler gets each alert long before the slow one is done with the first.
        let message = received
            .recv_timeout(Duration::from_secs(1))
            .expect("the fast handler got nothing within 1 s");
        assert_eq!(message, n.to_string());
    }

    assert!(
        manager.handler_stats(slow).unwrap().pending >= 1,
        "the slow handler should still be busy"
    );
    // The panicking handler is counted and keeps getting alerts after each panic.
    assert!(
        wait_until(PATIENCE, || manager
            .handler_stats(panicking)
            .unwrap()
            .panicked
            == 3),
        "{:?}",
        manager.handler_stats(panicking)
    );
    let panicked = manager.handler_stats(panicking).unwrap();
    assert_eq!(
        (panicked.delivered, panicked.failed, panicked.dropped),
        (0, 0, 0)
    );
    assert!(wait_until(PATIENCE, || manager
        .handler_stats(fast)
        .unwrap()
        .delivered
        == 3));
    assert_eq!(manager.stats().raised, 3);
}

#[test]
fn a_call_through_a_breaker_does_not_wait_for_a_slow_handler() {
    const NAME: &str = "alerts_slow_handler_call";
    let (sender, started) = mpsc::channel();
    let id = alert_manager().register(move |alert: &Alert| {
        if alert.source == NAME {
            let _ = sender.send(alert.new_state.clone());
            std::thread::sleep(Duration::from_secs(2));
        }
    });
    let breaker = CircuitBreaker::new(NAME, BreakerConfig::default().failure_threshold(1)).unwrap();

    let call = Instant::now();
    let tripping = breaker.call_sync(|| Err::<(), _>("down"));
    let rejected = breaker.call_sync(|| Ok::<_, &str>(()));
    let took = call.elapsed();
    assert!(tripping.is_err() && rejected.is_err());
    assert!(took < Duration::from_millis(250), "two calls took {took:?}");
    // The handler did get the alert (and is now sleeping on it).
    assert_eq!(started.recv_timeout(PATIENCE).unwrap(), "OPEN");
    alert_manager().unregister(id);
}

#[test]
fn a_full_queue_counts_dropped_alerts() {
    let manager = AlertManager::new(AlertConfig::default());
    let (started_sender, started) = mpsc::channel();
    let (gate_sender, gate) = mpsc::channel::<()>();
    let gate = Mutex::new(gate);
    let id = manager.register_with(
        move |_: &Alert| {
            started_sender.send(()).unwrap();
            gate.lock().unwrap().recv().unwrap(); // blocks until the test opens the gate
        },
        HandlerOptions::new().name("gated").queue_capacity(2),
    );
    let raise = |n: usize| {
        manager.raise(Alert::new(
            "alerts_full_queue",
            Severity::Warning,
            n.to_string(),
        ))
    };

    raise(0);
    started
        .recv_timeout(PATIENCE)
        .expect("the handler started on alert 0");
    // Alert 0 is being handled; 1 and 2 fill the queue; 3, 4, 5 find it full.
    for n in 1..6 {
        let before = Instant::now();
        raise(n);
        assert!(
            before.elapsed() < Duration::from_millis(250),
            "a full queue blocked raise"
        );
    }
    let stats = manager.handler_stats(id).unwrap();
    assert_eq!(
        (stats.queue_capacity, stats.pending, stats.dropped),
        (2, 3, 3),
        "{stats:?}"
    );

    for _ in 0..3 {
        gate_sender.send(()).unwrap();
    }
    assert!(manager.flush(PATIENCE));
    let stats = manager.handler_stats(id).unwrap();
    assert_eq!(
        (stats.delivered, stats.pending, stats.dropped),
        (3, 0, 3),
        "{stats:?}"
    );
    // Drops concern the handler, not the history.
    assert_eq!(manager.stats().raised, 6);
    assert_eq!(manager.history().len(), 6);
}

#[test]
fn concurrent_raises_are_all_accounted_for() {
    const THREADS: u64 = 4;
    const PER_THREAD: u64 = 2_000;
    let manager = AlertManager::new(AlertConfig {
        history_capacity: 50,
        queue_capacity: 8, // small, so that some alerts are dropped
    });
    let counts: Vec<Arc<AtomicU64>> = (0..2).map(|_| Arc::new(AtomicU64::new(0))).collect();
    let ids: Vec<HandlerId> = counts
        .iter()
        .map(|count| {
            let count = Arc::clone(count);
            manager.register(move |_: &Alert| {
                count.fetch_add(1, Ordering::Relaxed);
            })
        })
        .collect();
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let manager = &manager;
            scope.spawn(move || {
                for n in 0..PER_THREAD {
                    let message = format!("{thread}:{n}");
                    manager.raise(Alert::new("alerts_concurrent", Severity::Info, message));
                }
            });
        }
    });
    assert!(manager.flush(PATIENCE));
    let total = THREADS * PER_THREAD;
    let stats = manager.stats();
    assert_eq!((stats.raised, stats.history_len), (total, 50));
    for (id, count) in ids.iter().zip(&counts) {
        let handler = manager.handler_stats(*id).unwrap();
        assert_eq!(handler.pending, 0, "{handler:?}");
        assert_eq!(handler.delivered + handler.dropped, total, "{handler:?}");
        assert_eq!(
            handler.delivered,
            count.load(Ordering::Relaxed),
            "{handler:?}"
        );
    }
    // Each thread's alerts stay in order in the history.
    let mut last_seen = [None::<u64>; THREADS as usize];
    for alert in manager.history() {
        let (thread, n) = alert.message.split_once(':').unwrap();
        let (thread, n): (usize, u64) = (thread.parse().unwrap(), n.parse().unwrap());
        assert!(
            last_seen[thread] < Some(n),
            "{thread}:{n} after {:?}",
            last_seen[thread]
        );
        last_seen[thread] = Some(n);
    }
}

#[test]
fn unregistered_handlers_get_no_more_alerts() {
    let manager = AlertManager::new(AlertConfig::default());
    let (sender, received) = mpsc::channel();
    let id = manager.register(move |alert: &Alert| sender.send(alert.message.clone()).unwrap());
    manager.raise(Alert::new("alerts_unregister", Severity::Info, "first"));
    assert_eq!(received.recv_timeout(PATIENCE).unwrap(), "first");
    assert!(manager.flush(PATIENCE));

    let last = manager.unregister(id).expect("it was registered");
    assert_eq!(last.delivered, 1);
    assert!(manager.unregister(id).is_none());
    assert!(manager.stats().handlers.is_empty());
    manager.raise(Alert::new("alerts_unregister", Severity::Info, "second"));
    // The worker ends and drops the handler (and its sender) without getting "second".
    assert_eq!(
        received.recv_timeout(PATIENCE),
        Err(RecvTimeoutError::Disconnected)
    );
}

#[test]
fn async_handlers_await_and_their_errors_are_counted() {
    let manager = AlertManager::new(AlertConfig::default());
    let (sender, received) = mpsc::channel();
    let id = manager.register(async_handler(move |alert: Alert| {
        let sender = sender.clone();
        async move {
            tokio::time::sleep(Duration::from_millis(5)).await;
            if alert.severity == Severity::Critical {
                return Err(HandlerError::from("pager unreachable"));
            }
            sender.send(alert.message).unwrap();
            Ok(())
        }
    }));
    manager.raise(Alert::new("alerts_async", Severity::Info, "slept"));
    manager.raise(Alert::new("alerts_async", Severity::Critical, "fails"));
    assert_eq!(received.recv_timeout(PATIENCE).unwrap(), "slept");
    assert!(manager.flush(PATIENCE));
    let stats = manager.handler_stats(id).unwrap();
    assert_eq!((stats.delivered, stats.failed, stats.panicked), (1, 1, 0));
}

// ---- webhook -------------------------------------------------------------------------------

#[derive(Debug)]
struct HttpRequest {
    method: String,
    path: String,
    headers: Vec<(String, String)>,
    body: String,
}

impl HttpRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A tiny HTTP/1.1 server on 127.0.0.1: it answers one request per connection with the next
/// status of `statuses`, sends each request it read to the receiver, and stops after the last.
fn http_server(statuses: Vec<u16>) -> (SocketAddr, Receiver<HttpRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap();
    let (sender, requests) = mpsc::channel();
    std::thread::spawn(move || {
        for status in statuses {
            let Ok((stream, _)) = listener.accept() else {
                return;
            };
            stream.set_read_timeout(Some(PATIENCE)).unwrap();
            let Some(request) = read_request(&stream) else {
                continue;
            };
            let response = format!(
                "HTTP/1.1 {status} Scripted\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = (&stream).write_all(response.as_bytes());
            if sender.send(request).is_err() {
                return;
            }
        }
    });
    (address, requests)
}

fn read_request(stream: &TcpStream) -> Option<HttpRequest> {
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_owned();
    let path = parts.next()?.to_owned();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let header = line.trim_end();
        if header.is_empty() {
            break;
        }
        let (name, value) = header.split_once(':')?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
        .map_or(Some(0), |(_, value)| value.parse().ok())?;
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    Some(HttpRequest {
        method,
        path,
        headers,
        body: String::from_utf8(body).ok()?,
    })
}

fn fast_backoff(max_attempts: u32) -> BackoffConfig {
    BackoffConfig::default()
        .initial_delay(Duration::from_millis(10))
        .max_delay(Duration::from_millis(50))
        .max_attempts(max_attempts)
        .jitter(Jitter::None)
}

#[test]
fn webhook_posts_the_alert_json() {
    let (address, requests) = http_server(vec![200]);
    let webhook = WebhookHandler::builder(format!("http://{address}/hooks/alerts"))
        .header("x-alert-token", "t0ken")
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let manager = AlertManager::new(AlertConfig::default());
    let id = manager.register(webhook);
    manager.raise(
        Alert::breaker(
            "alerts_webhook_api",
            BreakerState::Closed,
            BreakerState::Open,
            5,
        )
        .with_metadata("exchange", "binance"),
    );

    let request = requests
        .recv_timeout(PATIENCE)
        .expect("the webhook posted nothing");
    assert_eq!(
        (request.method.as_str(), request.path.as_str()),
        ("POST", "/hooks/alerts")
    );
    assert_eq!(request.header("content-type"), Some("application/json"));
    assert_eq!(request.header("x-alert-token"), Some("t0ken"));
    let json: Value = serde_json::from_str(&request.body).unwrap();
    assert_eq!(json["breaker_name"], "alerts_webhook_api");
    assert_eq!(json["old_state"], "CLOSED");
    assert_eq!(json["new_state"], "OPEN");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["failure_count"], 5);
    assert_eq!(json["metadata"]["exchange"], "binance");
    assert!(json["timestamp"].as_str().unwrap().ends_with('Z'));

    assert!(manager.flush(PATIENCE));
    let stats = manager.handler_stats(id).unwrap();
    assert_eq!((stats.delivered, stats.failed), (1, 0), "{stats:?}");
}

#[tokio::test]
async fn webhook_retries_server_errors_with_backoff() {
    let (address, requests) = http_server(vec![500, 503, 200]);
    let webhook = WebhookHandler::builder(format!("http://{address}/hook"))
        .backoff(fast_backoff(3))
        .build()
        .unwrap();
    let alert = Alert::breaker(
        "alerts_webhook_retry",
        BreakerState::HalfOpen,
        BreakerState::Open,
        1,
    );
    webhook
        .send(&alert)
        .await
        .expect("the third attempt succeeds");

    let bodies: Vec<String> = (0..3)
        .map(|_| {
            requests
                .recv_timeout(PATIENCE)
                .expect("three attempts")
                .body
        })
        .collect();
    assert!(
        bodies.iter().all(|body| *body == alert.to_json()),
        "{bodies:?}"
    );
}

#[tokio::test]
async fn webhook_gives_up_on_client_errors_and_after_max_attempts() {
    let alert = Alert::new("alerts_webhook_give_up", Severity::Warning, "gives up");

    let (address, requests) = http_server(vec![400]);
    let webhook = WebhookHandler::builder(format!("http://{address}/hook"))
        .backoff(fast_backoff(3))
        .build()
        .unwrap();
    let error = webhook.send(&alert).await.unwrap_err().to_string();
    assert!(
        error.contains("after 1 attempt(s)") && error.contains("400"),
        "{error}"
    );
    assert_eq!(requests.recv_timeout(PATIENCE).unwrap().method, "POST");

    let (address, requests) = http_server(vec![500, 500, 500]);
    let webhook = WebhookHandler::builder(format!("http://{address}/hook"))
        .backoff(fast_backoff(3))
        .build()
        .unwrap();
    let error = webhook.send(&alert).await.unwrap_err().to_string();
    assert!(
        error.contains("after 3 attempt(s)") && error.contains("500"),
        "{error}"
    );
    for attempt in 1..=3 {
        let request = requests.recv_timeout(PATIENCE);
        assert!(
            request.is_ok(),
            "attempt {attempt} never reached the server"
        );
    }
}

// ---- email ---------------------------------------------------------------------------------

/// aiosmtpd on a free loopback port, storing mails in a maildir; killed when dropped, so a
/// failing test never leaves it running.
struct SmtpServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl SmtpServer {
    fn script() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/smtp-test-server.sh")
    }

    fn install_dir() -> PathBuf {
        Path::new(env!("CARGO_TARGET_TMPDIR")).join("aiosmtpd")
    }

    fn start() -> SmtpServer {
        // Install first (a download on a fresh machine), so the wait for the port stays short.
        let installed = Command::new("bash")
            .arg(SmtpServer::script())
            .arg("--install")
            .env("AIOSMTPD_DIR", SmtpServer::install_dir())
            .stdin(Stdio::null())
            .output()
            .expect("bash runs scripts/smtp-test-server.sh");
        assert!(
            installed.status.success(),
            "installing aiosmtpd failed (python3 and pip are needed): {}",
            String::from_utf8_lossy(&installed.stderr)
        );
        let mut failures = Vec::new();
        for _ in 0..3 {
            // A port that was free a moment ago; if another process takes it meanwhile, the
            // server exits and the next round picks another.
            let port = TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port();
            let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
                .join(format!("alerts-smtp-{}-{port}", std::process::id()));
            std::fs::create_dir_all(&dir).unwrap();
            let log = std::fs::File::create(dir.join("server.log")).unwrap();
            let child = Command::new("bash")
                .arg(SmtpServer::script())
                .arg(port.to_string())
                .arg(dir.join("maildir"))
                .env("AIOSMTPD_DIR", SmtpServer::install_dir())
                .stdin(Stdio::null())
                .stdout(log.try_clone().unwrap())
                .stderr(log)
                .spawn()
                .expect("bash runs scripts/smtp-test-server.sh");
            let mut server = SmtpServer { child, port, dir };
            if server.wait_until_listening() {
                return server;
            }
            failures.push(server.log());
        }
        panic!("the SMTP server did not start: {failures:#?}");
    }

    fn wait_until_listening(&mut self) -> bool {
        let port = self.port;
        let child = &mut self.child;
        wait_until(Duration::from_secs(60), || {
            matches!(child.try_wait(), Ok(Some(_)))
                || TcpStream::connect(("127.0.0.1", port)).is_ok()
        }) && matches!(self.child.try_wait(), Ok(None))
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("server.log")).unwrap_or_default()
    }

    /// The first mail stored, once there is one.
    fn wait_for_mail(&self, timeout: Duration) -> Option<String> {
        let new = self.dir.join("maildir").join("new");
        let mut mail = None;
        wait_until(timeout, || {
            let first = std::fs::read_dir(&new)
                .ok()
                .and_then(|mut entries| entries.next())
                .and_then(|entry| entry.ok());
            mail = first.and_then(|entry| std::fs::read_to_string(entry.path()).ok());
            mail.is_some()
        });
        mail
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Headers (unfolded) and the decoded body of a stored mail.
fn parse_mail(raw: &str) -> (Vec<(String, String)>, String) {
    let raw = raw.replace("\r\n", "\n");
    let (head, body) = raw.split_once("\n\n").unwrap_or((&raw, ""));
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in head.lines() {
        if line.starts_with([' ', '\t']) {
            if let Some((_, value)) = headers.last_mut() {
                value.push(' ');
                value.push_str(line.trim());
            }
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.trim().to_owned(), value.trim().to_owned()));
        }
    }
    let encoding = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-transfer-encoding"))
        .map(|(_, value)| value.to_ascii_lowercase());
    let body = match encoding.as_deref() {
        Some("quoted-printable") => decode_quoted_printable(body),
        _ => body.to_owned(),
    };
    (headers, body)
}

fn decode_quoted_printable(text: &str) -> String {
    let text = text.replace("=\n", "");
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        let hex = bytes
            .get(at + 1..at + 3)
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match (bytes[at], hex) {
            (b'=', Some(byte)) => {
                decoded.push(byte);
                at += 3;
            }
            (byte, _) => {
                decoded.push(byte);
                at += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

#[test]
fn email_handler_delivers_through_a_real_smtp_server() {
    let server = SmtpServer::start();
    let email = EmailHandler::builder("127.0.0.1")
        .port(server.port)
        .from("Reliable alerts <alerts@reliable.test>")
        .to("oncall@reliable.test")
        .subject_prefix("[test] ")
        .timeout(PATIENCE)
        .build()
        .unwrap();
    let manager = AlertManager::new(AlertConfig::default());
    let id = manager.register(email);
    let alert = Alert::breaker(
        "alerts_email_api",
        BreakerState::Closed,
        BreakerState::Open,
        5,
    );
    manager.raise(alert.clone());

    let raw = server
        .wait_for_mail(PATIENCE)
        .unwrap_or_else(|| panic!("no mail stored; server log: {}", server.log()));
    let (headers, body) = parse_mail(&raw);
    let header = |name: &str| {
        headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
            .unwrap_or_else(|| panic!("no {name} header in {raw}"))
    };
    assert_eq!(
        header("Subject"),
        "[test] [CRITICAL] circuit breaker alerts_email_api: CLOSED -> OPEN"
    );
    assert!(header("From").contains("alerts@reliable.test"), "{raw}");
    assert!(header("To").contains("oncall@reliable.test"), "{raw}");
    assert!(header("Message-ID").ends_with('>'), "{raw}");
    // aiosmtpd's record of the envelope.
    assert_eq!(header("X-RcptTo"), "oncall@reliable.test");
    assert!(body.starts_with(&alert.message), "{body}");
    let json_start = body.find('{').expect("the body holds the alert's JSON");
    let json: Value = serde_json::from_str(body[json_start..].trim()).unwrap();
    assert_eq!(json["breaker_name"], "alerts_email_api");
    assert_eq!(json["severity"], "critical");
    assert_eq!(json["new_state"], "OPEN");
    assert_eq!(json["failure_count"], 5);

    assert!(manager.flush(PATIENCE));
    let stats = manager.handler_stats(id).unwrap();
    assert_eq!((stats.delivered, stats.failed), (1, 0), "{stats:?}");
}
