//! The webhook handler: an HTTP POST of each alert's JSON (feature `webhook`).

use super::{Alert, AlertHandler, HandlerError, HandlerFuture};
use crate::error::ConfigError;
use crate::retry::{BackoffConfig, RetryConfig, RetryError, RetryPolicy};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use std::fmt;
use std::time::Duration;

/// Posts each alert's JSON ([`Alert::to_json`]) to a URL, e.g. a Slack-compatible or a
/// monitoring endpoint (feature `webhook`; `https` URLs need `webhook-rustls`).
///
/// Each attempt has a timeout (default 10 s). A failed attempt (no connection, a timeout, or
/// an answer 408, 429 or 5xx) is retried with the runtime's [backoff](crate::retry)
/// (default [`BackoffConfig::cex`]: 0.5 s then up to 10 s, 3 attempts, full jitter); other
/// answers (4xx) are not retried. A delivery that fails in the end is an `Err`: counted in
/// [`HandlerStats::failed`](super::HandlerStats::failed) and logged.
///
/// ```
/// use reliable_runtime::alert::{alert_manager, WebhookHandler};
/// use reliable_runtime::retry::BackoffConfig;
/// use std::time::Duration;
///
/// let webhook = WebhookHandler::builder("http://127.0.0.1:9/alerts")
///     .timeout(Duration::from_secs(5))
///     .backoff(BackoffConfig::cex().max_attempts(5))
///     .header("authorization", "Bearer s3cret")
///     .build()
///     .unwrap();
/// assert_eq!(webhook.url(), "http://127.0.0.1:9/alerts");
/// let id = alert_manager().register(webhook);
/// # alert_manager().unregister(id);
/// ```
pub struct WebhookHandler {
    client: reqwest::Client,
    url: reqwest::Url,
    timeout: Duration,
    headers: HeaderMap,
    retry: RetryPolicy,
}

impl fmt::Debug for WebhookHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Header values may hold secrets: only their names are shown.
        f.debug_struct("WebhookHandler")
            .field("url", &self.url.as_str())
            .field("timeout", &self.timeout)
            .field("headers", &self.headers.keys().collect::<Vec<_>>())
            .field("backoff", &self.retry.config().backoff)
            .finish_non_exhaustive()
    }
}

/// Settings of a [`WebhookHandler`], checked by [`build`](Self::build).
#[derive(Clone, Debug)]
pub struct WebhookHandlerBuilder {
    url: String,
    timeout: Duration,
    backoff: BackoffConfig,
    headers: Vec<(String, String)>,
}

impl WebhookHandler {
    /// The timeout of one attempt unless [`WebhookHandlerBuilder::timeout`] says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// A webhook posting to `url` with the defaults.
    ///
    /// ```
    /// use reliable_runtime::alert::WebhookHandler;
    ///
    /// assert!(WebhookHandler::new("http://alerts.internal/hook").is_ok());
    /// assert_eq!(WebhookHandler::new("not a url").unwrap_err().field(), "url");
    /// ```
    pub fn new(url: impl Into<String>) -> Result<Self, ConfigError> {
        WebhookHandler::builder(url).build()
    }

    /// Starts the settings of a webhook posting to `url`.
    pub fn builder(url: impl Into<String>) -> WebhookHandlerBuilder {
        WebhookHandlerBuilder {
            url: url.into(),
            timeout: WebhookHandler::DEFAULT_TIMEOUT,
            backoff: BackoffConfig::cex(),
            headers: Vec::new(),
        }
    }

    /// The URL alerts are posted to.
    pub fn url(&self) -> &str {
        self.url.as_str()
    }

    /// Posts `alert` now, with retries; what [`AlertHandler::handle`] does on the handler's
    /// worker. Needs a tokio runtime.
    pub async fn send(&self, alert: &Alert) -> Result<(), HandlerError> {
        let body = alert.to_json();
        let attempt = || self.post(body.clone());
        match self.retry.call_if(attempt, Failure::is_transient).await {
            Ok(()) => Ok(()),
            Err(RetryError { error, attempts }) => Err(Box::new(WebhookError {
                url: self.url.to_string(),
                attempts,
                failure: error,
            })),
        }
    }

    async fn post(&self, body: String) -> Result<(), Failure> {
        let response = self
            .client
            .post(self.url.clone())
            .headers(self.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.timeout)
            .body(body)
            .send()
            .await
            .map_err(|error| Failure::Request(error.to_string()))?;
        let status = response.status();
        if status.is_success() {
            Ok(())
        } else {
            Err(Failure::Status(status.as_u16()))
        }
    }
}

impl WebhookHandlerBuilder {
    /// The timeout of each attempt (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Delays and attempts of the retries (default [`BackoffConfig::cex`]); `max_attempts: 1`
    /// turns retries off.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// A header sent with every request (e.g. `authorization`).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Checks the settings: the URL (`http`, or `https` with the feature `webhook-rustls`),
    /// the headers and the backoff.
    pub fn build(self) -> Result<WebhookHandler, ConfigError> {
        let url = reqwest::Url::parse(&self.url)
            .map_err(|error| ConfigError::new("url", format!("`{}`: {error}", self.url)))?;
        let schemes: &[&str] = if cfg!(feature = "webhook-rustls") {
            &["http", "https"]
        } else {
            &["http"]
        };
        if !schemes.contains(&url.scheme()) {
            return Err(ConfigError::new(
                "url",
                format!(
                    "`{url}`: the scheme must be one of {schemes:?} (https needs the feature `webhook-rustls`)"
                ),
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be above zero"));
        }
        let mut headers = HeaderMap::new();
        for (name, value) in &self.headers {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|error| ConfigError::new("header", format!("`{name}`: {error}")))?;
            let mut value = HeaderValue::from_str(value)
                .map_err(|error| ConfigError::new("header", format!("`{name}`: {error}")))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        let retry = RetryPolicy::new(
            "alert_webhook",
            RetryConfig {
                backoff: self.backoff,
                budget: None,
                ..RetryConfig::default()
            },
        )?;
        let client = reqwest::Client::builder()
            .build()
            .map_err(|error| ConfigError::new("client", error.to_string()))?;
        Ok(WebhookHandler {
            client,
            url,
            timeout: self.timeout,
            headers,
            retry,
        })
    }
}

impl AlertHandler for WebhookHandler {
    fn handle<'a>(&'a self, alert: &'a Alert) -> HandlerFuture<'a> {
        Box::pin(self.send(alert))
    }

    fn name(&self) -> String {
        format!("webhook {}", self.url)
    }
}

/// Why one attempt failed.
#[derive(Debug)]
enum Failure {
    /// No answer: no connection, a timeout, a broken connection.
    Request(String),
    /// An answer that is not a success.
    Status(u16),
}

impl Failure {
    fn is_transient(&self) -> bool {
        match self {
            Failure::Request(_) => true,
            Failure::Status(status) => matches!(status, 408 | 429 | 500..),
        }
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Failure::Request(error) => f.write_str(error),
            Failure::Status(status) => write!(f, "HTTP status {status}"),
        }
    }
}

/// A delivery that failed after its retries.
#[derive(Debug)]
struct WebhookError {
    url: String,
    attempts: u32,
    failure: Failure,
}

impl fmt::Display for WebhookError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "webhook POST to {} failed after {} attempt(s): {}",
            self.url, self.attempts, self.failure
        )
    }
}

impl std::error::Error for WebhookError {}
