//! The simulated exchange: a Binance-like HTTP API on loopback, with scripted faults.
//!
//! Two endpoints answer JSON as Binance's v3 API does (`GET /api/v3/depth?symbol=BTCUSDT`,
//! `GET /api/v3/ticker/price?symbol=BTCUSDT`, prices and quantities as decimal strings). What
//! goes wrong, and when, follows a [`Phase`] script laid over the run in fractions of its length,
//! so a 4 s test and a 30 s demo meet the same faults in the same order. Per-request chance (which
//! request fails, how slow a slow one is) comes from one RNG seeded by `--seed`.

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::header::{HeaderValue, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::convert::Infallible;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::task::{JoinHandle, JoinSet};

/// The symbols the exchange lists, with the price it quotes them around.
pub(crate) const LISTINGS: [(&str, f64); 6] = [
    ("BTCUSDT", 97_000.0),
    ("ETHUSDT", 3_400.0),
    ("SOLUSDT", 180.0),
    ("BNBUSDT", 650.0),
    ("XRPUSDT", 2.3),
    ("DOGEUSDT", 0.32),
];

/// The request rate the exchange publishes for all of one API key's clients together: a real
/// exchange bans the key past it. This one does not refuse; it counts what went over, in each
/// second of the run.
pub(crate) const LIMIT_PER_SECOND: u64 = 12;

/// What the 429s tell the client: come back in a second (Binance sends whole seconds).
const RETRY_AFTER_SECONDS: u64 = 1;

/// Price levels on each side of an order book.
const DEPTH_LEVELS: usize = 5;

/// One stretch of the exchange's script.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Phase {
    /// Fast answers, a few random 500s.
    Calm,
    /// Answers take 80 to 450 ms, a few over a second (past the client's timeout).
    LatencySpike,
    /// Three in ten requests fail with 500, 502 or 504.
    ServerErrors,
    /// Six in ten requests get 429 with `Retry-After: 1`.
    RateLimited,
    /// Every request gets 503: the exchange is down.
    Outage,
    /// Back to calm: the breakers probe and close, the caches refill.
    Recovery,
}

impl Phase {
    /// The script, in order.
    pub(crate) const ALL: [Phase; 6] = [
        Phase::Calm,
        Phase::LatencySpike,
        Phase::ServerErrors,
        Phase::RateLimited,
        Phase::Outage,
        Phase::Recovery,
    ];

    /// Where the phase starts, as a fraction of the run.
    ///
    /// The outage takes 30% of the run, so that even a 4 s run keeps the exchange down for longer
    /// than the order-book cache can cover (250 ms fresh + 500 ms stale) and longer than a
    /// breaker first stays open (1 s): the run always shows stale serves, fallbacks and a trip.
    fn starts_at(self) -> f64 {
        match self {
            Phase::Calm => 0.0,
            Phase::LatencySpike => 0.12,
            Phase::ServerErrors => 0.27,
            Phase::RateLimited => 0.37,
            Phase::Outage => 0.45,
            Phase::Recovery => 0.75,
        }
    }

    /// Its name in the summary.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Phase::Calm => "calm",
            Phase::LatencySpike => "latency spike",
            Phase::ServerErrors => "5xx burst",
            Phase::RateLimited => "rate limiting",
            Phase::Outage => "outage",
            Phase::Recovery => "recovery",
        }
    }

    /// A few words for the dashboard: the name and what the exchange does.
    pub(crate) fn describe(self) -> &'static str {
        match self {
            Phase::Calm => "calm",
            Phase::LatencySpike => "latency spike (80-450 ms, some >1 s)",
            Phase::ServerErrors => "5xx burst (30% of requests)",
            Phase::RateLimited => "rate limiting (429, Retry-After: 1)",
            Phase::Outage => "OUTAGE (503 on every request)",
            Phase::Recovery => "recovered",
        }
    }

    /// Its position in [`Phase::ALL`] (declaration order), for per-phase counters.
    fn index(self) -> usize {
        self as usize
    }
}

/// The run's clock: where in the script the exchange is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Timeline {
    started: Instant,
    total: Duration,
}

impl Timeline {
    /// A script of `total` length starting now.
    pub(crate) fn start(total: Duration) -> Self {
        Timeline {
            started: Instant::now(),
            total,
        }
    }

    pub(crate) fn started(&self) -> Instant {
        self.started
    }

    pub(crate) fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// The phase at `elapsed` into the run (the last one stays on past the end).
    pub(crate) fn phase_at(&self, elapsed: Duration) -> Phase {
        let fraction = elapsed.as_secs_f64() / self.total.as_secs_f64();
        Phase::ALL
            .into_iter()
            .rev()
            .find(|phase| fraction >= phase.starts_at())
            .unwrap_or(Phase::Calm)
    }

    pub(crate) fn phase_now(&self) -> Phase {
        self.phase_at(self.elapsed())
    }

    /// When `phase` starts, from the start of the run.
    pub(crate) fn phase_start(&self, phase: Phase) -> Duration {
        self.total.mul_f64(phase.starts_at())
    }
}

/// What the exchange answered, counted on its side of the wire.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct ExchangeStats {
    /// Requests that reached the exchange, whatever it answered.
    pub(crate) requests: u64,
    /// 200s.
    pub(crate) ok: u64,
    /// 429s.
    pub(crate) throttled: u64,
    /// 500, 502, 504 outside the outage.
    pub(crate) server_errors: u64,
    /// 503s of the outage.
    pub(crate) unavailable: u64,
    /// 400, 404, 405: the client's mistakes (the demo makes none).
    pub(crate) client_errors: u64,
    /// Requests received in each phase, in [`Phase::ALL`] order.
    pub(crate) per_phase: [u64; 6],
    /// The most requests received in one second of the run.
    pub(crate) peak_per_second: u64,
    /// Requests beyond [`LIMIT_PER_SECOND`] in their second, summed over the run.
    pub(crate) over_limit: u64,
}

#[derive(Default)]
struct Counters {
    requests: AtomicU64,
    ok: AtomicU64,
    throttled: AtomicU64,
    server_errors: AtomicU64,
    unavailable: AtomicU64,
    client_errors: AtomicU64,
    per_phase: [AtomicU64; 6],
    /// Requests received in each second of the run.
    per_second: Mutex<Vec<u64>>,
}

impl Counters {
    fn count(&self, status: StatusCode) {
        let counter = match status.as_u16() {
            200 => &self.ok,
            429 => &self.throttled,
            503 => &self.unavailable,
            500..=599 => &self.server_errors,
            _ => &self.client_errors,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    fn arrived(&self, second: usize) {
        let mut per_second = self.per_second();
        if per_second.len() <= second {
            per_second.resize(second + 1, 0);
        }
        per_second[second] += 1;
    }

    fn per_second(&self) -> std::sync::MutexGuard<'_, Vec<u64>> {
        self.per_second
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    fn snapshot(&self) -> ExchangeStats {
        let (peak_per_second, over_limit) = {
            let per_second = self.per_second();
            let over = per_second
                .iter()
                .map(|&count| count.saturating_sub(LIMIT_PER_SECOND));
            (per_second.iter().copied().max().unwrap_or(0), over.sum())
        };
        let read = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        ExchangeStats {
            requests: read(&self.requests),
            ok: read(&self.ok),
            throttled: read(&self.throttled),
            server_errors: read(&self.server_errors),
            unavailable: read(&self.unavailable),
            client_errors: read(&self.client_errors),
            per_phase: self.per_phase.each_ref().map(read),
            peak_per_second,
            over_limit,
        }
    }
}

struct State {
    timeline: Timeline,
    rng: Mutex<StdRng>,
    counters: Counters,
    update_id: AtomicU64,
}

/// A running exchange; dropping it stops the server and closes its connections.
pub(crate) struct Exchange {
    address: SocketAddr,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Exchange {
    /// Starts the exchange on `127.0.0.1` at a free port, following `timeline`'s script.
    pub(crate) async fn start(timeline: Timeline, seed: u64) -> io::Result<Exchange> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let address = listener.local_addr()?;
        let state = Arc::new(State {
            timeline,
            rng: Mutex::new(StdRng::seed_from_u64(seed)),
            counters: Counters::default(),
            update_id: AtomicU64::new(1_000_000),
        });
        let server = tokio::spawn(serve(listener, Arc::clone(&state)));
        Ok(Exchange {
            address,
            state,
            server,
        })
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub(crate) fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }

    pub(crate) fn stats(&self) -> ExchangeStats {
        self.state.counters.snapshot()
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        // The accept loop owns the connections' tasks: aborting it drops them too.
        self.server.abort();
    }
}

async fn serve(listener: TcpListener, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            // Out of file descriptors or similar: back off rather than spin.
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let state = Arc::clone(&state);
        connections.spawn(async move {
            let service = service_fn(move |request| answer(Arc::clone(&state), request));
            // A client that hangs up mid-answer (its timeout fired) is not the exchange's
            // problem: the error only says the connection closed.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
        while connections.try_join_next().is_some() {}
    }
}

/// What the script makes of one request.
enum Verdict {
    Ok,
    Fail(StatusCode),
}

async fn answer(
    state: Arc<State>,
    request: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let phase = state.timeline.phase_now();
    let counters = &state.counters;
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters.per_phase[phase.index()].fetch_add(1, Ordering::Relaxed);
    counters.arrived(state.timeline.elapsed().as_secs() as usize);

    let (latency, verdict, jitter) = state.draw(phase);
    tokio::time::sleep(latency).await;
    let response = match verdict {
        Verdict::Fail(status) => failure(status),
        Verdict::Ok => state.route(&request, jitter),
    };
    counters.count(response.status());
    Ok(response)
}

impl State {
    /// Draws the request's latency, fate and price jitter, in one lock of the seeded RNG.
    fn draw(&self, phase: Phase) -> (Duration, Verdict, f64) {
        let mut rng = self.rng.lock().unwrap_or_else(PoisonError::into_inner);
        let normal = Duration::from_micros(rng.random_range(2_000..12_000));
        let jitter = rng.random_range(-0.000_5..0.000_5);
        let (latency, verdict) = match phase {
            Phase::Calm | Phase::Recovery if rng.random_bool(0.03) => {
                (normal, Verdict::Fail(StatusCode::INTERNAL_SERVER_ERROR))
            }
            Phase::Calm | Phase::Recovery => (normal, Verdict::Ok),
            Phase::LatencySpike if rng.random_bool(0.08) => {
                (Duration::from_millis(1_200), Verdict::Ok)
            }
            Phase::LatencySpike => (
                Duration::from_millis(rng.random_range(80..450)),
                Verdict::Ok,
            ),
            Phase::ServerErrors if rng.random_bool(0.3) => {
                let status = [
                    StatusCode::INTERNAL_SERVER_ERROR,
                    StatusCode::BAD_GATEWAY,
                    StatusCode::GATEWAY_TIMEOUT,
                ][rng.random_range(0..3)];
                (normal, Verdict::Fail(status))
            }
            Phase::ServerErrors => (normal, Verdict::Ok),
            Phase::RateLimited if rng.random_bool(0.6) => {
                (normal, Verdict::Fail(StatusCode::TOO_MANY_REQUESTS))
            }
            Phase::RateLimited => (normal, Verdict::Ok),
            Phase::Outage => (
                Duration::from_millis(1),
                Verdict::Fail(StatusCode::SERVICE_UNAVAILABLE),
            ),
        };
        (latency, verdict, jitter)
    }

    /// Answers a request the script let through, as the real API would.
    fn route(&self, request: &Request<Incoming>, jitter: f64) -> Response<Full<Bytes>> {
        if request.method() != Method::GET {
            return failure(StatusCode::METHOD_NOT_ALLOWED);
        }
        let symbol = request.uri().query().and_then(|query| {
            query
                .split('&')
                .find_map(|pair| pair.strip_prefix("symbol="))
        });
        let Some((symbol, base)) =
            symbol.and_then(|symbol| LISTINGS.into_iter().find(|(listed, _)| *listed == symbol))
        else {
            return failure(StatusCode::BAD_REQUEST);
        };
        let mid = base * (1.0 + jitter);
        let update_id = self.update_id.fetch_add(1, Ordering::Relaxed);
        match request.uri().path() {
            "/api/v3/depth" => {
                let tick = base * 0.000_01;
                let level = |side: f64, i: usize| {
                    let price = mid + side * tick * (i as f64 + 0.5);
                    let quantity = 0.1 + (update_id + i as u64) as f64 % 7.0 * 0.25;
                    [decimal(price), decimal(quantity)]
                };
                json_response(
                    StatusCode::OK,
                    &json!({
                        "lastUpdateId": update_id,
                        "bids": (0..DEPTH_LEVELS).map(|i| level(-1.0, i)).collect::<Vec<_>>(),
                        "asks": (0..DEPTH_LEVELS).map(|i| level(1.0, i)).collect::<Vec<_>>(),
                    }),
                )
            }
            "/api/v3/ticker/price" => json_response(
                StatusCode::OK,
                &json!({ "symbol": symbol, "price": decimal(mid) }),
            ),
            _ => failure(StatusCode::NOT_FOUND),
        }
    }
}

/// Binance writes prices and quantities as strings with eight decimals.
fn decimal(value: f64) -> String {
    format!("{value:.8}")
}

/// An error answer with Binance's body shape (`{"code": ..., "msg": ...}`).
fn failure(status: StatusCode) -> Response<Full<Bytes>> {
    let (code, message) = match status {
        StatusCode::TOO_MANY_REQUESTS => (-1003, "Too many requests; please use the websocket."),
        StatusCode::BAD_REQUEST => (-1121, "Invalid symbol."),
        StatusCode::SERVICE_UNAVAILABLE => (-1008, "Service unavailable."),
        _ if status.is_server_error() => (-1000, "An unknown error occurred."),
        _ => (-1, "Not found."),
    };
    let mut response = json_response(status, &json!({ "code": code, "msg": message }));
    if status == StatusCode::TOO_MANY_REQUESTS {
        response
            .headers_mut()
            .insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    response
}

fn json_response(status: StatusCode, body: &serde_json::Value) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
