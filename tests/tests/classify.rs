//! Errors classified (`Classify`) through a `Policy` built with `.classify::<E>()`, on tokio's
//! paused clock: what is retried, what waits, what counts against the breaker and the SLA.

use reliable_runtime::classify::{Classify, ErrorClass};
use reliable_runtime::retry::Jitter;
use reliable_runtime::{Policy, PolicyBuilder, Rejected};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq)]
enum ApiError {
    Status(u16),
    SlowDown(Duration),
    Odd,
    Refused(String),
}

impl From<Rejected> for ApiError {
    fn from(refusal: Rejected) -> Self {
        ApiError::Refused(refusal.to_string())
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Status(status) => ErrorClass::of_status(*status, None),
            ApiError::SlowDown(after) => ErrorClass::RateLimited {
                retry_after: Some(*after),
            },
            ApiError::Odd => ErrorClass::Unknown,
            ApiError::Refused(_) => ErrorClass::Transient,
        }
    }
}

/// A policy with a breaker (tripping at 10 failures in a row), a monitor and four attempts
/// 100 ms apart.
fn builder(name: &str) -> PolicyBuilder {
    Policy::builder(name)
        .monitor(name, |sla| sla)
        .breaker(name, |breaker| breaker.failure_threshold(10))
        .retry(name, |retry| {
            retry
                .max_attempts(4)
                .initial_delay(Duration::from_millis(100))
                .multiplier(1.0)
                .jitter(Jitter::None)
                .budget(None)
        })
}

/// [`builder`]'s policy, classified unless `classified` is false.
fn policy(name: &str, classified: bool) -> Policy {
    let builder = builder(name);
    let builder = if classified {
        builder.classify::<ApiError>()
    } else {
        builder
    };
    builder.build().unwrap()
}

/// Calls once through `policy`, failing every attempt with `error`: the attempts made, the
/// time it took, the breaker's failures in a row and the monitor's.
async fn fail_with<E>(policy: &Policy, error: E) -> (u32, Duration, u32, u64)
where
    E: Clone + PartialEq + std::fmt::Debug + From<Rejected> + 'static,
{
    let attempts = AtomicU32::new(0);
    let start = Instant::now();
    let result: Result<(), E> = policy
        .call(|| async {
            attempts.fetch_add(1, Ordering::Relaxed);
            Err(error.clone())
        })
        .await;
    assert_eq!(result, Err(error));
    (
        attempts.into_inner(),
        start.elapsed(),
        policy.breaker().unwrap().snapshot().failure_count,
        policy.monitor().unwrap().consecutive_failures(),
    )
}

#[tokio::test(start_paused = true)]
async fn a_permanent_error_is_neither_retried_nor_counted() {
    for status in [400, 401, 404, 422] {
        let policy = policy(&format!("classify_permanent_{status}"), true);
        assert_eq!(
            fail_with(&policy, ApiError::Status(status)).await,
            (1, Duration::ZERO, 0, 0),
            "{status}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_transient_error_is_retried_and_counted() {
    let policy = policy("classify_transient", true);
    assert_eq!(
        fail_with(&policy, ApiError::Status(503)).await,
        (4, Duration::from_millis(300), 4, 4)
    );
}

#[tokio::test(start_paused = true)]
async fn a_rate_limit_waits_its_hint_and_is_not_counted() {
    let policy = policy("classify_rate_limited", true);
    // Three waits of the server's 2 s, not the backoff's 100 ms (the hint is capped by
    // `max_delay`, 60 s by default).
    assert_eq!(
        fail_with(&policy, ApiError::SlowDown(Duration::from_secs(2))).await,
        (4, Duration::from_secs(6), 0, 0)
    );
}

#[tokio::test(start_paused = true)]
async fn an_unknown_error_is_treated_as_without_classification() {
    let classified = policy("classify_unknown", true);
    let plain = policy("classify_unknown_plain", false);
    assert_eq!(
        fail_with(&classified, ApiError::Odd).await,
        fail_with(&plain, ApiError::Odd).await
    );
    // And without classification, a 401 is retried and counted, as it always was.
    assert_eq!(
        fail_with(&plain, ApiError::Status(401)).await,
        (4, Duration::from_millis(300), 8, 8)
    );
}

#[tokio::test(start_paused = true)]
async fn callbacks_given_by_hand_win_before_or_after_classification() {
    // Each says the opposite of the classification: a 503 is not retried and not counted, a
    // 401 is retried, and every retry waits 50 ms whatever the server's hint.
    let by_hand = |builder: PolicyBuilder| {
        builder
            .retry_if(|error: &ApiError| *error != ApiError::Status(503))
            .failure_if(|_: &ApiError| false)
            .retry_after(|_: &ApiError| Some(Duration::from_millis(50)))
    };
    let before = by_hand(builder("classify_by_hand_before"))
        .classify::<ApiError>()
        .build()
        .unwrap();
    let after = by_hand(builder("classify_by_hand_after").classify::<ApiError>())
        .build()
        .unwrap();
    let classified = policy("classify_by_hand_none", true);
    assert_eq!(
        fail_with(&classified, ApiError::Status(503)).await,
        (4, Duration::from_millis(300), 4, 4),
        "classified alone"
    );
    for policy in [before, after] {
        let name = policy.name();
        assert_eq!(
            fail_with(&policy, ApiError::Status(503)).await,
            (1, Duration::ZERO, 0, 0),
            "{name}"
        );
        assert_eq!(
            fail_with(&policy, ApiError::Status(401)).await,
            (4, Duration::from_millis(150), 0, 0),
            "{name}"
        );
        assert_eq!(
            fail_with(&policy, ApiError::SlowDown(Duration::from_secs(2))).await,
            (4, Duration::from_millis(150), 0, 0),
            "{name}"
        );
    }
}

/// An error whose classification panics.
#[derive(Clone, Debug, PartialEq)]
struct Unclassifiable;

impl From<Rejected> for Unclassifiable {
    fn from(_: Rejected) -> Self {
        Unclassifiable
    }
}

impl Classify for Unclassifiable {
    fn class(&self) -> ErrorClass {
        panic!("cannot classify")
    }
}

/// A `class` that panics never reaches the caller: each callback it backs falls back to its
/// default (counted as a failure, not retried, no hint), and the call returns its error.
#[tokio::test(start_paused = true)]
async fn a_panicking_classification_never_reaches_the_caller() {
    let policy = builder("classify_panicking")
        .classify::<Unclassifiable>()
        .build()
        .unwrap();
    // Not retried, counted by the breaker and the monitor.
    assert_eq!(
        fail_with(&policy, Unclassifiable).await,
        (1, Duration::ZERO, 1, 1)
    );
}

// The attributes classify by themselves: a fn whose error type implements `Classify` needs no
// `retry_if` or `failure_if`.

/// The attempts each attribute fn below made.
static ATTRIBUTE_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[reliable_runtime::with_backoff(
    max_attempts = 4,
    initial_delay = "100ms",
    multiplier = 1.0,
    jitter = "none",
    budget = false
)]
#[reliable_runtime::circuit_breaker(name = "classify_attribute", failure_threshold = 10)]
#[reliable_runtime::monitored(name = "classify_attribute")]
async fn classified_by_attribute(error: ApiError) -> Result<(), ApiError> {
    ATTRIBUTE_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    Err(error.clone())
}

/// One call of [`classified_by_attribute`]: as [`fail_with`].
async fn fail_by_attribute(error: ApiError) -> (u32, Duration, u32, u64) {
    let breaker = reliable_runtime::registry::breaker_registry();
    let monitor = reliable_runtime::registry::sla_registry();
    let before = ATTRIBUTE_ATTEMPTS.swap(0, Ordering::Relaxed);
    assert_eq!(before, 0);
    let start = Instant::now();
    assert_eq!(classified_by_attribute(error.clone()).await, Err(error));
    (
        ATTRIBUTE_ATTEMPTS.swap(0, Ordering::Relaxed),
        start.elapsed(),
        breaker
            .get("classify_attribute")
            .unwrap()
            .snapshot()
            .failure_count,
        monitor
            .get("classify_attribute")
            .unwrap()
            .consecutive_failures(),
    )
}

#[tokio::test(start_paused = true)]
async fn attributes_classify_an_error_type_that_implements_classify() {
    // Permanent: one attempt, nothing counted.
    assert_eq!(
        fail_by_attribute(ApiError::Status(401)).await,
        (1, Duration::ZERO, 0, 0)
    );
    // Rate limited: three waits of the hint, nothing counted.
    assert_eq!(
        fail_by_attribute(ApiError::SlowDown(Duration::from_secs(2))).await,
        (4, Duration::from_secs(6), 0, 0)
    );
    // Transient: retried on the backoff, counted.
    assert_eq!(
        fail_by_attribute(ApiError::Status(503)).await,
        (4, Duration::from_millis(300), 4, 4)
    );
}

/// The error of [`written_by_hand`]: retry everything but what `retry_if` refuses.
fn only_503(error: &ApiError) -> bool {
    *error == ApiError::Status(503)
}

#[reliable_runtime::with_backoff(
    max_attempts = 3,
    initial_delay = "100ms",
    multiplier = 1.0,
    jitter = "none",
    budget = false,
    retry_if = only_503
)]
#[reliable_runtime::circuit_breaker(name = "classify_attribute_by_hand", failure_threshold = 10)]
async fn written_by_hand(error: ApiError, attempts: &AtomicU32) -> Result<(), ApiError> {
    attempts.fetch_add(1, Ordering::Relaxed);
    Err(error.clone())
}

#[tokio::test(start_paused = true)]
async fn a_callback_written_on_the_attribute_wins_and_the_rest_stay_classified() {
    let breaker = reliable_runtime::registry::breaker_registry();
    let attempts = AtomicU32::new(0);
    // `retry_if` refuses a 429 the classification would retry ...
    let start = Instant::now();
    let limited = ApiError::SlowDown(Duration::from_secs(2));
    assert_eq!(
        written_by_hand(limited.clone(), &attempts).await,
        Err(limited)
    );
    assert_eq!(
        (attempts.swap(0, Ordering::Relaxed), start.elapsed()),
        (1, Duration::ZERO)
    );
    // ... while `failure_if` is still the classification's: a 429 and a 401 are not counted.
    assert_eq!(
        written_by_hand(ApiError::Status(401), &attempts).await,
        Err(ApiError::Status(401))
    );
    let snapshot = breaker
        .get("classify_attribute_by_hand")
        .unwrap()
        .snapshot();
    assert_eq!(snapshot.failure_count, 0);
    assert_eq!(
        written_by_hand(ApiError::Status(503), &attempts).await,
        Err(ApiError::Status(503))
    );
    assert_eq!(attempts.load(Ordering::Relaxed), 1 + 3);
    let snapshot = breaker
        .get("classify_attribute_by_hand")
        .unwrap()
        .snapshot();
    assert_eq!(snapshot.failure_count, 3);
}

/// An error without `Classify`: every error is retried, as always.
#[derive(Clone, Debug, PartialEq)]
struct Plain(u16);

impl From<Rejected> for Plain {
    fn from(_: Rejected) -> Self {
        Plain(0)
    }
}

/// Generic over its error: each instantiation is classified by its own type.
#[reliable_runtime::with_backoff(
    max_attempts = 3,
    initial_delay = "1ms",
    jitter = "none",
    budget = false
)]
async fn generic<E>(error: E, attempts: &AtomicU32) -> Result<(), E>
where
    E: Clone + From<Rejected> + Classify + Send,
{
    attempts.fetch_add(1, Ordering::Relaxed);
    Err(error.clone())
}

/// Generic over its error without a `Classify` bound: never classified.
#[reliable_runtime::with_backoff(
    max_attempts = 3,
    initial_delay = "1ms",
    jitter = "none",
    budget = false
)]
async fn generic_unbounded<E>(error: E, attempts: &AtomicU32) -> Result<(), E>
where
    E: Clone + From<Rejected> + Send,
{
    attempts.fetch_add(1, Ordering::Relaxed);
    Err(error.clone())
}

#[tokio::test(start_paused = true)]
async fn classification_follows_the_error_type_of_each_call() {
    let attempts = AtomicU32::new(0);
    let made = || attempts.swap(0, Ordering::Relaxed);
    let _ = generic(ApiError::Status(401), &attempts).await;
    assert_eq!(made(), 1, "a classified permanent error");
    let _ = generic(ApiError::Status(503), &attempts).await;
    assert_eq!(made(), 3, "a classified transient error");
    let _ = generic_unbounded(ApiError::Status(401), &attempts).await;
    assert_eq!(made(), 3, "no bound, no classification");
    let _ = generic_unbounded(Plain(401), &attempts).await;
    assert_eq!(made(), 3, "an error without Classify");
}
