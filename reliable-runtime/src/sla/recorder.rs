//! The latency recorder: per-thread rings of recent samples, merged only when read.
//!
//! Why not `hdrhistogram`: the SLA is defined over a *rolling* window (the last N calls, or the
//! calls of the last T seconds), and a histogram cannot forget old samples one by one. A ring of
//! raw samples per shard forgets by overwriting, records with four plain stores on a thread-owned
//! shard (no lock, no atomic read-modify-write, no allocation, no sort), and gives *exact* percentiles at read time, where
//! selecting them in a window of a few thousand samples costs microseconds.
//!
//! Each slot is a tiny seqlock: the writer zeroes the stamp, writes the sample, then publishes the
//! stamp; a reader keeps a sample only if it saw the same non-zero stamp before and after it.
//!
//! A reader can also tell whether anything changed since its last read without reading a slot:
//! [`LatencyRecorder::tally`] counts the writes that have *completed* (an owned shard moves its
//! cursor only after its slot is written; a shared shard, whose writers reserve slots with an
//! atomic add, counts completions apart) and the clears. The SLA monitor keeps the figures of
//! its last read under that count, so a health read does not recompute windows that did not
//! change.

use crate::clock::Timestamp;
use crate::common::shard::{current_shard, exclusive_shards, shard_count, Shard as Owner};
use crate::sync::{fence, load_own, AtomicPtr, AtomicU64};
use crossbeam_utils::CachePadded;
use std::cell::RefCell;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// One recorded call: when it ended, how long it took, whether it failed.
#[cfg(test)]
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
    /// Samples ever written to this shard; the next slot is `cursor & mask`. An owned shard's
    /// writer moves it past a slot only once the slot is written; a shared shard's writers
    /// move it first, to reserve their slots.
    cursor: AtomicU64,
    /// Writes completed, in a shared shard (an owned shard's cursor counts them).
    written: AtomicU64,
    /// Failed samples ever written.
    failures: AtomicU64,
    /// The first of `mask + 1` slots; null until the shard's first record, then fixed until
    /// the recorder drops.
    slots: AtomicPtr<Slot>,
}

pub(crate) struct LatencyRecorder {
    shards: Box<[CachePadded<Shard>]>,
    mask: u64,
    /// Times [`clear`](Self::clear) has run, counted once its slots are emptied.
    clears: AtomicU64,
    /// A bit per shard, set once the shard has slots: reads visit only these (a sample is
    /// recorded by a few threads of the many a process may have shards for).
    used: [AtomicU64; 2],
}

/// What a reader can know of the samples without reading them: it changes whenever a write
/// completes or the recorder is cleared (see [`LatencyRecorder::tally`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Settled {
    writes: u64,
    clears: u64,
}

/// A recorder's counts: see [`LatencyRecorder::tally`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Tally {
    pub(crate) settled: Settled,
    /// Samples ever recorded (including those the rings have forgotten, and, in a shared
    /// shard, those being written).
    pub(crate) total: u64,
    /// Failed samples ever recorded.
    pub(crate) failures: u64,
}

/// Which of the held samples a window keeps.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Span {
    /// The `n` most recent.
    Last(usize),
    /// Those that ended at most `span` before `now`.
    Within { now: Timestamp, span: Duration },
}

/// What a window's samples come to.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct WindowFigures {
    pub(crate) calls: u64,
    pub(crate) failed: u64,
    /// p50, p95 and p99 in nanoseconds, interpolated linearly between the two nearest ranks
    /// (numpy's default); zeros when empty.
    pub(crate) quantiles_nanos: [f64; 3],
    pub(crate) mean_nanos: f64,
    /// When the window's oldest sample ended; `None` when it is empty.
    pub(crate) oldest_end: Option<Timestamp>,
}

/// The quantiles [`WindowFigures::quantiles_nanos`] holds.
const QUANTILES: [f64; 3] = [0.50, 0.95, 0.99];

/// Held samples as a read copies them: `(end, latency_nanos << 1 | failed)`.
type Raw = (u64, u64);

thread_local! {
    /// A reading thread's buffers, kept between reads so that reading thousands of windows
    /// allocates nothing after the first.
    static SCRATCH: RefCell<(Vec<Raw>, Vec<u64>)> = const { RefCell::new((Vec::new(), Vec::new())) };
}

/// Buffers grown past this many samples are given back after the read that needed them.
const SCRATCH_KEPT: usize = 1 << 16;

impl Drop for LatencyRecorder {
    fn drop(&mut self) {
        let capacity = self.capacity();
        for shard in self.shards.iter() {
            // (A load rather than `get_mut`, which loom's atomics do not have.)
            let slots = shard.slots.load(Ordering::Acquire);
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
        // `used` has a bit for each of at most 64 owned and 2 shared shards.
        debug_assert!(shard_count() <= 128);
        LatencyRecorder {
            shards: (0..shard_count())
                .map(|_| {
                    CachePadded::new(Shard {
                        cursor: AtomicU64::new(0),
                        written: AtomicU64::new(0),
                        failures: AtomicU64::new(0),
                        slots: AtomicPtr::new(std::ptr::null_mut()),
                    })
                })
                .collect(),
            mask: capacity as u64 - 1,
            clears: AtomicU64::new(0),
            used: [AtomicU64::new(0), AtomicU64::new(0)],
        }
    }

    fn capacity(&self) -> usize {
        self.mask as usize + 1
    }

    #[inline]
    pub(crate) fn record(&self, end: Timestamp, latency_nanos: u64, failed: bool) {
        self.record_in(current_shard(), end, latency_nanos, failed);
    }

    /// [`record`](Self::record) into `owner`'s shard (the model checks pick shards by hand).
    #[inline(always)]
    fn record_in(&self, owner: Owner, end: Timestamp, latency_nanos: u64, failed: bool) {
        let shard = &self.shards[owner.index];
        let mut slots = shard.slots.load(Ordering::Acquire);
        if slots.is_null() {
            slots = self.allocate_slots(shard);
        }
        // One branch on ownership for the whole write (the compiler does not merge two).
        if owner.exclusive {
            let position = load_own(&shard.cursor);
            if failed {
                let failures = load_own(&shard.failures);
                shard.failures.store(failures + 1, Ordering::Relaxed);
            }
            self.write_slot(slots, position, end, latency_nanos, failed);
            // Counted as settled only now that the slot is written (Release: a reader that
            // sees the count sees the sample).
            shard.cursor.store(position + 1, Ordering::Release);
        } else {
            let position = shard.cursor.fetch_add(1, Ordering::Relaxed);
            if failed {
                shard.failures.fetch_add(1, Ordering::Relaxed);
            }
            self.write_slot(slots, position, end, latency_nanos, failed);
            shard.written.fetch_add(1, Ordering::Release);
        }
    }

    /// Writes a sample into the slot of `position` (a seqlock write: see the module docs).
    #[inline(always)]
    fn write_slot(
        &self,
        slots: *mut Slot,
        position: u64,
        end: Timestamp,
        latency_nanos: u64,
        failed: bool,
    ) {
        // SAFETY: `slots` points at `mask + 1` slots that live until the recorder drops, and
        // `position & mask <= mask`.
        let slot = unsafe { &*slots.add((position & self.mask) as usize) };
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
            Ok(_) => {
                // After the slots are published: a read that sees the bit finds them. (The
                // index is found from the reference so that the hot path passes only what it
                // already has.)
                let index = self
                    .shards
                    .iter()
                    .position(|mine| std::ptr::eq(&**mine, shard));
                if let Some(index) = index {
                    self.used[index / 64].fetch_or(1 << (index % 64), Ordering::Release);
                }
                fresh
            }
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

    /// The shards that have slots, with their indexes.
    fn used_shards(&self) -> impl Iterator<Item = (usize, &Shard)> {
        self.used.iter().enumerate().flat_map(move |(word, bits)| {
            let mut bits = bits.load(Ordering::Acquire);
            std::iter::from_fn(move || {
                let bit = bits.trailing_zeros() as usize;
                (bits != 0).then(|| {
                    bits &= bits - 1;
                    let index = word * 64 + bit;
                    (index, &*self.shards[index])
                })
            })
        })
    }

    /// Each shard that has slots, with them.
    fn rings(&self) -> impl Iterator<Item = (&Shard, &[Slot])> {
        let capacity = self.capacity();
        self.used_shards().filter_map(move |(_, shard)| {
            let slots = shard.slots.load(Ordering::Acquire);
            // SAFETY: published slots are `capacity` long and live until the recorder drops.
            (!slots.is_null()).then(|| {
                (shard, unsafe {
                    std::slice::from_raw_parts(slots, capacity)
                })
            })
        })
    }

    /// The recorder's counts, in one pass over its shards (a cache line each).
    ///
    /// `settled` is the writes completed and the clears done so far. Read it before the
    /// samples: if a later tally has the same, no write has completed and no clear has run
    /// since, so the samples read after it are still the recorder's (a write still under way
    /// when they were read is not counted yet, and changes it when it completes).
    pub(crate) fn tally(&self) -> Tally {
        let clears = self.clears.load(Ordering::Acquire);
        let owned = exclusive_shards();
        let mut tally = Tally {
            settled: Settled { writes: 0, clears },
            total: 0,
            failures: 0,
        };
        // A shard without slots was never written: its counts are 0.
        for (index, shard) in self.used_shards() {
            let cursor = shard.cursor.load(Ordering::Acquire);
            let written = if index < owned {
                cursor
            } else {
                shard.written.load(Ordering::Acquire)
            };
            tally.settled.writes = tally.settled.writes.wrapping_add(written);
            tally.total += cursor;
            tally.failures += shard.failures.load(Ordering::Relaxed);
        }
        tally
    }

    /// Copies into `out`, in no particular order, the samples held of each shard's `newest`
    /// writes (the most recent calls of a window of `newest` calls are among them).
    fn copy_samples(&self, newest: usize, out: &mut Vec<Raw>) {
        out.clear();
        let capacity = self.capacity() as u64;
        for (shard, ring) in self.rings() {
            let cursor = shard.cursor.load(Ordering::Acquire);
            let held = cursor.min(capacity).min(newest as u64);
            out.reserve(held as usize);
            // Oldest first: reading memory upwards is what the prefetcher follows best.
            let first = cursor.wrapping_sub(held);
            for position in first..cursor {
                let slot = &ring[(position & self.mask) as usize];
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
                out.push((before - 1, packed));
            }
        }
    }

    /// Every sample still held, in no particular order.
    #[cfg(test)]
    pub(crate) fn samples(&self) -> Vec<Sample> {
        let mut raw = Vec::new();
        self.copy_samples(usize::MAX, &mut raw);
        raw.into_iter()
            .map(|(end, packed)| Sample {
                end: Timestamp::from_nanos(end),
                latency_nanos: packed >> 1,
                failed: packed & 1 == 1,
            })
            .collect()
    }

    /// The figures of the samples `span` keeps: calls, failures, mean and the three
    /// percentiles, exact, found by selection rather than a sort.
    pub(crate) fn figures(&self, span: Span) -> WindowFigures {
        let compute = |(samples, latencies): &mut (Vec<Raw>, Vec<u64>)| {
            match span {
                Span::Last(n) => {
                    self.copy_samples(n, samples);
                    if samples.len() > n {
                        // Keep the n most recent calls across shards.
                        samples.select_nth_unstable_by(n, |a, b| b.0.cmp(&a.0));
                        samples.truncate(n);
                    }
                }
                Span::Within { now, span } => {
                    self.copy_samples(usize::MAX, samples);
                    samples.retain(|&(end, _)| {
                        now.saturating_duration_since(Timestamp::from_nanos(end)) <= span
                    });
                }
            }
            latencies.clear();
            let (mut failed, mut sum, mut oldest) = (0u64, 0u128, u64::MAX);
            for &(end, packed) in samples.iter() {
                let latency = packed >> 1;
                latencies.push(latency);
                failed += packed & 1;
                sum += u128::from(latency);
                oldest = oldest.min(end);
            }
            let calls = latencies.len() as u64;
            let figures = WindowFigures {
                calls,
                failed,
                quantiles_nanos: select_quantiles(latencies),
                mean_nanos: if calls == 0 {
                    0.0
                } else {
                    sum as f64 / calls as f64
                },
                oldest_end: (calls > 0).then(|| Timestamp::from_nanos(oldest)),
            };
            if samples.capacity() > SCRATCH_KEPT {
                *samples = Vec::new();
                *latencies = Vec::new();
            }
            figures
        };
        SCRATCH
            .try_with(|scratch| match scratch.try_borrow_mut() {
                Ok(mut scratch) => compute(&mut scratch),
                Err(_) => compute(&mut Default::default()),
            })
            // Thread-local storage already destroyed (a read from another TLS destructor).
            .unwrap_or_else(|_| compute(&mut Default::default()))
    }

    /// Forgets every sample (the total stays).
    pub(crate) fn clear(&self) {
        for (_, ring) in self.rings() {
            for slot in ring {
                slot.stamp.store(0, Ordering::Release);
            }
        }
        // After the slots: a reader that sees this count sees them emptied.
        self.clears.fetch_add(1, Ordering::Release);
    }
}

/// [`QUANTILES`] of `values` (in any order; reordered), as [`quantile`] computes them on the
/// sorted values, each by a selection: from the highest rank needed down, each selection
/// leaves the smaller values before its rank, so the next one searches only those.
fn select_quantiles(values: &mut [u64]) -> [f64; 3] {
    let Some(last) = values.len().checked_sub(1) else {
        return [0.0; 3];
    };
    let ranks = QUANTILES.map(|q| q * last as f64);
    // The two ranks around each quantile, highest first; each selection below looks only at
    // the values before the previous one.
    let mut wanted = [0usize; 6];
    for (index, rank) in ranks.iter().enumerate() {
        wanted[index * 2] = rank.ceil() as usize;
        wanted[index * 2 + 1] = rank.floor() as usize;
    }
    wanted.sort_unstable_by(|a, b| b.cmp(a));
    let mut picked = [(usize::MAX, 0u64); 6];
    let mut bound = values.len();
    for (slot, &rank) in picked.iter_mut().zip(&wanted) {
        if rank < bound {
            let (_, value, _) = values[..bound].select_nth_unstable(rank);
            *slot = (rank, *value);
            bound = rank;
        }
    }
    let value_at = |rank: usize| {
        picked
            .iter()
            .find(|(picked_rank, _)| *picked_rank == rank)
            .map_or(0, |(_, value)| *value) as f64
    };
    ranks.map(|rank| {
        let (low, high) = (
            value_at(rank.floor() as usize),
            value_at(rank.ceil() as usize),
        );
        low + (high - low) * (rank - rank.floor())
    })
}

/// The `q`-quantile (0..=1) of sorted values by linear interpolation between closest ranks
/// (numpy's default), `None` when empty: the definition [`select_quantiles`] computes without
/// sorting.
#[cfg(test)]
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
        assert_eq!(recorder.tally().total, 10);
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
        assert_eq!(recorder.tally().total, written.load(Ordering::Acquire));
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
            assert_eq!(recorder.tally().total, expected, "round {round}");
            assert_eq!(recorder.tally().failures, expected / 2, "round {round}");
            // A shard holds at most `threads × CALLS` samples, within its 8,192 slots.
            assert_eq!(recorder.samples().len() as u64, expected, "round {round}");
        }
    }

    /// The selection finds what interpolating over the sorted values finds, for every length
    /// from empty to past a window, with ties and without.
    #[test]
    fn selected_quantiles_match_the_sorted_definition() {
        let mut seed = 0x2545_f491_4f6c_dd1d_u64;
        for length in 0..300usize {
            for spread in [3u64, 1_000_000] {
                let values: Vec<u64> = (0..length)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        seed % spread
                    })
                    .collect();
                let mut sorted = values.clone();
                sorted.sort_unstable();
                let expected = QUANTILES.map(|q| quantile(&sorted, q).unwrap_or(0.0));
                let mut shuffled = values;
                assert_eq!(select_quantiles(&mut shuffled), expected, "length {length}");
            }
        }
    }

    /// A read's `settled` changes when a write completes or the recorder is cleared, and only
    /// then.
    #[test]
    fn settled_changes_with_each_write_and_clear() {
        let recorder = LatencyRecorder::new(4);
        let empty = recorder.tally().settled;
        assert_eq!(recorder.tally().settled, empty);
        recorder.record(Timestamp::from_nanos(1), 10, false);
        let one = recorder.tally().settled;
        assert_ne!(one, empty);
        assert_eq!(recorder.tally().settled, one);
        recorder.clear();
        let cleared = recorder.tally().settled;
        assert_ne!(cleared, one);
        for end in 2..20 {
            let before = recorder.tally().settled;
            recorder.record(Timestamp::from_nanos(end), end, end % 3 == 0);
            assert_ne!(recorder.tally().settled, before, "write {end}");
        }
    }

    #[test]
    fn figures_of_the_last_n_and_of_a_time_span() {
        let recorder = LatencyRecorder::new(8);
        for end in 1..=6u64 {
            recorder.record(Timestamp::from_nanos(end * 1_000), end * 100, end == 6);
        }
        let last = recorder.figures(Span::Last(3));
        assert_eq!((last.calls, last.failed), (3, 1));
        assert_eq!(last.quantiles_nanos, [500.0, 590.0, 598.0]);
        assert_eq!(last.mean_nanos, 500.0);
        assert_eq!(last.oldest_end, Some(Timestamp::from_nanos(4_000)));
        let recent = recorder.figures(Span::Within {
            now: Timestamp::from_nanos(6_000),
            span: Duration::from_nanos(1_000),
        });
        assert_eq!(
            (recent.calls, recent.oldest_end),
            (2, Some(Timestamp::from_nanos(5_000)))
        );
        let none = recorder.figures(Span::Within {
            now: Timestamp::from_nanos(100_000),
            span: Duration::from_nanos(1),
        });
        assert_eq!(
            (none.calls, none.quantiles_nanos, none.oldest_end),
            (0, [0.0; 3], None)
        );
    }

    #[test]
    fn clear_forgets_samples_but_not_the_total() {
        let recorder = LatencyRecorder::new(8);
        recorder.record(Timestamp::from_nanos(5), 1, false);
        recorder.clear();
        assert!(recorder.samples().is_empty());
        assert_eq!(recorder.tally().total, 1);
    }
}

/// The protocol a health read relies on to reuse a window's figures: samples read after a
/// tally hold every write the tally counted (so figures kept under a count are never missing a
/// write that count includes), for an owned shard (cursor moved after the slot is written) and
/// a shared one (slots reserved first, completions counted apart), and a clear is seen by a
/// read whose tally counted it. Run with `--cfg reliable_loom` (see `src/sync.rs`).
#[cfg(all(test, reliable_loom))]
mod loom_models {
    use super::*;
    use loom::sync::Arc;

    fn owned(index: usize) -> Owner {
        Owner {
            index,
            exclusive: true,
        }
    }

    fn shared() -> Owner {
        Owner {
            index: exclusive_shards(),
            exclusive: false,
        }
    }

    /// Every write the reader's tally counted is among the samples it reads next.
    fn counted_writes_are_read(writers: &[Owner], per_writer: u64) {
        let writers = writers.to_vec();
        let mut builder = loom::model::Builder::new();
        if writers.len() > 1 {
            // Three threads: bounded as the other three-thread models are (every interleaving
            // with up to 3 preemptions), or the model takes minutes.
            builder.preemption_bound = Some(3);
        }
        builder.check(move || {
            let recorder = Arc::new(LatencyRecorder::new(4));
            // The rings are made before the race: their allocation is not what is checked here,
            // and racing it too multiplies the interleavings past what a test can explore.
            for owner in &writers {
                recorder.allocate_slots(&recorder.shards[owner.index]);
            }
            let threads: Vec<_> = writers
                .iter()
                .enumerate()
                .map(|(writer, &owner)| {
                    let recorder = Arc::clone(&recorder);
                    loom::thread::spawn(move || {
                        for call in 0..per_writer {
                            let end = (writer as u64 + 1) * 10 + call;
                            recorder.record_in(owner, Timestamp::from_nanos(end), end, false);
                        }
                    })
                })
                .collect();
            let tally = recorder.tally();
            let figures = recorder.figures(Span::Last(16));
            assert!(
                figures.calls >= tally.settled.writes,
                "{} samples read after a tally that counted {} writes",
                figures.calls,
                tally.settled.writes
            );
            for thread in threads {
                thread.join().unwrap();
            }
            let done = recorder.tally();
            assert_eq!(done.settled.writes, writers.len() as u64 * per_writer);
            assert_eq!(recorder.figures(Span::Last(16)).calls, done.settled.writes);
        });
    }

    #[test]
    fn an_owned_shard_counts_a_write_only_once_it_is_readable() {
        counted_writes_are_read(&[owned(0)], 2);
    }

    #[test]
    fn a_shared_shard_counts_a_write_only_once_it_is_readable() {
        counted_writes_are_read(&[shared(), shared()], 1);
    }

    /// A read whose tally counted a clear does not see the samples it emptied.
    #[test]
    fn a_counted_clear_is_seen_by_the_read_after_it() {
        loom::model(|| {
            let recorder = Arc::new(LatencyRecorder::new(4));
            recorder.record_in(owned(0), Timestamp::from_nanos(1), 1, false);
            let clearing = {
                let recorder = Arc::clone(&recorder);
                loom::thread::spawn(move || recorder.clear())
            };
            let tally = recorder.tally();
            let figures = recorder.figures(Span::Last(16));
            if tally.settled.clears == 1 {
                assert_eq!(figures.calls, 0, "a counted clear left a sample");
            }
            clearing.join().unwrap();
        });
    }
}
