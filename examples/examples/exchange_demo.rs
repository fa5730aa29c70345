//! The main demo: an exchange client made reliable by the HTTP client and attributes, riding
//! out a scripted storm on a simulated exchange.
//!
//! `cargo run --example exchange_demo` (`-- --help` for the flags; `-- --duration 10` for a
//! shorter run)
//!
//! A Binance-like HTTP API runs on 127.0.0.1 at a free port and, over the run, gets slow, throws
//! 5xx bursts, answers 429 with `Retry-After`, goes down completely, and recovers. Consumers poll
//! order books and tickers for a few symbols through `reliable_runtime::http::Client` (a source
//! per endpoint: timeouts, classified retries, the exchange's breaker, a monitor) and methods
//! that carry `#[cached]` and `#[graceful_degradation]`. Each
//! second a table shows, per source, what the runtime sees: breaker state, p95 latency, success
//! rate, cache hit rate, stale serves, fallbacks and alerts. The summary at the end compares
//! the calls the app made with the requests that reached the exchange.
//!
//! With `--replicas 2`, two client processes (this program again, with `--join`) poll the one
//! exchange, sharing its limit through Redis; the summary shows the exchange's busiest second.
//!
//! The logic is in `exchange_demo/`, which `tests/demo.rs` and `tests/replicas.rs` run too.

#[path = "exchange_demo/mod.rs"]
mod demo;

use std::process::ExitCode;

/// Two worker threads: the exchange and the client share the runtime, as on a 2-core machine.
#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> ExitCode {
    let options = match demo::parse_args(std::env::args().skip(1)) {
        Ok(demo::Command::Run(options)) => options,
        Ok(demo::Command::Help) => {
            print!("{}", demo::usage());
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprintln!("exchange_demo: {error}\n\n{}", demo::usage());
            return ExitCode::from(2);
        }
    };
    match demo::run(&options).await {
        Ok(summary) => {
            println!("{summary}");
            ExitCode::SUCCESS
        }
        Err(error) => {
            eprintln!("exchange_demo: {error}");
            ExitCode::FAILURE
        }
    }
}
