//! The alert manager: history, handlers, counters.

use super::worker::{self, Counters};
use super::{Alert, AlertHandler};
use crate::event::Event;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, RwLock};
use std::time::{Duration, Instant};
use tokio::sync::mpsc;

/// Alerts the history keeps by default.
pub const DEFAULT_HISTORY_CAPACITY: usize = 100;

/// Alerts a handler's queue holds by default before it drops new ones.
pub const DEFAULT_QUEUE_CAPACITY: usize = 64;

/// An alert manager's settings.
///
/// ```
/// use reliable_runtime::alert::{AlertConfig, AlertManager};
///
/// let manager = AlertManager::new(AlertConfig { history_capacity: 500, ..AlertConfig::default() });
/// assert_eq!(manager.history_capacity(), 500);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlertConfig {
    /// Alerts the history keeps (the newest); 0 keeps none. Default
    /// [`DEFAULT_HISTORY_CAPACITY`] (100).
    pub history_capacity: usize,
    /// Alerts each handler's queue holds unless [`HandlerOptions::queue_capacity`] says
    /// otherwise; at least 1. Default [`DEFAULT_QUEUE_CAPACITY`] (64).
    pub queue_capacity: usize,
}

impl Default for AlertConfig {
    fn default() -> Self {
        AlertConfig {
            history_capacity: DEFAULT_HISTORY_CAPACITY,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
        }
    }
}

/// How one handler is registered: its name in stats and logs, and its queue's capacity.
///
/// ```
/// use reliable_runtime::alert::{alert_manager, Alert, HandlerOptions};
///
/// let id = alert_manager().register_with(
///     |alert: &Alert| println!("{}", alert.title()),
///     HandlerOptions::new().name("stdout").queue_capacity(1_000),
/// );
/// let stats = alert_manager().handler_stats(id).unwrap();
/// assert_eq!((stats.name.as_str(), stats.queue_capacity), ("stdout", 1_000));
/// # alert_manager().unregister(id);
/// ```
#[derive(Clone, Debug, Default)]
pub struct HandlerOptions {
    name: Option<String>,
    queue_capacity: Option<usize>,
}

impl HandlerOptions {
    /// The defaults: the handler's own [`name`](AlertHandler::name) and the manager's queue
    /// capacity.
    pub fn new() -> Self {
        HandlerOptions::default()
    }

    /// The handler's name in stats and logs.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// How many alerts may wait for the handler before new ones are dropped (at least 1).
    pub fn queue_capacity(mut self, capacity: usize) -> Self {
        self.queue_capacity = Some(capacity);
        self
    }
}

/// A registered handler's id, to unregister it or read its stats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct HandlerId(u64);

impl fmt::Display for HandlerId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// One handler's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct HandlerStats {
    /// The handler's id.
    pub id: HandlerId,
    /// Its name ([`HandlerOptions::name`], else [`AlertHandler::name`]).
    pub name: String,
    /// How many alerts its queue holds.
    pub queue_capacity: usize,
    /// Alerts accepted and not yet handled (waiting, or being handled now).
    pub pending: u64,
    /// Alerts it handled with `Ok`.
    pub delivered: u64,
    /// Alerts it handled with `Err`.
    pub failed: u64,
    /// Alerts whose handling panicked.
    pub panicked: u64,
    /// Alerts it never got because its queue was full.
    pub dropped: u64,
}

/// An alert manager's counters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct AlertStats {
    /// Alerts raised since the manager was made.
    pub raised: u64,
    /// Runtime events the global manager's listener missed because it fell behind the event
    /// channel (each could have been an alert).
    pub missed_events: u64,
    /// Alerts in the history now.
    pub history_len: usize,
    /// Alerts the history keeps.
    pub history_capacity: usize,
    /// Each registered handler's counters, in registration order.
    pub handlers: Vec<HandlerStats>,
}

/// Keeps recent alerts and hands each raised alert to every registered handler.
///
/// The process has one, fed by the runtime's events: [`alert_manager()`](super::alert_manager).
/// [`AlertManager::new`] makes a separate one, fed only by [`raise`](Self::raise) and
/// [`raise_event`](Self::raise_event) (e.g. for a test). Dropping a manager lets each
/// handler finish the alerts it has queued, then ends its worker thread.
///
/// ```
/// use reliable_runtime::alert::{Alert, AlertConfig, AlertManager, Severity};
/// use std::sync::mpsc;
/// use std::time::Duration;
///
/// let manager = AlertManager::new(AlertConfig::default());
/// let (sender, received) = mpsc::channel();
/// manager.register(move |alert: &Alert| sender.send(alert.message.clone()).unwrap());
///
/// manager.raise(Alert::new("manager_doc", Severity::Warning, "disk 91% full"));
/// assert_eq!(received.recv_timeout(Duration::from_secs(10)).unwrap(), "disk 91% full");
/// assert_eq!(manager.recent(10).len(), 1);
/// assert_eq!(manager.stats().raised, 1);
/// ```
pub struct AlertManager {
    queue_capacity: usize,
    history: Mutex<History>,
    handlers: RwLock<Vec<Slot>>,
    next_id: AtomicU64,
    raised: AtomicU64,
    missed_events: AtomicU64,
}

struct History {
    alerts: VecDeque<Arc<Alert>>,
    capacity: usize,
}

impl History {
    fn trim(&mut self) {
        while self.alerts.len() > self.capacity {
            self.alerts.pop_front();
        }
    }
}

/// A registered handler, as the manager sees it: the sending end of its queue.
struct Slot {
    id: HandlerId,
    name: String,
    queue_capacity: usize,
    queue: mpsc::Sender<Arc<Alert>>,
    counters: Arc<Counters>,
}

impl Slot {
    fn offer(&self, alert: &Arc<Alert>) {
        match self.queue.try_send(Arc::clone(alert)) {
            Ok(()) => {
                self.counters.accepted.fetch_add(1, Ordering::AcqRel);
            }
            // Full, or the worker is gone (it could not start): never wait.
            Err(_) => {
                self.counters.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn stats(&self) -> HandlerStats {
        let counters = &self.counters;
        let finished = counters.finished.load(Ordering::Acquire);
        HandlerStats {
            id: self.id,
            name: self.name.clone(),
            queue_capacity: self.queue_capacity,
            pending: counters
                .accepted
                .load(Ordering::Acquire)
                .saturating_sub(finished),
            delivered: counters.delivered.load(Ordering::Acquire),
            failed: counters.failed.load(Ordering::Acquire),
            panicked: counters.panicked.load(Ordering::Acquire),
            dropped: counters.dropped.load(Ordering::Acquire),
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl AlertManager {
    /// A manager of its own, not fed by the runtime's events (see [`alert_manager()`](super::alert_manager)
    /// for the one that is).
    pub fn new(config: AlertConfig) -> Self {
        AlertManager {
            queue_capacity: config.queue_capacity.max(1),
            history: Mutex::new(History {
                alerts: VecDeque::with_capacity(config.history_capacity.min(1024)),
                capacity: config.history_capacity,
            }),
            handlers: RwLock::new(Vec::new()),
            next_id: AtomicU64::new(1),
            raised: AtomicU64::new(0),
            missed_events: AtomicU64::new(0),
        }
    }

    /// Registers a handler with the default [`HandlerOptions`]; it gets every alert raised
    /// from now on. The id unregisters it.
    ///
    /// # Panics
    ///
    /// If the operating system refuses a new thread for the handler's worker.
    pub fn register(&self, handler: impl AlertHandler) -> HandlerId {
        self.register_with(handler, HandlerOptions::new())
    }

    /// Registers a handler with a name and a queue capacity of your choice.
    ///
    /// # Panics
    ///
    /// If the operating system refuses a new thread for the handler's worker.
    pub fn register_with(&self, handler: impl AlertHandler, options: HandlerOptions) -> HandlerId {
        let id = HandlerId(self.next_id.fetch_add(1, Ordering::Relaxed));
        let name = options.name.unwrap_or_else(|| handler.name());
        let queue_capacity = options.queue_capacity.unwrap_or(self.queue_capacity).max(1);
        let (queue, receiver) = mpsc::channel(queue_capacity);
        let counters = Arc::new(Counters::default());
        worker::spawn(
            id.0,
            name.clone(),
            Box::new(handler),
            receiver,
            Arc::clone(&counters),
        )
        .expect("failed to spawn an alert handler's worker thread");
        self.handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .push(Slot {
                id,
                name,
                queue_capacity,
                queue,
                counters,
            });
        id
    }

    /// Unregisters a handler: it gets no alert raised from now on, finishes those already in
    /// its queue, and its worker thread ends. Returns its last counters, or `None` if `id` is
    /// not registered.
    ///
    /// ```
    /// use reliable_runtime::alert::{alert_manager, Alert};
    ///
    /// let id = alert_manager().register(|_: &Alert| {});
    /// assert!(alert_manager().unregister(id).is_some());
    /// assert!(alert_manager().unregister(id).is_none());
    /// ```
    pub fn unregister(&self, id: HandlerId) -> Option<HandlerStats> {
        let mut handlers = self
            .handlers
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let index = handlers.iter().position(|slot| slot.id == id)?;
        // Dropping the slot closes the queue: the worker drains it and stops.
        Some(handlers.remove(index).stats())
    }

    /// Raises an alert for each monitored source that is not healthy and each breaker that
    /// is not closed, now: their changes before this manager listened are not in any event
    /// it could still receive. A source whose status changes as it is judged here is
    /// published as an event instead (and alerted through it). Returns the alerts raised.
    ///
    /// ```
    /// use reliable_runtime::alert::{AlertConfig, AlertManager};
    /// use reliable_runtime::registry::breaker_registry;
    /// use reliable_runtime::breaker::BreakerConfig;
    ///
    /// let breaker = breaker_registry().get_or_create("replay_doc", BreakerConfig::default()).unwrap();
    /// breaker.force_open();
    /// let manager = AlertManager::new(AlertConfig::default());
    /// assert!(manager.replay_current() >= 1);
    /// assert!(manager.history().iter().any(|alert| alert.source == "replay_doc" && alert.new_state == "FORCED_OPEN"));
    /// ```
    pub fn replay_current(&self) -> usize {
        use crate::breaker::BreakerState;
        use crate::registry::{breaker_registry, sla_registry};
        use crate::sla::SlaStatus;
        let mut raised = 0;
        for monitor in sla_registry().every() {
            let before = monitor.last_status();
            let now = monitor.evaluate();
            if before == now && now != SlaStatus::Healthy {
                self.raise(Alert::sla(monitor.name(), SlaStatus::Healthy, now));
                raised += 1;
            }
        }
        for breaker in breaker_registry().every() {
            let state = breaker.state();
            if state != BreakerState::Closed {
                let failures = breaker.snapshot().failure_count;
                self.raise(Alert::breaker(
                    breaker.name(),
                    BreakerState::Closed,
                    state,
                    failures,
                ));
                raised += 1;
            }
        }
        raised
    }

    /// Raises an alert: keeps it in the history and queues it for every handler, without
    /// waiting for any (a full queue drops it for that handler and counts the drop).
    pub fn raise(&self, alert: Alert) {
        let alert = Arc::new(alert);
        self.raised.fetch_add(1, Ordering::Relaxed);
        {
            let mut history = lock(&self.history);
            if history.capacity > 0 {
                history.alerts.push_back(Arc::clone(&alert));
                history.trim();
            }
        }
        let handlers = self.handlers.read().unwrap_or_else(PoisonError::into_inner);
        for slot in handlers.iter() {
            slot.offer(&alert);
        }
    }

    /// Raises the alert for a runtime event ([`Alert::from_event`]) if the event is one that
    /// alerts; returns whether it was.
    ///
    /// ```
    /// use reliable_runtime::alert::{AlertConfig, AlertManager};
    /// use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
    /// use reliable_runtime::event::subscribe;
    ///
    /// let manager = AlertManager::new(AlertConfig::default());
    /// let mut events = subscribe();
    /// CircuitBreaker::new("raise_event_doc", BreakerConfig::default()).unwrap().force_open();
    /// assert!(manager.raise_event(&events.try_recv().unwrap()));
    /// assert_eq!(manager.recent(1)[0].new_state, "FORCED_OPEN");
    /// ```
    pub fn raise_event(&self, event: &Event) -> bool {
        match Alert::from_event(event) {
            Some(alert) => {
                self.raise(alert);
                true
            }
            None => false,
        }
    }

    /// The last `limit` alerts of the history, oldest first (the newest is last).
    pub fn recent(&self, limit: usize) -> Vec<Alert> {
        let history = lock(&self.history);
        let skip = history.alerts.len().saturating_sub(limit);
        history
            .alerts
            .iter()
            .skip(skip)
            .map(|alert| Alert::clone(alert))
            .collect()
    }

    /// Every alert in the history, oldest first.
    pub fn history(&self) -> Vec<Alert> {
        self.recent(usize::MAX)
    }

    /// Forgets the history (the counters stay).
    pub fn clear_history(&self) {
        lock(&self.history).alerts.clear();
    }

    /// How many alerts the history keeps.
    pub fn history_capacity(&self) -> usize {
        lock(&self.history).capacity
    }

    /// Changes how many alerts the history keeps; a smaller capacity forgets the oldest at once.
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, AlertConfig, AlertManager, Severity};
    ///
    /// let manager = AlertManager::new(AlertConfig::default());
    /// for n in 0..5 {
    ///     manager.raise(Alert::new("capacity_doc", Severity::Info, n.to_string()));
    /// }
    /// manager.set_history_capacity(2);
    /// let kept: Vec<String> = manager.history().into_iter().map(|alert| alert.message).collect();
    /// assert_eq!(kept, ["3", "4"]);
    /// ```
    pub fn set_history_capacity(&self, capacity: usize) {
        let mut history = lock(&self.history);
        history.capacity = capacity;
        history.trim();
    }

    /// The counters of handler `id`, or `None` if it is not registered.
    pub fn handler_stats(&self, id: HandlerId) -> Option<HandlerStats> {
        let handlers = self.handlers.read().unwrap_or_else(PoisonError::into_inner);
        handlers.iter().find(|slot| slot.id == id).map(Slot::stats)
    }

    /// The manager's counters and every handler's.
    pub fn stats(&self) -> AlertStats {
        let (history_len, history_capacity) = {
            let history = lock(&self.history);
            (history.alerts.len(), history.capacity)
        };
        let handlers = self.handlers.read().unwrap_or_else(PoisonError::into_inner);
        AlertStats {
            raised: self.raised.load(Ordering::Relaxed),
            missed_events: self.missed_events.load(Ordering::Relaxed),
            history_len,
            history_capacity,
            handlers: handlers.iter().map(Slot::stats).collect(),
        }
    }

    /// Waits, up to `timeout`, until every handler has handled the alerts it had accepted
    /// when this was called; returns whether they all did. Blocks the thread (from async
    /// code, call it in `spawn_blocking`). Alerts of runtime events still on their way to the
    /// global manager's listener are not waited for.
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, AlertConfig, AlertManager, Severity};
    /// use std::time::Duration;
    ///
    /// let manager = AlertManager::new(AlertConfig::default());
    /// let id = manager.register(|_: &Alert| std::thread::sleep(Duration::from_millis(20)));
    /// manager.raise(Alert::new("flush_doc", Severity::Info, "one"));
    /// assert!(manager.flush(Duration::from_secs(10)));
    /// assert_eq!(manager.handler_stats(id).unwrap().delivered, 1);
    /// ```
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let targets: Vec<(Arc<Counters>, u64)> = {
            let handlers = self.handlers.read().unwrap_or_else(PoisonError::into_inner);
            handlers
                .iter()
                .map(|slot| {
                    let accepted = slot.counters.accepted.load(Ordering::Acquire);
                    (Arc::clone(&slot.counters), accepted)
                })
                .collect()
        };
        loop {
            let done = targets
                .iter()
                .all(|(counters, accepted)| counters.finished.load(Ordering::Acquire) >= *accepted);
            if done {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }

    /// Counts events the listener missed.
    pub(super) fn note_missed(&self, missed: u64) {
        self.missed_events.fetch_add(missed, Ordering::Relaxed);
    }
}

impl Default for AlertManager {
    fn default() -> Self {
        AlertManager::new(AlertConfig::default())
    }
}

impl fmt::Debug for AlertManager {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stats = self.stats();
        f.debug_struct("AlertManager")
            .field("raised", &stats.raised)
            .field("history_len", &stats.history_len)
            .field("history_capacity", &stats.history_capacity)
            .field("handlers", &stats.handlers.len())
            .finish_non_exhaustive()
    }
}
