//! The formatted expansion of each attribute's documented examples, as `insta` snapshots: any
//! change to the generated code shows in a diff (`cargo insta review`, or compare the
//! `.snap.new` file a failing run leaves beside the snapshot). The first cases are README's
//! attribute stack, one attribute each; the `*_rustdoc` cases are each attribute's example in
//! the runtime crate's rustdoc (`reliable_runtime::monitored`, ...), as written there.

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
fn monitored_rustdoc() {
    insta::assert_snapshot!(expand(
        layer("monitored"),
        r#"name = "dex_quote", p95 = "3s", p99 = "5s", min_success_rate = 0.9, window = "5m""#,
        "async fn quote(pair: &str) -> Result<f64, std::io::Error> { fetch(pair).await }",
    ));
}

#[test]
fn circuit_breaker_rustdoc() {
    insta::assert_snapshot!(expand(
        layer("circuit_breaker"),
        r#"name = "bybit_api", failure_threshold = 3, timeout = "1m", failure_if = is_server_error"#,
        "async fn balance(&self, account: &str) -> Result<f64, ApiError> { self.get(account).await }",
    ));
}

#[test]
fn with_backoff_rustdoc() {
    insta::assert_snapshot!(expand(
        layer("with_backoff"),
        r#"initial_delay = "500ms", max_delay = "10s", max_attempts = 3, jitter = "full", retry_if = is_transient"#,
        "async fn ticker(symbol: &str) -> Result<f64, ApiError> { fetch(symbol).await }",
    ));
}

#[test]
fn timeout_rustdoc() {
    insta::assert_snapshot!(expand(
        layer("timeout"),
        r#""250ms", name = "slow_quote_timeout""#,
        "async fn slow_quote() -> Result<f64, Rejected> { quote().await }",
    ));
}

#[test]
fn rate_limited_rustdoc() {
    insta::assert_snapshot!(expand(
        layer("rate_limited"),
        r#"name = "doc_exchange", per_second = 2"#,
        "async fn order_status(id: u64) -> Result<u64, Rejected> { Ok(id) }",
    ));
}

#[test]
fn bulkhead_rustdoc() {
    insta::assert_snapshot!(expand(
        layer("bulkhead"),
        "max_concurrent = 1",
        "async fn heavy_report() -> Result<(), Rejected> { report().await }",
    ));
}

#[test]
fn cached_rustdoc() {
    insta::assert_snapshot!(expand(
        layer("cached"),
        r#"ttl = 5, key = format!("binance:{}", symbol)"#,
        "async fn price(symbol: &str) -> Result<f64, std::io::Error> { fetch(symbol).await }",
    ));
}

/// The rustdoc's first example: a method's fallback taking the cause, over a breaker.
#[test]
fn graceful_degradation_rustdoc_method() {
    insta::assert_snapshot!(expand(
        layer("graceful_degradation"),
        "fallback = Self::empty_book",
        "#[circuit_breaker(failure_threshold = 3)]
        async fn orderbook(&self, symbol: &str) -> Result<Vec<f64>, ApiError> {
            self.get(symbol).await
        }",
    ));
}

/// The rustdoc's second example: a value as the fallback of a blocking fn.
#[test]
fn graceful_degradation_rustdoc_value() {
    insta::assert_snapshot!(expand(
        layer("graceful_degradation"),
        "fallback = Ok(0.0)",
        "fn price() -> Result<f64, ApiError> { fetch() }",
    ));
}

#[test]
fn reliable_rustdoc() {
    insta::assert_snapshot!(expand(
        Attribute::Preset("reliable", None),
        "preset = reliable_runtime::preset::DEX, key = pair.to_owned(), cache_ttl = 10, failure_threshold = 4",
        "async fn liquidity(pair: &str) -> Result<f64, ApiError> { quote(pair).await }",
    ));
}

#[test]
fn reliable_dex_call_rustdoc() {
    insta::assert_snapshot!(expand(
        Attribute::Preset("reliable_dex_call", Some("DEX")),
        "key = token.to_owned()",
        "async fn price_usd(token: &str) -> Result<f64, ApiError> { quote(token).await }",
    ));
}

#[test]
fn reliable_twitter_call_rustdoc() {
    insta::assert_snapshot!(expand(
        Attribute::Preset("reliable_twitter_call", Some("TWITTER")),
        "cache = false, max_attempts = 2",
        "async fn search(query: &str) -> Result<Vec<String>, ApiError> { find(query).await }",
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
