//! The live dashboard: one self-contained page (`dashboard.html`, compiled in) and the JSON it
//! polls each second.

use super::http::now;
use crate::alert::alert_manager;
use crate::get_system_health;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

/// The page, with nothing to fetch but its own data.
const PAGE: &str = include_str!("dashboard.html");

/// Alerts the page lists.
const ALERTS_SHOWN: usize = 20;

pub(super) async fn page() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/html; charset=utf-8"),
            ),
            // The page loads nothing from anywhere: a browser refuses it if it ever tried.
            (
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
                     connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'",
                ),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
        ],
        PAGE,
    )
        .into_response()
}

/// What the page draws: every source with its group, every breaker, every group's score and
/// the newest alerts, from one health snapshot.
pub(super) async fn data() -> Json<Value> {
    Json(snapshot())
}

fn snapshot() -> Value {
    let health = get_system_health();
    let group_of: HashMap<&str, &str> = health
        .per_exchange_degradation
        .iter()
        .flat_map(|(group, members)| {
            members
                .sources
                .iter()
                .map(move |source| (source.name.as_str(), group.as_str()))
        })
        .collect();
    // The health's own snapshots, as `get_system_health()` serializes them, each with its
    // name (and a source with its group) beside its fields.
    let named = |name: &str, snapshot: Value| match snapshot {
        Value::Object(mut fields) => {
            fields.insert("name".to_owned(), json!(name));
            Value::Object(fields)
        }
        other => other,
    };
    let sources: Vec<Value> = health
        .data_sources
        .iter()
        .map(|(name, metrics)| {
            let mut source = named(name, json!(metrics));
            source["group"] = json!(group_of.get(name.as_str()));
            source
        })
        .collect();
    let breakers: Vec<Value> = health
        .circuit_breakers
        .iter()
        .map(|(name, breaker)| named(name, json!(breaker)))
        .collect();
    let exchanges: Vec<Value> = health
        .per_exchange_degradation
        .values()
        .map(|group| {
            let mut exchange = json!(group);
            // Its sources are listed above, each with its group.
            if let Value::Object(fields) = &mut exchange {
                fields.remove("sources");
            }
            exchange
        })
        .collect();
    json!({
        "overall_status": health.overall_status,
        "timestamp": now(),
        "sources": sources,
        "breakers": breakers,
        "exchanges": exchanges,
        "alerts": alert_manager().recent(ALERTS_SHOWN),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The page is self-contained: nothing in it names another origin to load from (the SVG
    /// namespace is a name, not an address).
    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let page = PAGE.replace("\"http://www.w3.org/2000/svg\"", "SVG_NAMESPACE");
        for external in [
            "http://", "https://", "//cdn", "src=", "@import", "url(", "<link",
        ] {
            assert!(!page.contains(external), "the page refers to `{external}`");
        }
    }
}
