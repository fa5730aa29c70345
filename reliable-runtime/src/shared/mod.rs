//! State shared by several instances of a service through a Redis server (feature `redis`):
//! a sliding-window limit exact across every instance ([`SharedRateLimiter`], alone or a
//! policy's layer), breakers that trip, probe and recover as one fleet ([`SharedBreaker`]), a
//! cache's second level ([`SharedCache`]) and a deduplication store ([`DedupStore`]).
//!
//! Redis is a dependency like any other, and is called like one: every command has a timeout
//! (50 ms by default) and goes through a circuit breaker of its own (named `redis:<store>`,
//! in health and alerts like every breaker). When Redis is down or slow, each shared state
//! falls back to local state at once (the breaker open, no command sent) or within the
//! timeout, keeps serving, and goes back to Redis when the breaker's probe succeeds. No
//! caller waits on a dead Redis past the timeout, and nothing panics.
//!
//! ```no_run
//! use reliable_runtime::limit::RateLimit;
//! use reliable_runtime::shared::{SharedRateLimiter, SharedStore};
//!
//! # async fn run() -> Result<(), reliable_runtime::ConfigError> {
//! let store = SharedStore::new("ingest", "redis://127.0.0.1:6379/")?;
//! // One limit of 1200 a minute for every replica of the service together.
//! let binance = SharedRateLimiter::new(&store, "binance", &[RateLimit::per_minute(1200)])?;
//! if binance.try_acquire(5).await.is_ok() {
//!     // call the exchange
//! }
//! # Ok(())
//! # }
//! ```

mod breaker;
mod cache;
mod dedup;
mod rate;

pub use breaker::{SharedBreaker, SharedBreakerOptions};
pub use cache::SharedCache;
pub use dedup::DedupStore;
pub use rate::SharedRateLimiter;

use crate::breaker::{BreakerConfig, CircuitBreaker};
use crate::error::ConfigError;
use crate::registry::breaker_registry;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::time::Duration;

/// A connection to one Redis server, with its timeout and breaker, shared by the shared
/// states built on it. Cheap to clone.
#[derive(Clone)]
pub struct SharedStore {
    inner: Arc<Store>,
}

struct Store {
    name: String,
    client: redis::Client,
    timeout: Duration,
    breaker: Arc<CircuitBreaker>,
    connection: Mutex<Option<ConnectionManager>>,
    /// One caller connects; the others wait for it (within their timeout).
    connecting: tokio::sync::Mutex<()>,
    /// Commands that failed or timed out, and commands answered locally because of it.
    failures: AtomicU64,
    fallbacks: AtomicU64,
    /// Entries found in Redis that did not parse (another version's, a corrupt one): skipped.
    bad_data: AtomicU64,
}

impl fmt::Debug for SharedStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SharedStore")
            .field("name", &self.inner.name)
            .field("timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

/// Why a command was answered locally.
#[derive(Debug)]
pub(crate) enum Unavailable {
    /// The store's breaker is open: nothing was sent.
    Open,
    /// No answer within the timeout.
    TimedOut,
    /// Redis answered with an error, or the connection failed.
    Failed,
}

/// A store's counters, as `get_system_health()` shows them (`shared_stores`), from the store's
/// creation on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub struct StoreSnapshot {
    /// Commands that failed or timed out.
    pub failures: u64,
    /// Operations answered locally (Redis down, slow, or its breaker open).
    pub fallbacks: u64,
    /// Entries in Redis that did not parse, skipped.
    pub bad_data: u64,
}

impl SharedStore {
    /// A store named `name` (its breaker is `redis:<name>`) on the Redis server at `url`
    /// (`redis://host:port/db`), with the default timeout of 50 ms. Nothing is sent until the
    /// first command; an unreachable server is not an error here (each state falls back).
    pub fn new(name: &str, url: &str) -> Result<SharedStore, ConfigError> {
        SharedStore::with_timeout(name, url, Duration::from_millis(50))
    }

    /// [`new`](Self::new) with another timeout for each command (connecting included).
    pub fn with_timeout(
        name: &str,
        url: &str,
        timeout: Duration,
    ) -> Result<SharedStore, ConfigError> {
        if name.is_empty() {
            return Err(ConfigError::new("name", "a store needs a name"));
        }
        if timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be above zero"));
        }
        let client = redis::Client::open(url)
            .map_err(|error| ConfigError::new("url", format!("`{url}`: {error}")))?;
        // Three failures in a row open it; a probe a second later finds Redis back.
        let breaker = breaker_registry().get_or_create(
            &format!("redis:{name}"),
            BreakerConfig::default()
                .failure_threshold(3)
                .timeout(Duration::from_secs(1))
                .success_threshold(1),
        )?;
        let store = SharedStore {
            inner: Arc::new(Store {
                name: name.to_owned(),
                client,
                timeout,
                breaker,
                connection: Mutex::new(None),
                connecting: tokio::sync::Mutex::new(()),
                failures: AtomicU64::new(0),
                fallbacks: AtomicU64::new(0),
                bad_data: AtomicU64::new(0),
            }),
        };
        let mut stores = STORES.lock().unwrap_or_else(PoisonError::into_inner);
        stores.retain(|(_, store)| store.strong_count() > 0);
        stores.push((name.to_owned(), Arc::downgrade(&store.inner)));
        Ok(store)
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Each command's timeout.
    pub fn timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// The breaker its commands go through.
    pub fn breaker(&self) -> &Arc<CircuitBreaker> {
        &self.inner.breaker
    }

    /// Its counters.
    pub fn snapshot(&self) -> StoreSnapshot {
        StoreSnapshot {
            failures: self.inner.failures.load(Ordering::Relaxed),
            fallbacks: self.inner.fallbacks.load(Ordering::Relaxed),
            bad_data: self.inner.bad_data.load(Ordering::Relaxed),
        }
    }

    /// Runs `command` on a connection, through the breaker and within the timeout.
    pub(crate) async fn run<T, Command, Running>(&self, command: Command) -> Result<T, Unavailable>
    where
        Command: FnOnce(ConnectionManager) -> Running,
        Running: Future<Output = redis::RedisResult<T>>,
    {
        let store = &self.inner;
        let Ok(permit) = store.breaker.try_acquire() else {
            return Err(Unavailable::Open);
        };
        let outcome = tokio::time::timeout(store.timeout, async {
            let connection = self.connection().await?;
            command(connection).await
        })
        .await;
        match outcome {
            Ok(Ok(value)) => {
                permit.success();
                Ok(value)
            }
            Ok(Err(error)) => {
                permit.failure();
                store.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(store = %store.name, %error, "a Redis command failed");
                Err(Unavailable::Failed)
            }
            Err(_) => {
                permit.failure();
                store.failures.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(store = %store.name, timeout = ?store.timeout, "a Redis command timed out");
                Err(Unavailable::TimedOut)
            }
        }
    }

    /// Runs a script through [`run`](Self::run): its answer, or why there is none.
    pub(crate) async fn invoke<T: redis::FromRedisValue>(
        &self,
        invocation: redis::ScriptInvocation<'_>,
    ) -> Result<T, Unavailable> {
        self.run(|mut connection| async move { invocation.invoke_async(&mut connection).await })
            .await
    }

    /// [`invoke`](Self::invoke) whose answer only matters as sent or not: a failure is counted
    /// as answered locally.
    pub(crate) async fn send(&self, invocation: redis::ScriptInvocation<'_>) {
        if self.invoke::<i64>(invocation).await.is_err() {
            self.fell_back();
        }
    }

    /// The connection, made on first use: one caller connects, the others wait for it.
    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        let store = &self.inner;
        if let Some(connection) = store.lock().clone() {
            return Ok(connection);
        }
        let _one = store.connecting.lock().await;
        if let Some(connection) = store.lock().clone() {
            return Ok(connection);
        }
        // Reconnects in the background after a drop, each attempt within the timeout.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(store.timeout)
            .set_response_timeout(store.timeout)
            .set_number_of_retries(1)
            .set_max_delay(1_000);
        let connection = ConnectionManager::new_with_config(store.client.clone(), config).await?;
        *store.lock() = Some(connection.clone());
        Ok(connection)
    }

    pub(crate) fn fell_back(&self) {
        self.inner.fallbacks.fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn bad_data(&self, what: &str) {
        self.inner.bad_data.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(store = %self.inner.name, what, "an entry in Redis did not parse; skipped");
    }
}

/// The stores alive, for health: by name (the newest of a name wins), held weakly so that a
/// dropped store leaves.
static STORES: Mutex<Vec<(String, Weak<Store>)>> = Mutex::new(Vec::new());

/// Every live store's counters, by name.
pub(crate) fn store_snapshots() -> std::collections::BTreeMap<String, StoreSnapshot> {
    let stores = STORES.lock().unwrap_or_else(PoisonError::into_inner);
    stores
        .iter()
        .filter_map(|(name, store)| {
            let inner = store.upgrade()?;
            Some((name.clone(), SharedStore { inner }.snapshot()))
        })
        .collect()
}

impl Store {
    fn lock(&self) -> std::sync::MutexGuard<'_, Option<ConnectionManager>> {
        self.connection
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// Whole milliseconds, at least 1 (Redis takes no zero expiry), saturating.
pub(crate) fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Which instance holds a claim or a probe slot: this process and a random part, so that two
/// holders in one process (two stores, two caches) differ too.
pub(crate) fn instance_id() -> String {
    format!("{}:{:016x}", std::process::id(), rand::random::<u64>())
}
