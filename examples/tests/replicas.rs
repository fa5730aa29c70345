//! The exchange demo with two client processes against the one exchange, sharing its limit
//! through a real Redis (`--replicas 2`): together they stay within the limit.
//!
//! The demo starts its other replica as its own program again with `--join`; here that program
//! is this test binary, so it has its own `main` and runs the demo's replica when asked to.

#[path = "../examples/exchange_demo/mod.rs"]
mod demo;

use demo::{Command, Options};
use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|arg| arg == "--join") {
        replica(args);
        return;
    }
    two_replicas_stay_within_the_exchange_limit_together();
}

/// What the demo's `main` does for a replica: run, print the summary.
fn replica(args: Vec<String>) {
    let options = match demo::parse_args(args) {
        Ok(Command::Run(options)) => options,
        Ok(Command::Help) => return print!("{}", demo::usage()),
        Err(error) => panic!("a replica's arguments: {error}"),
    };
    let summary = runtime()
        .block_on(demo::run(&options))
        .expect("the replica runs");
    println!("{summary}");
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn two_replicas_stay_within_the_exchange_limit_together() {
    let options = Options {
        duration: Duration::from_secs(6),
        quiet: true,
        replicas: 2,
        ..Options::default()
    };
    let summary = runtime()
        .block_on(async {
            tokio::time::timeout(Duration::from_secs(330), demo::run(&options)).await
        })
        .expect("the run ends by itself")
        .expect("the demo runs");
    println!("{summary}");
    // The other replica ran and made calls of its own.
    assert_eq!(summary.replicas.len(), 1, "{summary}");
    let replica_calls: u64 = summary.replicas[0]
        .lines()
        .find_map(|line| line.trim().strip_prefix("calls made by the app"))
        .and_then(|count| count.trim().parse().ok())
        .unwrap_or_else(|| panic!("a replica's summary: {}", summary.replicas[0]));
    assert!(replica_calls > 100, "{summary}");
    // Together they asked for more than the limit: it held them back, exactly.
    let exchange = summary.exchange;
    assert!(exchange.requests > 0, "{summary}");
    assert_eq!(exchange.over_limit, 0, "{summary}");
    println!("test two_replicas_stay_within_the_exchange_limit_together ... ok");
}
