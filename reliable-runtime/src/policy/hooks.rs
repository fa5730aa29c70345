//! The error-typed callbacks of a policy (`failure_if`, `retry_if`, `retry_after`,
//! `on_retry`), kept type-erased so one `Policy` value serves calls of any type.
//!
//! They run only when a call fails, so the downcast that finds them costs nothing on the path
//! of a successful call.

use crate::error::{catch_callback, Failure};
use std::any::Any;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

type Predicate<E> = dyn Fn(&E) -> bool + Send + Sync;
type Hint<E> = dyn Fn(&E) -> Option<Duration> + Send + Sync;
type RetryCallback<E> = dyn Fn(u32, Duration, &Failure<E>) + Send + Sync;

/// One callback, typed by the error it was written for.
#[derive(Clone)]
struct Hook {
    /// What it is, for the log line when a call's error type does not match.
    what: &'static str,
    error_type: &'static str,
    /// A `Box<dyn Fn(&E) ..>` of the error type `E` it was given for.
    callback: Arc<dyn Any + Send + Sync>,
    /// Whether a mismatch was logged already (once per hook, not once per call).
    mismatch_logged: Arc<AtomicBool>,
}

impl Hook {
    fn new<E: 'static, C: ?Sized + 'static>(what: &'static str, callback: Box<C>) -> Self
    where
        Box<C>: Send + Sync,
    {
        Hook {
            what,
            error_type: std::any::type_name::<E>(),
            callback: Arc::new(callback),
            mismatch_logged: Arc::new(AtomicBool::new(false)),
        }
    }

    /// The callback, if it was given for the error type `E` (whose callbacks have type `C`).
    fn get<E: 'static, C: ?Sized + 'static>(&self) -> Option<&C> {
        match self.callback.downcast_ref::<Box<C>>() {
            Some(callback) => Some(&**callback),
            None => {
                self.log_mismatch::<E>();
                None
            }
        }
    }

    #[cold]
    fn log_mismatch<E>(&self) {
        if !self.mismatch_logged.swap(true, Ordering::Relaxed) {
            tracing::error!(
                callback = self.what,
                given_for = self.error_type,
                call_error = std::any::type_name::<E>(),
                "a policy callback was given for another error type than this call's; it is not used"
            );
        }
    }
}

impl fmt::Debug for Hook {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}(&{})", self.what, self.error_type)
    }
}

/// The callbacks a policy was built with ([`PolicyBuilder::failure_if`](crate::PolicyBuilder::failure_if)
/// and the like); each is optional and has a default.
#[derive(Clone, Debug, Default)]
pub struct ErrorHooks {
    failure_if: Option<Hook>,
    retry_if: Option<Hook>,
    retry_after: Option<Hook>,
    on_retry: Option<Hook>,
}

impl ErrorHooks {
    /// No callback: every error fails and is retried, no hint, nothing told.
    pub(crate) const NONE: ErrorHooks = ErrorHooks {
        failure_if: None,
        retry_if: None,
        retry_after: None,
        on_retry: None,
    };

    pub(crate) fn set_failure_if<E: 'static>(
        &mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) {
        let callback: Box<Predicate<E>> = Box::new(predicate);
        self.failure_if = Some(Hook::new::<E, _>("failure_if", callback));
    }

    #[cfg(feature = "retry")]
    pub(crate) fn set_retry_if<E: 'static>(
        &mut self,
        predicate: impl Fn(&E) -> bool + Send + Sync + 'static,
    ) {
        let callback: Box<Predicate<E>> = Box::new(predicate);
        self.retry_if = Some(Hook::new::<E, _>("retry_if", callback));
    }

    #[cfg(feature = "retry")]
    pub(crate) fn set_retry_after<E: 'static>(
        &mut self,
        hint: impl Fn(&E) -> Option<Duration> + Send + Sync + 'static,
    ) {
        let callback: Box<Hint<E>> = Box::new(hint);
        self.retry_after = Some(Hook::new::<E, _>("retry_after", callback));
    }

    #[cfg(feature = "retry")]
    pub(crate) fn set_on_retry<E: 'static>(
        &mut self,
        callback: impl Fn(u32, Duration, &Failure<E>) + Send + Sync + 'static,
    ) {
        let callback: Box<RetryCallback<E>> = Box::new(callback);
        self.on_retry = Some(Hook::new::<E, _>("on_retry", callback));
    }

    /// Fills the callbacks not given by hand from `E`'s [`Classify`](crate::classify::Classify).
    pub(crate) fn classify<E: crate::classify::Classify + 'static>(&mut self) {
        if self.failure_if.is_none() {
            self.set_failure_if(|error: &E| error.class().counts_as_failure());
        }
        #[cfg(feature = "retry")]
        {
            if self.retry_if.is_none() {
                self.set_retry_if(|error: &E| error.class().is_retryable());
            }
            if self.retry_after.is_none() {
                self.set_retry_after(|error: &E| error.class().retry_after());
            }
        }
    }

    /// Whether `error` counts as a failure (breaker and monitor); every error does by default.
    #[inline]
    pub(crate) fn is_failure<E: 'static>(&self, error: &E) -> bool {
        match &self.failure_if {
            None => true,
            Some(hook) => match hook.get::<E, Predicate<E>>() {
                Some(predicate) => catch_callback("failure_if", true, || predicate(error)),
                None => true,
            },
        }
    }

    /// Whether `error` is worth another attempt; every error is by default.
    pub(crate) fn retry_if<E: 'static>(&self, error: &E) -> bool {
        match self
            .retry_if
            .as_ref()
            .and_then(Hook::get::<E, Predicate<E>>)
        {
            Some(predicate) => predicate(error),
            None => true,
        }
    }

    /// The server's hint of when to retry, if a `retry_after` callback reads one.
    pub(crate) fn retry_after<E: 'static>(&self, error: &E) -> Option<Duration> {
        self.retry_after
            .as_ref()
            .and_then(Hook::get::<E, Hint<E>>)
            .and_then(|hint| hint(error))
    }

    /// Tells the `on_retry` callback, if any, that attempt `attempt` follows after `delay`.
    pub(crate) fn on_retry<E: 'static>(&self, attempt: u32, delay: Duration, cause: &Failure<E>) {
        if let Some(callback) = self
            .on_retry
            .as_ref()
            .and_then(Hook::get::<E, RetryCallback<E>>)
        {
            callback(attempt, delay, cause);
        }
    }
}

/// Where a call finds its error-typed callbacks: [`FromPolicy`] (the ones the policy was built
/// with; what [`Policy::call`](crate::Policy::call) uses), or callbacks given with the call.
pub trait Hooks<E> {
    /// Whether `error` counts as a failure (breaker and monitor).
    fn is_failure(&self, policy: &ErrorHooks, error: &E) -> bool;
    /// Whether `error` is worth another attempt.
    fn retry_if(&self, policy: &ErrorHooks, error: &E) -> bool;
    /// The server's hint of when to retry.
    fn retry_after(&self, policy: &ErrorHooks, error: &E) -> Option<Duration>;
    /// Told before each retry.
    fn on_retry(&self, policy: &ErrorHooks, attempt: u32, delay: Duration, cause: &Failure<E>);
}

/// [`Hooks`]: the callbacks the policy was built with.
#[derive(Clone, Copy, Debug, Default)]
pub struct FromPolicy;

impl<E: 'static> Hooks<E> for FromPolicy {
    #[inline(always)]
    fn is_failure(&self, policy: &ErrorHooks, error: &E) -> bool {
        policy.is_failure(error)
    }

    fn retry_if(&self, policy: &ErrorHooks, error: &E) -> bool {
        policy.retry_if(error)
    }

    fn retry_after(&self, policy: &ErrorHooks, error: &E) -> Option<Duration> {
        policy.retry_after(error)
    }

    fn on_retry(&self, policy: &ErrorHooks, attempt: u32, delay: Duration, cause: &Failure<E>) {
        policy.on_retry(attempt, delay, cause);
    }
}

impl<E, H: Hooks<E> + ?Sized> Hooks<E> for &H {
    #[inline(always)]
    fn is_failure(&self, policy: &ErrorHooks, error: &E) -> bool {
        (**self).is_failure(policy, error)
    }

    fn retry_if(&self, policy: &ErrorHooks, error: &E) -> bool {
        (**self).retry_if(policy, error)
    }

    fn retry_after(&self, policy: &ErrorHooks, error: &E) -> Option<Duration> {
        (**self).retry_after(policy, error)
    }

    fn on_retry(&self, policy: &ErrorHooks, attempt: u32, delay: Duration, cause: &Failure<E>) {
        (**self).on_retry(policy, attempt, delay, cause);
    }
}
