//! Adaptive rate limiting: an exchange's request rate follows its degradation score.
//!
//! `cargo run --example adaptive_limit`
//!
//! A simulated exchange answers quickly, then fails three requests in four for a second, then
//! recovers. A client calls it as fast as its rate limit allows (50 a second, at most 5 in any
//! 100 ms). A governor reads
//! the exchange's `degradation_score` from `get_system_health()` every 100 ms: above 0.5 it
//! lowers the limit to 10 a second, so a struggling exchange is not hammered; below 0.1 it
//! restores 50. The limiter keeps what it admitted across each change (a lowered limit counts
//! the calls of the last second against itself). Every change arrives as an
//! `Event::Reconfigured`; the run ends with the calls made in each phase.

use reliable_runtime::event::{subscribe, Event};
use reliable_runtime::limit::RateLimiter;
use reliable_runtime::registry::rate_limiter_registry;
use reliable_runtime::{get_system_health, monitored, rate_limited, Rejected};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Debug)]
enum ExchangeError {
    Unavailable,
    Limited(Duration),
    Rejected(Rejected),
}

impl From<Rejected> for ExchangeError {
    fn from(rejected: Rejected) -> Self {
        match rejected.retry_after() {
            Some(wait) => ExchangeError::Limited(wait),
            None => ExchangeError::Rejected(rejected),
        }
    }
}

/// The limit while the exchange is healthy, and while it is degraded.
const NORMAL: u32 = 50;
const DEGRADED: u32 = 10;

struct Exchange {
    started: Instant,
    /// Three requests in four fail during this part of the run.
    trouble: std::ops::Range<Duration>,
}

impl Exchange {
    #[monitored(
        name = "adaptive_orderbook",
        group = "binance",
        window = 20,
        min_calls = 5,
        min_success_rate = 0.9
    )]
    #[rate_limited(name = "adaptive_binance", per_second = 50, burst = 5)]
    async fn orderbook(&self, request: u32) -> Result<u32, ExchangeError> {
        if self.trouble.contains(&self.started.elapsed()) && request % 4 != 0 {
            return Err(ExchangeError::Unavailable);
        }
        Ok(request)
    }
}

/// The limit for a degradation `score`, given the limit now: lowered above 0.5, restored below
/// 0.1, kept in between (so a score hovering near one threshold does not flap).
fn limit_for(score: f64, now: u32) -> u32 {
    if score > 0.5 {
        DEGRADED
    } else if score < 0.1 {
        NORMAL
    } else {
        now
    }
}

/// Every 100 ms, sets the limiter's limit from the exchange's degradation score.
async fn govern(limiter: Arc<RateLimiter>) {
    let mut ticks = tokio::time::interval(Duration::from_millis(100));
    loop {
        ticks.tick().await;
        let health = get_system_health();
        let Some(binance) = health.per_exchange_degradation.get("binance") else {
            continue;
        };
        let now = limiter.limit().limit;
        let target = limit_for(binance.degradation_score, now);
        if target != now {
            println!(
                "governor: binance degradation score {:.2} ({:?}): limit {now} -> {target} a second",
                binance.degradation_score, binance.degradation_level
            );
            limiter
                .reconfigure(|rate| rate.limit(target))
                .expect("a valid limit");
        }
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut events = subscribe();
    let exchange = Exchange {
        started: Instant::now(),
        trouble: Duration::from_millis(500)..Duration::from_millis(1_500),
    };
    let _ = exchange.orderbook(1).await; // creates the limiter
    let limiter = rate_limiter_registry()
        .get("adaptive_binance")
        .expect("registered by the first call");
    let governor = tokio::spawn(govern(Arc::clone(&limiter)));

    // Calls made per half second, and the limit at the end of each.
    let mut phases = [(0u32, 0u32); 8];
    for request in 0.. {
        let elapsed = exchange.started.elapsed();
        if elapsed >= Duration::from_secs(4) {
            break;
        }
        let phase = &mut phases[(elapsed.as_millis() / 500) as usize];
        phase.1 = limiter.limit().limit;
        match exchange.orderbook(request).await {
            Ok(_) | Err(ExchangeError::Unavailable) => phase.0 += 1,
            Err(ExchangeError::Limited(wait)) => tokio::time::sleep(wait).await,
            Err(ExchangeError::Rejected(other)) => panic!("only the limiter refuses: {other}"),
        }
        tokio::task::yield_now().await; // lets the governor run
    }
    governor.abort();

    let mut changes = 0;
    while let Ok(event) = events.try_recv() {
        if let Event::Reconfigured(change) = event {
            changes += 1;
            for setting in &change.changes {
                println!(
                    "event: {} `{}` {}: {} -> {}",
                    change.layer, change.name, setting.field, setting.from, setting.to
                );
            }
        }
    }
    println!();
    for (phase, (calls, limit)) in phases.iter().enumerate() {
        println!(
            "{:>4}..{:>4} ms: {calls:>3} calls reached the exchange (limit {limit} a second)",
            phase * 500,
            (phase + 1) * 500
        );
    }
    println!("limit changes: {changes}");
}
