//! The formatted expansion of each attribute's documented example, as an `insta` snapshot: any
//! change to the generated code shows in a diff (`cargo insta review`, or compare the
//! `.snap.new` file a failing run leaves beside the snapshot).

use crate::plan::Layer;

fn expand(layer: Layer, args: &str, item: &str) -> String {
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
        Layer::Monitored,
        r#"name = "binance_orderbook", p95 = "1s", p99 = "2s", min_success_rate = 0.95"#,
        ORDERBOOK,
    ));
}

#[test]
fn monitored_any_return_type() {
    insta::assert_snapshot!(expand(
        Layer::Monitored,
        "",
        "fn parse(raw: &str) -> usize { raw.len() }",
    ));
}

#[test]
fn circuit_breaker() {
    insta::assert_snapshot!(expand(
        Layer::CircuitBreaker,
        r#"name = "binance_api", failure_threshold = 5, timeout = 30, success_threshold = 2"#,
        ORDERBOOK,
    ));
}

#[test]
fn with_backoff() {
    insta::assert_snapshot!(expand(
        Layer::WithBackoff,
        r#"initial_delay = "500ms", max_delay = "10s", max_attempts = 3, jitter = "full", retry_if = ApiError::is_transient"#,
        ORDERBOOK,
    ));
}

#[test]
fn timeout() {
    insta::assert_snapshot!(expand(Layer::Timeout, r#""2s""#, ORDERBOOK));
}

#[test]
fn rate_limited() {
    insta::assert_snapshot!(expand(
        Layer::RateLimited,
        r#"name = "binance", per_minute = 1200, burst = 50"#,
        ORDERBOOK,
    ));
}

#[test]
fn bulkhead() {
    insta::assert_snapshot!(expand(
        Layer::Bulkhead,
        r#"max_concurrent = 25, max_wait = "100ms""#,
        ORDERBOOK,
    ));
}

#[test]
fn cached() {
    insta::assert_snapshot!(expand(
        Layer::Cached,
        "ttl = 5",
        "async fn ticker(symbol: &str) -> Result<f64, ApiError> { fetch(symbol).await }",
    ));
}

#[test]
fn graceful_degradation() {
    insta::assert_snapshot!(expand(
        Layer::GracefulDegradation,
        "fallback = last_known_price",
        "fn price(symbol: &str) -> Result<f64, ApiError> { fetch(symbol) }",
    ));
}

/// README's preset example: the expansion a reader sees in `cargo expand` stays short.
#[test]
fn reliable_cex_call() {
    let expansion = expand(
        Layer::builtin_preset("reliable_cex_call").expect("a built-in preset"),
        r#"cache_ttl = 5, key = format!("binance:{}", symbol), group = "binance""#,
        "async fn fetch_orderbook(&self, symbol: &str) -> Result<OrderBook, ApiError> {
            self.get(symbol).await
        }",
    );
    let lines = expansion.lines().count();
    assert!(lines <= 40, "{lines} lines:\n{expansion}");
    insta::assert_snapshot!(expansion);
}
