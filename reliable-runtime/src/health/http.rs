//! The health endpoints as an axum [`Router`] (feature `http-health`): mount it in one line and
//! curl it, point a load balancer or a Kubernetes probe at it, feed a dashboard from it.
//!
//! | route | answers |
//! |---|---|
//! | `GET /` (and `/overview`) | `overall_status`, the `healthy_sources` / `degraded_sources` / `failed_sources` lists, breakers, caches, groups, an RFC 3339 `timestamp`; 503 when FAILED |
//! | `GET /live` | `{"status": "alive"}`, always 200 and cheap (reads no registry) |
//! | `GET /exchanges` | `{exchanges, timestamp}`: each group's sources, breaker and degradation score |
//! | `GET /alerts?limit=N` | `{alerts, count, timestamp}`: the newest `N` alerts (default 50, at most the history's size) |
//! | `GET /breakers` | each breaker's state and counts |
//! | `GET /caches` | each cache's counters (feature `cache`) |
//! | `GET /limits` | rate limiters, bulkheads and timeouts |
//! | `GET /metrics` | the health in Prometheus' text format ([`prometheus_text`](super::prometheus_text)) |
//! | `GET /dashboard` | a live dashboard: one self-contained HTML page (no external asset, works offline) |
//! | `GET /dashboard/data` | what the page draws, in one JSON document it fetches each second |
//!
//! Every route but `/live` takes at most 60 requests a minute per client IP, answered beyond
//! that with 429 and `Retry-After` (the project's own [`RateLimiter`], one per client, at most
//! 10,000 clients kept); the dashboard's two routes have a budget of their own (180 a minute:
//! three open pages refreshing each second). A bad query is a 400 with a JSON `{"error": ..}`. The client IP is the
//! connection's: serve with `into_make_service_with_connect_info::<SocketAddr>()`; without it
//! every client shares one limit.

use crate::alert::alert_manager;
use crate::alert::time::rfc3339;
use crate::common::recency;
use crate::layer::{for_each_layer, snapshots, Layer, LayerVisitor};
use crate::limit::{RateLimit, RateLimiter, RateLimiterConfig};
use crate::sla::SlaStatus;
use crate::{get_system_health, ConfigError, Rejected};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;

/// The health endpoints with the defaults: 60 requests a minute per client IP.
///
/// ```no_run
/// # #[tokio::main] async fn main() {
/// use std::net::SocketAddr;
///
/// let app = axum::Router::new().nest("/api/health", reliable_runtime::health::router());
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:8000").await.unwrap();
/// axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>()).await.unwrap();
/// # }
/// ```
pub fn router() -> Router {
    HealthEndpoints::default()
        .build()
        .expect("the default settings are valid")
}

/// The health endpoints' settings.
///
/// ```
/// use reliable_runtime::health::HealthEndpoints;
///
/// let app = HealthEndpoints::default().per_minute(600).max_clients(1_000).build().unwrap();
/// # let _ = app;
/// let error = HealthEndpoints::default().per_minute(0).build().unwrap_err();
/// assert_eq!(error.field(), "per_minute");
/// let error = HealthEndpoints::default().dashboard_per_minute(0).build().unwrap_err();
/// assert_eq!(error.field(), "dashboard_per_minute");
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct HealthEndpoints {
    /// Requests a minute per client IP (default 60).
    pub per_minute: u32,
    /// Requests a minute per client IP to the dashboard's page and data (default 180: the page
    /// refreshes each second, three open pages at a time).
    pub dashboard_per_minute: u32,
    /// Whether `/dashboard` is served (default: yes).
    pub dashboard: bool,
    /// Clients whose limits are kept at most (default 10,000); when full, the tenth seen least
    /// recently is forgotten.
    pub max_clients: usize,
}

impl Default for HealthEndpoints {
    fn default() -> Self {
        HealthEndpoints {
            per_minute: 60,
            dashboard_per_minute: 180,
            dashboard: true,
            max_clients: 10_000,
        }
    }
}

impl HealthEndpoints {
    /// Requests a minute per client IP.
    pub fn per_minute(mut self, per_minute: u32) -> Self {
        self.per_minute = per_minute;
        self
    }

    /// Requests a minute per client IP to the dashboard's page and data.
    pub fn dashboard_per_minute(mut self, per_minute: u32) -> Self {
        self.dashboard_per_minute = per_minute;
        self
    }

    /// Whether to serve `/dashboard` (and `/dashboard/data`).
    pub fn dashboard(mut self, serve: bool) -> Self {
        self.dashboard = serve;
        self
    }

    /// Clients whose limits are kept at most.
    pub fn max_clients(mut self, max_clients: usize) -> Self {
        self.max_clients = max_clients;
        self
    }

    /// The router, after checking the settings: a limit a rate limiter cannot hold, or no
    /// client kept, is an `Err` naming the field.
    pub fn build(self) -> Result<Router, ConfigError> {
        let clients = |field: &'static str, per_minute: u32| {
            let limit = RateLimit::per_minute(per_minute);
            limit
                .validate()
                .map_err(|error| ConfigError::new(field, error.reason().to_owned()))?;
            Ok::<_, ConfigError>(Arc::new(Clients {
                limit,
                max: self.max_clients,
                known: Mutex::new(Known::default()),
            }))
        };
        let api = clients("per_minute", self.per_minute)?;
        let dashboard = clients("dashboard_per_minute", self.dashboard_per_minute)?;
        if self.max_clients == 0 {
            return Err(ConfigError::new(
                "max_clients",
                "must keep at least one client",
            ));
        }
        let limited = Router::new()
            .route("/", get(overview))
            .route("/overview", get(overview))
            .route("/exchanges", get(exchanges))
            .route("/alerts", get(alerts))
            .route("/breakers", get(breakers))
            .route("/caches", get(caches))
            .route("/limits", get(limits))
            .route("/metrics", get(metrics))
            .layer(middleware::from_fn_with_state(api, limit_per_client));
        let mut router = Router::new().route("/live", get(live)).merge(limited);
        if self.dashboard {
            router = router.merge(
                Router::new()
                    .route("/dashboard", get(super::dashboard::page))
                    .route("/dashboard/", get(super::dashboard::page))
                    .route("/dashboard/data", get(super::dashboard::data))
                    .layer(middleware::from_fn_with_state(dashboard, limit_per_client)),
            );
        }
        Ok(router)
    }
}

/// Each client's limiter, at most `max` clients.
struct Clients {
    limit: RateLimit,
    max: usize,
    known: Mutex<Known>,
}

/// The clients kept, each with its limiter and when it was last seen (a count of requests).
#[derive(Default)]
struct Known {
    clients: HashMap<IpAddr, (Arc<RateLimiter>, u64)>,
    requests: u64,
}

impl Clients {
    fn limiter(&self, client: IpAddr) -> Arc<RateLimiter> {
        let mut known = self.known.lock().unwrap_or_else(PoisonError::into_inner);
        known.requests += 1;
        let now = known.requests;
        if let Some((limiter, seen)) = known.clients.get_mut(&client) {
            *seen = now;
            return Arc::clone(limiter);
        }
        if known.clients.len() >= self.max {
            // Forget the tenth seen least recently (one at least): memory stays bounded
            // whatever the addresses a flood comes from, and finding them (a scan of every
            // client) is paid once per tenth, not on every new client.
            let forget = recency::tenth(self.max);
            let seen = known.clients.values().map(|(_, seen)| *seen);
            if let Some(cutoff) = recency::cutoff(seen, forget) {
                known.clients.retain(|_, (_, seen)| *seen > cutoff);
            }
        }
        let limiter = Arc::new(
            RateLimiter::new("health_endpoints", RateLimiterConfig::new(self.limit))
                .expect("the limit was checked when the router was built"),
        );
        known.clients.insert(client, (Arc::clone(&limiter), now));
        limiter
    }
}

async fn limit_per_client(
    State(clients): State<Arc<Clients>>,
    request: Request,
    next: Next,
) -> Response {
    let client = request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), |info| info.0.ip());
    match clients.limiter(client).try_acquire() {
        Ok(()) => next.run(request).await,
        Err(Rejected::RateLimited { retry_after, .. }) => {
            let seconds = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                format!("more than the limit of requests a minute; retry in {seconds} s"),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
            response
        }
        Err(other) => error(StatusCode::SERVICE_UNAVAILABLE, other.to_string()),
    }
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

pub(super) fn now() -> String {
    rfc3339(SystemTime::now())
}

async fn live() -> Json<Value> {
    Json(json!({ "status": "alive" }))
}

async fn overview() -> Response {
    let health = get_system_health();
    let with = |status: SlaStatus| -> Vec<&String> {
        health
            .data_sources
            .iter()
            .filter(|(_, metrics)| metrics.status == status)
            .map(|(name, _)| name)
            .collect()
    };
    let mut body = serde_json::to_value(&health).unwrap_or_else(|_| json!({}));
    body["healthy_sources"] = json!(with(SlaStatus::Healthy));
    body["degraded_sources"] = json!(with(SlaStatus::Degraded));
    body["failed_sources"] = json!(with(SlaStatus::Failed));
    // The snapshot's own time, in RFC 3339 (not a second reading of the clock).
    let since_epoch = std::time::Duration::try_from_secs_f64(health.timestamp).unwrap_or_default();
    let taken = std::time::UNIX_EPOCH + since_epoch;
    body["timestamp"] = json!(rfc3339(taken));
    let status = if health.overall_status == SlaStatus::Failed {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (status, Json(body)).into_response()
}

async fn exchanges() -> Json<Value> {
    let health = get_system_health();
    Json(json!({ "exchanges": health.per_exchange_degradation, "timestamp": now() }))
}

async fn alerts(request: Request) -> Response {
    let manager = alert_manager();
    let most = manager.history_capacity();
    let limit = match limit_of(request.uri().query(), most) {
        Ok(limit) => limit,
        Err(message) => return error(StatusCode::BAD_REQUEST, message),
    };
    let alerts = manager.recent(limit);
    Json(json!({ "count": alerts.len(), "alerts": alerts, "timestamp": now() })).into_response()
}

/// `limit` from the query: default 50 (or the history's size if smaller), at most `most`.
fn limit_of(query: Option<&str>, most: usize) -> Result<usize, String> {
    let mut limit = 50.min(most);
    for pair in query
        .unwrap_or("")
        .split('&')
        .filter(|pair| !pair.is_empty())
    {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != "limit" {
            return Err(format!(
                "unknown query parameter `{key}`: only `limit` is taken"
            ));
        }
        limit = match value.parse::<usize>() {
            Ok(n) if (1..=most).contains(&n) => n,
            _ => {
                return Err(format!(
                    "`limit` must be a whole number from 1 to {most} (the alert history's size), got `{value}`"
                ))
            }
        };
    }
    Ok(limit)
}

async fn metrics() -> Response {
    let text = super::prometheus_text(&get_system_health());
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        text,
    )
        .into_response()
}

/// The breakers alone (a whole health read would judge every source's window too).
async fn breakers() -> Json<Value> {
    let breakers = snapshots::<crate::breaker::CircuitBreaker>();
    Json(json!({ "circuit_breakers": breakers, "timestamp": now() }))
}

async fn caches() -> Json<Value> {
    #[cfg(feature = "cache")]
    let caches = serde_json::to_value(crate::registry::cache_registry().snapshots())
        .unwrap_or_else(|_| json!({}));
    #[cfg(not(feature = "cache"))]
    let caches = json!({});
    Json(json!({ "cache_stats": caches, "timestamp": now() }))
}

/// The limits alone (a whole health read would judge every source's window too): each kind of
/// layer the layer table puts on this route.
async fn limits() -> Json<Value> {
    struct Limits(serde_json::Map<String, Value>);
    impl LayerVisitor for Limits {
        fn visit<T: Layer>(&mut self) {
            if T::ON_LIMITS_ROUTE {
                let section = serde_json::to_value(snapshots::<T>()).unwrap_or_else(|_| json!({}));
                self.0.insert(T::HEALTH_FIELD.to_owned(), section);
            }
        }
    }
    let mut limits = Limits(serde_json::Map::new());
    for_each_layer(&mut limits);
    limits.0.insert("timestamp".to_owned(), json!(now()));
    Json(Value::Object(limits.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_clients_kept_are_bounded_and_the_least_recent_is_forgotten() {
        let clients = Clients {
            limit: RateLimit::per_minute(2),
            max: 3,
            known: Mutex::new(Known::default()),
        };
        let ip = |n: u8| IpAddr::V4(Ipv4Addr::new(10, 0, 0, n));
        let first = clients.limiter(ip(1));
        first.try_acquire().unwrap();
        for n in 2..=200 {
            clients.limiter(ip(n));
            clients.limiter(ip(1)); // seen again each time: never the least recent
            assert!(clients.known.lock().unwrap().clients.len() <= 3);
        }
        // The client kept throughout kept its limiter and what it counted.
        assert!(Arc::ptr_eq(&first, &clients.limiter(ip(1))));
        first.try_acquire().unwrap();
        assert!(first.try_acquire().is_err(), "two a minute");
    }

    /// A full table forgets the least recently seen tenth at once, so a flood of new addresses
    /// scans the table once per tenth of it.
    #[test]
    fn a_full_table_forgets_its_least_recent_tenth() {
        let clients = Clients {
            limit: RateLimit::per_minute(2),
            max: 100,
            known: Mutex::new(Known::default()),
        };
        let ip = |n: u32| IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n));
        for n in 0..100 {
            clients.limiter(ip(n));
        }
        clients.limiter(ip(0)); // seen again: now the most recent
        clients.limiter(ip(100));
        let known = clients.known.lock().unwrap();
        assert_eq!(known.clients.len(), 91, "ten forgotten, one added");
        assert!(known.clients.contains_key(&ip(0)), "seen recently, kept");
        assert!(
            !known.clients.contains_key(&ip(1)),
            "the least recent, forgotten"
        );
        assert!(!known.clients.contains_key(&ip(10)));
        assert!(known.clients.contains_key(&ip(11)));
    }

    #[test]
    fn the_alert_limit_is_checked_and_bounded() {
        assert_eq!(limit_of(None, 100), Ok(50));
        assert_eq!(limit_of(Some("limit=20"), 100), Ok(20));
        assert_eq!(limit_of(None, 10), Ok(10));
        for bad in [
            "limit=abc",
            "limit=-1",
            "limit=0",
            "limit=101",
            "limit=99999999999999999999999",
            "limit=",
            "other=1",
        ] {
            let error = limit_of(Some(bad), 100).unwrap_err();
            assert!(error.contains('`'), "{bad}: {error}");
        }
    }
}
