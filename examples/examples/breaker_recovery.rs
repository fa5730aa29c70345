//! A circuit breaker opening on a flaky source and recovering, with SLA monitoring.
//!
//! `cargo run --example breaker_recovery`
//!
//! A simulated price feed works, goes down for a while, then comes back. The breaker opens after
//! five failures in a row, rejects calls without touching the feed while open, lets a probe
//! through after 500 ms, and closes after two good probes. Every state change arrives as an
//! event; the run ends with the health report as JSON.

use reliable_runtime::event::{subscribe, Event};
use reliable_runtime::{circuit_breaker, get_system_health, monitored, Rejected};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

#[derive(Debug)]
enum FeedError {
    Unavailable(u16),
    CircuitOpen(Rejected),
}

impl From<Rejected> for FeedError {
    fn from(rejected: Rejected) -> Self {
        FeedError::CircuitOpen(rejected)
    }
}

/// Requests that reached the feed, to show what the breaker spared it.
static FEED_REQUESTS: AtomicU32 = AtomicU32::new(0);

struct PriceFeed {
    started: Instant,
    /// The feed is down during this part of the run.
    outage: std::ops::Range<Duration>,
}

impl PriceFeed {
    #[monitored(
        name = "price_feed",
        p95 = "50ms",
        p99 = "100ms",
        min_success_rate = 0.95
    )]
    #[circuit_breaker(
        name = "price_feed_api",
        failure_threshold = 5,
        timeout = "500ms",
        success_threshold = 2
    )]
    async fn price(&self, symbol: &str) -> Result<f64, FeedError> {
        FEED_REQUESTS.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(2)).await;
        if self.outage.contains(&self.started.elapsed()) {
            return Err(FeedError::Unavailable(503));
        }
        Ok(if symbol == "BTCUSDT" {
            97_000.0
        } else {
            3_400.0
        })
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut events = subscribe();
    let feed = PriceFeed {
        started: Instant::now(),
        outage: Duration::from_millis(300)..Duration::from_millis(1_200),
    };
    let (mut ok, mut failed, mut rejected) = (0, 0, 0);

    for tick in 0..100 {
        match feed.price("BTCUSDT").await {
            Ok(_) => ok += 1,
            Err(FeedError::Unavailable(status)) => {
                failed += 1;
                println!("tick {tick:>3}: feed answered {status}");
            }
            Err(FeedError::CircuitOpen(why)) => {
                rejected += 1;
                if rejected == 1 {
                    println!("tick {tick:>3}: not called: {why}");
                }
            }
        }
        while let Ok(event) = events.try_recv() {
            if let Event::BreakerStateChanged(change) = event {
                println!(
                    "tick {tick:>3}: breaker `{}` {} -> {} ({}; {} failures)",
                    change.breaker, change.from, change.to, change.reason, change.failure_count
                );
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    println!();
    println!("calls: {ok} ok, {failed} failed, {rejected} rejected by the open breaker");
    println!(
        "requests that reached the feed: {} of {}",
        FEED_REQUESTS.load(Ordering::SeqCst),
        ok + failed + rejected
    );
    let health = get_system_health();
    println!(
        "{}",
        serde_json::to_string_pretty(&health).expect("health serializes")
    );
}
