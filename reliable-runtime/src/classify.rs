//! What an error means for the reliability layers: worth retrying, not worth it, or a request
//! to slow down.
//!
//! A 400 or a 401 will fail again however often it is retried, and says nothing about the
//! service's health; a reset connection or a 503 is worth another attempt and is what a
//! breaker is for; a 429 asks the caller to wait. An error type that implements [`Classify`]
//! says which of these it is, and a policy built with
//! [`PolicyBuilder::classify`](crate::PolicyBuilder::classify) then retries only transient,
//! rate-limited and unclassified errors (waiting a rate limit's hint), and counts only
//! transient and unclassified ones against the breaker and the SLA monitor. (The others are
//! recorded as successes there, as any error `failure_if` rejects is: the service answered.)
//!
//! | error | class |
//! |---|---|
//! | `std::io::Error`: refused, reset, aborted, not connected, broken pipe, timed out, interrupted, would block, unexpected end of file, host or network unreachable, network down, address not available | `Transient` |
//! | `std::io::Error`: not found, permission denied, invalid input or data, unsupported, already exists | `Permanent` |
//! | `tokio::time::error::Elapsed` (a timeout) | `Transient` |
//! | HTTP 408, 425, 500, 502, 503, 504 and other 5xx but 501 and 505 | `Transient` |
//! | HTTP 429 | `RateLimited` (with its `Retry-After` where the status comes with headers) |
//! | HTTP 501, 505 and other 4xx (400, 401, 403, 404, 422, ...) | `Permanent` |
//! | `reqwest::Error` (feature `http`): timeout, connect, a transient status | `Transient`; decode, builder, redirect, a permanent status: `Permanent`; 429: `RateLimited` |
//! | anything else | `Unknown`: treated as before classification (retried, counted) |
//!
//! ```
//! use reliable_runtime::classify::{Classify, ErrorClass};
//! use std::time::Duration;
//!
//! #[derive(Debug)]
//! enum ApiError {
//!     Http { status: u16, retry_after: Option<Duration> },
//!     Io(std::io::Error),
//!     BadSymbol,
//! }
//!
//! impl Classify for ApiError {
//!     fn class(&self) -> ErrorClass {
//!         match self {
//!             ApiError::Http { status, retry_after } => ErrorClass::of_status(*status, *retry_after),
//!             ApiError::Io(error) => error.class(),
//!             ApiError::BadSymbol => ErrorClass::Permanent,
//!         }
//!     }
//! }
//!
//! let limited = ApiError::Http { status: 429, retry_after: Some(Duration::from_secs(2)) };
//! assert_eq!(limited.class().retry_after(), Some(Duration::from_secs(2)));
//! assert!(ApiError::Http { status: 503, retry_after: None }.class().is_retryable());
//! assert!(!ApiError::BadSymbol.class().counts_as_failure());
//! ```

use std::io::ErrorKind;
use std::time::Duration;

/// Derives [`Classify`] for an error enum, one `#[classify(..)]` per variant:
///
/// | on a variant | its class |
/// |---|---|
/// | `transient`, `permanent`, `unknown` | that class |
/// | `rate_limited` | `RateLimited { retry_after: None }` |
/// | `rate_limited, retry_after = field` | `RateLimited` with that field's hint (a `Duration` or an `Option<Duration>`) |
/// | `status = field` | [`ErrorClass::of_status`] of that field (a `u16`, an `http::StatusCode`, any `Copy + Into<u16>`) |
/// | `delegate` | the class of the variant's one field (an `io::Error`, a `reqwest::Error`, your own type) |
/// | nothing | `Unknown`: retried and counted, as without classification |
///
/// A field is named by its name, or by its index in a tuple variant. `#[classify(crate =
/// path)]` on the enum names the runtime when it is renamed. A misspelt key, a field that does
/// not exist or two classes on one variant are compile errors at the token.
///
/// ```
/// use reliable_runtime::classify::{Classify, ErrorClass};
/// use std::time::Duration;
///
/// #[derive(Debug, Classify)]
/// enum ApiError {
///     #[classify(status = 0)]
///     Http(u16),
///     #[classify(rate_limited, retry_after = after)]
///     SlowDown { after: Option<Duration> },
///     #[classify(delegate)]
///     Io(std::io::Error),
///     #[classify(permanent)]
///     BadSymbol(String),
///     Other,
/// }
///
/// assert_eq!(ApiError::Http(503).class(), ErrorClass::Transient);
/// assert_eq!(ApiError::Http(401).class(), ErrorClass::Permanent);
/// let after = Some(Duration::from_secs(2));
/// assert_eq!(ApiError::SlowDown { after }.class().retry_after(), after);
/// let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
/// assert_eq!(ApiError::Io(reset).class(), ErrorClass::Transient);
/// assert_eq!(ApiError::BadSymbol("XYZ".into()).class(), ErrorClass::Permanent);
/// assert_eq!(ApiError::Other.class(), ErrorClass::Unknown);
/// ```
pub use reliable_macros::Classify;

/// What an error means for retries and breakers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorClass {
    /// A fault of the moment (a reset connection, a timeout, a 503): retried, and counted
    /// against the breaker and the SLA.
    Transient,
    /// The same request will fail again (a 400, a 401, a 404, a bad input): not retried, not
    /// counted against the service's health.
    Permanent,
    /// The server asks the caller to slow down (a 429): retried after `retry_after` when it
    /// says (else after the backoff's delay), not counted against the breaker.
    RateLimited {
        /// When the server said to come back, if it said.
        retry_after: Option<Duration>,
    },
    /// Not known: treated as an unclassified error is (retried, counted).
    Unknown,
}

impl ErrorClass {
    /// The class of an HTTP status (and, for a 429, its `Retry-After`): 408, 425 and 5xx but
    /// 501 and 505 are transient, 429 is rate limited, other 4xx, 501 and 505 permanent, and
    /// anything else (not an error status) unknown.
    ///
    /// ```
    /// use reliable_runtime::classify::ErrorClass;
    ///
    /// assert_eq!(ErrorClass::of_status(503, None), ErrorClass::Transient);
    /// assert_eq!(ErrorClass::of_status(401, None), ErrorClass::Permanent);
    /// assert_eq!(ErrorClass::of_status(429, None), ErrorClass::RateLimited { retry_after: None });
    /// ```
    pub fn of_status(status: u16, retry_after: Option<Duration>) -> ErrorClass {
        match status {
            429 => ErrorClass::RateLimited { retry_after },
            // Request Timeout, Too Early: the request may succeed sent again.
            408 | 425 => ErrorClass::Transient,
            // Not Implemented, HTTP Version Not Supported: the server will not change its mind.
            501 | 505 => ErrorClass::Permanent,
            500..=599 => ErrorClass::Transient,
            400..=499 => ErrorClass::Permanent,
            _ => ErrorClass::Unknown,
        }
    }

    /// Whether another attempt may succeed: every class but [`Permanent`](Self::Permanent).
    pub fn is_retryable(self) -> bool {
        self != ErrorClass::Permanent
    }

    /// Whether the error says the service is unwell (breaker, SLA monitor):
    /// [`Transient`](Self::Transient) and [`Unknown`](Self::Unknown).
    pub fn counts_as_failure(self) -> bool {
        matches!(self, ErrorClass::Transient | ErrorClass::Unknown)
    }

    /// A rate limit's hint of when to come back.
    pub fn retry_after(self) -> Option<Duration> {
        match self {
            ErrorClass::RateLimited { retry_after } => retry_after,
            _ => None,
        }
    }
}

/// An error that knows its [`ErrorClass`]. Implement it for your error type, then build the
/// policy with [`PolicyBuilder::classify`](crate::PolicyBuilder::classify).
pub trait Classify {
    /// What this error means for retries and breakers.
    fn class(&self) -> ErrorClass;
}

impl Classify for ErrorClass {
    fn class(&self) -> ErrorClass {
        *self
    }
}

impl Classify for std::io::Error {
    fn class(&self) -> ErrorClass {
        match self.kind() {
            ErrorKind::ConnectionRefused
            | ErrorKind::ConnectionReset
            | ErrorKind::ConnectionAborted
            | ErrorKind::NotConnected
            | ErrorKind::BrokenPipe
            | ErrorKind::TimedOut
            | ErrorKind::Interrupted
            | ErrorKind::WouldBlock
            | ErrorKind::UnexpectedEof
            | ErrorKind::HostUnreachable
            | ErrorKind::NetworkUnreachable
            | ErrorKind::NetworkDown
            | ErrorKind::AddrNotAvailable => ErrorClass::Transient,
            ErrorKind::NotFound
            | ErrorKind::PermissionDenied
            | ErrorKind::InvalidInput
            | ErrorKind::InvalidData
            | ErrorKind::Unsupported
            | ErrorKind::AlreadyExists => ErrorClass::Permanent,
            _ => ErrorClass::Unknown,
        }
    }
}

impl Classify for tokio::time::error::Elapsed {
    fn class(&self) -> ErrorClass {
        ErrorClass::Transient
    }
}

#[cfg(any(feature = "tower", feature = "http"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "http"))))]
impl Classify for http::StatusCode {
    /// The status alone: a 429 without its headers has no `Retry-After`.
    fn class(&self) -> ErrorClass {
        ErrorClass::of_status(self.as_u16(), None)
    }
}

#[cfg(any(feature = "tower", feature = "http"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "http"))))]
impl<B> Classify for http::Response<B> {
    /// The status, and for a 429 its `Retry-After` (seconds or an HTTP date).
    fn class(&self) -> ErrorClass {
        let hint = || retry_after(self.headers(), std::time::SystemTime::now());
        match ErrorClass::of_status(self.status().as_u16(), None) {
            ErrorClass::RateLimited { .. } => ErrorClass::RateLimited {
                retry_after: hint(),
            },
            class => class,
        }
    }
}

/// A `Retry-After` header's delay: delay-seconds or an HTTP date (a date in the past is no
/// delay); `None` when absent or malformed.
///
/// ```
/// use reliable_runtime::classify::retry_after;
/// use std::time::{Duration, SystemTime};
///
/// let mut headers = http::HeaderMap::new();
/// headers.insert(http::header::RETRY_AFTER, "2".parse().unwrap());
/// assert_eq!(retry_after(&headers, SystemTime::now()), Some(Duration::from_secs(2)));
/// let now = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_772);
/// headers.insert(http::header::RETRY_AFTER, "Sun, 06 Nov 1994 08:49:37 GMT".parse().unwrap());
/// assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(5)));
/// ```
#[cfg(any(feature = "tower", feature = "http"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "tower", feature = "http"))))]
pub fn retry_after(headers: &http::HeaderMap, now: std::time::SystemTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(feature = "http")]
#[cfg_attr(docsrs, doc(cfg(feature = "http")))]
impl Classify for reqwest::Error {
    /// By what failed: a timeout or a connection is transient; a status by
    /// [`ErrorClass::of_status`] (a 429 from `error_for_status` has lost its headers, so no
    /// `Retry-After`); a body that did not decode, a request that could not be built or a
    /// redirect loop is permanent; anything else unknown.
    fn class(&self) -> ErrorClass {
        if self.is_timeout() || self.is_connect() {
            ErrorClass::Transient
        } else if let Some(status) = self.status() {
            ErrorClass::of_status(status.as_u16(), None)
        } else if self.is_decode() || self.is_builder() || self.is_redirect() {
            ErrorClass::Permanent
        } else {
            ErrorClass::Unknown
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_by_kind() {
        for kind in [
            ErrorKind::ConnectionRefused,
            ErrorKind::ConnectionReset,
            ErrorKind::TimedOut,
            ErrorKind::UnexpectedEof,
            ErrorKind::BrokenPipe,
        ] {
            assert_eq!(
                std::io::Error::from(kind).class(),
                ErrorClass::Transient,
                "{kind:?}"
            );
        }
        for kind in [
            ErrorKind::PermissionDenied,
            ErrorKind::InvalidData,
            ErrorKind::NotFound,
        ] {
            assert_eq!(
                std::io::Error::from(kind).class(),
                ErrorClass::Permanent,
                "{kind:?}"
            );
        }
        assert_eq!(
            std::io::Error::from(ErrorKind::Other).class(),
            ErrorClass::Unknown
        );
    }

    #[test]
    fn statuses_by_code() {
        let hint = Some(Duration::from_secs(3));
        let cases = [
            (500, ErrorClass::Transient),
            (502, ErrorClass::Transient),
            (503, ErrorClass::Transient),
            (504, ErrorClass::Transient),
            (408, ErrorClass::Transient),
            (425, ErrorClass::Transient),
            (429, ErrorClass::RateLimited { retry_after: hint }),
            (400, ErrorClass::Permanent),
            (401, ErrorClass::Permanent),
            (403, ErrorClass::Permanent),
            (404, ErrorClass::Permanent),
            (422, ErrorClass::Permanent),
            (501, ErrorClass::Permanent),
            (505, ErrorClass::Permanent),
            (200, ErrorClass::Unknown),
            (302, ErrorClass::Unknown),
        ];
        for (status, class) in cases {
            assert_eq!(ErrorClass::of_status(status, hint), class, "{status}");
        }
    }

    #[test]
    fn what_each_class_means() {
        let limited = ErrorClass::RateLimited {
            retry_after: Some(Duration::from_secs(1)),
        };
        assert!(ErrorClass::Transient.is_retryable() && ErrorClass::Transient.counts_as_failure());
        assert!(ErrorClass::Unknown.is_retryable() && ErrorClass::Unknown.counts_as_failure());
        assert!(limited.is_retryable() && !limited.counts_as_failure());
        assert!(!ErrorClass::Permanent.is_retryable());
        assert!(!ErrorClass::Permanent.counts_as_failure());
        assert_eq!(limited.retry_after(), Some(Duration::from_secs(1)));
        assert_eq!(ErrorClass::Transient.retry_after(), None);
    }

    #[cfg(any(feature = "tower", feature = "http"))]
    #[test]
    fn a_429_response_carries_its_retry_after_in_either_form() {
        let response = |value: &str| {
            http::Response::builder()
                .status(429)
                .header(http::header::RETRY_AFTER, value)
                .body(())
                .unwrap()
        };
        assert_eq!(
            response("7").class(),
            ErrorClass::RateLimited {
                retry_after: Some(Duration::from_secs(7))
            }
        );
        let in_a_minute =
            httpdate::fmt_http_date(std::time::SystemTime::now() + Duration::from_secs(61));
        let hint = response(&in_a_minute).class().retry_after().unwrap();
        assert!(
            (Duration::from_secs(59)..=Duration::from_secs(61)).contains(&hint),
            "{hint:?}"
        );
        assert_eq!(
            response("soon").class(),
            ErrorClass::RateLimited { retry_after: None }
        );
        let unavailable = http::Response::builder().status(503).body(()).unwrap();
        assert_eq!(unavailable.class(), ErrorClass::Transient);
    }
}
