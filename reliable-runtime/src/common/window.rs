//! Sliding windows of call outcomes for the failure-rate and slow-call-rate rules.

use crate::clock::{duration_to_nanos, Timestamp};
use crate::common::shard::{current_shard, shard_count};
use crossbeam_utils::CachePadded;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};

const FAILED: u8 = 0b01;
const SLOW: u8 = 0b10;
const PRESENT: u8 = 0b100;

/// Buckets of a time window.
pub(crate) const TIME_BUCKETS: u64 = 10;

/// Calls, failures and slow calls in a window.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct WindowCounts {
    pub(crate) calls: u32,
    pub(crate) failures: u32,
    pub(crate) slow: u32,
}

impl WindowCounts {
    pub(crate) fn failure_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| f64::from(self.failures) / f64::from(self.calls))
    }

    pub(crate) fn slow_rate(&self) -> Option<f64> {
        (self.calls > 0).then(|| f64::from(self.slow) / f64::from(self.calls))
    }
}

pub(crate) enum OutcomeWindow {
    Calls(Box<CountWindow>),
    Time(TimeWindow),
}

impl OutcomeWindow {
    /// The last `calls` calls.
    pub(crate) fn calls(calls: u32) -> Self {
        OutcomeWindow::Calls(Box::new(CountWindow::new(calls as usize)))
    }

    /// The calls of the last `span`.
    pub(crate) fn time(span: std::time::Duration) -> Self {
        OutcomeWindow::Time(TimeWindow::new(span))
    }

    #[inline]
    pub(crate) fn record(&self, now: Timestamp, failed: bool, slow: bool) {
        match self {
            OutcomeWindow::Calls(window) => window.record(failed, slow),
            OutcomeWindow::Time(window) => window.record(now, failed, slow),
        }
    }

    pub(crate) fn counts(&self, now: Timestamp) -> WindowCounts {
        match self {
            OutcomeWindow::Calls(window) => window.counts(),
            OutcomeWindow::Time(window) => window.counts(now),
        }
    }

    pub(crate) fn reset(&self) {
        match self {
            OutcomeWindow::Calls(window) => window.reset(),
            OutcomeWindow::Time(window) => window.reset(),
        }
    }
}

/// The last N outcomes in a ring, with running totals.
///
/// Totals are adjusted by the writer that replaces a slot, so they can be briefly off by the
/// writes in flight; they are clamped at zero when read.
pub(crate) struct CountWindow {
    slots: Box<[AtomicU8]>,
    cursor: CachePadded<AtomicU64>,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

impl CountWindow {
    fn new(size: usize) -> Self {
        CountWindow {
            slots: (0..size.max(1)).map(|_| AtomicU8::new(0)).collect(),
            cursor: CachePadded::new(AtomicU64::new(0)),
            calls: AtomicU32::new(0),
            failures: AtomicU32::new(0),
            slow: AtomicU32::new(0),
        }
    }

    fn record(&self, failed: bool, slow: bool) {
        let index = self.cursor.fetch_add(1, Ordering::Relaxed) % self.slots.len() as u64;
        let new = PRESENT | if failed { FAILED } else { 0 } | if slow { SLOW } else { 0 };
        let old = self.slots[index as usize].swap(new, Ordering::AcqRel);
        if old & PRESENT == 0 {
            self.calls.fetch_add(1, Ordering::Relaxed);
        }
        adjust(&self.failures, old & FAILED != 0, failed);
        adjust(&self.slow, old & SLOW != 0, slow);
    }

    fn counts(&self) -> WindowCounts {
        let read = |counter: &AtomicU32| (counter.load(Ordering::Relaxed) as i32).max(0) as u32;
        WindowCounts {
            calls: read(&self.calls),
            failures: read(&self.failures),
            slow: read(&self.slow),
        }
    }

    fn reset(&self) {
        for slot in self.slots.iter() {
            slot.store(0, Ordering::Relaxed);
        }
        self.calls.store(0, Ordering::Relaxed);
        self.failures.store(0, Ordering::Relaxed);
        self.slow.store(0, Ordering::Relaxed);
    }
}

fn adjust(counter: &AtomicU32, was: bool, is: bool) {
    match (was, is) {
        (false, true) => {
            counter.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            counter.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

struct Bucket {
    /// `epoch + 1` of the bucket's counts (0: never used).
    epoch: AtomicU64,
    calls: AtomicU32,
    failures: AtomicU32,
    slow: AtomicU32,
}

/// Per-shard rings of [`TIME_BUCKETS`] time buckets.
pub(crate) struct TimeWindow {
    bucket_nanos: u64,
    shards: Box<[CachePadded<[Bucket; TIME_BUCKETS as usize]>]>,
}

impl TimeWindow {
    pub(crate) fn new(span: std::time::Duration) -> Self {
        let bucket_nanos = (duration_to_nanos(span) / TIME_BUCKETS).max(1);
        let shards = (0..shard_count())
            .map(|_| {
                CachePadded::new(std::array::from_fn(|_| Bucket {
                    epoch: AtomicU64::new(0),
                    calls: AtomicU32::new(0),
                    failures: AtomicU32::new(0),
                    slow: AtomicU32::new(0),
                }))
            })
            .collect();
        TimeWindow {
            bucket_nanos,
            shards,
        }
    }

    #[inline]
    pub(crate) fn record(&self, now: Timestamp, failed: bool, slow: bool) {
        let epoch = now.as_nanos() / self.bucket_nanos + 1;
        let shard = current_shard();
        let bucket = &self.shards[shard.index][(epoch % TIME_BUCKETS) as usize];
        let seen = bucket.epoch.load(Ordering::Acquire);
        if seen != epoch
            && bucket
                .epoch
                .compare_exchange(seen, epoch, Ordering::AcqRel, Ordering::Acquire)
                .is_ok()
        {
            // This thread moved the bucket to a new epoch: clear the old epoch's counts.
            bucket.calls.store(0, Ordering::Relaxed);
            bucket.failures.store(0, Ordering::Relaxed);
            bucket.slow.store(0, Ordering::Relaxed);
        }
        // A thread-owned shard is written with plain stores (see `shard.rs`).
        let add = |counter: &AtomicU32| {
            if shard.exclusive {
                counter.store(
                    counter.load(Ordering::Relaxed).wrapping_add(1),
                    Ordering::Relaxed,
                );
            } else {
                counter.fetch_add(1, Ordering::Relaxed);
            }
        };
        add(&bucket.calls);
        if failed {
            add(&bucket.failures);
        }
        if slow {
            add(&bucket.slow);
        }
    }

    pub(crate) fn counts(&self, now: Timestamp) -> WindowCounts {
        let current = now.as_nanos() / self.bucket_nanos + 1;
        let oldest = current.saturating_sub(TIME_BUCKETS - 1);
        let mut counts = WindowCounts::default();
        for shard in self.shards.iter() {
            for bucket in shard.iter() {
                let epoch = bucket.epoch.load(Ordering::Acquire);
                if epoch != 0 && epoch >= oldest && epoch <= current {
                    counts.calls += bucket.calls.load(Ordering::Relaxed);
                    counts.failures += bucket.failures.load(Ordering::Relaxed);
                    counts.slow += bucket.slow.load(Ordering::Relaxed);
                }
            }
        }
        counts
    }

    fn reset(&self) {
        for shard in self.shards.iter() {
            for bucket in shard.iter() {
                bucket.epoch.store(0, Ordering::Release);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn count_window_keeps_the_last_n() {
        let window = OutcomeWindow::calls(4);
        let now = Timestamp::default();
        for failed in [true, true, true, true] {
            window.record(now, failed, false);
        }
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 4,
                failures: 4,
                slow: 0
            }
        );
        window.record(now, false, true);
        window.record(now, false, false);
        assert_eq!(
            window.counts(now),
            WindowCounts {
                calls: 4,
                failures: 2,
                slow: 1
            }
        );
        window.reset();
        assert_eq!(window.counts(now), WindowCounts::default());
    }

    #[test]
    fn time_window_drops_expired_buckets() {
        let window = OutcomeWindow::time(Duration::from_secs(10));
        let at = |secs: u64| Timestamp::from_nanos(secs * 1_000_000_000);
        window.record(at(0), true, false);
        window.record(at(5), false, true);
        assert_eq!(
            window.counts(at(5)),
            WindowCounts {
                calls: 2,
                failures: 1,
                slow: 1
            }
        );
        // At 10 s the bucket of second 0 has left the window (9 full buckets + the current).
        assert_eq!(
            window.counts(at(10)),
            WindowCounts {
                calls: 1,
                failures: 0,
                slow: 1
            }
        );
        assert_eq!(window.counts(at(15)), WindowCounts::default());
        // A bucket reused for a new epoch starts from zero.
        window.record(at(20), false, false);
        assert_eq!(
            window.counts(at(20)),
            WindowCounts {
                calls: 1,
                failures: 0,
                slow: 0
            }
        );
    }
}
