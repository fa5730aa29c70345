//! A `tracing` span per call through a policy (feature `trace`): `reliable.call` with the
//! policy's name, and at the end the attempts that ran (admitted by every layer), the outcome
//! (`ok`, `failed`, `rejected` with `rejected_by`) and the breaker's state. An async call's
//! every poll, and a blocking call's whole run, is inside it, so the body's own events and
//! spans nest under it (OpenTelemetry users get the call as a span of their trace).
//!
//! Without the feature a call holds a zero-sized placeholder and this costs nothing.

use super::layers::Layers;
use crate::error::Failure;

/// The span of one call.
#[cfg(feature = "trace")]
pub(crate) struct CallSpan {
    span: tracing::Span,
    /// In a cell, so that a poll can count attempts while it is inside the span (entering
    /// borrows it; cloning the span each poll instead would cost the subscriber two calls).
    attempts: std::cell::Cell<u32>,
}

/// No span: the feature is off.
#[cfg(not(feature = "trace"))]
pub(crate) struct CallSpan;

/// What entering no span gives (held like a guard, so the call's code is the same either way).
#[cfg(not(feature = "trace"))]
pub(crate) struct NotEntered;

#[cfg(feature = "trace")]
impl CallSpan {
    pub(crate) fn new(layers: &Layers) -> Self {
        let span = tracing::info_span!(
            "reliable.call",
            policy = layers.name,
            attempts = tracing::field::Empty,
            outcome = tracing::field::Empty,
            rejected_by = tracing::field::Empty,
            breaker = tracing::field::Empty,
        );
        CallSpan {
            span,
            attempts: std::cell::Cell::new(0),
        }
    }

    /// Enters the span for one poll.
    pub(crate) fn enter(&self) -> tracing::span::Entered<'_> {
        self.span.enter()
    }

    /// Enters the span through a handle of its own, for a poll that hands the whole call on
    /// (a layered call: retries, a timeout, a wait); it costs the subscriber a clone and a
    /// close, which a call that sleeps between attempts does not notice.
    pub(crate) fn enter_detached(&self) -> tracing::span::EnteredSpan {
        self.span.clone().entered()
    }

    /// An attempt starts.
    pub(crate) fn attempt(&self) {
        self.attempts.set(self.attempts.get() + 1);
    }

    /// Records how the call ended.
    pub(crate) fn finish<T, E>(&self, outcome: &Result<T, Failure<E>>, layers: &Layers) {
        let outcome = match outcome {
            Ok(_) => "ok",
            Err(Failure::Inner(_)) => "failed",
            Err(Failure::Rejected(rejected)) => {
                self.span.record("rejected_by", rejected.source_name());
                "rejected"
            }
        };
        self.span.record("outcome", outcome);
        self.span.record("attempts", self.attempts.get());
        if let Some(breaker) = &layers.breaker {
            self.span.record("breaker", breaker.state().as_str());
        }
    }
}

#[cfg(not(feature = "trace"))]
impl CallSpan {
    #[inline(always)]
    pub(crate) fn new(_layers: &Layers) -> Self {
        CallSpan
    }

    #[inline(always)]
    pub(crate) fn enter(&self) -> NotEntered {
        NotEntered
    }

    #[inline(always)]
    pub(crate) fn enter_detached(&self) -> NotEntered {
        NotEntered
    }

    #[inline(always)]
    pub(crate) fn attempt(&self) {}

    #[inline(always)]
    pub(crate) fn finish<T, E>(&self, _outcome: &Result<T, Failure<E>>, _layers: &Layers) {}
}
