//! The formatted expansion of each attribute's documented example, as an `insta` snapshot: any
//! change to the generated code shows in a diff (`cargo insta review`, or compare the
//! `.snap.new` file a failing run leaves beside the snapshot).

use crate::plan::Attribute;

/// The layer attribute named `name`, from the table.
fn layer(name: &str) -> Attribute {
    let descriptor = crate::LAYERS.iter().find(|d| d.attribute == name);
    Attribute::Layer(descriptor.expect("a layer attribute of the table"))
}

fn expand(layer: Attribute, args: &str, item: &str) -> String {
    let tokens = super::attribute(
        layer,
        args.parse().expect("the arguments are tokens"),
        item.parse().expect("the item is tokens"),
    );
    let file = syn::parse2::<syn::File>(tokens).expect("the expansion is a Rust item");
    prettyplease::unparse(&file)
}

const ORDERBOOK: &str =
    "async fn orderbook(&self, symbol: &str) -> Result<Vec<(f64, f64)>, ApiError> {
    self.get(symbol).await
}";

#[test]
fn monitored() {
    insta::assert_snapshot!(expand(
        layer("monitored"),
        r#"name = "binance_orderbook", p95 = "1s", p99 = "2s", min_success_rate = 0.95"#,
        ORDERBOOK,
    ));
}

#[test]
fn monitored_any_return_type() {
    insta::assert_snapshot!(expand(
        layer("monitored"),
        "",
        "fn parse(raw: &str) -> usize { raw.len() }",
    ));
}

#[test]
fn circuit_breaker() {
    insta::assert_snapshot!(expand(
        layer("circuit_breaker"),
        r#"name = "binance_api", failure_threshold = 5, timeout = 30, success_threshold = 2"#,
        ORDERBOOK,
    ));
}

#[test]
fn with_backoff() {
    insta::assert_snapshot!(expand(
        layer("with_backoff"),
        r#"initial_delay = "500ms", max_delay = "10s", max_attempts = 3, jitter = "full", retry_if = ApiError::is_transient"#,
        ORDERBOOK,
    ));
}

#[test]
fn timeout() {
    insta::assert_snapshot!(expand(layer("timeout"), r#""2s""#, ORDERBOOK));
}

#[test]
fn rate_limited() {
    insta::assert_snapshot!(expand(
        layer("rate_limited"),
        r#"name = "binance", per_minute = 1200, burst = 50"#,
        ORDERBOOK,
    ));
}

#[test]
fn bulkhead() {
    insta::assert_snapshot!(expand(
        layer("bulkhead"),
        r#"max_concurrent = 25, max_wait = "100ms""#,
        ORDERBOOK,
    ));
}

#[test]
fn cached() {
    insta::assert_snapshot!(expand(
        layer("cached"),
        "ttl = 5",
        "async fn ticker(symbol: &str) -> Result<f64, ApiError> { fetch(symbol).await }",
    ));
}

#[test]
fn graceful_degradation() {
    insta::assert_snapshot!(expand(
        layer("graceful_degradation"),
        "fallback = last_known_price",
        "fn price(symbol: &str) -> Result<f64, ApiError> { fetch(symbol) }",
    ));
}

/// README's preset example: the expansion a reader sees in `cargo expand` stays short.
#[test]
fn reliable_cex_call() {
    let expansion = expand(
        Attribute::Preset("reliable_cex_call", Some("CEX")),
        r#"cache_ttl = 5, key = format!("binance:{}", symbol), group = "binance""#,
        "async fn fetch_orderbook(&self, symbol: &str) -> Result<OrderBook, ApiError> {
            self.get(symbol).await
        }",
    );
    let lines = expansion.lines().count();
    assert!(lines <= 40, "{lines} lines:\n{expansion}");
    insta::assert_snapshot!(expansion);
}

/// `#[reliable(preset = ...)]` with a preset of one's own, per-layer names and a fallback.
#[test]
fn reliable() {
    insta::assert_snapshot!(expand(
        Attribute::Preset("reliable", None),
        r#"preset = MY_EXCHANGE, name = "kraken_ticker", breaker = "kraken_api", key = symbol, timeout = "2s", fallback = Self::last_ticker"#,
        "async fn ticker(&self, symbol: &str) -> Result<f64, ApiError> {
            self.get(symbol).await
        }",
    ));
}

#[test]
fn every_entry_point_is_named_after_its_descriptor() {
    // `lib.rs` names each entry point after its line; the table keeps the descriptors.
    let names: Vec<&str> = crate::LAYERS.iter().map(|d| d.attribute).collect();
    assert_eq!(
        names,
        [
            "graceful_degradation",
            "cached",
            "with_backoff",
            "circuit_breaker",
            "rate_limited",
            "bulkhead",
            "monitored",
            "timeout"
        ]
    );
}
