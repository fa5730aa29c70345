//! Retry budget: retries may add at most a fraction of the calls, plus a small floor.

use crate::clock::{duration_to_nanos, Clock};
use crate::common::window::TimeWindow;
use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

/// How many retries a retry policy may make, relative to its calls (the SRE book's and Finagle's
/// retry budget): over the last `window`, retries stay below
/// `ratio × calls + min_retries_per_second × window`.
///
/// The real bound, in an outage where every attempt fails: at a call rate of `r` calls per
/// second, the failing service sees at most `r × (1 + ratio) + min_retries_per_second` requests
/// per second (and never more than `r × max_attempts`). The floor lets a quiet service retry at
/// all, but at low rates it dominates: with the defaults, 10 calls/s in an outage become up to
/// 21 requests/s, where the ratio alone would allow 11. A service that must never see more than
/// `1 + ratio` times its load sets `min_retries_per_second = 0` (then a caller retries only once
/// `1 / ratio` calls were made in the window). The floor is deliberately not scaled with the
/// call rate: that would make it a second ratio, and take away the one thing it is for.
/// `tests/retry.rs` checks both bounds.
///
/// `Default`: 10% of calls plus 10 retries per second, over 10 s.
///
/// ```
/// use reliable_runtime::retry::RetryBudget;
///
/// let budget = RetryBudget::default();
/// assert_eq!(budget.ratio, 0.1);
/// assert!(budget.validate().is_ok());
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryBudget {
    /// Retries allowed per call made. Default 0.1.
    pub ratio: f64,
    /// Retries always allowed per second, so that a quiet service can still retry. Default 10.
    pub min_retries_per_second: u32,
    /// How far back calls and retries are counted. Default 10 s.
    #[serde(with = "crate::common::human_duration")]
    pub window: Duration,
}

impl Default for RetryBudget {
    fn default() -> Self {
        RetryBudget {
            ratio: 0.1,
            min_retries_per_second: 10,
            window: Duration::from_secs(10),
        }
    }
}

impl RetryBudget {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use reliable_rules::retry;
        ConfigError::check("budget_ratio", retry::budget_ratio(self.ratio))?;
        ConfigError::check("budget_window", retry::budget_window(self.window))
    }

    /// The most retries this budget allows for `calls` calls in one window.
    pub fn allowance(&self, calls: u64) -> f64 {
        self.ratio * calls as f64
            + f64::from(self.min_retries_per_second) * self.window.as_secs_f64()
    }
}

/// The budget's live counts.
///
/// Calls are counted by the policy's own thread-sharded total (one plain store per call, no
/// clock read); the budget keeps, on the retry path only, marks of that total over time, and
/// takes the calls of the last window as the total now minus the total at the window's start.
/// Retries are counted in time buckets.
pub(crate) struct BudgetTracker {
    budget: RetryBudget,
    retries: TimeWindow,
    /// `(clock nanos, calls so far)`, oldest first, at most one per tenth of the window.
    marks: Mutex<VecDeque<(u64, u64)>>,
}

impl BudgetTracker {
    pub(crate) fn new(budget: RetryBudget, clock: &Clock) -> Self {
        let mut marks = VecDeque::with_capacity(16);
        marks.push_back((clock.now_coarse().as_nanos(), 0));
        BudgetTracker {
            budget,
            retries: TimeWindow::new(budget.window),
            marks: Mutex::new(marks),
        }
    }

    /// Takes a retry from the budget if one is left; `calls` is the policy's call total.
    pub(crate) fn withdraw(&self, clock: &Clock, calls: u64) -> bool {
        let now = clock.now_coarse();
        let window = duration_to_nanos(self.budget.window);
        let calls_in_window = {
            let mut marks = self.marks.lock().unwrap_or_else(|e| e.into_inner());
            let newest = marks.back().map_or(0, |&(at, _)| at);
            if now.as_nanos().saturating_sub(newest) >= window / 10 {
                marks.push_back((now.as_nanos(), calls));
            }
            // Keep one mark at or before the window's start as the baseline.
            while marks.len() > 1 && now.as_nanos().saturating_sub(marks[1].0) >= window {
                marks.pop_front();
            }
            calls.saturating_sub(marks.front().map_or(0, |&(_, total)| total))
        };
        let retries = f64::from(self.retries.counts(now).calls);
        if retries + 1.0 > self.budget.allowance(calls_in_window) {
            return false;
        }
        self.retries.record(now, false, false);
        true
    }

    pub(crate) fn budget(&self) -> &RetryBudget {
        &self.budget
    }
}

crate::common::setters::setters! { RetryBudget {
    ratio: f64,
    min_retries_per_second: u32,
    window: Duration,
}}
