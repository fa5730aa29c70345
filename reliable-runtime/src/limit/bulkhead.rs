//! Bulkhead: at most N calls in flight; the rest wait up to `max_wait`, then are refused.
//!
//! Built on `tokio::sync::Semaphore` (fair, FIFO waiters, an atomic fast path); the permit is
//! released when the call's future completes or is dropped.

use crate::common::intern::intern;
use crate::common::live::Live;
use crate::common::shard::ShardedCounter;
use crate::common::throttle::Throttle;
use crate::error::{ConfigError, Rejected};
use crate::health::Exposition;
use crate::sync::{AtomicU32, Mutex, MutexGuard};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::Ordering;
use std::sync::PoisonError;
use std::time::Duration;
use tokio::sync::Semaphore;

/// A bulkhead's configuration.
///
/// ```
/// use reliable_runtime::limit::BulkheadConfig;
/// use std::time::Duration;
///
/// let config = BulkheadConfig::default().max_concurrent(25).max_wait(Duration::from_millis(100));
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BulkheadConfig {
    /// Calls allowed in flight at once.
    pub max_concurrent: u32,
    /// How long an excess call waits for a slot before `Rejected::BulkheadFull` (zero: refuse
    /// at once).
    #[serde(with = "crate::common::human_duration")]
    pub max_wait: Duration,
}

impl Default for BulkheadConfig {
    /// 25 calls at once, refused at once when full.
    fn default() -> Self {
        BulkheadConfig {
            max_concurrent: 25,
            max_wait: Duration::ZERO,
        }
    }
}

impl BulkheadConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        // `max_concurrent` is a `u32`, far below the semaphore's `usize::MAX >> 3` permits.
        ConfigError::check(
            "max_concurrent",
            reliable_rules::limit::max_concurrent(self.max_concurrent),
        )
    }
}

/// Limits concurrent calls to a source.
///
/// ```
/// use reliable_runtime::limit::{Bulkhead, BulkheadConfig};
/// use std::time::Duration;
///
/// let bulkhead = Bulkhead::new("doc_bulkhead", BulkheadConfig::default().max_concurrent(1).max_wait(Duration::ZERO)).unwrap();
/// let slot = bulkhead.try_enter().unwrap();
/// assert!(bulkhead.try_enter().is_err());
/// drop(slot);
/// assert!(bulkhead.try_enter().is_ok());
/// ```
pub struct Bulkhead {
    name: &'static str,
    config: Live<BulkheadConfig>,
    /// One permit per free slot.
    semaphore: Semaphore,
    /// What a size lowered below the calls in flight still owes.
    debt: SlotDebt,
    admitted: ShardedCounter,
    rejected: ShardedCounter,
    events: Throttle,
}

impl fmt::Debug for Bulkhead {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Bulkhead")
            .field("name", &self.name)
            .field("config", &*self.config.load())
            .finish_non_exhaustive()
    }
}

/// A bulkhead's counters, as `get_system_health()` shows them (`bulkheads`).
///
/// The counters start at zero when the bulkhead is created (on the first call of a fn that
/// names it, or when it is registered by hand), add up every call site that shares its name,
/// and are never reset.
///
/// ```
/// use reliable_runtime::limit::{Bulkhead, BulkheadConfig};
///
/// let bulkhead = Bulkhead::new("bulkhead_snapshot_doc", BulkheadConfig::default().max_concurrent(1)).unwrap();
/// let slot = bulkhead.try_enter().unwrap();
/// assert!(bulkhead.try_enter().is_err());
/// let stats = bulkhead.snapshot();
/// assert_eq!((stats.max_concurrent, stats.in_flight, stats.admitted, stats.rejected), (1, 1, 1, 1));
/// drop(slot);
/// assert_eq!(bulkhead.snapshot().in_flight, 0);
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct BulkheadSnapshot {
    /// Calls allowed in flight at once (the configuration).
    pub max_concurrent: u32,
    /// Calls holding a slot at the moment of the snapshot.
    pub in_flight: u32,
    /// Calls that got a slot since the bulkhead was created, at once or after waiting.
    pub admitted: u64,
    /// Calls refused since the bulkhead was created: full with `max_wait` zero (always so on a
    /// blocking fn), or still full after waiting `max_wait`.
    pub rejected: u64,
}

/// A slot in a bulkhead, freed when dropped.
#[derive(Debug)]
pub struct BulkheadSlot<'a> {
    bulkhead: &'a Bulkhead,
}

impl Drop for BulkheadSlot<'_> {
    fn drop(&mut self) {
        self.bulkhead.give_back();
    }
}

impl Bulkhead {
    /// A bulkhead named `name`, after validating `config`.
    pub fn new(name: impl AsRef<str>, config: BulkheadConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Bulkhead {
            name: intern(name.as_ref()),
            semaphore: Semaphore::new(config.max_concurrent as usize),
            debt: SlotDebt::new(),
            config: Live::new(config),
            admitted: ShardedCounter::new(),
            rejected: ShardedCounter::new(),
            events: Throttle::new(),
        })
    }

    /// The bulkhead's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configuration now.
    pub fn config(&self) -> BulkheadConfig {
        **self.config.load()
    }

    /// Changes the size or the wait while the bulkhead runs. Calls in flight keep their slots:
    /// a size lowered below them takes effect as they finish; a larger one admits waiting calls
    /// at once. (A slot given back at the very moment of a lowering may still admit a call
    /// over the new size, one per slot given back then; the count settles as calls finish,
    /// and no debt stays owed while a slot is free.) An invalid
    /// configuration is an `Err` and changes nothing. Each change is an
    /// [`Event::Reconfigured`](crate::event::Event::Reconfigured) (an info alert).
    ///
    /// ```
    /// use reliable_runtime::limit::{Bulkhead, BulkheadConfig};
    ///
    /// let bulkhead = Bulkhead::new("bulkhead_reconfigure_doc", BulkheadConfig::default().max_concurrent(2)).unwrap();
    /// let (first, second) = (bulkhead.try_enter().unwrap(), bulkhead.try_enter().unwrap());
    /// bulkhead.reconfigure(|config| config.max_concurrent(1)).unwrap();
    /// drop(first);
    /// assert!(bulkhead.try_enter().is_err(), "one in flight: the new size");
    /// drop(second);
    /// assert!(bulkhead.try_enter().is_ok());
    /// assert_eq!(bulkhead.reconfigure(|config| config.max_concurrent(0)).unwrap_err().field(), "max_concurrent");
    /// ```
    pub fn reconfigure(
        &self,
        change: impl FnOnce(BulkheadConfig) -> BulkheadConfig,
    ) -> Result<(), ConfigError> {
        // One resize at a time: two overlapping ones could each pay the same debt.
        let one = self.debt.lock();
        let mut before = None;
        let next = self
            .config
            .change(("bulkhead", self.name), change, |current, next| {
                before = Some(current.max_concurrent);
                next.validate()
            })?;
        let before = before.unwrap_or(next.max_concurrent);
        self.debt
            .resize(&one, &self.semaphore, before, next.max_concurrent);
        Ok(())
    }

    /// [`reconfigure`](Self::reconfigure)'s checks, changing nothing.
    pub(crate) fn check_reconfigure(
        &self,
        change: impl FnOnce(BulkheadConfig) -> BulkheadConfig,
    ) -> Result<(), ConfigError> {
        self.config.check(change, |_, next| next.validate())
    }

    /// Takes a slot now, or refuses.
    #[inline]
    pub fn try_enter(&self) -> Result<BulkheadSlot<'_>, Rejected> {
        self.try_take().map(|()| BulkheadSlot { bulkhead: self })
    }

    /// Takes a slot, waiting up to `max_wait` for one.
    pub async fn enter(&self) -> Result<BulkheadSlot<'_>, Rejected> {
        self.take().await.map(|()| BulkheadSlot { bulkhead: self })
    }

    /// [`try_enter`](Self::try_enter) for the pipeline, which keeps the slot as a flag (a
    /// smaller future than one holding a slot) and frees it with
    /// [`give_back`](Self::give_back).
    #[inline]
    pub(crate) fn try_take(&self) -> Result<(), Rejected> {
        match self.semaphore.try_acquire() {
            Ok(permit) => {
                permit.forget();
                self.admitted.add(1);
                Ok(())
            }
            Err(_) => Err(self.full()),
        }
    }

    /// [`enter`](Self::enter) for the pipeline; see [`try_take`](Self::try_take).
    pub(crate) async fn take(&self) -> Result<(), Rejected> {
        if let Ok(permit) = self.semaphore.try_acquire() {
            permit.forget();
            self.admitted.add(1);
            return Ok(());
        }
        let max_wait = self.config.load().max_wait;
        if max_wait.is_zero() {
            return Err(self.full());
        }
        match tokio::time::timeout(max_wait, self.semaphore.acquire()).await {
            Ok(Ok(permit)) => {
                permit.forget();
                self.admitted.add(1);
                Ok(())
            }
            _ => Err(self.full()),
        }
    }

    /// Frees a slot taken by [`try_take`](Self::try_take) or [`take`](Self::take), unless a
    /// lowered size still owes one.
    #[inline]
    pub(crate) fn give_back(&self) {
        self.debt.give_back(&self.semaphore);
    }

    #[cold]
    fn full(&self) -> Rejected {
        self.rejected.add(1);
        crate::event::publish_throttled(&self.events, || {
            crate::event::Event::BulkheadFull(crate::event::LimitReached {
                name: self.name,
                retry_after: None,
            })
        });
        Rejected::BulkheadFull {
            bulkhead: self.name,
        }
    }

    /// The bulkhead's counters now.
    pub fn snapshot(&self) -> BulkheadSnapshot {
        let available = self.semaphore.available_permits() as u32;
        let max_concurrent = self.config.load().max_concurrent;
        let owed = self.debt.owed();
        BulkheadSnapshot {
            max_concurrent,
            in_flight: max_concurrent
                .saturating_add(owed)
                .saturating_sub(available),
            admitted: self.admitted.sum(),
            rejected: self.rejected.sum(),
        }
    }
}

/// The free slots the debt protocol works on: the bulkhead's semaphore, or a plain counter in
/// the model checks.
pub(crate) trait FreeSlots {
    /// Frees `n` slots.
    fn add(&self, n: u32);
    /// Withdraws up to `n` free slots; how many it withdrew.
    fn withdraw(&self, n: u32) -> u32;
}

impl FreeSlots for Semaphore {
    #[inline]
    fn add(&self, n: u32) {
        self.add_permits(n as usize);
    }

    #[inline]
    fn withdraw(&self, n: u32) -> u32 {
        self.forget_permits(n as usize) as u32
    }
}

/// Slots a lowered size still owes: withdrawn as calls in flight give theirs back, so a size
/// lowered below the calls in flight takes effect as they finish, and cancelled first by a
/// size raised again. Its own type so the model checks run this code over loom's atomics.
///
/// Invariant, once no resize and no give-back runs: free + in flight − owed = size, and
/// owed > 0 only while no slot is free.
pub(crate) struct SlotDebt {
    owed: AtomicU32,
    resizing: Mutex<()>,
}

impl SlotDebt {
    pub(crate) fn new() -> Self {
        SlotDebt {
            owed: AtomicU32::new(0),
            resizing: Mutex::new(()),
        }
    }

    /// The lock one resize holds from reading the old size to settling the debt.
    pub(crate) fn lock(&self) -> MutexGuard<'_, ()> {
        self.resizing.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What is owed now.
    pub(crate) fn owed(&self) -> u32 {
        self.owed.load(Ordering::Acquire)
    }

    /// Moves the size from `before` to `after`, under [`lock`](Self::lock)'s guard.
    pub(crate) fn resize(
        &self,
        _one: &MutexGuard<'_, ()>,
        free: &impl FreeSlots,
        before: u32,
        after: u32,
    ) {
        if after > before {
            // Cancel what is still owed first; the rest are new free slots.
            let mut grow = after - before;
            let _ = self
                .owed
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |owed| {
                    let paid = owed.min(after - before);
                    grow = after - before - paid;
                    Some(owed - paid)
                });
            free.add(grow);
        } else if after < before {
            let shrink = before - after;
            let withdrawn = free.withdraw(shrink);
            // Acquires: a give-back whose read-modify-write of the debt came first freed its
            // slot before, and the loop below sees it (see `release`).
            self.owed.fetch_add(shrink - withdrawn, Ordering::AcqRel);
            // A slot given back after `withdraw` went to the free slots, its giver having
            // seen no debt: pay with it now.
            while self.owed.load(Ordering::Relaxed) > 0 && free.withdraw(1) == 1 {
                self.release(free);
            }
        }
    }

    /// A call's slot given back: it pays the debt if one is owed, else it is free again.
    #[inline]
    pub(crate) fn give_back(&self, free: &impl FreeSlots) {
        self.release(free);
    }

    /// One slot back: paid to the debt when one is owed, else freed. A slot freed while a
    /// lowering counts its debt is taken back to pay it (here or by the lowering, whichever
    /// sees the other), so no debt stays owed while a slot is free.
    #[inline]
    fn release(&self, free: &impl FreeSlots) {
        loop {
            if self.owed.load(Ordering::Relaxed) != 0
                && self
                    .owed
                    .fetch_update(Ordering::AcqRel, Ordering::Acquire, |owed| {
                        owed.checked_sub(1)
                    })
                    .is_ok()
            {
                return;
            }
            free.add(1);
            // Read the debt with a read-modify-write (adding nothing), releasing the slot
            // freed above: the lowering's own read-modify-write of the debt, which acquires,
            // is before or after it. Before: this sees the debt. After: the lowering sees
            // the freed slot. (A plain load could miss both ways, as a store buffer allows;
            // loom does not model that reordering, so this rests on the memory model's total
            // order of read-modify-writes. A fence instead measured slower.)
            // No debt: done. A debt counted meanwhile: take a free slot (this one or another)
            // to pay it; none free means the calls in flight will pay it.
            if self.owed.fetch_add(0, Ordering::AcqRel) == 0 || free.withdraw(1) == 0 {
                return;
            }
        }
    }
}

crate::common::setters::setters! { BulkheadConfig {
    max_concurrent: u32,
    max_wait: Duration,
}}

/// The bulkheads' Prometheus families (resilience4j's names).
pub(crate) fn write_metrics(bulkheads: &BTreeMap<String, BulkheadSnapshot>, out: &mut Exposition) {
    out.per_instance(
        (
            "resilience4j_bulkhead_available_concurrent_calls",
            "gauge",
            "Calls the bulkhead would admit now",
        ),
        "name",
        bulkheads,
        |bulkhead| bulkhead.max_concurrent.saturating_sub(bulkhead.in_flight),
    );
    out.per_instance(
        (
            "resilience4j_bulkhead_max_allowed_concurrent_calls",
            "gauge",
            "The bulkhead's size",
        ),
        "name",
        bulkheads,
        |bulkhead| bulkhead.max_concurrent,
    );
    out.per_instance_by(
        (
            "reliable_bulkhead_calls_total",
            "counter",
            "Calls the bulkhead judged, by outcome",
        ),
        ("name", "kind"),
        bulkheads,
        |bulkhead| {
            [
                ("admitted", bulkhead.admitted),
                ("rejected", bulkhead.rejected),
            ]
        },
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulkhead(size: u32) -> Bulkhead {
        Bulkhead::new(
            "unit_bulkhead",
            BulkheadConfig::default().max_concurrent(size),
        )
        .unwrap()
    }

    #[test]
    fn a_lowered_size_takes_effect_as_calls_in_flight_finish() {
        let bulkhead = bulkhead(3);
        let mut slots: Vec<_> = (0..3).map(|_| bulkhead.try_enter().unwrap()).collect();
        bulkhead
            .reconfigure(|config| config.max_concurrent(1))
            .unwrap();
        assert_eq!(bulkhead.snapshot().in_flight, 3);
        slots.pop();
        assert!(bulkhead.try_enter().is_err(), "2 in flight, size 1");
        slots.pop();
        assert!(bulkhead.try_enter().is_err(), "1 in flight, size 1");
        slots.pop();
        let slot = bulkhead.try_enter().unwrap();
        assert!(bulkhead.try_enter().is_err());
        assert_eq!(bulkhead.snapshot().in_flight, 1);
        drop(slot);
        assert_eq!(bulkhead.semaphore.available_permits(), 1);
    }

    #[test]
    fn a_raised_size_first_cancels_what_a_lowered_one_still_owes() {
        let bulkhead = bulkhead(3);
        let mut slots: Vec<_> = (0..3).map(|_| bulkhead.try_enter().unwrap()).collect();
        bulkhead
            .reconfigure(|config| config.max_concurrent(1))
            .unwrap();
        bulkhead
            .reconfigure(|config| config.max_concurrent(2))
            .unwrap();
        slots.pop();
        assert!(bulkhead.try_enter().is_err(), "2 in flight, size 2");
        slots.pop();
        slots.push(bulkhead.try_enter().unwrap());
        assert!(bulkhead.try_enter().is_err());
        bulkhead
            .reconfigure(|config| config.max_concurrent(4))
            .unwrap();
        slots.push(bulkhead.try_enter().unwrap());
        slots.push(bulkhead.try_enter().unwrap());
        assert!(bulkhead.try_enter().is_err(), "4 in flight, size 4");
        assert_eq!(bulkhead.snapshot().in_flight, 4);
    }

    #[test]
    fn a_wait_can_change_and_a_bad_size_changes_nothing() {
        let bulkhead = bulkhead(2);
        bulkhead
            .reconfigure(|config| config.max_wait(Duration::from_millis(5)))
            .unwrap();
        assert_eq!(bulkhead.config().max_wait, Duration::from_millis(5));
        let error = bulkhead
            .reconfigure(|config| config.max_concurrent(0).max_wait(Duration::ZERO))
            .unwrap_err();
        assert_eq!(error.field(), "max_concurrent");
        assert_eq!(bulkhead.config().max_concurrent, 2);
        assert_eq!(bulkhead.config().max_wait, Duration::from_millis(5));
    }

    /// Two threads resize while callers enter and leave: once all have left, the semaphore
    /// holds exactly the last size and nothing is owed. (The races between a resize and a
    /// slot given back need a narrow window this test rarely hits; `loom_models` below checks
    /// every interleaving of the debt protocol, and fails without the resize lock or with the
    /// debt check before the give-back's fence.)
    #[test]
    fn overlapping_resizes_settle_on_the_last() {
        use std::sync::atomic::AtomicBool;
        for round in 0..20 {
            let bulkhead = bulkhead(4);
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                for _ in 0..2 {
                    scope.spawn(|| {
                        while !done.load(Ordering::Relaxed) {
                            drop(bulkhead.try_enter());
                        }
                    });
                }
                // Many resizes each, up and down, overlapping each other and the slots
                // given back.
                let resizers: Vec<_> = [[3u32, 5, 2, 6], [5, 1, 4, 3]]
                    .into_iter()
                    .map(|sizes| {
                        let bulkhead = &bulkhead;
                        scope.spawn(move || {
                            for size in sizes.into_iter().cycle().take(400) {
                                bulkhead
                                    .reconfigure(|config| config.max_concurrent(size))
                                    .unwrap();
                            }
                        })
                    })
                    .collect();
                for resizer in resizers {
                    resizer.join().unwrap();
                }
                done.store(true, Ordering::Relaxed);
            });
            let size = bulkhead.config().max_concurrent;
            assert_eq!(bulkhead.debt.owed(), 0, "round {round}");
            assert_eq!(
                bulkhead.semaphore.available_permits() as u32,
                size,
                "round {round}"
            );
        }
    }

    /// Callers on more threads than cores enter and leave while the size moves: never more in
    /// flight than the largest size yet, and once all have left, exactly the last size free.
    #[test]
    fn sizes_changing_under_load_settle_on_the_last() {
        use std::sync::atomic::AtomicBool;
        for round in 0..20 {
            let bulkhead = bulkhead(4);
            let in_flight = AtomicU32::new(0);
            let most = AtomicU32::new(0);
            let done = AtomicBool::new(false);
            std::thread::scope(|scope| {
                for _ in 0..4 {
                    scope.spawn(|| {
                        while !done.load(Ordering::Relaxed) {
                            if let Ok(slot) = bulkhead.try_enter() {
                                let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                                most.fetch_max(now, Ordering::SeqCst);
                                std::thread::yield_now();
                                in_flight.fetch_sub(1, Ordering::SeqCst);
                                drop(slot);
                            }
                        }
                    });
                }
                for size in [2, 6, 1, 3, 8, 2, 5] {
                    bulkhead
                        .reconfigure(|config| config.max_concurrent(size))
                        .unwrap();
                    std::thread::yield_now();
                }
                done.store(true, Ordering::Relaxed);
            });
            assert!(most.load(Ordering::SeqCst) <= 8, "round {round}");
            assert_eq!(bulkhead.semaphore.available_permits(), 5, "round {round}");
            assert_eq!(bulkhead.debt.owed(), 0, "round {round}");
            assert_eq!(bulkhead.snapshot().in_flight, 0, "round {round}");
        }
    }
}

/// Model checks of the slot debt over every interleaving (`--cfg reliable_loom`, see
/// `src/sync.rs`): resizes racing calls that give their slots back, with free slots counted in
/// a loom atomic.
#[cfg(all(test, reliable_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    /// Free slots as a loom atomic, for the model.
    struct Counter(AtomicU32);

    impl FreeSlots for Counter {
        fn add(&self, n: u32) {
            self.0.fetch_add(n, Ordering::AcqRel);
        }

        fn withdraw(&self, n: u32) -> u32 {
            let mut taken = 0;
            let _ = self
                .0
                .fetch_update(Ordering::AcqRel, Ordering::Acquire, |free| {
                    taken = free.min(n);
                    Some(free - taken)
                });
            taken
        }
    }

    /// A bulkhead's debt and free slots, and its size (kept under the resize lock, as the
    /// bulkhead keeps its configuration).
    struct Model {
        debt: SlotDebt,
        free: Counter,
        size: AtomicU32,
    }

    impl Model {
        /// `size` slots, `in_flight` of them taken.
        fn new(size: u32, in_flight: u32) -> Arc<Self> {
            Arc::new(Model {
                debt: SlotDebt::new(),
                free: Counter(AtomicU32::new(size - in_flight)),
                size: AtomicU32::new(size),
            })
        }

        fn resize(&self, after: u32) {
            let one = self.debt.lock();
            let before = self.size.swap(after, Ordering::AcqRel);
            self.debt.resize(&one, &self.free, before, after);
        }

        /// A call: takes a free slot if there is one, then gives it back.
        fn call(&self) {
            if self.free.withdraw(1) == 1 {
                self.debt.give_back(&self.free);
            }
        }

        /// Once every call has given its slot back: every slot free, nothing owed.
        fn settled(&self) -> (u32, u32, u32) {
            (
                self.free.0.load(Ordering::Acquire),
                self.debt.owed(),
                self.size.load(Ordering::Acquire),
            )
        }
    }

    fn check(threads: usize, model: impl Fn() + Sync + Send + 'static) {
        let mut builder = loom::model::Builder::new();
        if threads > 2 {
            builder.preemption_bound = Some(3);
        }
        builder.check(model);
    }

    /// A size lowered below the calls in flight while they finish: when all are done, the
    /// free slots are exactly the new size and nothing is owed.
    #[test]
    fn a_lowering_racing_give_backs_settles_on_the_new_size() {
        check(3, || {
            let model = Model::new(2, 2);
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    let model = Arc::clone(&model);
                    loom::thread::spawn(move || model.debt.give_back(&model.free))
                })
                .collect();
            model.resize(1);
            for caller in callers {
                caller.join().unwrap();
            }
            assert_eq!(model.settled(), (1, 0, 1));
        });
    }

    /// Two overlapping resizes (the race a review found: each could pay the same debt) and a
    /// call giving its slot back: the end holds the last size, whichever came last.
    #[test]
    fn overlapping_resizes_and_a_give_back_settle_on_the_last_size() {
        check(3, || {
            let model = Model::new(2, 1);
            let lower = {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || model.resize(0))
            };
            let raise = {
                let model = Arc::clone(&model);
                loom::thread::spawn(move || model.resize(3))
            };
            model.debt.give_back(&model.free);
            lower.join().unwrap();
            raise.join().unwrap();
            let (free, owed, size) = model.settled();
            assert!(size == 0 || size == 3, "size {size}");
            assert_eq!((free, owed), (size, 0), "size {size}");
        });
    }

    /// Calls coming and going while the size is lowered to zero and raised again: the end
    /// holds the last size, every slot free.
    #[test]
    fn calls_racing_a_lowering_and_a_raise_settle_on_the_last_size() {
        check(3, || {
            let model = Model::new(1, 0);
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    let model = Arc::clone(&model);
                    loom::thread::spawn(move || model.call())
                })
                .collect();
            model.resize(0);
            model.resize(2);
            for caller in callers {
                caller.join().unwrap();
            }
            assert_eq!(model.settled(), (2, 0, 2));
        });
    }
}
