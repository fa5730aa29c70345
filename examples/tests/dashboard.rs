//! The live dashboard in a real browser: the exchange demo runs with `--serve` on loopback, and
//! a headless Chromium, driven over WebDriver (`chromedriver`, installed by
//! `scripts/chromedriver.sh` when missing), opens the page and watches it through the run.
//!
//! The page must show every source of the demo, show the exchange's breaker OPEN during the
//! outage, go live (its data route answers), and raise no script error: neither in the page's
//! own error box nor in the browser's console log.
//!
//! A screenshot taken during the outage is written to `dashboard.png` in the test's target
//! directory. The README's picture is one of these, from a longer run:
//! `DASHBOARD_RUN_SECONDS=30 cargo test -p reliable-examples --test dashboard`.

#[path = "../examples/exchange_demo/mod.rs"]
#[allow(dead_code, unused_imports)]
mod demo;

use serde_json::{json, Value};
use std::net::{SocketAddr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The demo's run: 8 s unless `DASHBOARD_RUN_SECONDS` says otherwise (the outage is 30% of it).
fn run_length() -> Duration {
    let seconds = std::env::var("DASHBOARD_RUN_SECONDS")
        .ok()
        .and_then(|raw| raw.parse().ok())
        .unwrap_or(8);
    Duration::from_secs(seconds)
}

/// `chromedriver` as a child process, killed when dropped (a failed assertion included).
struct Driver {
    child: Child,
    base: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Driver {
    async fn start() -> Driver {
        // A free loopback port: bound, read, released for chromedriver.
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/chromedriver.sh");
        let child = Command::new("bash")
            .arg(script)
            .arg(format!("--port={port}"))
            .arg("--allowed-ips=127.0.0.1")
            .stdout(Stdio::null())
            .spawn()
            .expect("run scripts/chromedriver.sh");
        let driver = Driver {
            child,
            base: format!("http://127.0.0.1:{port}"),
        };
        // Installing the browser can take a while on a fresh machine; then it starts in ms.
        let waiting = Instant::now();
        let client = reqwest::Client::new();
        loop {
            let status = client.get(format!("{}/status", driver.base)).send().await;
            if let Ok(response) = status {
                let body: Value = response.json().await.unwrap_or_default();
                if body["value"]["ready"] == json!(true) {
                    return driver;
                }
            }
            assert!(
                waiting.elapsed() < Duration::from_secs(600),
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// One WebDriver session (a headless Chromium window).
struct Session {
    client: reqwest::Client,
    url: String,
}

impl Session {
    async fn open(driver: &Driver) -> Session {
        let client = reqwest::Client::new();
        let mut options = json!({
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--window-size=1280,1100"],
        });
        if std::path::Path::new("/usr/bin/chromium").exists() {
            options["binary"] = json!("/usr/bin/chromium");
        }
        let capabilities = json!({ "capabilities": { "alwaysMatch": {
            "goog:chromeOptions": options,
            "goog:loggingPrefs": { "browser": "ALL" },
        }}});
        let created = post(&client, &format!("{}/session", driver.base), &capabilities).await;
        let id = created["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {created}"));
        Session {
            client,
            url: format!("{}/session/{id}", driver.base),
        }
    }

    async fn command(&self, path: &str, body: Value) -> Value {
        let answer = post(&self.client, &format!("{}/{path}", self.url), &body).await;
        assert!(
            answer["value"].get("error").is_none(),
            "WebDriver `{path}` failed: {answer}"
        );
        answer["value"].clone()
    }

    async fn script(&self, script: &str) -> Value {
        self.command("execute/sync", json!({ "script": script, "args": [] }))
            .await
    }

    /// The browser's console entries since the last call.
    async fn console(&self) -> Vec<Value> {
        let entries = self.command("se/log", json!({ "type": "browser" })).await;
        entries.as_array().cloned().unwrap_or_default()
    }

    async fn screenshot(&self) -> Vec<u8> {
        let answer: Value = self
            .client
            .get(format!("{}/screenshot", self.url))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        decode_base64(answer["value"].as_str().expect("a screenshot"))
    }

    async fn close(self) {
        let _ = self.client.delete(&self.url).send().await;
    }
}

/// A WebDriver command: `body` posted to `url`, the JSON answer.
async fn post(client: &reqwest::Client, url: &str, body: &Value) -> Value {
    let answer = client.post(url).json(body).send().await.unwrap();
    answer.json().await.unwrap()
}

/// What the page shows, read in the page.
const READ_PAGE: &str = r#"
    const all = (selector, attribute) =>
        [...document.querySelectorAll(selector)].map((node) => node.getAttribute(attribute));
    return {
        overall: document.getElementById("overall").textContent,
        connection: document.getElementById("connection").textContent,
        errors: document.getElementById("errors").textContent,
        sources: all("[data-source]", "data-source"),
        breakers: [...document.querySelectorAll("[data-breaker]")]
            .map((row) => [row.getAttribute("data-breaker"), row.getAttribute("data-state")]),
        exchanges: all("[data-exchange]", "data-exchange"),
        alerts: all("[data-severity]", "data-severity"),
    };
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_shows_every_source_and_the_open_breaker_without_script_errors() {
    let driver = Driver::start().await;
    let options = demo::Options {
        duration: run_length(),
        quiet: true,
        serve: Some("127.0.0.1:0".parse().unwrap()),
        ..demo::Options::default()
    };
    // Before the run starts: the demo stops serving no earlier than this plus its length, so
    // the page's fetches refused after that are the end of the run, not a fault.
    let began = std::time::SystemTime::now();
    let length = options.duration;
    let (served, serving) = tokio::sync::oneshot::channel::<SocketAddr>();
    let run = tokio::spawn(async move {
        demo::run_serving(&options, move |address| {
            let _ = served.send(address);
        })
        .await
        .map_err(|error| error.to_string())
    });
    let address = serving.await.expect("the demo serves its dashboard");
    let session = Session::open(&driver).await;
    session
        .command(
            "url",
            json!({ "url": format!("http://{address}/dashboard") }),
        )
        .await;

    let mut went_live = false;
    let mut saw_open = false;
    let mut screenshot = None;
    let mut sources_seen = std::collections::BTreeSet::new();
    let mut console = Vec::new();
    while !run.is_finished() {
        let page = session.script(READ_PAGE).await;
        assert_eq!(
            page["errors"],
            json!(""),
            "the page reported errors: {page}"
        );
        went_live |= page["connection"] == json!("live");
        for source in page["sources"].as_array().unwrap() {
            sources_seen.insert(source.as_str().unwrap().to_owned());
        }
        let open = page["breakers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|breaker| breaker == &json!(["binance_api", "OPEN"]));
        if open && !saw_open {
            saw_open = true;
            // Let the page draw a few more points before the picture.
            tokio::time::sleep(Duration::from_millis(1_500)).await;
            screenshot = Some(session.screenshot().await);
        }
        console.extend(session.console().await);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let summary = run.await.unwrap().expect("the demo runs");
    console.extend(session.console().await);
    session.close().await;

    assert!(went_live, "the page never loaded its data");
    for source in ["binance_orderbook", "binance_ticker"] {
        assert!(
            sources_seen.contains(source),
            "{source} never shown: {sources_seen:?}"
        );
    }
    assert!(
        saw_open,
        "the breaker was never shown OPEN ({} trips in the run)",
        summary.breaker_trips
    );
    let stopping = (began + length)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let errors: Vec<&Value> = console
        .iter()
        .filter(|entry| entry["level"] == json!("SEVERE"))
        .filter(|entry| {
            let after_the_run = entry["timestamp"].as_u64().unwrap_or(0) >= stopping;
            !(entry["source"] == json!("network") && after_the_run)
        })
        .collect();
    assert!(errors.is_empty(), "the browser logged errors: {errors:?}");

    let picture = screenshot.expect("a screenshot during the outage");
    assert!(picture.starts_with(b"\x89PNG"), "the screenshot is a PNG");
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("dashboard.png");
    std::fs::write(&path, picture).unwrap();
    println!("screenshot: {}", path.display());
}

/// Standard base64 (what WebDriver sends screenshots in), without a crate for one use.
fn decode_base64(text: &str) -> Vec<u8> {
    let value = |byte: u8| -> u32 {
        match byte {
            b'A'..=b'Z' => u32::from(byte - b'A'),
            b'a'..=b'z' => u32::from(byte - b'a') + 26,
            b'0'..=b'9' => u32::from(byte - b'0') + 52,
            b'+' => 62,
            b'/' => 63,
            other => panic!("not base64: {other}"),
        }
    };
    let bytes: Vec<u8> = text.bytes().filter(|byte| *byte != b'=').collect();
    let mut out = Vec::with_capacity(bytes.len() * 3 / 4);
    for chunk in bytes.chunks(4) {
        let mut word = 0u32;
        for (index, byte) in chunk.iter().enumerate() {
            word |= value(*byte) << (18 - 6 * index);
        }
        let produced = chunk.len() * 6 / 8;
        out.extend_from_slice(&word.to_be_bytes()[1..1 + produced]);
    }
    out
}
