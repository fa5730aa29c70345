//! A cached client serving stale data through an outage of its source.
//!
//! `cargo run --example stale_through_outage`
//!
//! Order books are cached for 200 ms and may be served stale for 2 s more. The simulated
//! exchange goes down for one second: every refresh fails, yet every caller keeps getting the
//! last good book (stale-if-error), and the cache's counters show it.

use reliable_runtime::registry::cache_registry;
use reliable_runtime::{cached, Rejected};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
enum ExchangeError {
    Unavailable,
    Refused(Rejected),
}

impl From<Rejected> for ExchangeError {
    fn from(rejected: Rejected) -> Self {
        ExchangeError::Refused(rejected)
    }
}

struct Exchange {
    started: Instant,
    outage: std::ops::Range<Duration>,
    requests: AtomicU32,
}

impl Exchange {
    #[cached(ttl = "200ms", stale = "2s", key = symbol, name = "orderbooks")]
    async fn best_bid(&self, symbol: &str) -> Result<(f64, u32), ExchangeError> {
        let request = self.requests.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(5)).await;
        if self.outage.contains(&self.started.elapsed()) {
            return Err(ExchangeError::Unavailable);
        }
        let base = if symbol == "BTCUSDT" {
            97_000.0
        } else {
            3_400.0
        };
        Ok((base + f64::from(request), request))
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let exchange = Exchange {
        started: Instant::now(),
        outage: Duration::from_millis(600)..Duration::from_millis(1_600),
        requests: AtomicU32::new(0),
    };
    let (mut served, mut failed) = (0, 0);
    for tick in 0..25 {
        match exchange.best_bid("BTCUSDT").await {
            Ok((bid, version)) => {
                served += 1;
                let down = exchange.outage.contains(&exchange.started.elapsed());
                println!(
                    "t={:>5} ms  bid {bid:.0} (version {version}){}",
                    tick * 100,
                    if down {
                        "  <- exchange down, served from cache"
                    } else {
                        ""
                    }
                );
            }
            Err(ExchangeError::Unavailable) => failed += 1,
            Err(ExchangeError::Refused(rejected)) => {
                failed += 1;
                println!("refused: {rejected}");
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let stats = cache_registry()
        .snapshot("orderbooks")
        .expect("created on first call");
    println!();
    println!(
        "{served} of 25 calls served, {failed} failed; {} requests reached the exchange",
        exchange.requests.load(Ordering::SeqCst)
    );
    println!(
        "cache: {} hits, {} loads, {} load errors, {} stale values served because the exchange failed",
        stats.hits, stats.loads, stats.load_errors, stats.stale_if_error
    );
}
