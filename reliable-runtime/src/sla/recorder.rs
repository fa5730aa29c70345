//! The latency recorder: per-thread rings of recent samples, merged and sorted only when read.
//!
//! Why not `hdrhistogram`: the SLA is defined over a *rolling* window (the last N calls, or the
//! calls of the last T seconds), and a histogram cannot forget old samples one by one. A ring of
//! raw samples per shard forgets by overwriting, records with four plain stores on a thread-owned
//! shard (no lock, no atomic read-modify-write, no allocation, no sort), and gives *exact* percentiles at read time, where
//! sorting a window of a few thousand samples costs microseconds.
//!
//! Each slot is a tiny seqlock: the writer zeroes the stamp, writes the sample, then publishes the
//! stamp; a reader keeps a sample only if it saw the same non-zero stamp before and after it.

use crate::clock::Timestamp;
use crate::common::shard::{add_to, current_shard, shard_count};
use crossbeam_utils::CachePadded;
use std::sync::atomic::{fence, AtomicPtr, AtomicU64, Ordering};

/// One recorded call: when it ended, how long it took, whether it failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Sample {
    pub(crate) end: Timestamp,
    pub(crate) latency_nanos: u64,
    pub(crate) failed: bool,
}

struct Slot {
    /// `end + 1` of the sample in `packed`; 0 while empty or being written.
    stamp: AtomicU64,
    /// `latency_nanos << 1 | failed`.
    packed: AtomicU64,
}

/// One shard: its running totals and its ring of samples, the ring allocated when a thread
/// first records into the shard.
///
/// The totals and the ring's pointer sit inline, padded to a cache line per shard, so a record
/// reaches its slot through as many dependent loads as with an eager ring; only the samples
/// (the bulk: 16 bytes each) wait for a thread to use the shard.
struct Shard {
    /// Samples ever written to this shard; the next slot is `cursor & mask`.
    cursor: AtomicU64,
    /// Failed samples ever written.
    failures: AtomicU64,
    /// The first of `mask + 1` slots; null until the shard's first record, then fixed until
    /// the recorder drops.
    slots: AtomicPtr<Slot>,
}

pub(crate) struct LatencyRecorder {
    shards: Box<[CachePadded<Shard>]>,
    mask: u64,
}

impl Drop for LatencyRecorder {
    fn drop(&mut self) {
        let capacity = self.capacity();
        for shard in self.shards.iter_mut() {
            let slots = *shard.slots.get_mut();
            if !slots.is_null() {
                // SAFETY: made from a boxed slice of `capacity` slots in `allocate_slots`, and
                // freed only here.
                drop(unsafe { Box::from_raw(std::ptr::slice_from_raw_parts_mut(slots, capacity)) });
            }
        }
    }
}

impl LatencyRecorder {
    /// A recorder keeping at least `per_shard` recent samples in every shard.
    pub(crate) fn new(per_shard: usize) -> Self {
        let capacity = per_shard.max(1).next_power_of_two();
        LatencyRecorder {
            shards: (0..shard_count())
                .map(|_| {
                    CachePadded::new(Shard {
                        cursor: AtomicU64::new(0),
                        failures: AtomicU64::new(0),
                        slots: AtomicPtr::new(std::ptr::null_mut()),
                    })
                })
                .collect(),
            mask: capacity as u64 - 1,
        }
    }

    fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    #[inline]
    pub(crate) fn record(&self, end: Timestamp, latency_nanos: u64, failed: bool) {
        let owner = current_shard();
        let shard = &self.shards[owner.index];
        let mut slots = shard.slots.load(Ordering::Acquire);
        if slots.is_null() {
            slots = self.allocate_slots(shard);
        }
        let index = add_to(&shard.cursor, owner, 1) & self.mask;
        if failed {
            add_to(&shard.failures, owner, 1);
        }
        // SAFETY: `slots` points at `mask + 1` slots that live until the recorder drops, and
        // `index <= mask`.
        let slot = unsafe { &*slots.add(index as usize) };
        slot.stamp.store(0, Ordering::Relaxed);
        fence(Ordering::Release);
        // Latencies above 2^63 ns (292 years) lose their top bit; nothing real takes that long.
        slot.packed
            .store(latency_nanos << 1 | u64::from(failed), Ordering::Relaxed);
        slot.stamp
            .store(end.as_nanos().saturating_add(1), Ordering::Release);
    }

    /// Allocates `shard`'s slots on its first record; another thread sharing the shard may
    /// get there first, and then its slots are used.
    #[cold]
    #[inline(never)]
    fn allocate_slots(&self, shard: &Shard) -> *mut Slot {
        let fresh: Box<[Slot]> = (0..self.capacity())
            .map(|_| Slot {
                stamp: AtomicU64::new(0),
                packed: AtomicU64::new(0),
            })
            .collect();
        let fresh = Box::into_raw(fresh).cast::<Slot>();
        match shard.slots.compare_exchange(
            std::ptr::null_mut(),
            fresh,
            Ordering::AcqRel,
            Ordering::Acquire,
        ) {
            Ok(_) => fresh,
            Err(published) => {
                // SAFETY: `fresh` was made just above from a boxed slice of `capacity` slots
                // and never published.
                drop(unsafe {
                    Box::from_raw(std::ptr::slice_from_raw_parts_mut(fresh, self.capacity()))
                });
                published
            }
        }
    }

    /// The slots of every shard that has any.
    fn rings(&self) -> impl Iterator<Item = &[Slot]> {
        let capacity = self.capacity();
        self.shards.iter().filter_map(move |shard| {
            let slots = shard.slots.load(Ordering::Acquire);
            // SAFETY: published slots are `capacity` long and live until the recorder drops.
            (!slots.is_null()).then(|| unsafe { std::slice::from_raw_parts(slots, capacity) })
        })
    }

    /// Samples ever recorded (including those the rings have forgotten).
    pub(crate) fn total(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.cursor.load(Ordering::Relaxed))
            .sum()
    }

    /// Failed samples ever recorded.
    pub(crate) fn failures(&self) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.failures.load(Ordering::Relaxed))
            .sum()
    }

    /// Every sample still held, in no particular order.
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let mut samples = Vec::with_capacity(self.rings().count() * self.capacity());
        for ring in self.rings() {
            for slot in ring {
                let before = slot.stamp.load(Ordering::Acquire);
                if before == 0 {
                    continue;
                }
                let packed = slot.packed.load(Ordering::Relaxed);
                fence(Ordering::Acquire);
                let after = slot.stamp.load(Ordering::Relaxed);
                if before != after {
                    continue; // overwritten while we read it: it belongs to the next window
                }
                samples.push(Sample {
                    end: Timestamp::from_nanos(before - 1),
                    latency_nanos: packed >> 1,
                    failed: packed & 1 == 1,
                });
            }
        }
        samples
    }

    /// Forgets every sample (the total stays).
    pub(crate) fn clear(&self) {
        for ring in self.rings() {
            for slot in ring {
                slot.stamp.store(0, Ordering::Release);
            }
        }
    }
}

/// The `q`-quantile (0..=1) of sorted values by linear interpolation between closest ranks
/// (numpy's default), `None` when empty.
pub(crate) fn quantile(sorted: &[u64], q: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = q.clamp(0.0, 1.0) * last as f64;
    let low = rank.floor() as usize;
    let high = rank.ceil() as usize;
    let fraction = rank - low as f64;
    let (low_value, high_value) = (sorted[low] as f64, sorted[high] as f64);
    Some(low_value + (high_value - low_value) * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_samples_per_shard() {
        let recorder = LatencyRecorder::new(4);
        for i in 0..10u64 {
            recorder.record(Timestamp::from_nanos(i), i * 10, i % 2 == 0);
        }
        assert_eq!(recorder.total(), 10);
        let mut samples = recorder.samples();
        samples.sort_by_key(|s| s.end);
        let ends: Vec<u64> = samples.iter().map(|s| s.end.as_nanos()).collect();
        assert_eq!(ends, vec![6, 7, 8, 9]);
        assert_eq!(samples[0].latency_nanos, 60);
        assert!(samples[0].failed);
        assert!(!samples[1].failed);
    }

    #[test]
    fn quantile_interpolates_between_ranks() {
        assert_eq!(quantile(&[], 0.5), None);
        assert_eq!(quantile(&[7], 0.99), Some(7.0));
        assert_eq!(quantile(&[1, 2, 3, 4], 0.5), Some(2.5));
        assert_eq!(quantile(&[10, 20, 30, 40, 50], 1.0), Some(50.0));
        assert_eq!(quantile(&[10, 20, 30, 40, 50], 0.0), Some(10.0));
    }

    /// Readers racing a writer never see a torn sample: every sample read has the latency and
    /// outcome written with its end time.
    #[test]
    fn concurrent_reads_never_see_torn_samples() {
        use std::sync::atomic::{AtomicBool, AtomicU64};
        use std::sync::Arc;

        let recorder = Arc::new(LatencyRecorder::new(16));
        // The writer keeps writing until the reader has finished its reads, so they overlap
        // however fast either side runs.
        let reading = Arc::new(AtomicBool::new(true));
        let written = Arc::new(AtomicU64::new(0));
        let writer = {
            let (recorder, reading, written) = (
                Arc::clone(&recorder),
                Arc::clone(&reading),
                Arc::clone(&written),
            );
            std::thread::spawn(move || {
                let mut end = 0u64;
                while reading.load(Ordering::Acquire) {
                    end += 1;
                    recorder.record(Timestamp::from_nanos(end), end * 3, end % 2 == 0);
                    written.store(end, Ordering::Release);
                }
            })
        };
        while written.load(Ordering::Acquire) < 1_000 {
            std::hint::spin_loop();
        }
        let mut checked = 0u64;
        for _ in 0..2_000 {
            for sample in recorder.samples() {
                let end = sample.end.as_nanos();
                assert_eq!(sample.latency_nanos, end * 3, "torn sample at {end}");
                assert_eq!(sample.failed, end % 2 == 0, "torn outcome at {end}");
                checked += 1;
            }
        }
        reading.store(false, Ordering::Release);
        writer.join().unwrap();
        assert!(checked > 0);
        assert_eq!(recorder.total(), written.load(Ordering::Acquire));
    }

    /// More threads than shards record into fresh recorders at once, so threads that share a
    /// shard race to allocate its ring on their first record: one allocation wins, and no
    /// sample is written to a ring that then loses (every sample is still there).
    #[test]
    fn threads_racing_for_a_fresh_shard_share_one_ring() {
        use std::sync::{Arc, Barrier};

        const CALLS: u64 = 100;
        let threads = shard_count() + 16;
        for round in 0..200 {
            let recorder = Arc::new(LatencyRecorder::new(8_192));
            let start = Arc::new(Barrier::new(threads));
            let writers: Vec<_> = (0..threads)
                .map(|_| {
                    let (recorder, start) = (Arc::clone(&recorder), Arc::clone(&start));
                    std::thread::spawn(move || {
                        start.wait();
                        for call in 1..=CALLS {
                            recorder.record(Timestamp::from_nanos(call), call, call % 2 == 0);
                        }
                    })
                })
                .collect();
            for writer in writers {
                writer.join().unwrap();
            }
            let expected = threads as u64 * CALLS;
            assert_eq!(recorder.total(), expected, "round {round}");
            assert_eq!(recorder.failures(), expected / 2, "round {round}");
            // A shard holds at most `threads × CALLS` samples, within its 8,192 slots.
            assert_eq!(recorder.samples().len() as u64, expected, "round {round}");
        }
    }

    #[test]
    fn clear_forgets_samples_but_not_the_total() {
        let recorder = LatencyRecorder::new(8);
        recorder.record(Timestamp::from_nanos(5), 1, false);
        recorder.clear();
        assert!(recorder.samples().is_empty());
        assert_eq!(recorder.total(), 1);
    }
}
