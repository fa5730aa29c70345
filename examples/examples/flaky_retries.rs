//! Retries with jitter riding out a flaky source.
//!
//! `cargo run --example flaky_retries`
//!
//! A simulated quote service fails about 40% of the time (502s) and sometimes answers 429 with
//! a Retry-After hint. Each call is retried with full-jitter exponential backoff; the retry
//! budget keeps retries bounded; every retry is printed by `on_retry`.

use reliable_runtime::registry::retry_registry;
use reliable_runtime::{timeout, with_backoff, Failure, Rejected};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

#[derive(Debug)]
enum QuoteError {
    BadGateway,
    TooManyRequests { retry_after: Duration },
    Refused(Rejected),
}

impl From<Rejected> for QuoteError {
    fn from(rejected: Rejected) -> Self {
        QuoteError::Refused(rejected)
    }
}

fn is_transient(error: &QuoteError) -> bool {
    matches!(
        error,
        QuoteError::BadGateway | QuoteError::TooManyRequests { .. }
    )
}

fn server_hint(error: &QuoteError) -> Option<Duration> {
    match error {
        QuoteError::TooManyRequests { retry_after } => Some(*retry_after),
        _ => None,
    }
}

fn log_retry(attempt: u32, delay: Duration, failure: &Failure<QuoteError>) {
    println!(
        "    retry: attempt {attempt} in {:>4} ms after {failure:?}",
        delay.as_millis()
    );
}

/// A deterministic pseudo-random source of failures (xorshift), so runs are reproducible.
static SEED: AtomicU64 = AtomicU64::new(0x9E37_79B9_7F4A_7C15);

fn roll() -> u64 {
    let mut x = SEED.load(Ordering::Relaxed);
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    SEED.store(x, Ordering::Relaxed);
    x % 100
}

static REQUESTS: AtomicU64 = AtomicU64::new(0);

#[with_backoff(name = "quotes", initial_delay = "20ms", max_delay = "200ms", max_attempts = 4,
               jitter = "full", retry_if = is_transient, retry_after = server_hint, on_retry = log_retry)]
#[timeout("500ms")]
async fn quote(pair: &str) -> Result<f64, QuoteError> {
    REQUESTS.fetch_add(1, Ordering::Relaxed);
    tokio::time::sleep(Duration::from_millis(2)).await;
    match roll() {
        0..=34 => Err(QuoteError::BadGateway),
        35..=39 => Err(QuoteError::TooManyRequests {
            retry_after: Duration::from_millis(50),
        }),
        _ => Ok(if pair == "ETH/USDC" { 3_400.0 } else { 1.0 }),
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let (mut served, mut failed) = (0, 0);
    for call in 1..=20 {
        match quote("ETH/USDC").await {
            Ok(price) => {
                served += 1;
                println!("call {call:>2}: {price}");
            }
            Err(QuoteError::Refused(rejected)) => {
                failed += 1;
                println!("call {call:>2}: refused: {rejected}");
            }
            Err(error) => {
                failed += 1;
                println!("call {call:>2}: gave up: {error:?}");
            }
        }
    }
    let stats = retry_registry()
        .get("quotes")
        .expect("registered on first call")
        .snapshot();
    println!();
    println!(
        "{served} of 20 calls served ({failed} failed) with {} requests to a source failing ~40% of the time",
        REQUESTS.load(Ordering::Relaxed)
    );
    println!(
        "retries: {}, gave up: {}, refused by the budget: {}",
        stats.retries, stats.gave_up, stats.budget_exhausted
    );
}
