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
    attempts: u32,
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
        CallSpan { span, attempts: 0 }
    }

    /// Enters the span for one poll (a handle of its own, so the call stays free to borrow).
    pub(crate) fn enter(&self) -> tracing::span::EnteredSpan {
        self.span.clone().entered()
    }

    /// An attempt starts.
    pub(crate) fn attempt(&mut self) {
        self.attempts += 1;
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
        self.span.record("attempts", self.attempts);
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
    pub(crate) fn attempt(&mut self) {}

    #[inline(always)]
    pub(crate) fn finish<T, E>(&self, _outcome: &Result<T, Failure<E>>, _layers: &Layers) {}
}
