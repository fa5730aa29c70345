//! [`FnHooks`] and [`NoHooks`]: the callbacks written on the attributes.

use crate::error::{catch_callback, Failure};
use crate::policy::{ErrorHooks, Hooks};

/// The callbacks written on an attribute (`failure_if`, `retry_if`, ...), typed by the fn's
/// error type, which need not be `'static`.
pub struct FnHooks<E> {
    /// `failure_if`.
    pub failure_if: Option<fn(&E) -> bool>,
    /// `retry_if`.
    pub retry_if: Option<fn(&E) -> bool>,
    /// `retry_after`.
    pub retry_after: Option<fn(&E) -> Option<std::time::Duration>>,
    /// `on_retry`.
    pub on_retry: Option<fn(u32, std::time::Duration, &Failure<E>)>,
}

impl<E> FnHooks<E> {
    /// No callback.
    pub const NONE: FnHooks<E> = FnHooks {
        failure_if: None,
        retry_if: None,
        retry_after: None,
        on_retry: None,
    };
}

impl<E> Hooks<E> for FnHooks<E> {
    #[inline(always)]
    fn is_failure(&self, _: &ErrorHooks, error: &E) -> bool {
        match self.failure_if {
            None => true,
            Some(predicate) => catch_callback("failure_if", true, || predicate(error)),
        }
    }

    fn retry_if(&self, _: &ErrorHooks, error: &E) -> bool {
        self.retry_if.is_none_or(|predicate| predicate(error))
    }

    fn retry_after(&self, _: &ErrorHooks, error: &E) -> Option<std::time::Duration> {
        self.retry_after.and_then(|hint| hint(error))
    }

    fn on_retry(
        &self,
        _: &ErrorHooks,
        attempt: u32,
        delay: std::time::Duration,
        cause: &Failure<E>,
    ) {
        if let Some(callback) = self.on_retry {
            callback(attempt, delay, cause);
        }
    }
}

/// No callback written: every error fails and is retried (a zero-sized [`FnHooks`]).
#[derive(Clone, Copy)]
pub struct NoHooks;

impl<E> Hooks<E> for NoHooks {
    #[inline(always)]
    fn is_failure(&self, _: &ErrorHooks, _: &E) -> bool {
        true
    }

    fn retry_if(&self, _: &ErrorHooks, _: &E) -> bool {
        true
    }

    fn retry_after(&self, _: &ErrorHooks, _: &E) -> Option<std::time::Duration> {
        None
    }

    fn on_retry(&self, _: &ErrorHooks, _: u32, _: std::time::Duration, _: &Failure<E>) {}
}
