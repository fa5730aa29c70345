//! The command line, parsed by hand: a handful of flags do not need an argument-parsing crate.

use super::exchange::LISTINGS;
use std::net::SocketAddr;
use std::time::Duration;

/// The `--help` text, listing the exchange's symbols.
pub(crate) fn usage() -> String {
    let listed: Vec<&str> = LISTINGS.iter().map(|(symbol, _)| *symbol).collect();
    format!(
        "\
usage: cargo run --example exchange_demo -- [OPTIONS]

Runs a simulated exchange on 127.0.0.1 with scripted faults (latency spike, 5xx burst,
429 with Retry-After, full outage, recovery) and polls it through reliable's HTTP client and
attributes, printing a health table every second and a summary at the end.

options:
  --duration <SECONDS>   length of the run; the fault script scales to it [default: 30]
  --seed <U64>           seed of the exchange's per-request randomness [default: 42]
  --symbols <A,B,...>    symbols to poll [default: BTCUSDT,ETHUSDT,SOLUSDT]
                         listed: {}
  --serve <ADDR>         serve the health endpoints and a live dashboard at this address
                         while the demo runs, e.g. 127.0.0.1:8080 (port 0 picks one)
  --replicas <N>         run N client processes (1 to 8) against the one exchange, sharing
                         its limit of {limit} requests a second through Redis [default: 1]
  --redis <URL>          the Redis the replicas share, e.g. redis://127.0.0.1:6379/
                         [default: one started on a free loopback port]
  --unshared             with --replicas: each replica keeps the limit alone instead (the
                         exchange then sees N times it)
  --join <URL>           run as a replica of the exchange at URL (what --replicas starts)
  --quiet                print only the summary
  --help                 print this and exit
",
        listed.join(" "),
        limit = super::exchange::LIMIT_PER_SECOND,
    )
}

/// How a run goes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Options {
    /// Length of the run; the exchange's script is laid over it in fractions.
    pub(crate) duration: Duration,
    /// Seeds the exchange's per-request randomness.
    pub(crate) seed: u64,
    /// Listed symbols to poll.
    pub(crate) symbols: Vec<String>,
    /// No table, no alert lines: only the summary (which the caller prints).
    pub(crate) quiet: bool,
    /// Where to serve the health endpoints and the dashboard while the demo runs.
    pub(crate) serve: Option<SocketAddr>,
    /// Client processes against the one exchange (this one and `replicas - 1` started).
    pub(crate) replicas: u32,
    /// The Redis the replicas share their limit through (`None`: start one).
    pub(crate) redis: Option<String>,
    /// Each replica keeps the exchange's limit alone (the problem sharing solves).
    pub(crate) unshared: bool,
    /// Run as a replica of the exchange at this base URL: no exchange of its own.
    pub(crate) join: Option<String>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            duration: Duration::from_secs(30),
            seed: 42,
            symbols: ["BTCUSDT", "ETHUSDT", "SOLUSDT"].map(String::from).to_vec(),
            quiet: false,
            serve: None,
            replicas: 1,
            redis: None,
            unshared: false,
            join: None,
        }
    }
}

/// What the command line asks for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Command {
    Run(Options),
    Help,
}

/// The longest run the demo accepts: it is a demo, not a soak test.
const MAX_DURATION_SECS: f64 = 3_600.0;

/// Parses the arguments after the program name; the error says what was wrong and what to
/// write instead.
pub(crate) fn parse_args(args: impl IntoIterator<Item = String>) -> Result<Command, String> {
    let mut options = Options::default();
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        // `--flag value` and `--flag=value` both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((flag, value)) if flag.starts_with("--") => {
                (flag.to_owned(), Some(value.to_owned()))
            }
            _ => (arg, None),
        };
        let mut value = |name: &str| {
            inline
                .clone()
                .or_else(|| args.next())
                .ok_or_else(|| format!("`{name}` needs a value"))
        };
        match flag.as_str() {
            "--duration" => options.duration = parse_duration(&value("--duration")?)?,
            "--seed" => {
                let raw = value("--seed")?;
                options.seed = raw.parse().map_err(|_| {
                    format!(
                        "`--seed` takes a whole number from 0 to {}, not `{raw}`",
                        u64::MAX
                    )
                })?;
            }
            "--symbols" => options.symbols = parse_symbols(&value("--symbols")?)?,
            "--serve" => {
                let raw = value("--serve")?;
                options.serve = Some(raw.parse().map_err(|_| {
                    format!(
                        "`--serve` takes an address and port, like `127.0.0.1:8080`, not `{raw}`"
                    )
                })?);
            }
            "--replicas" => {
                let raw = value("--replicas")?;
                options.replicas = raw
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_REPLICAS).contains(n))
                    .ok_or_else(|| {
                        format!("`--replicas` takes a number from 1 to {MAX_REPLICAS}, not `{raw}`")
                    })?;
            }
            "--redis" => {
                let raw = value("--redis")?;
                if !raw.starts_with("redis://") {
                    return Err(format!(
                        "`--redis` takes a URL like `redis://127.0.0.1:6379/`, not `{raw}`"
                    ));
                }
                options.redis = Some(raw);
            }
            "--join" => {
                let raw = value("--join")?;
                if !raw.starts_with("http://") {
                    return Err(format!(
                        "`--join` takes the exchange's URL, like `http://127.0.0.1:8081`, not `{raw}`"
                    ));
                }
                options.join = Some(raw.trim_end_matches('/').to_owned());
            }
            "--unshared" if inline.is_none() => options.unshared = true,
            "--quiet" | "-q" if inline.is_none() => options.quiet = true,
            "--help" | "-h" if inline.is_none() => return Ok(Command::Help),
            "--quiet" | "-q" | "--help" | "-h" | "--unshared" => {
                return Err(format!("`{flag}` takes no value"))
            }
            other => return Err(format!("unknown argument `{other}` (see --help)")),
        }
    }
    if options.replicas == 1 && options.join.is_none() {
        if options.unshared {
            return Err("`--unshared` needs `--replicas` above 1".to_owned());
        }
        if options.redis.is_some() {
            return Err("`--redis` needs `--replicas` above 1".to_owned());
        }
    }
    Ok(Command::Run(options))
}

/// The most replicas the demo starts: each is a process polling the exchange.
const MAX_REPLICAS: u32 = 8;

fn parse_duration(raw: &str) -> Result<Duration, String> {
    let seconds: f64 = raw
        .strip_suffix('s')
        .unwrap_or(raw)
        .parse()
        .map_err(|_| format!("`--duration` takes seconds, like `30` or `4.5`, not `{raw}`"))?;
    if !(1.0..=MAX_DURATION_SECS).contains(&seconds) {
        return Err(format!(
            "`--duration` must be between 1 and {MAX_DURATION_SECS} seconds, not `{raw}`"
        ));
    }
    Ok(Duration::from_secs_f64(seconds))
}

fn parse_symbols(raw: &str) -> Result<Vec<String>, String> {
    let mut symbols: Vec<String> = Vec::new();
    for symbol in raw.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let symbol = symbol.to_ascii_uppercase();
        if !LISTINGS.iter().any(|(listed, _)| *listed == symbol) {
            let listed: Vec<&str> = LISTINGS.iter().map(|(listed, _)| *listed).collect();
            return Err(format!(
                "the simulated exchange does not list `{symbol}`; it lists {}",
                listed.join(", ")
            ));
        }
        if !symbols.contains(&symbol) {
            symbols.push(symbol);
        }
    }
    if symbols.is_empty() {
        return Err("`--symbols` needs at least one symbol, like `BTCUSDT,ETHUSDT`".to_owned());
    }
    Ok(symbols)
}
