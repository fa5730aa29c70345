//! Two OS processes share one limit through a real Redis server: together they admit exactly
//! the limit in a window. This binary is the parent, and runs itself again as each child.

mod redis_support;

use redis_support::RedisServer;
use reliable_runtime::limit::RateLimit;
use reliable_runtime::shared::{SharedRateLimiter, SharedStore};
use std::process::Command;
use std::time::Duration;

/// The limit both processes share.
const LIMIT: u32 = 150;

fn main() {
    match std::env::var("SHARED_CHILD_REDIS") {
        Ok(url) => child(&url),
        Err(_) => parent(),
    }
}

/// Tries 200 times, prints how many it was admitted.
fn child(url: &str) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let admitted = runtime.block_on(async {
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

fn parent() {
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
