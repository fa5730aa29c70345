//! Errors: why a call was not made ([`Rejected`]), a call's failure ([`Failure`]) and bad
//! configuration ([`ConfigError`]).

use std::fmt;
use std::time::Duration;

/// A call that a reliability layer refused to make.
///
/// Generated code turns it into the function's own error type through `E: From<Rejected>`:
///
/// ```
/// use reliable_runtime::Rejected;
///
/// #[derive(Debug)]
/// enum ApiError {
///     Http(u16),
///     Unavailable(Rejected),
/// }
///
/// impl From<Rejected> for ApiError {
///     fn from(rejected: Rejected) -> Self {
///         ApiError::Unavailable(rejected)
///     }
/// }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Rejected {
    /// The circuit breaker `breaker` is open (or forced open): the call was not made.
    CircuitOpen {
        /// The breaker's registry name (breaker names are interned: see
        /// [`CircuitBreaker::new`](crate::breaker::CircuitBreaker::new)).
        breaker: &'static str,
        /// When the breaker will let a probe through, if it knows (`None` when forced open or
        /// when half-open probes are all in flight).
        retry_after: Option<Duration>,
    },
    /// The attempt took longer than its timeout and was dropped.
    Timeout {
        /// The timeout.
        after: Duration,
    },
    /// The call's deadline (all attempts together, [`TimeoutConfig::deadline`](crate::limit::TimeoutConfig::deadline))
    /// passed while an attempt ran; the attempt was dropped and the call is not retried.
    DeadlineExceeded {
        /// The deadline.
        deadline: Duration,
    },
    /// The rate limiter `limiter` had no slot for the call.
    RateLimited {
        /// The limiter's registry name.
        limiter: &'static str,
        /// When the next slot frees up.
        retry_after: Duration,
    },
    /// The bulkhead `bulkhead` was full for longer than its `max_wait`.
    BulkheadFull {
        /// The bulkhead's registry name.
        bulkhead: &'static str,
    },
    /// The cache `cache` was already loading the key for another caller, this caller waited
    /// for that load, and it failed: one failing request answers every caller that waited,
    /// instead of each sending its own (the leader gets the load's own error).
    LoadFailed {
        /// The cache's registry name.
        cache: &'static str,
    },
}

impl Rejected {
    /// The name of the breaker or limiter that refused the call.
    ///
    /// ```
    /// use reliable_runtime::Rejected;
    /// let rejected = Rejected::CircuitOpen { breaker: "binance", retry_after: None };
    /// assert_eq!(rejected.source_name(), "binance");
    /// ```
    pub fn source_name(&self) -> &str {
        match self {
            Rejected::CircuitOpen { breaker, .. } => breaker,
            Rejected::Timeout { .. } => "timeout",
            Rejected::DeadlineExceeded { .. } => "deadline",
            Rejected::RateLimited { limiter, .. } => limiter,
            Rejected::BulkheadFull { bulkhead } => bulkhead,
            Rejected::LoadFailed { cache } => cache,
        }
    }

    /// How long to wait before a retry could succeed, if known.
    ///
    /// ```
    /// use reliable_runtime::Rejected;
    /// use std::time::Duration;
    ///
    /// let open = Rejected::CircuitOpen { breaker: "binance_api", retry_after: Some(Duration::from_secs(20)) };
    /// assert_eq!(open.retry_after(), Some(Duration::from_secs(20)));
    /// ```
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Rejected::CircuitOpen { retry_after, .. } => *retry_after,
            Rejected::RateLimited { retry_after, .. } => Some(*retry_after),
            Rejected::Timeout { .. }
            | Rejected::DeadlineExceeded { .. }
            | Rejected::BulkheadFull { .. }
            | Rejected::LoadFailed { .. } => None,
        }
    }
}

impl fmt::Display for Rejected {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Rejected::CircuitOpen {
                breaker,
                retry_after: Some(after),
            } => write!(
                f,
                "circuit breaker `{breaker}` is open; retry after {:.3}s",
                after.as_secs_f64()
            ),
            Rejected::CircuitOpen { breaker, .. } => {
                write!(f, "circuit breaker `{breaker}` is open")
            }
            Rejected::Timeout { after } => {
                write!(f, "timed out after {:.3}s", after.as_secs_f64())
            }
            Rejected::DeadlineExceeded { deadline } => {
                write!(
                    f,
                    "the call's deadline of {:.3}s passed",
                    deadline.as_secs_f64()
                )
            }
            Rejected::RateLimited {
                limiter,
                retry_after,
            } => write!(
                f,
                "rate limit `{limiter}` reached; next slot in {:.3}s",
                retry_after.as_secs_f64()
            ),
            Rejected::BulkheadFull { bulkhead } => write!(f, "bulkhead `{bulkhead}` is full"),
            Rejected::LoadFailed { cache } => {
                write!(f, "the load this call waited for in cache `{cache}` failed")
            }
        }
    }
}

impl std::error::Error for Rejected {}

/// The outcome of a guarded call that did not succeed: the call's own error, or a rejection.
///
/// ```
/// use reliable_runtime::{Failure, Rejected};
///
/// let failure: Failure<std::io::Error> =
///     Failure::Rejected(Rejected::CircuitOpen { breaker: "db", retry_after: None });
/// assert!(failure.is_rejected());
/// assert!(failure.into_inner().is_none());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure<E> {
    /// The call ran and returned this error.
    Inner(E),
    /// The call was not made.
    Rejected(Rejected),
}

impl<E> From<Rejected> for Failure<E> {
    fn from(rejected: Rejected) -> Self {
        Failure::Rejected(rejected)
    }
}

impl<E> Failure<E> {
    /// Whether the call was refused without running.
    ///
    /// ```
    /// use reliable_runtime::{Failure, Rejected};
    /// use std::time::Duration;
    ///
    /// let failed: Failure<std::io::Error> = Failure::Inner(std::io::Error::other("down"));
    /// let refused: Failure<std::io::Error> = Failure::Rejected(Rejected::Timeout { after: Duration::from_secs(2) });
    /// assert!(!failed.is_rejected() && refused.is_rejected());
    /// ```
    pub fn is_rejected(&self) -> bool {
        matches!(self, Failure::Rejected(_))
    }

    /// The call's own error, if it ran.
    ///
    /// ```
    /// use reliable_runtime::{Failure, Rejected};
    /// use std::time::Duration;
    ///
    /// let failed: Failure<std::io::Error> = Failure::Inner(std::io::Error::other("down"));
    /// let refused: Failure<std::io::Error> = Failure::Rejected(Rejected::Timeout { after: Duration::from_secs(2) });
    /// assert_eq!(failed.into_inner().unwrap().to_string(), "down");
    /// assert!(refused.into_inner().is_none());
    /// ```
    pub fn into_inner(self) -> Option<E> {
        match self {
            Failure::Inner(error) => Some(error),
            Failure::Rejected(_) => None,
        }
    }

    /// The call's own error, if it ran, by reference.
    ///
    /// ```
    /// use reliable_runtime::{Failure, Rejected};
    /// use std::time::Duration;
    ///
    /// let failed: Failure<std::io::Error> = Failure::Inner(std::io::Error::other("down"));
    /// let refused: Failure<std::io::Error> = Failure::Rejected(Rejected::Timeout { after: Duration::from_secs(2) });
    /// assert_eq!(failed.inner().unwrap().to_string(), "down");
    /// assert!(refused.inner().is_none());
    /// ```
    pub fn inner(&self) -> Option<&E> {
        match self {
            Failure::Inner(error) => Some(error),
            Failure::Rejected(_) => None,
        }
    }

    /// The rejection, if the call was refused.
    ///
    /// ```
    /// use reliable_runtime::{Failure, Rejected};
    /// use std::time::Duration;
    ///
    /// let failed: Failure<std::io::Error> = Failure::Inner(std::io::Error::other("down"));
    /// let refused: Failure<std::io::Error> = Failure::Rejected(Rejected::Timeout { after: Duration::from_secs(2) });
    /// assert!(failed.rejected().is_none());
    /// assert_eq!(refused.rejected(), Some(&Rejected::Timeout { after: Duration::from_secs(2) }));
    /// ```
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            Failure::Rejected(rejected) => Some(rejected),
            Failure::Inner(_) => None,
        }
    }

    /// Turns the failure into `E`, converting a rejection with `E: From<Rejected>`.
    ///
    /// ```
    /// use reliable_runtime::{Failure, Rejected};
    ///
    /// #[derive(Debug, PartialEq)]
    /// struct ApiError(String);
    /// impl From<Rejected> for ApiError {
    ///     fn from(r: Rejected) -> Self { ApiError(r.to_string()) }
    /// }
    ///
    /// let failure: Failure<ApiError> =
    ///     Failure::Rejected(Rejected::CircuitOpen { breaker: "x", retry_after: None });
    /// assert_eq!(failure.into_error(), ApiError("circuit breaker `x` is open".into()));
    /// ```
    pub fn into_error(self) -> E
    where
        E: From<Rejected>,
    {
        match self {
            Failure::Inner(error) => error,
            Failure::Rejected(rejected) => E::from(rejected),
        }
    }
}

/// Transparent: a failure displays as the error it holds, and its [`source`] is that error's
/// source, so an error report (`anyhow`, `eyre`) that prints the chain shows each message once.
///
/// ```
/// use reliable_runtime::{Failure, Rejected};
/// use std::error::Error as _;
///
/// let failure: Failure<std::io::Error> = Failure::Inner(std::io::Error::other("down"));
/// assert_eq!(failure.to_string(), "down");
/// assert!(failure.source().is_none());
/// let refused: Failure<std::io::Error> = Failure::Rejected(Rejected::Timeout { after: std::time::Duration::from_secs(2) });
/// assert!(refused.to_string().contains("timed out"));
/// ```
///
/// [`source`]: std::error::Error::source
impl<E: fmt::Display> fmt::Display for Failure<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Inner(error) => error.fmt(f),
            Failure::Rejected(rejected) => rejected.fmt(f),
        }
    }
}

impl<E: std::error::Error + 'static> std::error::Error for Failure<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        // Not the held error itself: `Display` already shows it.
        match self {
            Failure::Inner(error) => error.source(),
            Failure::Rejected(rejected) => rejected.source(),
        }
    }
}

/// A configuration value that cannot work, with the field and the reason.
///
/// ```
/// use reliable_runtime::breaker::BreakerConfig;
///
/// let config = BreakerConfig::default().success_threshold(0);
/// let error = config.validate().unwrap_err();
/// assert_eq!(error.field(), "success_threshold");
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    reason: String,
    /// The layer of a [`Policy`](crate::Policy) whose configuration this is, e.g.
    /// "breaker `binance_api`".
    layer: Option<String>,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, reason: impl Into<String>) -> Self {
        ConfigError {
            field,
            reason: reason.into(),
            layer: None,
        }
    }

    /// `check`'s refusal, said of `field`.
    pub(crate) fn check(field: &'static str, check: reliable_rules::Check) -> Result<(), Self> {
        check.map_err(|reason| ConfigError::new(field, reason))
    }

    /// The same error, said of the `kind` layer named `name` (a policy builds several).
    pub(crate) fn in_layer(mut self, kind: &str, name: &str) -> Self {
        self.layer = Some(format!("{kind} `{name}`"));
        self
    }

    /// The layer of a [`Policy`](crate::Policy) at fault, e.g. "breaker `binance_api`", when the
    /// error came from building one.
    pub fn layer(&self) -> Option<&str> {
        self.layer.as_deref()
    }

    /// The configuration field at fault.
    pub fn field(&self) -> &'static str {
        self.field
    }

    /// Why the value cannot work.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(layer) = &self.layer {
            write!(f, "{layer}: ")?;
        }
        write!(f, "invalid `{}`: {}", self.field, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Runs the user callback `what` (a `retry_if`, `retry_after`, `failure_if` or `on_retry`)
/// under the one rule for callbacks: a panic never reaches the caller. It is logged, and the
/// call goes on with `default`, the answer the layer gives without a callback.
pub(crate) fn catch_callback<T>(what: &'static str, default: T, callback: impl FnOnce() -> T) -> T {
    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(callback)) {
        Ok(answer) => answer,
        Err(_) => {
            tracing::error!(
                callback = what,
                "a callback panicked; going on with its default"
            );
            default
        }
    }
}
