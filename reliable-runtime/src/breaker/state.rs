//! Breaker states and the packed state word.
//!
//! The whole admission decision lives in one `AtomicU64`, so the closed-state hot path is a
//! single load, and a half-open probe slot is taken with a single compare-and-swap:
//!
//! ```text
//!  63                         24 23               3 2     0
//! +------------------------------+------------------+-------+
//! |   generation (40 bits)       | probes in flight | state |
//! +------------------------------+------------------+-------+
//! ```
//!
//! Every transition bumps the generation, so the outcome of a call admitted under an earlier
//! state is recognised and ignored instead of counting against the new one.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::SystemTime;

/// A circuit breaker's state. Serializes in capitals: `"CLOSED"`, `"OPEN"`,
/// `"HALF_OPEN"`, `"FORCED_OPEN"`, `"DISABLED"`.
///
/// ```
/// use reliable_runtime::breaker::BreakerState;
/// assert_eq!(serde_json::to_string(&BreakerState::HalfOpen).unwrap(), "\"HALF_OPEN\"");
/// assert_eq!(BreakerState::Closed.as_str(), "CLOSED");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum BreakerState {
    /// Calls flow; outcomes are counted.
    Closed,
    /// Calls are rejected until the open timeout passes.
    Open,
    /// A few probe calls test whether the service recovered.
    HalfOpen,
    /// Set by hand: every call is rejected until the breaker is reset.
    ForcedOpen,
    /// Set by hand: every call flows and nothing is counted.
    Disabled,
}

impl BreakerState {
    /// The state in capitals: `"CLOSED"`, `"OPEN"`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            BreakerState::Closed => "CLOSED",
            BreakerState::Open => "OPEN",
            BreakerState::HalfOpen => "HALF_OPEN",
            BreakerState::ForcedOpen => "FORCED_OPEN",
            BreakerState::Disabled => "DISABLED",
        }
    }

    /// Whether calls are being refused (open or forced open).
    pub fn is_open(self) -> bool {
        matches!(self, BreakerState::Open | BreakerState::ForcedOpen)
    }

    const fn code(self) -> u64 {
        match self {
            BreakerState::Closed => 0,
            BreakerState::Open => 1,
            BreakerState::HalfOpen => 2,
            BreakerState::ForcedOpen => 3,
            BreakerState::Disabled => 4,
        }
    }

    fn from_code(code: u64) -> Self {
        match code {
            1 => BreakerState::Open,
            2 => BreakerState::HalfOpen,
            3 => BreakerState::ForcedOpen,
            4 => BreakerState::Disabled,
            _ => BreakerState::Closed,
        }
    }
}

impl fmt::Display for BreakerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

const STATE_BITS: u32 = 3;
const STATE_MASK: u64 = (1 << STATE_BITS) - 1;
const IN_FLIGHT_BITS: u32 = 21;
const IN_FLIGHT_MASK: u64 = ((1 << IN_FLIGHT_BITS) - 1) << STATE_BITS;
const GENERATION_SHIFT: u32 = STATE_BITS + IN_FLIGHT_BITS;

/// One probe in flight, as an increment of the word.
pub(crate) const ONE_PROBE: u64 = 1 << STATE_BITS;

/// A decoded state word.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Word(pub(crate) u64);

impl Word {
    pub(crate) const INITIAL: Word = Word(BreakerState::Closed.code());

    #[inline]
    pub(crate) fn state(self) -> BreakerState {
        BreakerState::from_code(self.0 & STATE_MASK)
    }

    #[inline]
    pub(crate) fn is_closed(self) -> bool {
        self.0 & STATE_MASK == BreakerState::Closed.code()
    }

    #[inline]
    pub(crate) fn generation(self) -> u64 {
        self.0 >> GENERATION_SHIFT
    }

    pub(crate) fn in_flight(self) -> u64 {
        (self.0 & IN_FLIGHT_MASK) >> STATE_BITS
    }

    /// Same generation and state (the probe count may differ).
    #[inline]
    pub(crate) fn same_epoch(self, other: Word) -> bool {
        (self.0 ^ other.0) & !IN_FLIGHT_MASK == 0
    }

    /// The word of the next generation in `state`, with no probe in flight.
    pub(crate) fn next(self, state: BreakerState) -> Word {
        Word(((self.generation() + 1) << GENERATION_SHIFT) | state.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_round_trips() {
        let word = Word::INITIAL.next(BreakerState::HalfOpen);
        assert_eq!(word.state(), BreakerState::HalfOpen);
        assert_eq!(word.generation(), 1);
        let with_probes = Word(word.0 + 3 * ONE_PROBE);
        assert_eq!(with_probes.in_flight(), 3);
        assert!(with_probes.same_epoch(word));
        assert!(!word.same_epoch(word.next(BreakerState::HalfOpen)));
        assert_eq!(with_probes.next(BreakerState::Closed).in_flight(), 0);
    }
}

/// A circuit breaker's state change.
#[derive(Clone, Debug, Serialize)]
pub struct BreakerTransition {
    /// The breaker's registry name.
    pub breaker: &'static str,
    /// The state it left.
    pub from: BreakerState,
    /// The state it entered.
    pub to: BreakerState,
    /// Failures counted when it changed (consecutive failures, or failures in the window).
    pub failure_count: u32,
    /// Why it changed, in words (for logs and alerts).
    pub reason: &'static str,
    /// Wall-clock time of the change.
    #[serde(serialize_with = "crate::common::clock::unix_seconds")]
    pub at: SystemTime,
}
