//! [`HttpError`]: why a request through a [`Client`](super::Client) failed.

use crate::classify::{Classify, ErrorClass};
use crate::error::Rejected;
use std::fmt;
use std::time::Duration;

/// Why a request failed: an error status, no answer, an answer that did not decode, or a
/// reliability layer that refused it. Its [`Classify`] is what the client retries and counts.
#[derive(Debug)]
#[non_exhaustive]
pub enum HttpError {
    /// The server answered with an error status (4xx or 5xx).
    Status {
        /// The status.
        status: ::http::StatusCode,
        /// The answer's `Retry-After` (seconds or an HTTP date), if it had one. A 429's is
        /// waited before the retry; any other status's is kept here for the caller (a 503 is
        /// retried on the backoff's delays).
        retry_after: Option<Duration>,
        /// The request's URL (boxed: it is most of the error's size otherwise).
        url: Box<reqwest::Url>,
        /// The start of the body (up to 512 bytes, lossy UTF-8): an API's own error message.
        body: String,
    },
    /// No answer: refused, reset, timed out while connecting, or a body cut short.
    Transport(reqwest::Error),
    /// An answer that did not decode as the type asked for.
    Decode {
        /// The request's URL.
        url: Box<reqwest::Url>,
        /// Why.
        error: serde_json::Error,
    },
    /// A reliability layer did not make the request, or gave up on it: the source's breaker
    /// is open, its rate limit or its connections are full, or a timeout or the deadline passed.
    Rejected(Rejected),
    /// The request's JSON body did not serialise; it was not sent.
    Encode(serde_json::Error),
    /// The source's policy could not be built: a layer name it uses is registered with other
    /// settings (two profiles naming one breaker differently). Not sent.
    Config(crate::error::ConfigError),
}

impl From<Rejected> for HttpError {
    fn from(rejected: Rejected) -> Self {
        HttpError::Rejected(rejected)
    }
}

impl HttpError {
    /// The error status, if the server answered with one.
    pub fn status(&self) -> Option<::http::StatusCode> {
        match self {
            HttpError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The refusal, if a layer refused.
    pub fn rejected(&self) -> Option<&Rejected> {
        match self {
            HttpError::Rejected(rejected) => Some(rejected),
            _ => None,
        }
    }
}

impl Classify for HttpError {
    /// A status by [`ErrorClass::of_status`] (a 429 with its `Retry-After`); no answer by
    /// [`reqwest::Error`]'s class; a body that does not decode is permanent; a refusal is
    /// transient (the runtime never retries one but a timeout).
    fn class(&self) -> ErrorClass {
        match self {
            HttpError::Status {
                status,
                retry_after,
                ..
            } => ErrorClass::of_status(status.as_u16(), *retry_after),
            HttpError::Transport(error) => match error.class() {
                // A request that failed without a status, a timeout, a connection or a
                // builder error: the connection broke mid-way. Worth another attempt.
                ErrorClass::Unknown => ErrorClass::Transient,
                class => class,
            },
            HttpError::Decode { .. } | HttpError::Encode(_) | HttpError::Config(_) => {
                ErrorClass::Permanent
            }
            // A weight limit refusing an attempt (the source's own layers refuse before any
            // attempt and are never retried): wait for the weight, as for a 429.
            HttpError::Rejected(Rejected::RateLimited { retry_after, .. }) => {
                ErrorClass::RateLimited {
                    retry_after: Some(*retry_after),
                }
            }
            HttpError::Rejected(_) => ErrorClass::Transient,
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Status {
                status, url, body, ..
            } => {
                write!(f, "{url} answered {status}")?;
                if !body.is_empty() {
                    write!(f, ": {body}")?;
                }
                Ok(())
            }
            HttpError::Transport(error) => write!(f, "no answer: {error}"),
            HttpError::Decode { url, error } => {
                write!(f, "{url}: the answer did not decode: {error}")
            }
            HttpError::Rejected(rejected) => write!(f, "{rejected}"),
            HttpError::Encode(error) => write!(f, "the request's body did not serialise: {error}"),
            HttpError::Config(error) => write!(f, "the source's policy: {error}"),
        }
    }
}

impl std::error::Error for HttpError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            HttpError::Transport(error) => Some(error),
            HttpError::Decode { error, .. } => Some(error),
            HttpError::Rejected(rejected) => Some(rejected),
            HttpError::Encode(error) => Some(error),
            HttpError::Config(error) => Some(error),
            HttpError::Status { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Small enough to return by value (clippy's `result_large_err` warns past 128 bytes, in
    /// every user's crate that returns it).
    #[test]
    fn the_error_stays_small() {
        assert!(std::mem::size_of::<super::HttpError>() <= 64);
    }
}
