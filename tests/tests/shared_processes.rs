//! Two OS processes share state through a real Redis server: together they admit exactly a
//! shared limit in a window, and a breaker tripped in one is open in the other within the sync
//! delay. This binary is the parent, and runs itself again as each child.

mod redis_support;

use redis_support::RedisServer;
use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use reliable_runtime::limit::RateLimit;
use reliable_runtime::shared::{SharedBreaker, SharedRateLimiter, SharedStore};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The limit both processes share.
const LIMIT: u32 = 150;

fn main() {
    let Ok(url) = std::env::var("SHARED_CHILD_REDIS") else {
        two_processes_share_one_limit();
        a_trip_in_one_process_opens_the_other();
        return;
    };
    match std::env::var("SHARED_CHILD_ROLE").as_deref() {
        Ok("follow") => follow(&url),
        Ok("trip") => trip(&url),
        _ => take_from_the_limit(&url),
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Microseconds since the Unix epoch: one timeline for both processes.
fn unix_micros() -> u128 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_micros()
}

/// A local breaker shared as `shared` (the default store: a 50 ms timeout; a 100 ms sync).
fn shared_breaker(url: &str, local: &str) -> (Arc<CircuitBreaker>, SharedBreaker) {
    let store = SharedStore::new(local, url).unwrap();
    let breaker = Arc::new(
        CircuitBreaker::new(
            local,
            BreakerConfig::default()
                .failure_threshold(1)
                .timeout(Duration::from_secs(30)),
        )
        .unwrap(),
    );
    let shared = SharedBreaker::start(&store, "across_processes", Arc::clone(&breaker));
    (breaker, shared)
}

/// Says it is ready, then prints when its breaker opened.
fn follow(url: &str) {
    runtime().block_on(async {
        let (breaker, _shared) = shared_breaker(url, "follower");
        // One sync done: the record is read, and there is none yet.
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert_eq!(breaker.state(), BreakerState::Closed);
        println!("ready");
        std::io::stdout().flush().unwrap();
        let start = Instant::now();
        while breaker.state() != BreakerState::Open {
            assert!(start.elapsed() < Duration::from_secs(10), "never opened");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        println!("{}", unix_micros());
    });
}

/// Trips its breaker, prints when, and waits for the trip to be recorded.
fn trip(url: &str) {
    runtime().block_on(async {
        let (breaker, _shared) = shared_breaker(url, "tripper");
        let at = unix_micros();
        breaker.try_acquire().unwrap().failure();
        assert_eq!(breaker.state(), BreakerState::Open);
        let mut connection = redis::Client::open(url)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .unwrap();
        let start = Instant::now();
        loop {
            let recorded: bool = redis::cmd("EXISTS")
                .arg("reliable:{across_processes}:breaker")
                .query_async(&mut connection)
                .await
                .unwrap();
            if recorded {
                break;
            }
            assert!(start.elapsed() < Duration::from_secs(10), "never recorded");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        println!("{at}");
    });
}

/// Tries 200 times, prints how many it was admitted.
fn take_from_the_limit(url: &str) {
    let admitted = runtime().block_on(async {
        let store = SharedStore::with_timeout("process", url, Duration::from_secs(2)).unwrap();
        let limit =
            SharedRateLimiter::new(&store, "processes", &[RateLimit::per_minute(LIMIT)]).unwrap();
        let mut admitted = 0;
        for _ in 0..200 {
            if limit.try_acquire(1).await.is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(
            store.snapshot().fallbacks,
            0,
            "every answer came from Redis"
        );
        admitted
    });
    println!("{admitted}");
}

fn two_processes_share_one_limit() {
    let server = RedisServer::start();
    let me = std::env::current_exe().unwrap();
    let children: Vec<_> = (0..2)
        .map(|_| {
            Command::new(&me)
                .env("SHARED_CHILD_REDIS", server.url())
                .stdout(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut total = 0;
    for child in children {
        let output = child.wait_with_output().unwrap();
        assert!(output.status.success(), "a child failed");
        let admitted: u32 = String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(admitted > 0, "each process was admitted some");
        total += admitted;
    }
    assert_eq!(
        total, LIMIT,
        "two processes admitted exactly the limit together"
    );
    println!("test two_processes_share_one_limit ... ok");
}

fn a_trip_in_one_process_opens_the_other() {
    let server = RedisServer::start();
    let me = std::env::current_exe().unwrap();
    let child = |role: &str| {
        Command::new(&me)
            .env("SHARED_CHILD_REDIS", server.url())
            .env("SHARED_CHILD_ROLE", role)
            .stdout(Stdio::piped())
            .spawn()
            .unwrap()
    };
    let mut follower = child("follow");
    let mut lines = BufReader::new(follower.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    let tripper = child("trip").wait_with_output().unwrap();
    assert!(tripper.status.success(), "the tripping child failed");
    let tripped: u128 = String::from_utf8(tripper.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let opened: u128 = lines.next().unwrap().unwrap().parse().unwrap();
    assert!(
        follower.wait().unwrap().success(),
        "the following child failed"
    );
    let delay = Duration::from_micros(u64::try_from(opened.saturating_sub(tripped)).unwrap());
    // The bound is the sync delay (100 ms) plus a command (50 ms); slack for a busy machine.
    assert!(opened >= tripped, "opened before the trip");
    assert!(
        delay < Duration::from_secs(1),
        "opened {delay:?} after the trip"
    );
    println!("test a_trip_in_one_process_opens_the_other ... ok ({delay:?})");
}
