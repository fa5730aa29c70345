//! The events a retry policy publishes.

use serde::Serialize;
use std::time::Duration;

/// A retry about to be made (an [`Event`](crate::event::Event)).
#[derive(Clone, Debug, Serialize)]
pub struct RetryAttempted {
    /// The policy's name.
    pub policy: &'static str,
    /// The attempt about to be made (2 for the first retry).
    pub attempt: u32,
    /// The wait before it.
    pub delay: Duration,
}

/// A retry refused because the budget is spent (an [`Event`](crate::event::Event)).
#[derive(Clone, Debug, Serialize)]
pub struct RetryBudgetExhausted {
    /// The policy's name.
    pub policy: &'static str,
    /// The budget's ratio of retries to calls.
    pub ratio: f64,
}
