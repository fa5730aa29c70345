//! A [`Policy`] as tower middleware (feature `tower`): [`PolicyLayer`] wraps any
//! [`Service`] (a reqwest, hyper or tonic client, an axum handler) so that each request goes
//! through the whole pipeline: fallback, retries, breaker, rate limit, bulkhead, monitor and
//! timeout, in the order README documents.
//!
//! A service answers failures in two ways: an `Err` (a refused connection) and a response that
//! says the call failed (a 503, a 429). The layer's [`ClassifyResponse`] tells the policy which
//! responses are failures: [`HttpStatus`] for `http::Response`s, [`AnyResponse`] (every
//! response a success) by default, or any `Fn(&Response) -> ResponseClass`. A failing
//! response is retried like an error; when the retries are spent, the caller gets the last
//! response as the server sent it.
//!
//! ```
//! use reliable_runtime::policy::tower::{HttpStatus, Layer, PolicyLayer, Service};
//! use reliable_runtime::retry::Jitter;
//! use reliable_runtime::Policy;
//! use std::time::Duration;
//!
//! // A service that answers 503 twice, then 200.
//! #[derive(Clone)]
//! struct Flaky(std::sync::Arc<std::sync::atomic::AtomicU32>);
//! impl Service<http::Request<()>> for Flaky {
//!     type Response = http::Response<&'static str>;
//!     type Error = std::io::Error;
//!     type Future = std::future::Ready<Result<Self::Response, Self::Error>>;
//!     fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
//!         std::task::Poll::Ready(Ok(()))
//!     }
//!     fn call(&mut self, _: http::Request<()>) -> Self::Future {
//!         let n = self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
//!         let status = if n < 2 { 503 } else { 200 };
//!         std::future::ready(Ok(http::Response::builder().status(status).body("ok").unwrap()))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! let policy = Policy::builder("tower_doc")
//!     .retry("tower_doc", |retry| retry.max_attempts(3).initial_delay(Duration::from_millis(1)).jitter(Jitter::None))
//!     .breaker("tower_doc", |breaker| breaker.failure_threshold(5))
//!     .build()
//!     .unwrap();
//! let mut client = PolicyLayer::new(policy).classify(HttpStatus).layer(Flaky(Default::default()));
//! let response = client.call(http::Request::new(())).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```

use super::call::{CallFuture, WithFailure};
use super::hooks::{ErrorHooks, Hooks};
use super::Policy;
use crate::error::{ConfigError, Failure};
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
/// tower's `Layer` and `Service` traits, re-exported so the layer is usable without naming
/// the `tower` crate.
pub use tower_layer::Layer;
pub use tower_service::Service;

/// What a response means to the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResponseClass {
    /// The call worked (or failed for good on the caller's side, like a 404: retrying would
    /// not help and the service is not at fault). Returned as it is.
    Success,
    /// The service failed (a 5xx): counted by the breaker and the monitor, and retried.
    /// (Not `Failure`: that name is the crate's error type, and a second item of the name
    /// makes rustc spell `reliable_runtime::Failure` out in every diagnostic.)
    Failed,
    /// The service asks to slow down (a 429): retried no sooner than `retry_after` when the
    /// server says; not a failure to the breaker or the monitor (the service is up).
    RateLimited {
        /// When the server allows the next request, if it says (`Retry-After`).
        retry_after: Option<Duration>,
    },
}

/// Tells a [`PolicyLayer`] which responses are failures.
pub trait ClassifyResponse<Response> {
    /// The class of `response`.
    fn classify(&self, response: &Response) -> ResponseClass;
}

impl<Response, F: Fn(&Response) -> ResponseClass> ClassifyResponse<Response> for F {
    fn classify(&self, response: &Response) -> ResponseClass {
        self(response)
    }
}

/// Every response is a success: only the service's errors fail (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct AnyResponse;

impl<Response> ClassifyResponse<Response> for AnyResponse {
    fn classify(&self, _: &Response) -> ResponseClass {
        ResponseClass::Success
    }
}

/// Classifies `http::Response`s by their [`ErrorClass`](crate::classify::ErrorClass): a
/// transient status (5xx but 501 and 505, 408, 425) fails; 429 is
/// [`ResponseClass::RateLimited`] with its `Retry-After` (seconds or an HTTP date); every other
/// status is a success (a 4xx is the caller's mistake, which a retry repeats).
#[derive(Clone, Copy, Debug, Default)]
pub struct HttpStatus;

impl<B> ClassifyResponse<http::Response<B>> for HttpStatus {
    fn classify(&self, response: &http::Response<B>) -> ResponseClass {
        use crate::classify::{Classify, ErrorClass};
        match response.class() {
            ErrorClass::Transient => ResponseClass::Failed,
            ErrorClass::RateLimited { retry_after } => ResponseClass::RateLimited { retry_after },
            ErrorClass::Permanent | ErrorClass::Unknown => ResponseClass::Success,
        }
    }
}

pub use crate::classify::retry_after;

/// What a [`PolicyLayer`] does with a call that failed for good (its error or a refusal):
/// [`NoFallback`] gives it to the caller, a closure given to [`PolicyLayer::fallback`]
/// answers from it.
pub trait Fallback<Response, Error> {
    /// The answer for `failure`, or the failure for the caller.
    #[doc(hidden)]
    fn handle(&self, policy: &Policy, failure: Failure<Error>) -> Result<Response, Failure<Error>>;
}

/// No fallback: failures reach the caller (the default).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoFallback;

impl<Response, Error> Fallback<Response, Error> for NoFallback {
    fn handle(&self, _: &Policy, failure: Failure<Error>) -> Result<Response, Failure<Error>> {
        Err(failure)
    }
}

/// A fallback given as a closure (see [`PolicyLayer::fallback`]).
#[derive(Clone, Copy, Debug)]
pub struct FallbackFn<F>(F);

impl<Response, Error, F> Fallback<Response, Error> for FallbackFn<F>
where
    F: Fn(&Failure<Error>) -> Result<Response, Error>,
{
    fn handle(&self, policy: &Policy, failure: Failure<Error>) -> Result<Response, Failure<Error>> {
        policy.fall_back_blocking(failure, |cause| (self.0)(cause))
    }
}

/// How requests are made again for each attempt: [`Retrying`] clones them (the policy's
/// retries apply), [`SingleAttempt`] moves the one request (for requests that cannot be
/// cloned; built only from a policy without retries).
pub trait Attempts<Request>: Clone + Send + Sync + 'static {
    /// What the call keeps to make each attempt's request.
    #[doc(hidden)]
    type Source: Send;
    /// Whether the policy's retries apply.
    #[doc(hidden)]
    const RETRIES: bool;
    #[doc(hidden)]
    fn source(request: Request) -> Self::Source;
    /// The next attempt's request; called once per attempt, so once when `RETRIES` is false.
    #[doc(hidden)]
    fn next(source: &mut Self::Source) -> Request;
}

/// Each attempt sends a clone of the request: [`PolicyLayer::new`].
#[derive(Clone, Copy, Debug, Default)]
pub struct Retrying;

impl<Request: Clone + Send> Attempts<Request> for Retrying {
    type Source = Request;
    const RETRIES: bool = true;

    fn source(request: Request) -> Request {
        request
    }

    fn next(source: &mut Request) -> Request {
        source.clone()
    }
}

/// One attempt, the request moved into it: [`PolicyLayer::single_attempt`].
#[derive(Clone, Copy, Debug, Default)]
pub struct SingleAttempt;

impl<Request: Send> Attempts<Request> for SingleAttempt {
    type Source = Option<Request>;
    const RETRIES: bool = false;

    fn source(request: Request) -> Option<Request> {
        Some(request)
    }

    fn next(source: &mut Option<Request>) -> Request {
        source
            .take()
            .expect("a single-attempt call makes one attempt")
    }
}

/// A [`Policy`] as a [`tower_layer::Layer`]: see the [module docs](self).
#[derive(Debug)]
pub struct PolicyLayer<C = AnyResponse, F = NoFallback, M = Retrying> {
    policy: Arc<Policy>,
    classify: C,
    fallback: F,
    attempts: M,
}

impl<C: Clone, F: Clone, M: Clone> Clone for PolicyLayer<C, F, M> {
    fn clone(&self) -> Self {
        PolicyLayer {
            policy: Arc::clone(&self.policy),
            classify: self.classify.clone(),
            fallback: self.fallback.clone(),
            attempts: self.attempts.clone(),
        }
    }
}

impl PolicyLayer {
    /// The layer of `policy`; each attempt sends a clone of the request (so requests must be
    /// `Clone`; [`single_attempt`](Self::single_attempt) is for those that are not).
    pub fn new(policy: impl Into<Arc<Policy>>) -> Self {
        PolicyLayer {
            policy: policy.into(),
            classify: AnyResponse,
            fallback: NoFallback,
            attempts: Retrying,
        }
    }

    /// The layer of `policy` for requests that cannot be cloned: one attempt per request. A
    /// policy with retries is a [`ConfigError`] (field `retry`), since they could not apply.
    ///
    /// ```
    /// use reliable_runtime::policy::tower::PolicyLayer;
    /// use reliable_runtime::Policy;
    ///
    /// let retrying = Policy::builder("single_doc").retry("single_doc", |retry| retry).build().unwrap();
    /// let error = PolicyLayer::single_attempt(retrying).unwrap_err();
    /// assert_eq!(error.field(), "retry");
    /// ```
    pub fn single_attempt(
        policy: impl Into<Arc<Policy>>,
    ) -> Result<PolicyLayer<AnyResponse, NoFallback, SingleAttempt>, ConfigError> {
        let policy = policy.into();
        #[cfg(feature = "retry")]
        if policy.retry().is_some() {
            return Err(ConfigError::new(
                "retry",
                format!(
                    "policy `{}` retries, but a single-attempt layer cannot send a request twice; \
                     use `PolicyLayer::new` with a `Clone` request, or a policy without retries",
                    policy.name()
                ),
            ));
        }
        Ok(PolicyLayer {
            policy,
            classify: AnyResponse,
            fallback: NoFallback,
            attempts: SingleAttempt,
        })
    }
}

impl<C, F, M> PolicyLayer<C, F, M> {
    /// Classifies responses with `classify` ([`HttpStatus`], or a closure returning a
    /// [`ResponseClass`]).
    pub fn classify<C2>(self, classify: C2) -> PolicyLayer<C2, F, M> {
        PolicyLayer {
            policy: self.policy,
            classify,
            fallback: self.fallback,
            attempts: self.attempts,
        }
    }

    /// Answers failed calls from their cause (counted by the policy's fallback counters, as
    /// [`Policy::fall_back`](crate::Policy::fall_back) does). A failing response that
    /// exhausted its retries is given back as it is, not to the fallback. A fallback that
    /// panics gives the caller the original failure.
    pub fn fallback<Response, Error, F2>(self, fallback: F2) -> PolicyLayer<C, FallbackFn<F2>, M>
    where
        F2: Fn(&Failure<Error>) -> Result<Response, Error>,
    {
        PolicyLayer {
            policy: self.policy,
            classify: self.classify,
            fallback: FallbackFn(fallback),
            attempts: self.attempts,
        }
    }

    /// The policy the layer applies.
    pub fn policy(&self) -> &Arc<Policy> {
        &self.policy
    }
}

impl Policy {
    /// This policy as a tower layer (feature `tower`): [`PolicyLayer::new`].
    pub fn into_layer(self) -> PolicyLayer {
        PolicyLayer::new(self)
    }
}

impl<S, C: Clone, F: Clone, M: Clone> Layer<S> for PolicyLayer<C, F, M> {
    type Service = PolicyService<S, C, F, M>;

    fn layer(&self, inner: S) -> Self::Service {
        PolicyService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service a [`PolicyLayer`] makes: each request through the policy.
///
/// Always ready: each call drives a clone of the inner service to readiness within its
/// attempt (as `tower::retry` does), so that waiting for readiness is measured and bounded by
/// the policy's timeout, and a retry does not hold the service the caller polled.
#[derive(Clone, Debug)]
pub struct PolicyService<S, C = AnyResponse, F = NoFallback, M = Retrying> {
    inner: S,
    layer: PolicyLayer<C, F, M>,
}

/// An attempt's failure inside the layer: the service's error, or a failing response.
enum AttemptError<E, R> {
    /// The service's error, held as the `Failure::Inner` the policy's `on_retry` callback
    /// takes by reference (a layer's attempt is never refused inside itself).
    Service(Failure<E>),
    Response {
        response: R,
        class: ResponseClass,
    },
}

/// The policy's error callbacks for the service's error; a failing response's class for the
/// rest.
struct LayerHooks;

impl<E: 'static, R> Hooks<AttemptError<E, R>> for LayerHooks {
    fn is_failure(&self, policy: &ErrorHooks, error: &AttemptError<E, R>) -> bool {
        match error {
            AttemptError::Service(failure) => {
                failure.inner().is_none_or(|error| policy.is_failure(error))
            }
            AttemptError::Response { class, .. } => *class == ResponseClass::Failed,
        }
    }

    fn retry_if(&self, policy: &ErrorHooks, error: &AttemptError<E, R>) -> bool {
        match error {
            AttemptError::Service(failure) => {
                failure.inner().is_some_and(|error| policy.retry_if(error))
            }
            AttemptError::Response { .. } => true,
        }
    }

    fn retry_after(&self, policy: &ErrorHooks, error: &AttemptError<E, R>) -> Option<Duration> {
        match error {
            AttemptError::Service(failure) => {
                failure.inner().and_then(|error| policy.retry_after(error))
            }
            AttemptError::Response {
                class: ResponseClass::RateLimited { retry_after },
                ..
            } => *retry_after,
            AttemptError::Response { .. } => None,
        }
    }

    fn on_retry(
        &self,
        policy: &ErrorHooks,
        attempt: u32,
        delay: Duration,
        cause: &Failure<AttemptError<E, R>>,
    ) {
        match cause {
            Failure::Inner(AttemptError::Service(failure)) => {
                policy.on_retry(attempt, delay, failure);
            }
            // The policy's callback is typed by the service's error, which a failing
            // response is not.
            _ => tracing::debug!(attempt, ?delay, "retrying a failing response"),
        }
    }
}

/// The future of a [`PolicyService`] call.
pub type ResponseFuture<R, E> = Pin<Box<dyn Future<Output = Result<R, Failure<E>>> + Send>>;

impl<S, Request, C, F, M> Service<Request> for PolicyService<S, C, F, M>
where
    S: Service<Request> + Clone + Send + 'static,
    S::Future: Send,
    S::Response: Send + 'static,
    S::Error: Send + 'static,
    Request: Send + 'static,
    C: ClassifyResponse<S::Response> + Clone + Send + Sync + 'static,
    F: Fallback<S::Response, S::Error> + Clone + Send + Sync + 'static,
    M: Attempts<Request>,
{
    type Response = S::Response;
    type Error = Failure<S::Error>;
    type Future = ResponseFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request) -> Self::Future {
        let service = self.inner.clone();
        let layer = self.layer.clone();
        Box::pin(async move { layer.run(service, request).await })
    }
}

impl<C, F, M> PolicyLayer<C, F, M> {
    async fn run<S, Request>(
        &self,
        service: S,
        request: Request,
    ) -> Result<S::Response, Failure<S::Error>>
    where
        S: Service<Request> + Clone,
        S::Error: 'static,
        C: ClassifyResponse<S::Response>,
        F: Fallback<S::Response, S::Error>,
        M: Attempts<Request>,
    {
        let classify = &self.classify;
        let mut source = M::source(request);
        let outcome = CallFuture::<_, _, WithFailure, _>::new(
            self.policy.layers(),
            move || attempt(service.clone(), M::next(&mut source), classify),
            M::RETRIES,
            LayerHooks,
        )
        .await;
        let failure = match outcome {
            Ok(response) => return Ok(response),
            // Retries spent on failing responses: the last one, as the server sent it.
            Err(Failure::Inner(AttemptError::Response { response, .. })) => return Ok(response),
            Err(Failure::Inner(AttemptError::Service(failure))) => failure,
            Err(Failure::Rejected(rejected)) => Failure::Rejected(rejected),
        };
        self.fallback.handle(&self.policy, failure)
    }
}

/// One attempt: the service made ready, called, and its response classified.
async fn attempt<S, Request, C>(
    mut service: S,
    request: Request,
    classify: &C,
) -> Result<S::Response, AttemptError<S::Error, S::Response>>
where
    S: Service<Request>,
    C: ClassifyResponse<S::Response>,
{
    poll_fn(|cx| service.poll_ready(cx))
        .await
        .map_err(|error| AttemptError::Service(Failure::Inner(error)))?;
    let response = service
        .call(request)
        .await
        .map_err(|error| AttemptError::Service(Failure::Inner(error)))?;
    match classify.classify(&response) {
        ResponseClass::Success => Ok(response),
        class => Err(AttemptError::Response { response, class }),
    }
}
