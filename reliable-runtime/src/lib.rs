//! Make calls to flaky services reliable with one attribute.
//!
//! `reliable` wraps async fns and methods (and blocking ones) in the layers a call to a flaky
//! service needs: a fallback, a cache, retries with backoff under a retry budget, a circuit
//! breaker, a rate limit, a bulkhead, SLA monitoring and a per-attempt timeout. Each layer is
//! an instance registered by name, shared by every call site that names it, and one
//! [`get_system_health()`] shows them all. Depend on this crate alone: it re-exports the
//! attributes.
//!
//! # A tour
//!
//! ```
//! use reliable_runtime::{circuit_breaker, get_system_health, monitored, Rejected};
//!
//! #[derive(Debug)]
//! enum ApiError {
//!     Http(u16),
//!     Unavailable(Rejected),
//! }
//!
//! impl From<Rejected> for ApiError {
//!     fn from(rejected: Rejected) -> Self {
//!         ApiError::Unavailable(rejected)
//!     }
//! }
//!
//! struct Exchange;
//!
//! impl Exchange {
//!     /// Latency and outcome of each call go to the monitor `binance_orderbook`; five failures
//!     /// in a row open the breaker `binance_api` (shared by every endpoint naming it) for 30 s.
//!     #[monitored(name = "binance_orderbook", p95 = "1s", p99 = "2s", min_success_rate = 0.95)]
//!     #[circuit_breaker(name = "binance_api", failure_threshold = 5, timeout = 30, success_threshold = 2)]
//!     async fn orderbook(&self, symbol: &str) -> Result<Vec<(f64, f64)>, ApiError> {
//!         if symbol.is_empty() {
//!             return Err(ApiError::Http(400));
//!         }
//!         Ok(vec![(100.0, 1.5)])
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let book = Exchange.orderbook("BTCUSDT").await.unwrap();
//! assert_eq!(book.len(), 1);
//!
//! let health = get_system_health();
//! assert_eq!(health.data_sources["binance_orderbook"].total_calls, 1);
//! assert_eq!(health.circuit_breakers["binance_api"].state.as_str(), "CLOSED");
//! println!("{}", serde_json::to_string_pretty(&health).unwrap());
//! # }
//! ```
//!
//! # The pipeline
//!
//! However the attributes are stacked, a function gets one pipeline, in this fixed order (the
//! order of a [`Policy`]):
//!
//! ```text
//! caller -> fallback -> cache -> retry (budget) -> breaker -> rate limit -> bulkhead -> monitor -> timeout -> call
//! ```
//!
//! | layer | attribute | what it does |
//! |---|---|---|
//! | fallback | [`#[graceful_degradation]`](graceful_degradation) | answers when the call failed for good and the cache has no stale value |
//! | cache | [`#[cached]`](cached) | a hit returns at once; a miss runs one load through the layers below |
//! | retry (budget) | [`#[with_backoff]`](with_backoff) | retries a failed attempt (never a refusal), within the retry budget |
//! | breaker | [`#[circuit_breaker]`](circuit_breaker) | refuses while open; counts the outcome of every attempt that runs |
//! | rate limit | [`#[rate_limited]`](rate_limited) | refuses (or waits) over the limit |
//! | bulkhead | [`#[bulkhead]`](bulkhead) | refuses (or waits) while too many calls are in flight |
//! | monitor | [`#[monitored]`](monitored) | records the latency and outcome of each attempt that runs |
//! | timeout | [`#[timeout]`](timeout) | drops an attempt still running at its deadline |
//! | call | the function's body | |
//!
//! So the monitor measures the source's real attempts, and the breaker counts the outcome of
//! every attempt, retries included. The pipeline is a value too: [`Policy`] (in [`policy`]) builds it without an
//! attribute, for an HTTP client, a consumer or a job, and every attribute expands to a
//! `Policy` built once and one call on it.
//!
//! # Modules
//!
//! - `alert` (feature `alert`, on by default): the global `alert_manager()`, which turns breaker
//!   and SLA changes into alerts for log, webhook and email handlers.
//! - [`breaker`]: the [`CircuitBreaker`](breaker::CircuitBreaker) state machine, usable directly.
//! - [`cache`] (feature `cache`, on by default): the [`Cache`](cache::Cache) engine: TTL, LRU,
//!   LFU and adaptive policies, stale values and single-flight loads; `#[cached]` and
//!   [`Policy::cached`] need it.
//! - [`classify`]: what an error means for retries and breakers ([`Classify`](classify::Classify),
//!   `#[derive(Classify)]`): the attributes retry and count by it on their own.
//! - [`clock`]: the [`Clock`](clock::Clock) every layer reads, manual or on tokio's paused time
//!   in tests.
//! - [`config`]: a configuration file (`reliable.toml`) declaring layers by name.
//! - [`degrade`]: the [`Degradation`](degrade::Degradation) counters of each fallback site.
//! - [`event`]: typed events (state changes, retries, refusals, stale serves) to subscribe to.
//! - [`health`]: [`get_system_health()`] and the shapes it serializes.
//! - `http` (feature `http`): the hardened HTTP client, every request through its source's
//!   policy.
//! - [`limit`]: rate limiters (sliding windows; weighted over several windows, per key) and
//!   bulkheads (feature `limit`, on by default), and time limits (per-attempt timeouts growing
//!   with each retry, the whole call's deadline).
//! - [`policy`]: [`Policy`], the whole pipeline of a call site as a value, and its builder;
//!   `policy::tower`, the tower layer (feature `tower`).
//! - [`preset`]: the CEX, DEX and Twitter presets, and your own.
//! - [`registry`]: the global registries, one instance per name.
//! - [`retry`]: backoff and jitter; retry policies and the retry budget (feature `retry`, on
//!   by default).
//! - [`served`]: where a value came from (fresh, cache hit, stale with its age, fallback with
//!   its cause), for the callers that ask.
//! - `shared` (feature `redis`): state shared by the replicas of a service through Redis (a
//!   limit exact across them, breakers that trip and recover together, a cache's second level,
//!   a deduplication store), each falling back to local state when Redis is down or slow.
//! - `testing`: each test in its own scope of instances and clock (feature `testing`).
//! - [`sla`]: the [`SlaMonitor`](sla::SlaMonitor), its percentiles and status rules.

#![deny(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![warn(rustdoc::broken_intra_doc_links)]

#[cfg(feature = "alert")]
#[cfg_attr(docsrs, doc(cfg(feature = "alert")))]
pub mod alert;
pub mod breaker;
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub mod cache;
pub mod classify;
pub use common::clock;
mod common;
pub mod config;
pub mod degrade;
mod error;
pub mod event;
pub mod health;
#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
pub mod http;
mod layer;
pub mod limit;
pub mod policy;
pub mod preset;
pub mod registry;
pub mod retry;
pub mod served;
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub mod shared;
pub mod sla;
mod sync;
#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

#[doc(hidden)]
pub mod __private;

pub use error::{ConfigError, Failure, Rejected};
pub use policy::{Policy, PolicyBuilder};

/// The README's examples, compiled and run as doctests so they stay true. They use the
/// features the test crate asks for (`testing::Scope`, the HTTP client, the tower layer,
/// Redis), so they run when those are on, as `cargo test --workspace` builds them.
#[cfg(all(
    doctest,
    feature = "testing",
    feature = "http",
    feature = "tower",
    feature = "redis"
))]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
pub use health::{get_system_health, SystemHealth};

/// Monitors a function's latency and outcomes against an SLA.
///
/// Each call's latency and outcome go to the [`SlaMonitor`](sla::SlaMonitor) named `name`
/// (default: the function's path, e.g. `my_crate::Client::ticker`); an `Err` (or a panic) is a
/// failure, any other output a success. Works on `async` and blocking functions and methods.
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `name = "..."` | the monitor's registry name; functions naming the same monitor share it | the function's path |
/// | `p95 = 1`, `p99 = "2s"` | highest acceptable p95 / p99 latency (seconds, or a string with a unit: `"250ms"`, `"5s"`, `"2m"`) | 1 s / 2 s |
/// | `min_success_rate = 0.95` | lowest acceptable success rate | 0.95 |
/// | `max_consecutive_failures = 3` | failures in a row that make the source FAILED | 3 |
/// | `min_calls = 10` | calls the window needs before rates and latencies are judged | 10 |
/// | `window = 100` or `window = "60s"` | the last N calls, or the calls of the last span | 100 calls |
/// | `group = "binance"` | a group for per-group health | none |
/// | `crate = path` | where the runtime is, if the dependency is renamed | `::reliable_runtime` |
///
/// Arguments are checked at compile time: an unknown or repeated argument, a bad duration or a
/// rate outside `0..=1` is an error at that token. With only `name`, the monitor registered
/// under it before the first call (e.g. with a test clock) is the one used.
///
/// ```
/// use reliable_runtime::monitored;
/// use reliable_runtime::registry::sla_registry;
///
/// #[monitored(name = "dex_quote", p95 = "3s", p99 = "5s", min_success_rate = 0.9, window = "5m")]
/// async fn quote(pair: &str) -> Result<f64, std::io::Error> {
///     Ok(if pair == "ETH/USDC" { 3400.0 } else { 1.0 })
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// quote("ETH/USDC").await.unwrap();
/// let metrics = sla_registry().get("dex_quote").unwrap().metrics();
/// assert_eq!(metrics.total_calls, 1);
/// assert_eq!(metrics.status.as_str(), "HEALTHY");
/// # }
/// ```
///
/// What it expands to, written with the public API: the fn's [`Policy`] is built once, in a
/// `static`, and every call is measured through it. The attribute's expansion (see the
/// `insta` snapshots in the macro crate) is this plus compile-time checks: its `static` is a
/// cell that names the policy after `name` (or the fn's path) and, rather than panic, logs a
/// configuration the runtime refuses and runs the fn without its layers; the body is typed by
/// the fn's return type; an output counts as failed when it is an `Err` (an output that is not
/// a `Result` never does).
///
/// ```
/// use reliable_runtime::registry::sla_registry;
/// use reliable_runtime::sla::SlaWindow;
/// use reliable_runtime::Policy;
/// use std::sync::OnceLock;
/// use std::time::Duration;
///
/// async fn quote(pair: &str) -> Result<f64, std::io::Error> {
///     static POLICY: OnceLock<Policy> = OnceLock::new();
///     let policy = POLICY.get_or_init(|| {
///         Policy::builder("dex_quote")
///             .monitor("dex_quote", |monitor| {
///                 monitor
///                     .max_latency_p95(Duration::from_secs(3))
///                     .max_latency_p99(Duration::from_secs(5))
///                     .min_success_rate(0.9)
///             })
///             .monitor_window(SlaWindow::Time(Duration::from_secs(300)))
///             .build()
///             .expect("a valid configuration")
///     });
///     let body = async move { Ok(if pair == "ETH/USDC" { 3400.0 } else { 1.0 }) };
///     policy.measure(body, Result::is_err).await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// quote("ETH/USDC").await.unwrap();
/// assert_eq!(sla_registry().get("dex_quote").unwrap().metrics().total_calls, 1);
/// # }
/// ```
pub use reliable_macros::monitored;

/// Guards a function with a circuit breaker.
///
/// While the breaker named `name` (default: the function's path) is open, calls return
/// `Err(Rejected::CircuitOpen { .. }.into())` at once, without running the body; the function
/// must return `Result<T, E>` with `E: From<`[`Rejected`]`>` (the compiler says so in plain words
/// otherwise). Every `Err` counts as a failure unless `failure_if` says otherwise. Together with
/// [`#[monitored]`](monitored), in either order, the breaker is the outer layer: the monitor only
/// sees calls that ran.
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `name = "..."` | the breaker's registry name; functions naming the same breaker share it (one per exchange) | the function's path |
/// | `failure_threshold = 5` | consecutive failures that open it (0 turns the rule off) | 5 |
/// | `window_failures = 5` | failures in the window that open it (with `window = "1m"`: 5 failures within a minute) | off |
/// | `failure_rate = 0.5` | failure rate over the window that opens it | off |
/// | `slow_call_rate = 0.8`, `slow_call_duration = "2s"` | slow-call rate that opens it, and what is slow | off, 60 s |
/// | `window = 100` or `window = "60s"` | the window rules' window: last N calls or a time span | 100 calls |
/// | `minimum_calls = 10` | calls the window needs before the rate rules judge | 10 |
/// | `timeout = 30` | how long it stays open before a probe | 30 s |
/// | `timeout_multiplier = 2.0`, `max_timeout = "10m"` | growth of the open time on repeated trips, and its cap | 1.0, 10 min |
/// | `success_threshold = 2` | successful probes that close it | 2 |
/// | `half_open_max_calls = 1` | probes allowed in flight at once | 1 |
/// | `failure_if = path` | `fn(&E) -> bool`: which errors count as failures | every `Err` |
/// | `group = "binance"` | a group for per-group health | none |
/// | `crate = path` | where the runtime is, if the dependency is renamed | `::reliable_runtime` |
///
/// ```
/// use reliable_runtime::{circuit_breaker, Rejected};
///
/// #[derive(Debug)]
/// enum ApiError {
///     Status(u16),
///     Unavailable(Rejected),
/// }
///
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self {
///         ApiError::Unavailable(rejected)
///     }
/// }
///
/// fn is_server_error(error: &ApiError) -> bool {
///     matches!(error, ApiError::Status(500..))
/// }
///
/// struct Bybit;
///
/// impl Bybit {
///     #[circuit_breaker(name = "bybit_api", failure_threshold = 3, timeout = "1m", failure_if = is_server_error)]
///     async fn balance(&self, account: &str) -> Result<f64, ApiError> {
///         if account.is_empty() {
///             return Err(ApiError::Status(400)); // the caller's fault: not counted
///         }
///         Err(ApiError::Status(503))
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// for _ in 0..3 {
///     assert!(matches!(Bybit.balance("main").await, Err(ApiError::Status(503))));
/// }
/// // Open: the body does not run.
/// assert!(matches!(Bybit.balance("main").await, Err(ApiError::Unavailable(Rejected::CircuitOpen { .. }))));
/// # }
/// ```
///
/// What it expands to, written with the public API: the fn's [`Policy`] is built once, in a
/// `static`, and each call goes through it. The attribute's expansion is this plus
/// compile-time checks (see `#[monitored]`); it also hands `failure_if` to the call as a
/// callback typed by the fn's error type, where the builder's
/// [`failure_if`](PolicyBuilder::failure_if) keeps it type-erased and checks its type on
/// each failure.
///
/// ```
/// use reliable_runtime::{Policy, Rejected};
/// use std::sync::OnceLock;
/// use std::time::Duration;
///
/// #[derive(Debug)]
/// enum ApiError {
///     Status(u16),
///     Unavailable(Rejected),
/// }
///
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self {
///         ApiError::Unavailable(rejected)
///     }
/// }
///
/// fn is_server_error(error: &ApiError) -> bool {
///     matches!(error, ApiError::Status(500..))
/// }
///
/// async fn balance(account: &str) -> Result<f64, ApiError> {
///     static POLICY: OnceLock<Policy> = OnceLock::new();
///     let policy = POLICY.get_or_init(|| {
///         Policy::builder("bybit_api")
///             .breaker("bybit_api", |breaker| {
///                 breaker.failure_threshold(3).timeout(Duration::from_secs(60))
///             })
///             .failure_if(is_server_error)
///             .build()
///             .expect("a valid configuration")
///     });
///     // The body is made, and runs, only if the breaker admits the call.
///     policy
///         .call_once(move || async move {
///             if account.is_empty() {
///                 return Err(ApiError::Status(400));
///             }
///             Err(ApiError::Status(503))
///         })
///         .await
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// for _ in 0..3 {
///     assert!(matches!(balance("main").await, Err(ApiError::Status(503))));
/// }
/// assert!(matches!(balance("main").await, Err(ApiError::Unavailable(Rejected::CircuitOpen { .. }))));
/// # }
/// ```
pub use reliable_macros::circuit_breaker;

/// Retries a function with exponential backoff, jitter and a retry budget.
///
/// Each attempt goes through the rest of the pipeline (breaker, monitor, timeout); a failed
/// attempt is retried after `initial_delay × multiplier^(n-1)` (capped at `max_delay`, jittered)
/// until `max_attempts` attempts in all, unless `retry_if` says the error is permanent. A
/// rejection (open breaker, rate limit, full bulkhead) is never retried; a timeout is, unless
/// `retry_timeouts = false`. When attempts run out the caller gets the last error itself; the
/// attempt count is in the events ([`event::Event::RetryAttempted`]) and in health. The policy's
/// retry budget (on by default: 10% of calls plus 10 retries/s) keeps an outage from
/// multiplying the load on the failing service.
///
/// | argument | meaning | default |
/// |---|---|---|
/// | `name = "..."` | the policy's registry name (one budget per name) | the function's path |
/// | `initial_delay`, `max_delay` | the first delay and the cap of every delay | 1 s, 60 s |
/// | `multiplier` | growth between retries | 2.0 |
/// | `max_attempts` | attempts in all, the first included | 5 |
/// | `jitter` | `"full"`, `"equal"`, `"decorrelated"`, `"additive"` or `"none"` | `"full"` |
/// | `jitter_factor` | what `"additive"` may add: `delay + delay × factor × random` | 0.1 |
/// | `retry_if = path` | `fn(&E) -> bool`: which errors are worth retrying | every `Err` |
/// | `retry_after = path` | `fn(&E) -> Option<Duration>`: a server's hint (e.g. a 429's Retry-After), capped by `max_delay` | none |
/// | `on_retry = path` | `fn(u32, Duration, &Failure<E>)`: called before each retry with the attempt about to be made | none |
/// | `budget = false`, `budget_ratio = 0.1` | turn the budget off, or set its ratio | on, 0.1 |
/// | `retry_timeouts = false` | do not retry attempts that timed out | `true` |
///
/// The body runs once per attempt, borrowing the arguments each time, so it must not move an
/// argument out (the compiler says "value moved here, in previous iteration of loop"); clone
/// what it needs to own. Sleeping uses tokio's timer (a tokio runtime is needed; paused time
/// works); blocking functions sleep the thread.
///
/// ```
/// use reliable_runtime::{with_backoff, Rejected};
/// use std::sync::atomic::{AtomicU32, Ordering};
/// use std::time::Duration;
///
/// #[derive(Debug, PartialEq)]
/// enum ApiError { Status(u16), Rejected(Rejected) }
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self { ApiError::Rejected(rejected) }
/// }
///
/// fn is_transient(error: &ApiError) -> bool {
///     matches!(error, ApiError::Status(429 | 500..))
/// }
///
/// static CALLS: AtomicU32 = AtomicU32::new(0);
///
/// #[with_backoff(initial_delay = "500ms", max_delay = "10s", max_attempts = 3, jitter = "full", retry_if = is_transient)]
/// async fn ticker(symbol: &str) -> Result<f64, ApiError> {
///     if CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
///         return Err(ApiError::Status(503)); // flaky twice
///     }
///     Ok(if symbol == "BTCUSDT" { 97_000.0 } else { 0.0 })
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// assert_eq!(ticker("BTCUSDT").await, Ok(97_000.0));
/// assert_eq!(CALLS.load(Ordering::SeqCst), 3);
/// # }
/// ```
#[cfg(feature = "retry")]
#[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
pub use reliable_macros::with_backoff;
// Without the feature, the same name gives one error naming the feature.
#[cfg(not(feature = "retry"))]
#[doc(hidden)]
pub use reliable_macros::with_backoff_needs_retry as with_backoff;

/// Gives each attempt of an `async fn` a deadline: `#[timeout(5)]` (seconds) or
/// `#[timeout("250ms")]`. With `multiplier = 1.5` and `max = "5s"` each retry's timeout grows
/// from the previous one's up to `max`; `deadline = "15s"` limits the whole call, attempts and
/// the waits between them (see [`limit::TimeoutConfig`]).
///
/// An attempt still running at the deadline is dropped (its future is cancelled) and the
/// caller gets `E::from(Rejected::Timeout { after })`; the timed-out attempt counts as a failure
/// for the breaker and the monitor, and [`#[with_backoff]`](with_backoff) retries it unless
/// `retry_timeouts = false`. On a blocking fn it is a compile error: a blocking call cannot be
/// stopped midway. Uses tokio's timer, armed only once the body waits (an answer ready on the
/// first poll costs no timer).
///
/// The timeout's counters are registered under `name` (`#[timeout("2s", name =
/// "binance_timeout")]`), or the function's path; health shows them under `timeouts`.
///
/// ```
/// use reliable_runtime::registry::timeout_registry;
/// use reliable_runtime::{timeout, Rejected};
/// use std::time::Duration;
///
/// #[timeout("250ms", name = "slow_quote_timeout")]
/// async fn slow_quote() -> Result<f64, Rejected> {
///     tokio::time::sleep(Duration::from_secs(10)).await;
///     Ok(1.0)
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// assert_eq!(slow_quote().await, Err(Rejected::Timeout { after: Duration::from_millis(250) }));
/// assert_eq!(timeout_registry().get("slow_quote_timeout").unwrap().snapshot().timeouts, 1);
/// # }
/// ```
pub use reliable_macros::timeout;

/// Limits how often a function is called: at most N calls in any sliding window (by default 60
/// per minute per source).
///
/// `#[rate_limited(per_minute = 60)]`, or `per_second = 10`; `burst = 10` also caps how many of
/// them may come in one spike (at most `burst` in any `window × burst / limit`); `name = "..."`
/// shares one limit between functions (one per exchange). Over the limit, the call is refused at
/// once with `E::from(Rejected::RateLimited { retry_after, .. })`, or with `wait = true` waits for
/// the next slot. A refused call does not count for the breaker and is never retried. Give one
/// of `per_second` and `per_minute`; anything else is a compile error.
///
/// ```
/// use reliable_runtime::{rate_limited, Rejected};
///
/// #[rate_limited(name = "doc_exchange", per_second = 2)]
/// async fn order_status(id: u64) -> Result<u64, Rejected> {
///     Ok(id)
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert!(order_status(1).await.is_ok());
/// assert!(order_status(2).await.is_ok());
/// assert!(matches!(order_status(3).await, Err(Rejected::RateLimited { .. })));
/// # }
/// ```
#[cfg(feature = "limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
pub use reliable_macros::rate_limited;
// Without the feature, the same name gives one error naming the feature.
#[cfg(not(feature = "limit"))]
#[doc(hidden)]
pub use reliable_macros::rate_limited_needs_limit as rate_limited;

/// Caps how many calls of a function are in flight at once.
///
/// `#[bulkhead(max_concurrent = 25, max_wait = "100ms")]`: excess calls wait up to `max_wait`
/// (default 0: refuse at once) for a slot, then get `E::from(Rejected::BulkheadFull { .. })`.
/// `name = "..."` shares one bulkhead between functions. On a blocking fn the bulkhead refuses
/// at once (a `max_wait` there is a compile error).
///
/// ```
/// use reliable_runtime::{bulkhead, Rejected};
/// use std::time::Duration;
///
/// #[bulkhead(max_concurrent = 1)]
/// async fn heavy_report() -> Result<(), Rejected> {
///     tokio::time::sleep(Duration::from_millis(50)).await;
///     Ok(())
/// }
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let (first, second) = tokio::join!(heavy_report(), heavy_report());
/// assert!(first.is_ok());
/// assert!(matches!(second, Err(Rejected::BulkheadFull { .. })));
/// # }
/// ```
#[cfg(feature = "limit")]
#[cfg_attr(docsrs, doc(cfg(feature = "limit")))]
pub use reliable_macros::bulkhead;
// Without the feature, the same name gives one error naming the feature.
#[cfg(not(feature = "limit"))]
#[doc(hidden)]
pub use reliable_macros::bulkhead_needs_limit as bulkhead;

/// Caches a function's successful results (the `Ok` of a `Result`, the `Some` of an `Option`).
///
/// `#[cached(ttl = 5, key = format!("binance:{}", symbol), policy = "adaptive", max_entries =
/// 10_000, stale = "10s", name = "orderbook")]`. Without `key`, the key is the tuple of the
/// arguments, borrowed ones made owned (`&str` → `String`); on a method `key` is required, so
/// the cache never silently ignores `self`: key per instance with something from `self`
/// (`key = (self.exchange_id, symbol)`) or share across instances without it (`key = symbol`).
/// The key must be `Hash + Eq + Clone + Send + Sync + 'static` and the value `Clone`; the
/// compiler says so at the key or the return type otherwise.
///
/// A key of arguments (the default key, an argument, or a tuple with arguments among its
/// parts) is looked up borrowed: the owned key (`String` for a `&str`) is built only on a miss,
/// so a hit allocates nothing. Any other key expression is evaluated before the lookup.
///
/// Concurrent misses on a key run one load (async fns), and the callers that waited for it
/// share its outcome: its value, or, when it fails, a clone of its error if the error type is
/// `Clone + Send + Sync + 'static`; otherwise [`Rejected::LoadFailed`] if a breaker, limiter,
/// bulkhead or timeout on the fn makes its error hold a `Rejected`; otherwise each waiting
/// caller loads on its own, all at once (an `std::io::Error`, say). Past its TTL a value is
/// still served for `stale` (default: the TTL) while one caller refreshes it, and when the
/// refresh fails (stale-if-error). Errors are never cached. It is the outermost layer: a hit
/// calls nothing else. See [`cache::Cache`] for the engine and its policies.
///
/// ```
/// use reliable_runtime::cached;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// static LOADS: AtomicU32 = AtomicU32::new(0);
///
/// #[cached(ttl = 5, key = format!("binance:{}", symbol))]
/// async fn price(symbol: &str) -> Result<f64, std::io::Error> {
///     LOADS.fetch_add(1, Ordering::SeqCst);
///     Ok(97_000.0)
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(price("BTCUSDT").await.unwrap(), 97_000.0);
/// assert_eq!(price("BTCUSDT").await.unwrap(), 97_000.0);
/// assert_eq!(LOADS.load(Ordering::SeqCst), 1);
/// # }
/// ```
#[cfg(feature = "cache")]
#[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
pub use reliable_macros::cached;
// Without the feature, the same name gives one error naming the feature.
#[cfg(not(feature = "cache"))]
#[doc(hidden)]
pub use reliable_macros::cached_needs_cache as cached;

/// A fallback when a call fails: the outermost layer.
///
/// `fallback = value` answers with a value of the fn's return type (evaluated only when the
/// call failed); `fallback = path` calls a fn with the fn's arguments by shared reference
/// (`&self` first for methods; `&str` stays `&str`, an owned `T` becomes `&T`) and, if it takes
/// one more, the cause: a [`&Failure<E>`](Failure), the fn's own error or the [`Rejected`]
/// that an open breaker, timeout, rate limit or full bulkhead gave. For an async fn the fallback
/// may be async, with or without the cause; its future may hold the arguments and the cause
/// across an `.await`.
///
/// A stale cache value is preferred to the fallback: with `#[cached]`, a failed refresh serves
/// the stale value (stale-if-error) and the fallback runs only when there is none. A fallback
/// that panics is caught: the caller gets the original error, and the panic is counted.
/// Fallbacks are counted per fn in [`degrade::degradation_registry`] and in
/// `get_system_health()`'s `degradation`. The body must not move its arguments (the fallback
/// borrows them after the call), as with `#[with_backoff]`.
///
/// ```
/// use reliable_runtime::{circuit_breaker, graceful_degradation, Failure, Rejected};
///
/// #[derive(Debug, PartialEq)]
/// enum ApiError { Down, Rejected(Rejected) }
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self { ApiError::Rejected(rejected) }
/// }
///
/// struct Client;
///
/// impl Client {
///     fn empty_book(&self, symbol: &str, cause: &Failure<ApiError>) -> Result<Vec<f64>, ApiError> {
///         assert_eq!(symbol, "BTCUSDT");
///         assert!(cause.rejected().is_none()); // the call ran and failed
///         Ok(Vec::new())
///     }
///
///     #[graceful_degradation(fallback = Self::empty_book)]
///     #[circuit_breaker(failure_threshold = 3)]
///     async fn orderbook(&self, symbol: &str) -> Result<Vec<f64>, ApiError> {
///         Err(ApiError::Down)
///     }
/// }
///
/// #[graceful_degradation(fallback = Ok(0.0))]
/// fn price() -> Result<f64, ApiError> {
///     Err(ApiError::Down)
/// }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(Client.orderbook("BTCUSDT").await, Ok(Vec::new()));
/// assert_eq!(price(), Ok(0.0));
/// # }
/// ```
pub use reliable_macros::graceful_degradation;

/// Monitoring, circuit breaker, retries and cache in one attribute, configured by a
/// [`preset::Preset`].
///
/// `preset = CONST` takes a `Preset` value ([`preset::CEX`], your own const); `preset = "name"`
/// one registered with [`preset::register_preset`]. Every number can be overridden: the
/// arguments are those of the single attributes, with the cache's and breaker's prefixed where
/// they would clash: `name`, `group`, `key`, `cache_ttl`, `cache_stale`, `cache_policy`,
/// `min_ttl`, `max_ttl`, `max_entries`, `eviction_ratio`, `ttl_jitter`, `cache = false`,
/// `p95`, `p99`, `min_success_rate`, `max_consecutive_failures`, `min_calls`, `sla_window`,
/// `failure_threshold`, `window_failures`, `failure_rate`, `slow_call_rate`, `slow_call_duration`,
/// `minimum_calls`, `breaker_window`, `breaker_timeout`, `timeout_multiplier`, `max_timeout`,
/// `success_threshold`, `half_open_max_calls`, `failure_if`, `max_attempts`, `initial_delay`,
/// `max_delay`, `multiplier`, `jitter`, `jitter_factor`, `retry_if`, `retry_after`, `on_retry`, `budget`,
/// `budget_ratio`, `retry_timeouts`, `timeout` (the first attempt's), `timeout_growth` (its
/// multiplier per retry), `timeout_cap` (its cap) and `deadline` (the whole call's: see
/// [`limit::TimeoutConfig`]; every preset has them), plus `fallback = ...` (adds
/// [`graceful_degradation`]).
///
/// `name = "..."` names every layer; `breaker = "binance_api"`, `monitor = "..."`,
/// `retry = "..."` and `cache = "..."` name one layer each, over `name`: the endpoints of one
/// exchange share its breaker while each keeps its own monitor.
///
/// ```
/// use reliable_runtime::{reliable, Rejected};
///
/// #[derive(Debug)]
/// struct ApiError;
/// impl From<Rejected> for ApiError {
///     fn from(_: Rejected) -> Self { ApiError }
/// }
///
/// #[reliable(preset = reliable_runtime::preset::DEX, key = pair.to_owned(), cache_ttl = 10, failure_threshold = 4)]
/// async fn liquidity(pair: &str) -> Result<f64, ApiError> {
///     Ok(1_250_000.0)
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(liquidity("SOL/USDC").await.unwrap(), 1_250_000.0);
/// # }
/// ```
pub use reliable_macros::reliable;

/// [`reliable`] with [`preset::CEX`]: the numbers for centralised exchanges (SLA
/// p95 1 s, p99 2 s, 95% success, 3 failures; breaker 5 failures, open 30 s, 2 successes;
/// adaptive cache 5 s within 2..15 s; CEX backoff), every one overridable.
///
/// ```
/// use reliable_runtime::{reliable_cex_call, Rejected};
///
/// #[derive(Debug)]
/// struct ApiError;
/// impl From<Rejected> for ApiError {
///     fn from(_: Rejected) -> Self { ApiError }
/// }
///
/// struct Binance;
///
/// impl Binance {
///     #[reliable_cex_call(cache_ttl = 5, key = format!("binance:{}", symbol), group = "binance")]
///     async fn fetch_orderbook(&self, symbol: &str) -> Result<Vec<(f64, f64)>, ApiError> {
///         Ok(vec![(97_000.0, 1.5)])
///     }
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(Binance.fetch_orderbook("BTCUSDT").await.unwrap().len(), 1);
/// # }
/// ```
pub use reliable_macros::reliable_cex_call;

/// [`reliable`] with [`preset::DEX`]: the numbers for DEX aggregators (SLA p95 3 s,
/// p99 5 s, 90% success, 5 failures; breaker 10 failures, open 60 s, 3 successes; adaptive
/// cache 30 s within 10..120 s; DEX backoff), every one overridable.
///
/// ```
/// use reliable_runtime::{reliable_dex_call, Rejected};
///
/// #[derive(Debug)]
/// struct ApiError;
/// impl From<Rejected> for ApiError {
///     fn from(_: Rejected) -> Self { ApiError }
/// }
///
/// #[reliable_dex_call(key = token.to_owned())]
/// async fn price_usd(token: &str) -> Result<f64, ApiError> {
///     Ok(1.0)
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(price_usd("USDC").await.unwrap(), 1.0);
/// # }
/// ```
pub use reliable_macros::reliable_dex_call;

/// [`reliable`] with [`preset::TWITTER`]: the numbers for social APIs (SLA p95
/// 5 s, p99 10 s, 85% success, 3 failures; breaker 3 failures, open 120 s, 1 success;
/// adaptive cache 300 s within 60..900 s; Twitter backoff), every one overridable.
///
/// ```
/// use reliable_runtime::{reliable_twitter_call, Rejected};
///
/// #[derive(Debug)]
/// struct ApiError;
/// impl From<Rejected> for ApiError {
///     fn from(_: Rejected) -> Self { ApiError }
/// }
///
/// #[reliable_twitter_call(cache = false, max_attempts = 2)]
/// async fn search(query: &str) -> Result<Vec<String>, ApiError> {
///     Ok(vec![format!("{query} to the moon")])
/// }
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// assert_eq!(search("$SOL").await.unwrap().len(), 1);
/// # }
/// ```
pub use reliable_macros::reliable_twitter_call;
