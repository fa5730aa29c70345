//! [`Throttle`]: at most one event a second per source.

use super::clock::Clock;
use std::sync::atomic::{AtomicU64, Ordering};

/// Lets through at most one event a second for one source, so that a limiter refusing
/// thousands of calls a second publishes one event, not thousands.
#[derive(Debug, Default)]
pub(crate) struct Throttle {
    /// Coarse system-clock nanos of the last event let through (0: none yet).
    last: AtomicU64,
}

impl Throttle {
    pub(crate) fn new() -> Self {
        Throttle::default()
    }

    /// Whether an event may go out now (none went out in the last second); if so, counts it
    /// as gone out.
    pub(crate) fn admit(&self) -> bool {
        let now = Clock::system().now_coarse().as_nanos().max(1);
        let last = self.last.load(Ordering::Relaxed);
        let admitted = last == 0 || now.saturating_sub(last) >= 1_000_000_000;
        if admitted {
            self.last.store(now, Ordering::Relaxed);
        }
        admitted
    }
}
