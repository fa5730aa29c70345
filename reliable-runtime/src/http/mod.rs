//! A hardened HTTP client (feature `http`): every request goes through its source's
//! [`Policy`]: timeouts, retries, a breaker and a rate limit per source.
//!
//! - **A source per host** (`host:port` when the URL names a port), or per URL prefix you map
//!   to a name ([`ClientBuilder::source`]), each with its own [`Profile`]: a timeout on every
//!   attempt, growing with each retry, and a deadline for the whole request; retries of
//!   transient errors and 429s only (a 429 waits its `Retry-After`, seconds or an HTTP date);
//!   a breaker counting 5xx, timeouts and refused connections (not 4xx, not 429s); a
//!   sliding-window rate limit (60 a minute by default); at most 20 requests in flight.
//! - **Connections**: at most 100 requests in flight across sources (a request holds its
//!   slot for all its attempts, taken before they are timed), 20 idle connections kept per
//!   host, and DNS answers kept for a minute.
//! - **Only what is safe is sent twice**: GET, HEAD, PUT, DELETE, OPTIONS and TRACE are
//!   retried; a POST or PATCH is sent once unless marked
//!   [`idempotent`](RequestBuilder::idempotent) (an order sent twice is two trades).
//! - **Health**: each source's monitor, breaker, retries, limit and timeouts are registered
//!   under its name, so `get_system_health()` and the health endpoints show them. The names
//!   are the process's, as every layer's: two clients calling one source share its layers,
//!   and a second, different profile for a name already built is refused
//!   ([`HttpError::Config`]). A client calling arbitrary hosts makes a source per host; map
//!   them to a few names if there are many.
//! - **What the timeouts cover**: [`get_json`](Client::get_json) and
//!   [`fetch_json`](RequestBuilder::fetch_json) read the body inside the attempt, under its
//!   timeout. [`send`](RequestBuilder::send) returns at the headers; reading the body after it
//!   is bounded by reqwest's own timeout, set to the profile's deadline (or its longest
//!   attempt). Waiting for a rate-limit or bulkhead slot is not counted in the deadline.
//! - **HTTPS** needs feature `http-rustls` (rustls); without it an https URL is refused at
//!   once, never sent.
//!
//! ```no_run
//! use reliable_runtime::http::{Client, HttpError, Profile};
//!
//! #[derive(serde::Deserialize)]
//! struct Price {
//!     symbol: String,
//!     price: String,
//! }
//!
//! # async fn run() -> Result<(), HttpError> {
//! let client = Client::builder()
//!     .source_with(
//!         "binance",
//!         "https://api.binance.com/",
//!         Profile::default().rate_limit_per_minute(Some(1200)).group("binance"),
//!     )
//!     .build()
//!     .expect("valid profiles");
//! let price: Price = client
//!     .get_json("https://api.binance.com/api/v3/ticker/price?symbol=BTCUSDT")
//!     .await?;
//! println!("{}: {}", price.symbol, price.price);
//! # Ok(())
//! # }
//! ```
//!
//! A request whose body is a stream (not cloneable) is sent once, not retried.

mod dns;
mod error;
mod profile;

pub use error::HttpError;
pub use profile::{Customize, Profile};

use crate::error::ConfigError;
use crate::Policy;
use dashmap::DashMap;
use serde::de::DeserializeOwned;
use std::fmt;
use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

/// The body of an error answer kept in [`HttpError::Status`].
const ERROR_BODY_BYTES: usize = 512;

/// A reqwest client whose every request goes through its source's [`Policy`].
///
/// Cheap to share: put it in an `Arc`, or clone it (the clones share connections and sources).
#[derive(Clone)]
pub struct Client {
    shared: Arc<Shared>,
}

struct Shared {
    inner: reqwest::Client,
    profile: Profile,
    /// URL prefixes mapped to sources, longest path first.
    prefixes: Vec<(reqwest::Url, String, Profile)>,
    policies: DashMap<String, Arc<Policy>>,
    /// Requests in flight across every source.
    in_flight: tokio::sync::Semaphore,
}

impl fmt::Debug for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Client")
            .field("profile", &self.shared.profile)
            .field(
                "sources",
                &self
                    .shared
                    .prefixes
                    .iter()
                    .map(|(prefix, name, _)| (prefix.as_str(), name))
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

/// Builds a [`Client`]: its default [`Profile`], the sources mapped by URL prefix, and the
/// connection settings.
pub struct ClientBuilder {
    profile: Profile,
    sources: Vec<(String, String, Option<Profile>)>,
    max_connections: usize,
    max_idle_per_host: usize,
    dns_ttl: Option<Duration>,
    connect_timeout: Option<Duration>,
    user_agent: Option<String>,
    configure: Vec<Box<dyn FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send>>,
}

impl fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("profile", &self.profile)
            .field("sources", &self.sources.len())
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            profile: Profile::default(),
            sources: Vec::new(),
            max_connections: 100,
            max_idle_per_host: 20,
            dns_ttl: Some(Duration::from_secs(60)),
            connect_timeout: None,
            user_agent: None,
            configure: Vec::new(),
        }
    }
}

impl ClientBuilder {
    /// The profile of every source not given one (default: [`Profile::default`]).
    #[must_use]
    pub fn profile(mut self, profile: Profile) -> Self {
        self.profile = profile;
        self
    }

    /// Requests whose URL starts with `prefix` belong to source `name` (with the default
    /// profile); the longest matching prefix wins.
    #[must_use]
    pub fn source(mut self, name: impl Into<String>, prefix: impl Into<String>) -> Self {
        self.sources.push((prefix.into(), name.into(), None));
        self
    }

    /// [`source`](Self::source) with its own profile.
    #[must_use]
    pub fn source_with(
        mut self,
        name: impl Into<String>,
        prefix: impl Into<String>,
        profile: Profile,
    ) -> Self {
        self.sources
            .push((prefix.into(), name.into(), Some(profile)));
        self
    }

    /// At most `max` requests in flight across every source (default 100).
    #[must_use]
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max;
        self
    }

    /// Idle connections kept per host (default 20).
    #[must_use]
    pub fn max_idle_per_host(mut self, max: usize) -> Self {
        self.max_idle_per_host = max;
        self
    }

    /// How long a host's addresses are kept (default a minute; `None`: resolve for every new
    /// connection).
    #[must_use]
    pub fn dns_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.dns_ttl = ttl;
        self
    }

    /// The limit on connecting (default: the attempt's timeout alone).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// The `User-Agent` header.
    #[must_use]
    pub fn user_agent(mut self, agent: impl Into<String>) -> Self {
        self.user_agent = Some(agent.into());
        self
    }

    /// Any other reqwest setting (TLS, proxies, default headers), applied last.
    #[must_use]
    pub fn configure_reqwest(
        mut self,
        configure: impl FnOnce(reqwest::ClientBuilder) -> reqwest::ClientBuilder + Send + 'static,
    ) -> Self {
        self.configure.push(Box::new(configure));
        self
    }

    /// The client, after checking every profile (an error names the field) and building the
    /// mapped sources' policies (a layer name registered with other settings is an error).
    pub fn build(self) -> Result<Client, ConfigError> {
        self.profile.validate()?;
        if self.max_connections == 0 || self.max_connections > tokio::sync::Semaphore::MAX_PERMITS {
            return Err(ConfigError::new(
                "max_connections",
                format!(
                    "must be between 1 and {}",
                    tokio::sync::Semaphore::MAX_PERMITS
                ),
            ));
        }
        let mut reqwest = reqwest::Client::builder()
            .pool_max_idle_per_host(self.max_idle_per_host)
            .tcp_nodelay(true);
        if let Some(ttl) = self.dns_ttl {
            reqwest = reqwest.dns_resolver(dns::CachingResolver::system(ttl));
        }
        if let Some(timeout) = self.connect_timeout {
            reqwest = reqwest.connect_timeout(timeout);
        }
        if let Some(agent) = &self.user_agent {
            reqwest = reqwest.user_agent(agent.as_str());
        }
        for configure in self.configure {
            reqwest = configure(reqwest);
        }
        let inner = reqwest
            .build()
            .map_err(|error| ConfigError::new("reqwest", error.to_string()))?;
        let mut prefixes = Vec::new();
        for (prefix, name, profile) in self.sources {
            let profile = profile.unwrap_or_else(|| self.profile.clone());
            profile.validate()?;
            let prefix = reqwest::Url::parse(&prefix).map_err(|error| {
                ConfigError::new("source", format!("`{prefix}` is not a URL: {error}"))
            })?;
            if prefix.host_str().is_none() {
                return Err(ConfigError::new(
                    "source",
                    format!("`{prefix}` names no host"),
                ));
            }
            prefixes.push((prefix, name, profile));
        }
        prefixes.sort_by_key(|(prefix, _, _)| std::cmp::Reverse(prefix.path().len()));
        let shared = Shared {
            inner,
            profile: self.profile,
            prefixes,
            policies: DashMap::new(),
            in_flight: tokio::sync::Semaphore::new(self.max_connections),
        };
        let client = Client {
            shared: Arc::new(shared),
        };
        for (_, name, profile) in &client.shared.prefixes {
            client.policy_with(name, profile)?;
        }
        Ok(client)
    }
}

impl Client {
    /// A client with [`Profile::default`] for every source: attempts timed out at 10 s growing
    /// to 30 s, a 2 min deadline, 3 attempts, a breaker opening for 60 s after 5 failures, and
    /// 60 requests a minute.
    pub fn new() -> Result<Client, ConfigError> {
        Client::builder().build()
    }

    /// A [`ClientBuilder`].
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// The reqwest client underneath (its requests bypass the policies).
    pub fn reqwest(&self) -> &reqwest::Client {
        &self.shared.inner
    }

    /// A GET of `url`.
    pub fn get(&self, url: impl reqwest::IntoUrl) -> RequestBuilder<'_> {
        self.request(reqwest::Method::GET, url)
    }

    /// A POST to `url`.
    pub fn post(&self, url: impl reqwest::IntoUrl) -> RequestBuilder<'_> {
        self.request(reqwest::Method::POST, url)
    }

    /// A PUT to `url`.
    pub fn put(&self, url: impl reqwest::IntoUrl) -> RequestBuilder<'_> {
        self.request(reqwest::Method::PUT, url)
    }

    /// A DELETE of `url`.
    pub fn delete(&self, url: impl reqwest::IntoUrl) -> RequestBuilder<'_> {
        self.request(reqwest::Method::DELETE, url)
    }

    /// A request of `method` to `url`.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: impl reqwest::IntoUrl,
    ) -> RequestBuilder<'_> {
        RequestBuilder {
            client: self,
            inner: self.shared.inner.request(method, url),
            source: None,
            weight: 1,
            idempotent: false,
            encode_error: None,
        }
    }

    /// GETs `url` and decodes its JSON body as `T`; the body is read inside the attempt, so a
    /// connection cut while reading is retried too.
    pub async fn get_json<T: DeserializeOwned>(
        &self,
        url: impl reqwest::IntoUrl,
    ) -> Result<T, HttpError> {
        self.get(url).fetch_json().await
    }

    /// Sends `request` through its source's policy.
    pub async fn execute(&self, request: reqwest::Request) -> Result<reqwest::Response, HttpError> {
        self.execute_as(request, None, 1, false, |response| async { Ok(response) })
            .await
    }

    /// The source a request to `url` belongs to: the longest mapped prefix's, else its host
    /// (`host:port` when the URL names a port).
    pub fn source_of(&self, url: &reqwest::Url) -> String {
        self.mapped(url)
            .map(|(name, _)| name.to_owned())
            .unwrap_or_else(|| host_source(url))
    }

    /// The policy of source `name`, once a request has gone to it (or it is mapped).
    pub fn policy(&self, name: &str) -> Option<Arc<Policy>> {
        self.shared
            .policies
            .get(name)
            .map(|policy| Arc::clone(&policy))
    }

    /// The mapped source of `url`: the same scheme, host and port as a prefix, and a path
    /// under the prefix's by whole segments (`/api/v3/depth` holds `/api/v3/depth?..` and
    /// `/api/v3/depth/x`, not `/api/v3/depthx`). URLs compare as parsed, so case and default
    /// ports do not matter, and `api.binance.com.evil.io` is not `api.binance.com`.
    fn mapped(&self, url: &reqwest::Url) -> Option<(&str, &Profile)> {
        self.shared
            .prefixes
            .iter()
            .find(|(prefix, _, _)| under(url, prefix))
            .map(|(_, name, profile)| (name.as_str(), profile))
    }

    /// The profile of the source named `name` if it is mapped, else the default.
    fn profile_named(&self, name: &str) -> &Profile {
        self.shared
            .prefixes
            .iter()
            .find(|(_, mapped, _)| mapped == name)
            .map_or(&self.shared.profile, |(_, _, profile)| profile)
    }

    /// The policy of `name`, built with `profile` on first use.
    fn policy_with(&self, name: &str, profile: &Profile) -> Result<Arc<Policy>, ConfigError> {
        if let Some(policy) = self.shared.policies.get(name) {
            return Ok(Arc::clone(&policy));
        }
        let policy = Arc::new(profile.builder(name).build()?);
        Ok(Arc::clone(
            &self
                .shared
                .policies
                .entry(name.to_owned())
                .or_insert(policy),
        ))
    }

    /// Sends `request` as source `source` (or its URL's), `read` making the attempt's
    /// output from a successful response (inside the attempt: under its timeout, retried).
    async fn execute_as<T, Read, Reading>(
        &self,
        mut request: reqwest::Request,
        source: Option<String>,
        weight: u32,
        idempotent: bool,
        read: Read,
    ) -> Result<T, HttpError>
    where
        Read: Fn(reqwest::Response) -> Reading,
        Reading: Future<Output = Result<T, HttpError>>,
    {
        // Borrowed where it can be: a mapped source's name costs no allocation per request.
        let (name, profile): (std::borrow::Cow<'_, str>, &Profile) = match &source {
            // A source named for the request is that source, profile and all.
            Some(name) => (name.as_str().into(), self.profile_named(name)),
            None => match self.mapped(request.url()) {
                Some((name, profile)) => (name.into(), profile),
                None => (host_source(request.url()).into(), &self.shared.profile),
            },
        };
        if request.url().scheme() == "https" && !cfg!(feature = "http-rustls") {
            return Err(HttpError::Config(ConfigError::new(
                "url",
                "an https URL needs the `http-rustls` feature (the TLS backend)",
            )));
        }
        if let Some(limiter) = &profile.weight_limit {
            never_fits(limiter.fits(weight), weight, limiter.name())?;
        }
        #[cfg(feature = "redis")]
        if let Some(limiter) = &profile.shared_weight_limit {
            never_fits(limiter.fits(weight), weight, limiter.name())?;
        }
        let policy = self
            .policy_with(&name, profile)
            .map_err(HttpError::Config)?;
        // A connection slot for the whole call, taken before its attempts are timed: a client
        // full of slow requests to one host makes the others wait, not time out against their
        // own breakers.
        let _slot = self
            .shared
            .in_flight
            .acquire()
            .await
            .expect("the semaphore is never closed");
        // A body read after `send` returns is outside the attempts: reqwest's own timeout, the
        // request's deadline (or its longest attempt), keeps it from hanging.
        if request.timeout().is_none() {
            *request.timeout_mut() = Some(profile.deadline.unwrap_or(profile.max_timeout));
        }
        let read = &read;
        // Sent again only when that is safe: an idempotent method, or a request marked so.
        let retried = idempotent || request.method().is_idempotent();
        if retried && request.try_clone().is_some() {
            policy
                .call(|| {
                    let request = request.try_clone().expect("cloned before");
                    async move { read(self.attempt(request, profile, weight).await?).await }
                })
                .await
        } else {
            // A streamed body, or a POST not marked idempotent (a second order would be a
            // second trade): sent once.
            let once = Mutex::new(Some(request));
            policy
                .call_once(|| async {
                    let request = once
                        .lock()
                        .unwrap_or_else(PoisonError::into_inner)
                        .take()
                        .expect("called once");
                    read(self.attempt(request, profile, weight).await?).await
                })
                .await
        }
    }

    /// One attempt: its weight, a connection slot, the request, an error status as an error;
    /// the server's report of used weight taken.
    async fn attempt(
        &self,
        request: reqwest::Request,
        profile: &Profile,
        weight: u32,
    ) -> Result<reqwest::Response, HttpError> {
        if let Some(limiter) = &profile.weight_limit {
            limiter.try_acquire(weight)?;
        }
        // Boxed as a trait object: the server's answer is a deep future type, which would
        // otherwise deepen every request's past what a caller's `Send` check can follow.
        #[cfg(feature = "redis")]
        if let Some(limiter) = &profile.shared_weight_limit {
            let admitted: std::pin::Pin<
                Box<dyn std::future::Future<Output = Result<(), crate::Rejected>> + Send + '_>,
            > = Box::pin(limiter.try_acquire(weight));
            admitted.await?;
        }
        let url = request.url().clone();
        let response = self
            .shared
            .inner
            .execute(request)
            .await
            .map_err(HttpError::Transport)?;
        if let (Some(limiter), Some((header, window))) =
            (&profile.weight_limit, &profile.used_weight_header)
        {
            let used = response.headers().get(header);
            if let Some(used) = used.and_then(|used| used.to_str().ok()?.trim().parse().ok()) {
                limiter.correct(*window, used);
            }
        }
        let status = response.status();
        if !(status.is_client_error() || status.is_server_error()) {
            return Ok(response);
        }
        let retry_after =
            crate::classify::retry_after(response.headers(), std::time::SystemTime::now());
        // The start of the body: an API's own words on what went wrong. Read a chunk at a time
        // up to what is kept (a huge or endless body is not read whole); a body that cannot be
        // read is left out, the status says enough.
        let mut response = response;
        let mut start = Vec::new();
        while start.len() < ERROR_BODY_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => start.extend_from_slice(&chunk),
                Ok(None) | Err(_) => break,
            }
        }
        start.truncate(ERROR_BODY_BYTES);
        let body = String::from_utf8_lossy(&start).into_owned();
        Err(HttpError::Status {
            status,
            retry_after,
            url: Box::new(url),
            body,
        })
    }
}

/// A source named after a URL's host, with its port when the URL names one.
fn host_source(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("unknown");
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// A request being built: reqwest's builder, sent through the client's policies.
#[must_use = "a request does nothing until it is sent"]
pub struct RequestBuilder<'a> {
    client: &'a Client,
    inner: reqwest::RequestBuilder,
    source: Option<String>,
    weight: u32,
    idempotent: bool,
    /// A JSON body that did not serialise, reported when sent.
    encode_error: Option<serde_json::Error>,
}

impl fmt::Debug for RequestBuilder<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestBuilder")
            .field("inner", &self.inner)
            .field("source", &self.source)
            .finish()
    }
}

impl<'a> RequestBuilder<'a> {
    /// Counts this request as source `name`, whatever its URL (with the profile its URL maps
    /// to, or the default).
    pub fn source(mut self, name: impl Into<String>) -> Self {
        self.source = Some(name.into());
        self
    }

    /// The request's weight in its source's weight limit (1 by default; Binance's depth of
    /// 5000 levels weighs 250).
    pub fn weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Marks the request safe to send again (a POST with an idempotency key, say): retried
    /// like a GET. Without it, only idempotent methods (GET, HEAD, PUT, DELETE, OPTIONS,
    /// TRACE) are retried; a POST or PATCH is sent once.
    pub fn idempotent(mut self) -> Self {
        self.idempotent = true;
        self
    }

    /// Adds a header.
    pub fn header<K, V>(mut self, key: K, value: V) -> Self
    where
        ::http::HeaderName: TryFrom<K>,
        <::http::HeaderName as TryFrom<K>>::Error: Into<::http::Error>,
        ::http::HeaderValue: TryFrom<V>,
        <::http::HeaderValue as TryFrom<V>>::Error: Into<::http::Error>,
    {
        self.inner = self.inner.header(key, value);
        self
    }

    /// Adds query parameters.
    pub fn query<T: serde::Serialize + ?Sized>(mut self, query: &T) -> Self {
        self.inner = self.inner.query(query);
        self
    }

    /// A bearer token.
    pub fn bearer_auth<T: fmt::Display>(mut self, token: T) -> Self {
        self.inner = self.inner.bearer_auth(token);
        self
    }

    /// A body.
    pub fn body(mut self, body: impl Into<reqwest::Body>) -> Self {
        self.inner = self.inner.body(body);
        self
    }

    /// A JSON body (and its `Content-Type`).
    pub fn json<T: serde::Serialize + ?Sized>(mut self, value: &T) -> Self {
        match serde_json::to_vec(value) {
            Ok(body) => {
                self.inner = self
                    .inner
                    .header(::http::header::CONTENT_TYPE, "application/json")
                    .body(body);
            }
            Err(error) => self.encode_error = Some(error),
        }
        self
    }

    /// Sends the request through its source's policy: the response of the attempt that
    /// succeeded, or why none did. An error status is an [`HttpError::Status`].
    pub async fn send(self) -> Result<reqwest::Response, HttpError> {
        self.execute(|response| async { Ok(response) }).await
    }

    /// Sends the request and decodes its JSON body as `T`, the body read inside the attempt.
    pub async fn fetch_json<T: DeserializeOwned>(self) -> Result<T, HttpError> {
        self.execute(|response| async move {
            let url = Box::new(response.url().clone());
            let bytes = response.bytes().await.map_err(HttpError::Transport)?;
            serde_json::from_slice(&bytes).map_err(|error| HttpError::Decode { url, error })
        })
        .await
    }

    /// Builds the request and sends it, `read` making each attempt's output.
    async fn execute<T, Read, Reading>(self, read: Read) -> Result<T, HttpError>
    where
        Read: Fn(reqwest::Response) -> Reading,
        Reading: Future<Output = Result<T, HttpError>>,
    {
        if let Some(error) = self.encode_error {
            return Err(HttpError::Encode(error));
        }
        let request = self.inner.build().map_err(HttpError::Transport)?;
        self.client
            .execute_as(request, self.source, self.weight, self.idempotent, read)
            .await
    }
}

/// Whether `url` is under `prefix`: the same origin, and a path under the prefix's by whole
/// segments.
fn under(url: &reqwest::Url, prefix: &reqwest::Url) -> bool {
    if url.scheme() != prefix.scheme()
        || url.host_str() != prefix.host_str()
        || url.port_or_known_default() != prefix.port_or_known_default()
    {
        return false;
    }
    let (path, base) = (url.path(), prefix.path());
    path.starts_with(base)
        && (base.ends_with('/') || path.len() == base.len() || path[base.len()..].starts_with('/'))
}

/// A request's weight against its source's limiter: one that could never fit is never sent.
fn never_fits(fits: bool, weight: u32, limiter: &str) -> Result<(), HttpError> {
    if fits {
        return Ok(());
    }
    Err(HttpError::Config(ConfigError::new(
        "weight",
        format!("{weight} is above a window's whole limit of `{limiter}`: never sent"),
    )))
}

#[cfg(test)]
mod tests {
    use super::under;

    #[test]
    fn a_prefix_holds_its_origin_and_whole_path_segments() {
        let url = |text: &str| reqwest::Url::parse(text).unwrap();
        let prefix = url("https://api.binance.com/api/v3/depth");
        for inside in [
            "https://api.binance.com/api/v3/depth",
            "https://API.binance.com:443/api/v3/depth?symbol=BTCUSDT",
            "https://api.binance.com/api/v3/depth/x",
        ] {
            assert!(under(&url(inside), &prefix), "{inside}");
        }
        for outside in [
            "https://api.binance.com/api/v3/depthx",
            "https://api.binance.com.evil.io/api/v3/depth",
            "http://api.binance.com/api/v3/depth",
            "https://api.binance.com:8443/api/v3/depth",
            "https://api.binance.com/api/v3",
        ] {
            assert!(!under(&url(outside), &prefix), "{outside}");
        }
        assert!(under(
            &url("https://api.binance.com/x"),
            &url("https://api.binance.com")
        ));
    }
}
