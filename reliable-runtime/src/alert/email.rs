//! The email handler: each alert as a mail through SMTP (feature `email`).

use super::{Alert, AlertHandler, HandlerError, HandlerFuture};
use crate::error::ConfigError;
use crate::retry::{BackoffConfig, RetryConfig, RetryError, RetryPolicy};
use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::fmt;
use std::time::Duration;

/// Mails each alert through an SMTP server (feature `email`; STARTTLS and implicit TLS need
/// `email-rustls`).
///
/// The subject is the alert's [title](Alert::title), with the severity and the source
/// (`[CRITICAL] circuit breaker binance_api: CLOSED -> OPEN`) after an optional prefix; the
/// body is the alert's message, then its JSON. Each SMTP exchange has a timeout (default
/// 10 s); a failure that is not permanent (no connection, a timeout, a 4xx answer) is retried
/// with the runtime's [backoff](crate::retry) (default [`BackoffConfig::cex`]).
///
/// ```
/// use reliable_runtime::alert::{alert_manager, EmailHandler};
/// use std::time::Duration;
///
/// let email = EmailHandler::builder("127.0.0.1")
///     .port(2525)
///     .from("Alerts <alerts@example.com>")
///     .to("oncall@example.com")
///     .to("backend@example.com")
///     .subject_prefix("[prod] ")
///     .timeout(Duration::from_secs(5))
///     .build()
///     .unwrap();
/// let id = alert_manager().register(email);
/// # alert_manager().unregister(id);
///
/// let missing_recipient = EmailHandler::builder("127.0.0.1").from("alerts@example.com").build();
/// assert_eq!(missing_recipient.unwrap_err().field(), "to");
/// ```
pub struct EmailHandler {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    subject_prefix: String,
    retry: RetryPolicy,
}

impl fmt::Debug for EmailHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EmailHandler")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field(
                "to",
                &self.to.iter().map(ToString::to_string).collect::<Vec<_>>(),
            )
            .field("subject_prefix", &self.subject_prefix)
            .finish_non_exhaustive()
    }
}

/// How the connection to the SMTP server is encrypted (feature `email-rustls`).
///
/// ```
/// use reliable_runtime::alert::{EmailHandler, EmailTls};
///
/// let email = EmailHandler::builder("smtp.example.com")
///     .tls(EmailTls::StartTls) // port 587 unless `port` says otherwise
///     .credentials("alerts", "s3cret")
///     .from("alerts@example.com")
///     .to("oncall@example.com")
///     .build()
///     .unwrap();
/// assert!(format!("{email:?}").contains("smtp.example.com:587"));
/// ```
#[cfg(feature = "email-rustls")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum EmailTls {
    /// Plain SMTP (default port 25): for a trusted relay on the same host or network only.
    #[default]
    None,
    /// Plain, then upgraded with STARTTLS, which must succeed (default port 587).
    StartTls,
    /// TLS from the start, "SMTPS" (default port 465).
    Implicit,
}

/// Settings of an [`EmailHandler`], checked by [`build`](Self::build).
#[derive(Clone)]
pub struct EmailHandlerBuilder {
    host: String,
    port: Option<u16>,
    from: Option<String>,
    to: Vec<String>,
    credentials: Option<(String, String)>,
    timeout: Duration,
    subject_prefix: String,
    backoff: BackoffConfig,
    #[cfg(feature = "email-rustls")]
    tls: EmailTls,
}

impl fmt::Debug for EmailHandlerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The password is never shown.
        f.debug_struct("EmailHandlerBuilder")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("user", &self.credentials.as_ref().map(|(user, _)| user))
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl EmailHandler {
    /// The timeout of each SMTP exchange unless [`EmailHandlerBuilder::timeout`] says otherwise.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

    /// Starts the settings of a handler that sends through the SMTP server at `host`.
    pub fn builder(host: impl Into<String>) -> EmailHandlerBuilder {
        EmailHandlerBuilder {
            host: host.into(),
            port: None,
            from: None,
            to: Vec::new(),
            credentials: None,
            timeout: EmailHandler::DEFAULT_TIMEOUT,
            subject_prefix: String::new(),
            backoff: BackoffConfig::cex(),
            #[cfg(feature = "email-rustls")]
            tls: EmailTls::None,
        }
    }

    /// The subject of `alert`'s mail: the prefix, then the alert's [title](Alert::title).
    ///
    /// ```
    /// use reliable_runtime::alert::{Alert, EmailHandler};
    /// use reliable_runtime::breaker::BreakerState;
    ///
    /// let email = EmailHandler::builder("127.0.0.1").from("a@example.com").to("b@example.com")
    ///     .subject_prefix("[prod] ").build().unwrap();
    /// let alert = Alert::breaker("binance_api", BreakerState::Closed, BreakerState::Open, 5);
    /// assert_eq!(email.subject(&alert), "[prod] [CRITICAL] circuit breaker binance_api: CLOSED -> OPEN");
    /// ```
    pub fn subject(&self, alert: &Alert) -> String {
        format!("{}{}", self.subject_prefix, alert.title())
    }

    /// Mails `alert` now, with retries; what [`AlertHandler::handle`] does on the handler's
    /// worker. Needs a tokio runtime.
    pub async fn send(&self, alert: &Alert) -> Result<(), HandlerError> {
        let mut message = Message::builder()
            .from(self.from.clone())
            .subject(self.subject(alert))
            .message_id(None)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            message = message.to(to.clone());
        }
        let body = format!("{}\n\n{}\n", alert.message, alert.to_json_pretty());
        let message = message.body(body)?;
        let attempt = || self.transport.send(message.clone());
        let retryable =
            |error: &lettre::transport::smtp::Error| !error.is_permanent() && !error.is_client();
        match self.retry.call_if(attempt, retryable).await {
            Ok(_) => Ok(()),
            Err(RetryError { error, attempts }) => Err(format!(
                "mail to {} through {} failed after {attempts} attempt(s): {error}",
                self.to
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
                self.server
            )
            .into()),
        }
    }
}

impl EmailHandlerBuilder {
    /// The server's port (default 25; with `email-rustls`, 587 for STARTTLS and 465 for
    /// implicit TLS).
    pub fn port(mut self, port: u16) -> Self {
        self.port = Some(port);
        self
    }

    /// The sender: `alerts@example.com` or `Alerts <alerts@example.com>`. Required.
    pub fn from(mut self, address: impl Into<String>) -> Self {
        self.from = Some(address.into());
        self
    }

    /// Adds a recipient (same forms as `from`). At least one is required.
    pub fn to(mut self, address: impl Into<String>) -> Self {
        self.to.push(address.into());
        self
    }

    /// Logs in with a user name and a password (only over a connection the server accepts
    /// them on: usually an encrypted one).
    pub fn credentials(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials = Some((user.into(), password.into()));
        self
    }

    /// The timeout of each SMTP exchange (default 10 s).
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Text put before each subject, e.g. `"[prod] "` (default none).
    pub fn subject_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.subject_prefix = prefix.into();
        self
    }

    /// Delays and attempts of the retries (default [`BackoffConfig::cex`]); `max_attempts: 1`
    /// turns retries off.
    pub fn backoff(mut self, backoff: BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// How the connection is encrypted (default [`EmailTls::None`]).
    #[cfg(feature = "email-rustls")]
    pub fn tls(mut self, tls: EmailTls) -> Self {
        self.tls = tls;
        self
    }

    /// Checks the settings: the addresses, at least one recipient, the timeout and the
    /// backoff.
    pub fn build(self) -> Result<EmailHandler, ConfigError> {
        let mailbox = |field: &'static str, address: &str| {
            address
                .parse::<Mailbox>()
                .map_err(|error| ConfigError::new(field, format!("`{address}`: {error}")))
        };
        let from = mailbox(
            "from",
            self.from
                .as_deref()
                .ok_or_else(|| ConfigError::new("from", "a sender address is required"))?,
        )?;
        if self.to.is_empty() {
            return Err(ConfigError::new("to", "at least one recipient is required"));
        }
        let to = self
            .to
            .iter()
            .map(|address| mailbox("to", address))
            .collect::<Result<Vec<_>, _>>()?;
        if self.host.is_empty() {
            return Err(ConfigError::new(
                "host",
                "the SMTP server's host is required",
            ));
        }
        if self.timeout.is_zero() {
            return Err(ConfigError::new("timeout", "must be above zero"));
        }
        let retry = RetryPolicy::new(
            "alert_email",
            RetryConfig {
                backoff: self.backoff,
                budget: None,
                ..RetryConfig::default()
            },
        )?;
        let port = self.port.unwrap_or_else(|| self.default_port());
        let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&self.host)
            .port(port)
            .timeout(Some(self.timeout));
        #[cfg(feature = "email-rustls")]
        {
            use lettre::transport::smtp::client::{Tls, TlsParameters};
            let parameters = || {
                TlsParameters::new(self.host.clone())
                    .map_err(|error| ConfigError::new("tls", error.to_string()))
            };
            transport = match self.tls {
                EmailTls::None => transport,
                EmailTls::StartTls => transport.tls(Tls::Required(parameters()?)),
                EmailTls::Implicit => transport.tls(Tls::Wrapper(parameters()?)),
            };
        }
        if let Some((user, password)) = self.credentials {
            transport = transport.credentials(Credentials::new(user, password));
        }
        Ok(EmailHandler {
            transport: transport.build(),
            server: format!("{}:{port}", self.host),
            from,
            to,
            subject_prefix: self.subject_prefix,
            retry,
        })
    }

    fn default_port(&self) -> u16 {
        #[cfg(feature = "email-rustls")]
        match self.tls {
            EmailTls::None => {}
            EmailTls::StartTls => return 587,
            EmailTls::Implicit => return 465,
        }
        25
    }
}

impl AlertHandler for EmailHandler {
    fn handle<'a>(&'a self, alert: &'a Alert) -> HandlerFuture<'a> {
        Box::pin(self.send(alert))
    }

    fn name(&self) -> String {
        format!("email via {}", self.server)
    }
}
