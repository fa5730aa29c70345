//! A second cache level behind the in-memory one, shared by several instances (feature
//! `redis`: [`SharedCache`](crate::shared::SharedCache)). Consulted only by a load's leader,
//! never on a hit: the hit path does not know it exists.

use super::Cache;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::time::Duration;

pub(crate) type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A value the second level holds.
pub(crate) struct RemoteValue<V> {
    pub(crate) value: V,
    /// What is left of its TTL; zero when it is stale (within the stale window).
    pub(crate) fresh_for: Duration,
    /// Time since it was loaded, by whichever instance.
    pub(crate) age: Duration,
}

/// Who loads a missing value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Claim {
    /// This instance: it holds the claim until its load ends (or the lease does).
    Ours,
    /// Another instance is loading it.
    Elsewhere,
    /// The second level is unavailable: load locally, and do not ask it again this time.
    Unavailable,
}

/// What the second level answered for a key.
pub(crate) struct Answer<V> {
    /// Its value, fresh or stale, if it holds one.
    pub(crate) value: Option<RemoteValue<V>>,
    /// Who loads it, when the value is not fresh (and a claim was asked for).
    pub(crate) claim: Claim,
}

/// The operations a second level provides; each answers within its own bound (a dead server
/// answers `Unavailable`, never late).
pub(crate) trait SecondLevel<K, V>: Send + Sync + 'static {
    /// The value for `key`; when it is not fresh, claims the load for this instance if no
    /// other instance holds the claim (`claim`).
    fn lookup<'a>(&'a self, key: &'a K, claim: bool) -> BoxFuture<'a, Answer<V>>;

    /// Stores a value this instance loaded (and gives up its claim). Encodes at once; the
    /// future only sends, so the cache can run it in the background.
    fn store(
        &self,
        key: &K,
        value: &V,
        fresh_for: Duration,
        stale_for: Duration,
    ) -> Option<BoxFuture<'static, ()>>;

    /// Gives up this instance's claim: its load failed.
    fn release(&self, key: &K) -> BoxFuture<'static, ()>;

    /// How long to wait for another instance's load before loading here.
    fn wait_bound(&self) -> Duration;
}

/// What consulting the second level settled.
pub(crate) enum Consulted<V> {
    /// Its value, put in the first level.
    Found(V),
    /// Load here; `claimed` if this instance holds the claim.
    Load { claimed: bool },
}

/// This instance's claim on a load, given up when dropped still armed (the load failed, or
/// its caller was cancelled): the release runs in the background.
pub(crate) struct Claimed(Option<BoxFuture<'static, ()>>);

impl Claimed {
    pub(crate) fn none() -> Claimed {
        Claimed(None)
    }

    /// `release` is how to give the claim up (`None`: no claim).
    pub(crate) fn new(release: Option<BoxFuture<'static, ()>>) -> Claimed {
        Claimed(release)
    }

    /// The release, which the claim's holder now runs or drops itself.
    pub(crate) fn disarm(&mut self) -> Option<BoxFuture<'static, ()>> {
        self.0.take()
    }
}

impl Drop for Claimed {
    fn drop(&mut self) {
        if let (Some(release), Ok(runtime)) = (self.0.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(release);
        }
    }
}

/// Runs `send` in the background when there is a tokio runtime, else here.
pub(crate) async fn in_background(send: BoxFuture<'static, ()>) {
    match tokio::runtime::Handle::try_current() {
        Ok(runtime) => {
            runtime.spawn(send);
        }
        Err(_) => send.await,
    }
}

impl<K, V> Cache<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    /// Consults the second level before a load: a fresh value there is taken (into the first
    /// level, with what is left of its TTL); a stale one becomes `stale` (for stale-if-error)
    /// when there is none here; while another instance loads the key, waits for its value
    /// (polling each 10 ms, up to the level's bound), then loads here.
    pub(crate) async fn consult_second_level(
        &self,
        level: &dyn SecondLevel<K, V>,
        key: &K,
        stale: &mut Option<(V, Duration)>,
    ) -> Consulted<V> {
        let started = tokio::time::Instant::now();
        loop {
            let answer = level.lookup(key, true).await;
            match answer.value {
                Some(remote) if !remote.fresh_for.is_zero() => {
                    self.insert_loaded_elsewhere(key.clone(), remote.value.clone(), &remote);
                    return Consulted::Found(remote.value);
                }
                Some(remote) if stale.is_none() => *stale = Some((remote.value, remote.age)),
                _ => {}
            }
            match answer.claim {
                Claim::Ours => return Consulted::Load { claimed: true },
                Claim::Unavailable => return Consulted::Load { claimed: false },
                Claim::Elsewhere if started.elapsed() >= level.wait_bound() => {
                    return Consulted::Load { claimed: false }
                }
                Claim::Elsewhere => tokio::time::sleep(Duration::from_millis(10)).await,
            }
        }
    }

    /// Attaches a second level; `false` if one already is.
    pub(crate) fn attach_second_level(&self, level: std::sync::Arc<dyn SecondLevel<K, V>>) -> bool {
        self.second_level.set(level).is_ok()
    }
}
