//! The exchange demo, end to end: a short run against the simulated exchange on loopback, and
//! its command line.
//!
//! The demo's module is compiled into this test (an example's code cannot be imported), so the
//! test drives the very code `cargo run --example exchange_demo` runs. The fault script is laid
//! over the run in fractions of its length, so a 4 s run meets every fault; the assertions hold
//! for any seed because the outage (30% of the run, 1.2 s here) outlasts what the order-book
//! cache can cover (750 ms) and a breaker's first open time (1 s).

#[path = "../examples/exchange_demo/mod.rs"]
mod demo;

use demo::{parse_args, usage, Command, Options};
use std::time::Duration;

const RUN: Duration = Duration::from_secs(4);

/// The runtime's registries are process-wide: this is the only test here that makes calls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn short_run_rides_out_the_outage_with_cache_stale_data_fallbacks_and_a_breaker() {
    let options = Options {
        duration: RUN,
        quiet: true,
        ..Options::default()
    };
    // A hung run fails the test instead of hanging CI.
    let summary = tokio::time::timeout(RUN + Duration::from_secs(30), demo::run(&options))
        .await
        .expect("the run ends by itself")
        .expect("the demo runs");
    println!("{summary}");

    // The run ends on time: calls in flight at the end finish within their timeouts.
    assert!(
        summary.elapsed >= RUN && summary.elapsed < RUN + Duration::from_secs(5),
        "{summary}"
    );
    // Every consumer kept polling: 6 consumers, 2 calls per 100 ms, for 4 s would be 480.
    assert!(summary.app_calls >= 200, "{summary}");
    // The cache spared the exchange: most calls never reached it, even counting retries.
    assert!(summary.cache_hits > 0, "{summary}");
    assert!(
        summary.app_calls > 2 * summary.exchange.requests,
        "{summary}"
    );
    // The exchange went down and said so.
    assert!(summary.exchange.unavailable > 0, "{summary}");
    // The breaker cut the exchange off (an alert), and stale data and fallbacks answered.
    assert!(summary.breaker_trips >= 1, "{summary}");
    assert!(summary.alerts >= summary.breaker_trips, "{summary}");
    // Every trip (CLOSED -> OPEN, HALF_OPEN -> OPEN) is a critical alert in the alert manager.
    assert!(
        summary.critical_alerts >= summary.breaker_trips,
        "{summary}"
    );
    assert!(summary.stale_after_errors > 0, "{summary}");
    assert!(
        summary.stale_serves >= summary.stale_after_errors,
        "{summary}"
    );
    assert!(summary.fallbacks > 0, "{summary}");
    // Fallbacks are the last resort, not the rule.
    assert!(summary.fallbacks < summary.app_calls / 2, "{summary}");
}

#[test]
fn command_line_parses_flags_and_explains_bad_input() {
    let run = |args: &[&str]| parse_args(args.iter().map(|arg| arg.to_string()));

    assert_eq!(run(&[]), Ok(Command::Run(Options::default())));
    assert_eq!(
        run(&[
            "--duration",
            "4.5",
            "--seed=7",
            "--symbols",
            "btcusdt, DOGEUSDT,BTCUSDT",
            "--quiet",
            "--serve",
            "127.0.0.1:8080",
        ]),
        Ok(Command::Run(Options {
            duration: Duration::from_millis(4_500),
            seed: 7,
            symbols: vec!["BTCUSDT".to_owned(), "DOGEUSDT".to_owned()],
            quiet: true,
            serve: Some("127.0.0.1:8080".parse().unwrap()),
            ..Options::default()
        }))
    );
    assert_eq!(
        run(&[
            "--replicas",
            "2",
            "--redis",
            "redis://127.0.0.1:6379/",
            "--join=http://127.0.0.1:9000/",
        ]),
        Ok(Command::Run(Options {
            replicas: 2,
            redis: Some("redis://127.0.0.1:6379/".to_owned()),
            join: Some("http://127.0.0.1:9000".to_owned()),
            ..Options::default()
        }))
    );
    assert_eq!(
        run(&["--replicas", "3", "--unshared"]),
        Ok(Command::Run(Options {
            replicas: 3,
            unshared: true,
            ..Options::default()
        }))
    );
    assert_eq!(run(&["--help"]), Ok(Command::Help));
    let usage = usage();
    for mentioned in [
        "--duration",
        "--seed",
        "--symbols",
        "--quiet",
        "--serve",
        "--replicas",
        "--redis",
        "--unshared",
        "--join",
        "--help",
        "DOGEUSDT",
    ] {
        assert!(usage.contains(mentioned), "usage mentions {mentioned}");
    }

    let error = |args: &[&str]| run(args).expect_err("bad input is refused");
    let says = |args: &[&str], words: &[&str]| {
        let message = error(args);
        for word in words {
            assert!(
                message.contains(word),
                "{args:?}: `{message}` should say `{word}`"
            );
        }
    };
    says(&["--duration", "soon"], &["--duration", "soon", "seconds"]);
    says(&["--duration", "0"], &["between 1 and"]);
    says(&["--duration", "NaN"], &["between 1 and"]);
    says(&["--duration"], &["needs a value"]);
    says(&["--seed", "-1"], &["--seed", "-1"]);
    says(&["--symbols", "FOOUSDT"], &["FOOUSDT", "BTCUSDT"]);
    says(&["--symbols", ","], &["at least one symbol"]);
    says(&["--quiet=yes"], &["takes no value"]);
    says(&["--verbose"], &["unknown argument `--verbose`"]);
    says(
        &["--serve", "localhost"],
        &["--serve", "127.0.0.1:8080", "localhost"],
    );
    says(&["--serve"], &["needs a value"]);
    says(&["--replicas", "0"], &["--replicas", "1 to 8", "`0`"]);
    says(&["--replicas", "many"], &["--replicas", "`many`"]);
    says(&["--unshared"], &["--unshared", "--replicas"]);
    says(&["--unshared=yes"], &["takes no value"]);
    says(
        &["--redis", "redis://127.0.0.1:6379/"],
        &["--redis", "--replicas"],
    );
    says(
        &["--replicas", "2", "--redis", "localhost:6379"],
        &["redis://", "localhost:6379"],
    );
    says(
        &["--join", "127.0.0.1:9000"],
        &["--join", "http://", "127.0.0.1:9000"],
    );
}
