//! [`Run`]: the helpers that run a fn through its policy, typed by its declared return type.

use super::bounds::{HoldsRejected, ReturnsResult};
use crate::error::Failure;
use core::future::Future;
use std::time::Duration;

/// The helpers that run a fn through its policy, each typed by the fn's return type `R`.
/// Generated code names `R` as the first generic argument (`Run::try_once::<R, _>`) or lets
/// the body give it, and spans the call at the user's return type: a type that does not fit
/// (not a `Result`, an error that cannot hold a `Rejected`) is one error there, in the
/// bound's own words.
pub struct Run;

impl Run {
    /// The fn's body as an `async` block whose output is `R`, so `?` and `return` in it
    /// convert into `R`.
    #[inline(always)]
    pub fn body<R, F: Future<Output = R>>(body: F) -> F {
        body
    }

    /// The fn's output from its pipeline's outcome: a refusal (an open breaker, a timeout)
    /// converted into the fn's error. A plain fn, apart from the future that makes the
    /// outcome, so an error type that cannot hold a `Rejected` is reported once.
    #[inline(always)]
    pub fn delivered<R>(outcome: Result<R::Ok, Failure<R::Error>>) -> R
    where
        R: ReturnsResult,
        R::Error: HoldsRejected,
    {
        R::from_result(outcome.map_err(super::bounds::into_error))
    }

    /// Pins a `failure_if` predicate to the fn's error type, so a predicate of the wrong type
    /// is an error at the predicate's path.
    #[inline(always)]
    pub fn failure_if<R>(predicate: fn(&R::Error) -> bool) -> fn(&R::Error) -> bool
    where
        R: ReturnsResult,
    {
        predicate
    }

    /// Pins a `retry_if` predicate to the fn's error type.
    #[inline(always)]
    pub fn retry_if<R>(predicate: fn(&R::Error) -> bool) -> fn(&R::Error) -> bool
    where
        R: ReturnsResult,
    {
        predicate
    }

    /// Pins a `retry_after` hint to the fn's error type.
    #[inline(always)]
    pub fn retry_after<R>(
        hint: fn(&R::Error) -> Option<Duration>,
    ) -> fn(&R::Error) -> Option<Duration>
    where
        R: ReturnsResult,
    {
        hint
    }

    /// Pins an `on_retry` callback to the fn's error type.
    #[inline(always)]
    pub fn on_retry<R>(
        callback: fn(u32, Duration, &Failure<R::Error>),
    ) -> fn(u32, Duration, &Failure<R::Error>)
    where
        R: ReturnsResult,
    {
        callback
    }
}
