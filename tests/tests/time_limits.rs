//! Time limits on tokio's paused clock: per-attempt timeouts that grow with each retry, the
//! call's overall deadline, the presets' limits, and what `served::observe` reports about the
//! retries (how many, and why they stopped).

use reliable_runtime::classify::{Classify, ErrorClass};
use reliable_runtime::config::ConfigFile;
use reliable_runtime::limit::TimeoutConfig;
use reliable_runtime::registry::timeout_registry;
use reliable_runtime::retry::{GaveUp, Jitter};
use reliable_runtime::served::observe;
use reliable_runtime::{reliable_cex_call, Policy, PolicyBuilder, Rejected};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Clone, Debug, PartialEq)]
enum ApiError {
    Refused(Rejected),
    Down,
    BadRequest,
    SlowDown(Duration),
}

impl From<Rejected> for ApiError {
    fn from(refusal: Rejected) -> Self {
        ApiError::Refused(refusal)
    }
}

impl Classify for ApiError {
    fn class(&self) -> ErrorClass {
        match self {
            ApiError::Refused(_) | ApiError::Down => ErrorClass::Transient,
            ApiError::BadRequest => ErrorClass::Permanent,
            ApiError::SlowDown(after) => ErrorClass::RateLimited {
                retry_after: Some(*after),
            },
        }
    }
}

const MS: fn(u64) -> Duration = Duration::from_millis;

/// `attempts` attempts 10 ms apart, classified.
fn retrying(name: &str, attempts: u32) -> PolicyBuilder {
    Policy::builder(name)
        .retry(name, move |retry| {
            retry
                .max_attempts(attempts)
                .initial_delay(MS(10))
                .multiplier(1.0)
                .jitter(Jitter::None)
                .budget(None)
        })
        .classify::<ApiError>()
}

/// A body that never answers.
async fn hang() -> Result<u32, ApiError> {
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn each_retry_gets_a_longer_timeout_up_to_its_cap() {
    let policy = retrying("limits_growing", 4)
        .time_limits("limits_growing", |_| {
            TimeoutConfig::new(MS(100)).multiplier(2.0).max(MS(300))
        })
        .build()
        .unwrap();
    let start = Instant::now();
    let served = observe(policy.call(hang)).await;
    // 100, then 200, then 300 and 300 (capped), with 10 ms between attempts.
    assert_eq!(start.elapsed(), MS(100 + 10 + 200 + 10 + 300 + 10 + 300));
    assert_eq!(
        served.value,
        Err(ApiError::Refused(Rejected::Timeout { after: MS(300) }))
    );
    assert_eq!(
        (served.retries, served.gave_up),
        (3, Some(GaveUp::AttemptsExhausted))
    );
    let snapshot = policy.timeout().unwrap().snapshot();
    assert_eq!((snapshot.attempts, snapshot.timeouts), (4, 4));
    assert_eq!(
        (snapshot.max_seconds, snapshot.deadline_seconds),
        (0.3, None)
    );
}

#[tokio::test(start_paused = true)]
async fn the_deadline_cuts_the_attempt_running_when_it_passes() {
    let policy = retrying("limits_deadline_cuts", 5)
        .time_limits("limits_deadline_cuts", |_| {
            TimeoutConfig::new(MS(1000)).deadline(Some(MS(1500)))
        })
        .build()
        .unwrap();
    let start = Instant::now();
    let served = observe(policy.call(hang)).await;
    // The first attempt times out at 1 s; the second starts at 1.01 s and is dropped at 1.5 s.
    assert_eq!(start.elapsed(), MS(1500));
    assert_eq!(
        served.value,
        Err(ApiError::Refused(Rejected::DeadlineExceeded {
            deadline: MS(1500)
        }))
    );
    assert_eq!(
        (served.retries, served.gave_up),
        (1, Some(GaveUp::NotRetryable))
    );
    let snapshot = policy.timeout().unwrap().snapshot();
    assert_eq!((snapshot.timeouts, snapshot.deadlines_exceeded), (1, 1));
}

#[tokio::test(start_paused = true)]
async fn a_wait_past_the_deadline_is_not_made() {
    let policy = retrying("limits_deadline_wait", 5)
        .time_limits("limits_deadline_wait", |_| {
            TimeoutConfig::new(MS(1000)).deadline(Some(Duration::from_secs(5)))
        })
        .build()
        .unwrap();
    // The server asks for 10 s: the call gives its error back at once rather than wait past
    // its deadline.
    let slow_down = ApiError::SlowDown(Duration::from_secs(10));
    let start = Instant::now();
    let served = observe(policy.call(|| async { Err::<u32, _>(slow_down.clone()) })).await;
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(served.value, Err(slow_down));
    assert_eq!(
        (served.retries, served.gave_up),
        (0, Some(GaveUp::DeadlineReached))
    );
    assert_eq!(policy.timeout().unwrap().snapshot().deadlines_exceeded, 1);
    // A hint that fits is waited.
    let short = ApiError::SlowDown(Duration::from_secs(2));
    let calls = AtomicU32::new(0);
    let start = Instant::now();
    let served = observe(policy.call(|| async {
        if calls.fetch_add(1, Ordering::Relaxed) == 0 {
            Err(short.clone())
        } else {
            Ok(7)
        }
    }))
    .await;
    assert_eq!(
        (served.value, start.elapsed()),
        (Ok(7), Duration::from_secs(2))
    );
    assert_eq!((served.retries, served.gave_up), (1, None));
}

#[tokio::test(start_paused = true)]
async fn observe_tells_how_many_retries_a_call_took_and_why_it_stopped() {
    let policy = retrying("limits_observed", 3).build().unwrap();
    let exhausted = observe(policy.call(|| async { Err::<u32, _>(ApiError::Down) })).await;
    assert_eq!(
        (exhausted.retries, exhausted.gave_up),
        (2, Some(GaveUp::AttemptsExhausted))
    );
    let permanent = observe(policy.call(|| async { Err::<u32, _>(ApiError::BadRequest) })).await;
    assert_eq!(
        (permanent.retries, permanent.gave_up),
        (0, Some(GaveUp::NotRetryable))
    );
    let calls = AtomicU32::new(0);
    let recovered = observe(policy.call(|| async {
        match calls.fetch_add(1, Ordering::Relaxed) {
            0 | 1 => Err(ApiError::Down),
            _ => Ok(1),
        }
    }))
    .await;
    assert_eq!(
        (recovered.value, recovered.retries, recovered.gave_up),
        (Ok(1), 2, None)
    );
    let first_time = observe(policy.call(|| async { Ok::<_, ApiError>(1) })).await;
    assert_eq!((first_time.retries, first_time.gave_up), (0, None));
    // A blocking call reports the same.
    let blocking = reliable_runtime::served::observe_blocking(|| {
        policy.call_blocking(|| Err::<u32, _>(ApiError::Down))
    });
    assert_eq!(
        (blocking.retries, blocking.gave_up),
        (2, Some(GaveUp::AttemptsExhausted))
    );
}

static CEX_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[reliable_cex_call(name = "limits_cex_hung")]
async fn hung_exchange() -> Result<u32, ApiError> {
    CEX_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn a_preset_never_lets_a_hung_exchange_hang_its_caller() {
    let start = Instant::now();
    let outcome = hung_exchange().await;
    // CEX: 3 attempts of 2 s, 3 s and 4.5 s, with the backoff's jittered waits (at most
    // 0.5 s and 1 s) between them; well inside its 15 s deadline.
    assert_eq!(
        outcome,
        Err(ApiError::Refused(Rejected::Timeout { after: MS(4500) }))
    );
    assert_eq!(CEX_ATTEMPTS.load(Ordering::Relaxed), 3);
    let elapsed = start.elapsed();
    assert!(elapsed >= MS(9500) && elapsed <= MS(11_000), "{elapsed:?}");
    let limits = timeout_registry().get("limits_cex_hung").unwrap().config();
    assert_eq!(limits, TimeoutConfig::cex());
}

#[test]
fn a_configuration_file_sets_every_time_limit_and_names_a_wrong_field() {
    let file = ConfigFile::parse(
        r#"
[timeouts]
limits_file_fixed = "750ms"
limits_file_growing = { after = "2s", multiplier = 1.5, max = "5s", deadline = "15s" }

[presets.limits_file_preset]
base = "cex"
timeout = { deadline = "20s" }
"#,
    )
    .unwrap();
    file.apply().unwrap();
    let config = |name: &str| timeout_registry().get(name).unwrap().config();
    assert_eq!(config("limits_file_fixed"), TimeoutConfig::new(MS(750)));
    assert_eq!(config("limits_file_growing"), TimeoutConfig::cex());
    let preset = reliable_runtime::preset::preset_values("limits_file_preset").unwrap();
    assert_eq!(
        preset.timeout,
        TimeoutConfig::cex().deadline(Some(Duration::from_secs(20)))
    );

    let shrinking =
        ConfigFile::parse("[timeouts]\nlimits_file_bad = { after = \"2s\", multiplier = 0.5 }\n")
            .unwrap()
            .apply()
            .unwrap_err();
    assert_eq!(shrinking.line(), Some(2), "{shrinking}");
    assert!(shrinking.to_string().contains("multiplier"), "{shrinking}");
    let unknown =
        ConfigFile::parse("[timeouts]\nlimits_file_typo = { afterr = \"2s\" }\n").unwrap_err();
    assert!(unknown.reason().contains("afterr"), "{unknown}");
    let short_deadline = TimeoutConfig::new(Duration::from_secs(2)).deadline(Some(MS(500)));
    assert_eq!(short_deadline.validate().unwrap_err().field(), "deadline");
    assert!(timeout_registry().get("limits_file_bad").is_none());
}

static ATTRIBUTE_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[reliable_runtime::with_backoff(
    max_attempts = 3,
    initial_delay = "10ms",
    jitter = "none",
    budget = false
)]
#[reliable_runtime::timeout(
    "100ms",
    multiplier = 2.0,
    max = "150ms",
    deadline = "1s",
    name = "limits_attribute"
)]
async fn growing_by_attribute() -> Result<u32, ApiError> {
    ATTRIBUTE_ATTEMPTS.fetch_add(1, Ordering::Relaxed);
    std::future::pending().await
}

#[reliable_cex_call(name = "limits_cex_short", deadline = "3s", timeout_growth = 1.0)]
async fn short_deadline_exchange() -> Result<u32, ApiError> {
    std::future::pending().await
}

#[tokio::test(start_paused = true)]
async fn attributes_write_every_time_limit() {
    let start = Instant::now();
    let outcome = growing_by_attribute().await;
    // 100 ms, then 150 ms twice (capped), 10 and 20 ms between.
    assert_eq!(start.elapsed(), MS(100 + 10 + 150 + 20 + 150));
    assert_eq!(
        outcome,
        Err(ApiError::Refused(Rejected::Timeout { after: MS(150) }))
    );
    assert_eq!(ATTRIBUTE_ATTEMPTS.load(Ordering::Relaxed), 3);
    let config = timeout_registry().get("limits_attribute").unwrap().config();
    assert_eq!(config.deadline, Some(Duration::from_secs(1)));

    // The preset's 2 s per attempt, fixed, and the call cut at 3 s in its second attempt.
    let start = Instant::now();
    let outcome = short_deadline_exchange().await;
    assert_eq!(start.elapsed(), Duration::from_secs(3));
    assert_eq!(
        outcome,
        Err(ApiError::Refused(Rejected::DeadlineExceeded {
            deadline: Duration::from_secs(3)
        }))
    );
    let config = timeout_registry().get("limits_cex_short").unwrap().config();
    assert_eq!(
        (config.after, config.multiplier, config.max),
        (Duration::from_secs(2), 1.0, Duration::from_secs(5))
    );
}

#[tokio::test(start_paused = true)]
async fn a_timeout_or_deadline_of_duration_max_means_no_limit_and_never_panics() {
    let policy = retrying("limits_no_limit", 2)
        .time_limits("limits_no_limit", |_| {
            TimeoutConfig::new(Duration::MAX).deadline(Some(Duration::MAX))
        })
        .build()
        .unwrap();
    let calls = AtomicU32::new(0);
    let outcome = policy
        .call(|| async {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            match calls.fetch_add(1, Ordering::Relaxed) {
                0 => Err(ApiError::Down),
                _ => Ok(5),
            }
        })
        .await;
    assert_eq!(outcome, Ok(5));
}
