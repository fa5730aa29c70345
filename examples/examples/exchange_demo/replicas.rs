//! Several client processes against the one exchange (`--replicas`): the first process runs
//! the exchange and starts the others (`--join`), and every replica keeps the exchange's limit
//! through one Redis (`reliable_runtime::shared`), or each alone (`--unshared`).

use super::client::ClientLimit;
use super::exchange::LIMIT_PER_SECOND;
use super::options::Options;
use reliable_runtime::limit::RateLimit;
use reliable_runtime::shared::{SharedRateLimiter, SharedStore};
use std::error::Error;
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the clients allow themselves a second, together: under the exchange's published limit,
/// leaving room for requests admitted at the end of one second that arrive in the next.
pub(crate) const CLIENT_LIMIT_PER_SECOND: u32 = LIMIT_PER_SECOND as u32 - 2;

/// A `redis-server` this run started (no `--redis` given), killed when dropped.
pub(crate) struct RedisProcess {
    child: Child,
    url: String,
}

impl RedisProcess {
    /// Starts one on a free loopback port, through the project's script (which installs it
    /// when missing), and waits until it answers.
    pub(crate) fn start() -> Result<RedisProcess, Box<dyn Error + Send + Sync>> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/redis-server.sh");
        let child = Command::new("bash")
            .arg(script)
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .spawn()
            .map_err(|error| format!("cannot start redis-server ({script}): {error}"))?;
        let mut redis = RedisProcess {
            child,
            url: format!("redis://127.0.0.1:{port}/"),
        };
        let start = Instant::now();
        // Installing it on a fresh machine takes a while; a started server answers in ms.
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Ok(Some(status)) = redis.child.try_wait() {
                return Err(format!("redis-server exited: {status}").into());
            }
            if start.elapsed() > Duration::from_secs(300) {
                return Err("redis-server did not listen within 5 minutes".into());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(redis)
    }

    pub(crate) fn url(&self) -> &str {
        &self.url
    }
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The limit this process keeps on its requests, for `options`.
pub(crate) fn client_limit(
    options: &Options,
    redis: Option<&str>,
) -> Result<ClientLimit, Box<dyn Error + Send + Sync>> {
    if options.replicas == 1 && options.join.is_none() {
        return Ok(ClientLimit::None);
    }
    if options.unshared {
        return Ok(ClientLimit::Local(CLIENT_LIMIT_PER_SECOND));
    }
    let Some(url) = redis.or(options.redis.as_deref()) else {
        return Err("a replica needs `--redis` to share the limit through".into());
    };
    // The default timeout (50 ms): a dead Redis leaves each replica its share of the limit.
    let store = SharedStore::new("exchange_demo", url)?;
    let limiter = SharedRateLimiter::new(
        &store,
        "binance_requests",
        &[RateLimit::per_second(CLIENT_LIMIT_PER_SECOND)],
    )?
    .local_share(1.0 / f64::from(options.replicas))?;
    Ok(ClientLimit::Shared(Arc::new(limiter)))
}

/// The other replicas, started by the first: this program again, joining `exchange_url`.
/// Dropped before [`finish`](Self::finish) (the run failed), it kills them.
pub(crate) struct Replicas {
    children: Vec<Child>,
}

impl Drop for Replicas {
    fn drop(&mut self) {
        for child in &mut self.children {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Replicas {
    /// Starts `options.replicas - 1` replicas for `remaining` of the run.
    pub(crate) fn start(
        options: &Options,
        exchange_url: &str,
        redis: Option<&str>,
        remaining: Duration,
    ) -> Result<Replicas, Box<dyn Error + Send + Sync>> {
        let program = std::env::current_exe()?;
        let mut replicas = Replicas {
            children: Vec::new(),
        };
        for replica in 1..options.replicas {
            let mut command = Command::new(&program);
            command
                .args(["--join", exchange_url])
                .args(["--replicas", &options.replicas.to_string()])
                .args(["--duration", &format!("{:.3}", remaining.as_secs_f64())])
                .args(["--seed", &(options.seed + u64::from(replica)).to_string()])
                .args(["--symbols", &options.symbols.join(",")])
                .arg("--quiet")
                .stdout(Stdio::piped());
            match (options.unshared, redis) {
                (true, _) => {
                    command.arg("--unshared");
                }
                (false, Some(url)) => {
                    command.args(["--redis", url]);
                }
                (false, None) => {}
            }
            replicas.children.push(command.spawn()?);
        }
        Ok(replicas)
    }

    /// Waits for every replica; answers each one's summary (or why it failed).
    pub(crate) async fn finish(mut self) -> Vec<String> {
        let children = std::mem::take(&mut self.children);
        let outputs = tokio::task::spawn_blocking(move || {
            children
                .into_iter()
                .map(|child| match child.wait_with_output() {
                    Ok(output) if output.status.success() => {
                        String::from_utf8_lossy(&output.stdout)
                            .trim_end()
                            .to_owned()
                    }
                    Ok(output) => format!("the replica failed: {}", output.status),
                    Err(error) => format!("the replica could not be waited for: {error}"),
                })
                .collect()
        })
        .await;
        outputs.unwrap_or_else(|error| vec![format!("the replicas were lost: {error}")])
    }
}
