//! Single flight: one load per key at a time, its outcome shared with the callers that waited.
//!
//! The protocol (checked by `loom_models` below):
//!
//! - **join**: a caller inserts a new flight for its key. If the insert wins, it leads; if a
//!   flight is there, it follows that one; if that flight is gone by the time it looks (its
//!   leader just finished), it starts again.
//! - **finish** (the leader): store the outcome, remove the flight from the map, then mark it
//!   finished and wake the followers. The cache inserts a loaded value *before* finishing, so a
//!   caller that leads after the removal finds the value when it looks again (the leader's
//!   re-check in `get_or_load_future`) instead of loading a second time.
//! - **follow**: wait until the flight is finished, then take a clone of its outcome. A flight
//!   finished without an outcome had its leader cancelled: the followers start again, and one
//!   of them leads.

use crate::error::Rejected;
use crate::sync::{AtomicBool, Mutex};
use std::any::Any;
use std::hash::Hash;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::Notify;

/// What a [`Cache`](super::Cache) needs of a load's error to share it with every caller that
/// waited for the load: `Clone + Send + Sync + 'static` (implemented for every such type).
///
/// An error type holding a source that is not `Clone` (an `std::io::Error`, a
/// `reqwest::Error`) can hold it in an `Arc`:
///
/// ```
/// use reliable_runtime::cache::SharedError;
/// use std::sync::Arc;
///
/// #[derive(Clone, Debug)]
/// enum ApiError {
///     Io(Arc<std::io::Error>),
///     Status(u16),
/// }
///
/// fn shareable<E: SharedError>() {}
/// shareable::<ApiError>();
/// ```
#[diagnostic::on_unimplemented(
    message = "a cached load's error is shared with every caller that waited for the load, so `{Self}` must be `Clone + Send + Sync + 'static`",
    label = "this error type cannot be shared",
    note = "derive `Clone` for the error type, holding a source that is not `Clone` in an `Arc`; or call `get_or_load_sharing` with `AsRejected` (waiting callers get `Rejected::LoadFailed`) or `LoadAlone` (each loads on its own)"
)]
pub trait SharedError: Clone + Send + Sync + 'static {}

impl<E: Clone + Send + Sync + 'static> SharedError for E {}

/// How the callers that waited for a failed load get their error: what the flight keeps of the
/// leader's error, and how a follower makes its own from that.
///
/// [`Cache::get_or_load`](super::Cache::get_or_load) shares [`ByClone`]. `#[cached]` picks
/// [`ByClone`] when the fn's error type is `Clone + Send + Sync + 'static`; otherwise
/// [`AsRejected`] when a breaker, limiter, bulkhead or timeout on the fn already makes its error
/// hold a [`Rejected`]; otherwise [`LoadAlone`].
#[diagnostic::on_unimplemented(
    message = "a cached load's error is shared with every caller that waited for the load, so `{E}` must be `Clone + Send + Sync + 'static`",
    label = "the error of this cached fn cannot be shared",
    note = "derive `Clone` for the error type (hold a source that is not `Clone` in an `Arc`), or put a layer that refuses calls on the fn (a breaker, limiter, bulkhead or timeout): its waiting callers then get `Rejected::LoadFailed`"
)]
pub trait ShareFailure<E> {
    /// What the flight keeps of the leader's `error`.
    fn keep(error: &E) -> Arc<dyn Any + Send + Sync>;
    /// A follower's error from what the flight kept; `None` makes the follower load on its own
    /// (outside any flight).
    fn give(kept: &(dyn Any + Send + Sync), cache: &'static str) -> Option<E>;
}

/// Followers get a clone of the leader's error.
#[derive(Debug, Default)]
pub struct ByClone;

impl<E: SharedError> ShareFailure<E> for ByClone {
    fn keep(error: &E) -> Arc<dyn Any + Send + Sync> {
        Arc::new(error.clone())
    }

    fn give(kept: &(dyn Any + Send + Sync), _cache: &'static str) -> Option<E> {
        // `None` when another call site with another error type led the flight.
        kept.downcast_ref::<E>().cloned()
    }
}

/// Followers get [`Rejected::LoadFailed`], converted into their error type.
#[derive(Debug, Default)]
pub struct AsRejected;

impl<E: From<Rejected>> ShareFailure<E> for AsRejected {
    fn keep(_error: &E) -> Arc<dyn Any + Send + Sync> {
        Arc::new(())
    }

    fn give(_kept: &(dyn Any + Send + Sync), cache: &'static str) -> Option<E> {
        Some(E::from(Rejected::LoadFailed { cache }))
    }
}

/// Followers of a failed load each load on their own, all at once (not one after another): for
/// an error type that can be neither cloned nor made from a [`Rejected`].
#[derive(Debug, Default)]
pub struct LoadAlone;

impl<E> ShareFailure<E> for LoadAlone {
    fn keep(_error: &E) -> Arc<dyn Any + Send + Sync> {
        Arc::new(())
    }

    fn give(_kept: &(dyn Any + Send + Sync), _cache: &'static str) -> Option<E> {
        None
    }
}

/// How a flight ended.
pub(super) enum Outcome<V> {
    /// The load returned this value (already in the cache).
    Loaded(V),
    /// The load failed; what [`ShareFailure::keep`] kept of the error.
    Failed(Arc<dyn Any + Send + Sync>),
}

impl<V: Clone> Clone for Outcome<V> {
    fn clone(&self) -> Self {
        match self {
            Outcome::Loaded(value) => Outcome::Loaded(value.clone()),
            Outcome::Failed(error) => Outcome::Failed(Arc::clone(error)),
        }
    }
}

/// A load in flight.
pub(super) struct Flight<V> {
    /// Set by the leader before `finished`; `None` after a cancelled leader.
    outcome: Mutex<Option<Outcome<V>>>,
    finished: AtomicBool,
    done: Notify,
}

impl<V: Clone> Flight<V> {
    fn new() -> Self {
        Flight {
            outcome: Mutex::new(None),
            finished: AtomicBool::new(false),
            done: Notify::new(),
        }
    }

    /// Waits for the flight to finish; its outcome, `None` if its leader was cancelled.
    pub(super) async fn outcome(&self) -> Option<Outcome<V>> {
        let notified = self.done.notified();
        tokio::pin!(notified);
        // Registered before the check, so a finish between the check and the await still wakes.
        notified.as_mut().enable();
        if !self.finished.load(Ordering::Acquire) {
            notified.await;
        }
        self.outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// The flights of one cache, by key.
pub(super) struct Flights<K, V> {
    map: FlightMap<K, V>,
}

#[cfg(all(test, reliable_loom))]
impl<K: Hash + Eq, V> Flights<K, V> {
    /// How many hold the flight for `key` (the map, its leader, its followers), if there is one.
    pub(super) fn holders(&self, key: &K) -> Option<usize> {
        self.map
            .get(key)
            .map(|flight| Arc::strong_count(&flight) - 1)
    }
}

/// The index of flights: `scc`'s lock-free `HashIndex`. Under the model checker, a map behind
/// loom's mutex stands in for it: loom can only see causality that flows through its own
/// primitives, and the index is linearizable, which is all the protocol relies on.
#[cfg(not(reliable_loom))]
struct FlightMap<K, V>(scc::HashIndex<K, Arc<Flight<V>>, foldhash::fast::RandomState>);

#[cfg(not(reliable_loom))]
impl<K: Hash + Eq + Send + Sync + 'static, V: 'static> FlightMap<K, V> {
    fn new() -> Self {
        FlightMap(scc::HashIndex::with_hasher(
            foldhash::fast::RandomState::default(),
        ))
    }

    fn insert(&self, key: K, flight: Arc<Flight<V>>) -> bool {
        self.0.insert_sync(key, flight).is_ok()
    }

    fn get(&self, key: &K) -> Option<Arc<Flight<V>>> {
        self.0.peek_with(key, |_, flight| Arc::clone(flight))
    }

    fn remove(&self, key: &K) {
        self.0.remove_sync(key);
    }
}

#[cfg(reliable_loom)]
struct FlightMap<K, V>(Mutex<std::collections::HashMap<K, Arc<Flight<V>>>>);

#[cfg(reliable_loom)]
impl<K: Hash + Eq, V> FlightMap<K, V> {
    fn new() -> Self {
        FlightMap(Mutex::new(std::collections::HashMap::new()))
    }

    fn insert(&self, key: K, flight: Arc<Flight<V>>) -> bool {
        let mut map = self.0.lock().unwrap();
        if map.contains_key(&key) {
            return false;
        }
        map.insert(key, flight);
        true
    }

    fn get(&self, key: &K) -> Option<Arc<Flight<V>>> {
        self.0.lock().unwrap().get(key).cloned()
    }

    fn remove(&self, key: &K) {
        self.0.lock().unwrap().remove(key);
    }
}

/// A caller's part in the flight for its key.
pub(super) enum Role<'a, K: Hash + Eq + Clone + Send + Sync + 'static, V: Clone + 'static> {
    /// Load, then [`Leader::finish`].
    Leader(Leader<'a, K, V>),
    /// Wait for [`Flight::outcome`].
    Follower(Arc<Flight<V>>),
}

impl<K, V> Flights<K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + Send + Sync + 'static,
{
    pub(super) fn new() -> Self {
        Flights {
            map: FlightMap::new(),
        }
    }

    /// Leads the flight for `key`, or follows the one in progress.
    pub(super) fn join(&self, key: &K) -> Role<'_, K, V> {
        loop {
            let flight = Arc::new(Flight::new());
            if self.map.insert(key.clone(), Arc::clone(&flight)) {
                return Role::Leader(Leader {
                    flights: self,
                    key: key.clone(),
                    flight,
                });
            }
            if let Some(existing) = self.map.get(key) {
                return Role::Follower(existing);
            }
            // That flight finished between the two steps: try to lead again.
        }
    }
}

/// The leader of a flight. Dropped without [`finish`](Leader::finish) (the load was cancelled
/// or panicked), it lets the key go with no outcome, and a follower takes over.
pub(super) struct Leader<'a, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + 'static,
{
    flights: &'a Flights<K, V>,
    key: K,
    flight: Arc<Flight<V>>,
}

impl<K, V> Leader<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + 'static,
{
    /// Hands `outcome` to the followers and lets the key go.
    pub(super) fn finish(self, outcome: Outcome<V>) {
        *self
            .flight
            .outcome
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(outcome);
        // Drop lets the key go.
    }
}

impl<K, V> Drop for Leader<'_, K, V>
where
    K: Hash + Eq + Clone + Send + Sync + 'static,
    V: Clone + 'static,
{
    fn drop(&mut self) {
        self.flights.map.remove(&self.key);
        self.flight.finished.store(true, Ordering::Release);
        self.flight.done.notify_waiters();
    }
}
