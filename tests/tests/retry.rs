//! Retries and timeouts through the attributes, on tokio's paused clock (no real sleeping).

use reliable_runtime::breaker::BreakerState;
use reliable_runtime::registry::{
    breaker_registry, retry_registry, sla_registry, timeout_registry,
};
use reliable_runtime::retry::{BackoffConfig, Jitter};
use reliable_runtime::{circuit_breaker, monitored, timeout, with_backoff, Failure, Rejected};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, PartialEq)]
enum ApiError {
    Status(u16),
    RetryAfter(Duration),
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

fn is_transient(error: &ApiError) -> bool {
    matches!(error, ApiError::Status(500..) | ApiError::RetryAfter(_))
}

fn server_hint(error: &ApiError) -> Option<Duration> {
    match error {
        ApiError::RetryAfter(after) => Some(*after),
        _ => None,
    }
}

static FAILING: AtomicU32 = AtomicU32::new(0);

#[with_backoff(
    name = "retry_exact",
    initial_delay = 1,
    multiplier = 2.0,
    max_attempts = 4,
    jitter = "none",
    budget = false
)]
async fn always_failing() -> Result<(), ApiError> {
    FAILING.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(503))
}

#[tokio::test(start_paused = true)]
async fn delays_without_jitter_are_exact_and_the_last_error_comes_back() {
    let start = Instant::now();
    assert_eq!(always_failing().await, Err(ApiError::Status(503)));
    assert_eq!(FAILING.load(Ordering::SeqCst), 4);
    // 1 + 2 + 4 seconds between the four attempts.
    assert_eq!(start.elapsed(), Duration::from_secs(7));
    let snapshot = retry_registry().get("retry_exact").unwrap().snapshot();
    assert_eq!(
        (snapshot.calls, snapshot.retries, snapshot.gave_up),
        (1, 3, 1)
    );
}

#[test]
fn jitter_stays_within_bounds_for_every_variant() {
    use rand::Rng;
    let mut rng = rand::rng();
    for jitter in [
        Jitter::None,
        Jitter::Full,
        Jitter::Equal,
        Jitter::Decorrelated,
        Jitter::Additive,
    ] {
        let config = BackoffConfig::default()
            .initial_delay(Duration::from_millis(100))
            .max_delay(Duration::from_secs(5))
            .jitter(jitter);
        let mut previous = Duration::ZERO;
        let mut seen = Vec::new();
        for retry in 1..=10_000u32 {
            let retry = retry % 8 + 1;
            let delay = config.delay(retry, previous, rng.random());
            let base = config.base_delay(retry);
            let (low, high) = match jitter {
                Jitter::None => (base, base),
                Jitter::Full => (Duration::ZERO, base),
                Jitter::Equal => (base / 2, base),
                Jitter::Decorrelated => (
                    config.initial_delay,
                    (previous.max(config.initial_delay) * 3).min(config.max_delay),
                ),
                Jitter::Additive => (
                    base,
                    (base + base.mul_f64(config.jitter_factor)).min(config.max_delay),
                ),
            };
            assert!(
                delay >= low && delay <= high,
                "{jitter:?}: {delay:?} outside {low:?}..={high:?}"
            );
            assert!(delay <= config.max_delay);
            previous = delay;
            seen.push(delay);
        }
        seen.sort();
        seen.dedup();
        if jitter != Jitter::None {
            assert!(seen.len() > 1000, "{jitter:?} spreads delays");
        }
    }
}

static TRANSIENT_CALLS: AtomicU32 = AtomicU32::new(0);

#[with_backoff(initial_delay = "100ms", max_delay = "5s", max_attempts = 5, retry_if = is_transient, retry_after = server_hint, budget = false)]
async fn scripted(outcomes: &Mutex<Vec<Result<u8, ApiError>>>) -> Result<u8, ApiError> {
    TRANSIENT_CALLS.fetch_add(1, Ordering::SeqCst);
    outcomes.lock().unwrap().remove(0)
}

#[tokio::test(start_paused = true)]
async fn permanent_errors_are_not_retried_and_hints_are_honoured_and_capped() {
    let not_found = Mutex::new(vec![Err(ApiError::Status(404))]);
    assert_eq!(scripted(&not_found).await, Err(ApiError::Status(404)));
    assert_eq!(TRANSIENT_CALLS.swap(0, Ordering::SeqCst), 1);

    let hinted = Mutex::new(vec![
        Err(ApiError::RetryAfter(Duration::from_secs(3))),
        Ok(7),
    ]);
    let start = Instant::now();
    assert_eq!(scripted(&hinted).await, Ok(7));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(3),
        "the server's Retry-After replaces the backoff"
    );

    let greedy = Mutex::new(vec![
        Err(ApiError::RetryAfter(Duration::from_secs(600))),
        Ok(8),
    ]);
    let start = Instant::now();
    assert_eq!(scripted(&greedy).await, Ok(8));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(5),
        "capped by max_delay"
    );
}

static OPEN_CALLS: AtomicU32 = AtomicU32::new(0);

#[with_backoff(
    max_attempts = 5,
    jitter = "none",
    initial_delay = "10ms",
    budget = false
)]
#[circuit_breaker(name = "retry_never_after_rejection", failure_threshold = 2)]
async fn behind_breaker() -> Result<(), ApiError> {
    OPEN_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(500))
}

#[tokio::test(start_paused = true)]
async fn a_rejection_is_never_retried() {
    // Two attempts open the breaker; the third attempt is rejected and not retried.
    let result = behind_breaker().await;
    assert!(
        matches!(
            result,
            Err(ApiError::Rejected(Rejected::CircuitOpen { .. }))
        ),
        "{result:?}"
    );
    assert_eq!(OPEN_CALLS.load(Ordering::SeqCst), 2);
    let breaker = breaker_registry()
        .get("retry_never_after_rejection")
        .unwrap();
    assert_eq!(breaker.state(), BreakerState::Open);
    let start = Instant::now();
    assert!(matches!(behind_breaker().await, Err(ApiError::Rejected(_))));
    assert_eq!(
        start.elapsed(),
        Duration::ZERO,
        "no backoff after a rejection"
    );
}

static RETRIES_SEEN: Mutex<Vec<(u32, Duration)>> = Mutex::new(Vec::new());

fn record_retry(attempt: u32, delay: Duration, error: &Failure<ApiError>) {
    assert_eq!(error, &Failure::Inner(ApiError::Status(502)));
    RETRIES_SEEN.lock().unwrap().push((attempt, delay));
}

#[with_backoff(initial_delay = "1s", max_attempts = 3, jitter = "none", on_retry = record_retry, budget = false)]
async fn observed() -> Result<(), ApiError> {
    Err(ApiError::Status(502))
}

#[tokio::test(start_paused = true)]
async fn on_retry_sees_each_retry() {
    assert_eq!(observed().await, Err(ApiError::Status(502)));
    assert_eq!(
        *RETRIES_SEEN.lock().unwrap(),
        vec![(2, Duration::from_secs(1)), (3, Duration::from_secs(2))]
    );
}

static OUTAGE_WITH_BUDGET: AtomicU32 = AtomicU32::new(0);
static OUTAGE_WITHOUT_BUDGET: AtomicU32 = AtomicU32::new(0);

#[with_backoff(
    name = "outage_budget",
    initial_delay = "10ms",
    max_attempts = 3,
    jitter = "none"
)]
async fn outage_with_budget() -> Result<(), ApiError> {
    OUTAGE_WITH_BUDGET.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(503))
}

#[with_backoff(
    name = "outage_no_budget",
    initial_delay = "10ms",
    max_attempts = 3,
    jitter = "none",
    budget = false
)]
async fn outage_without_budget() -> Result<(), ApiError> {
    OUTAGE_WITHOUT_BUDGET.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(503))
}

#[tokio::test(start_paused = true)]
async fn the_retry_budget_bounds_load_during_an_outage() {
    const CALLS: u32 = 1000;
    let mut with_budget = tokio::task::JoinSet::new();
    let mut without_budget = tokio::task::JoinSet::new();
    for _ in 0..CALLS {
        with_budget.spawn(outage_with_budget());
        without_budget.spawn(outage_without_budget());
    }
    while let Some(result) = with_budget.join_next().await {
        assert_eq!(result.unwrap(), Err(ApiError::Status(503)));
    }
    while let Some(result) = without_budget.join_next().await {
        assert_eq!(result.unwrap(), Err(ApiError::Status(503)));
    }
    // Default budget: 10% of calls plus 10 retries/s over a 10 s window (a floor of 100).
    let attempts = OUTAGE_WITH_BUDGET.load(Ordering::SeqCst);
    assert!(
        attempts <= CALLS * 11 / 10 + 100,
        "{attempts} attempts for {CALLS} calls"
    );
    assert!(attempts > CALLS, "some retries were made");
    assert_eq!(OUTAGE_WITHOUT_BUDGET.load(Ordering::SeqCst), CALLS * 3);
    let snapshot = retry_registry().get("outage_budget").unwrap().snapshot();
    assert_eq!(snapshot.calls, u64::from(CALLS));
    assert!(snapshot.budget_exhausted > 0);
}

#[timeout("1s")]
#[monitored(name = "timeout_monitor")]
#[circuit_breaker(name = "timeout_breaker", failure_threshold = 5)]
async fn slow(delay: Duration) -> Result<u8, ApiError> {
    tokio::time::sleep(delay).await;
    Ok(1)
}

#[tokio::test(start_paused = true)]
async fn a_timed_out_attempt_fails_for_the_breaker_and_the_monitor() {
    assert_eq!(slow(Duration::from_millis(10)).await, Ok(1));
    let start = Instant::now();
    assert_eq!(
        slow(Duration::from_secs(10)).await,
        Err(ApiError::Rejected(Rejected::Timeout {
            after: Duration::from_secs(1)
        }))
    );
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "the attempt was dropped at the deadline"
    );
    assert_eq!(
        breaker_registry()
            .get("timeout_breaker")
            .unwrap()
            .snapshot()
            .failure_count,
        1
    );
    let metrics = sla_registry().get("timeout_monitor").unwrap().metrics();
    assert_eq!((metrics.total_calls, metrics.total_failures), (2, 1));
    let timeouts = timeout_registry().get("retry::slow").unwrap().snapshot();
    assert_eq!((timeouts.attempts, timeouts.timeouts), (2, 1));
    let health = serde_json::to_value(reliable_runtime::get_system_health()).unwrap();
    assert_eq!(health["timeouts"]["retry::slow"]["timeouts"], 1);
}

static SLOW_ATTEMPTS: AtomicU32 = AtomicU32::new(0);

#[with_backoff(
    initial_delay = "100ms",
    max_attempts = 3,
    jitter = "none",
    budget = false
)]
#[timeout("1s")]
async fn slow_then_fast() -> Result<u8, ApiError> {
    let attempt = SLOW_ATTEMPTS.fetch_add(1, Ordering::SeqCst);
    if attempt < 2 {
        tokio::time::sleep(Duration::from_secs(60)).await;
    }
    Ok(2)
}

#[with_backoff(
    initial_delay = "100ms",
    max_attempts = 3,
    retry_timeouts = false,
    budget = false
)]
#[timeout("1s")]
async fn slow_not_retried() -> Result<u8, ApiError> {
    tokio::time::sleep(Duration::from_secs(60)).await;
    Ok(3)
}

#[tokio::test(start_paused = true)]
async fn timeouts_are_retried_unless_configured_not_to() {
    let start = Instant::now();
    assert_eq!(slow_then_fast().await, Ok(2));
    assert_eq!(start.elapsed(), Duration::from_millis(2_000 + 100 + 200));
    let start = Instant::now();
    assert!(matches!(
        slow_not_retried().await,
        Err(ApiError::Rejected(Rejected::Timeout { .. }))
    ));
    assert_eq!(start.elapsed(), Duration::from_secs(1));
}

// The same stack in two orders behaves the same.
static ORDER_A: AtomicU32 = AtomicU32::new(0);
static ORDER_B: AtomicU32 = AtomicU32::new(0);

#[with_backoff(
    initial_delay = "10ms",
    max_attempts = 4,
    jitter = "none",
    budget = false
)]
#[circuit_breaker(name = "order_retry_a", failure_threshold = 3)]
#[monitored(name = "order_retry_a")]
#[timeout("1s")]
async fn stack_a() -> Result<(), ApiError> {
    ORDER_A.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(500))
}

#[timeout("1s")]
#[monitored(name = "order_retry_b")]
#[circuit_breaker(name = "order_retry_b", failure_threshold = 3)]
#[with_backoff(
    initial_delay = "10ms",
    max_attempts = 4,
    jitter = "none",
    budget = false
)]
async fn stack_b() -> Result<(), ApiError> {
    ORDER_B.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(500))
}

/// An open breaker's retry-after is read from the system clock, whose coarse ticks may fall
/// between the two stacks' rejections: compare the outcomes without it.
fn without_retry_after(outcome: String) -> String {
    match outcome.split_once("retry_after") {
        Some((before, _)) => before.to_owned(),
        None => outcome,
    }
}

#[tokio::test(start_paused = true)]
async fn attribute_order_does_not_change_behaviour() {
    let mut a = Vec::new();
    let mut b = Vec::new();
    for _ in 0..3 {
        let start = Instant::now();
        a.push((
            without_retry_after(format!("{:?}", stack_a().await)).replace("order_retry_a", "NAME"),
            start.elapsed(),
        ));
        let start = Instant::now();
        b.push((
            without_retry_after(format!("{:?}", stack_b().await)).replace("order_retry_b", "NAME"),
            start.elapsed(),
        ));
    }
    assert_eq!(a, b);
    assert_eq!(
        ORDER_A.load(Ordering::SeqCst),
        3,
        "three attempts open the breaker; the fourth is rejected"
    );
    assert_eq!(ORDER_B.load(Ordering::SeqCst), 3);
    for name in ["order_retry_a", "order_retry_b"] {
        assert_eq!(
            sla_registry().get(name).unwrap().metrics().total_calls,
            3,
            "{name}"
        );
    }
}

static SYNC_CALLS: AtomicU32 = AtomicU32::new(0);

#[with_backoff(
    initial_delay = "1ms",
    max_attempts = 3,
    jitter = "none",
    budget = false
)]
fn sync_flaky() -> Result<u32, ApiError> {
    if SYNC_CALLS.fetch_add(1, Ordering::SeqCst) < 2 {
        return Err(ApiError::Status(503));
    }
    Ok(SYNC_CALLS.load(Ordering::SeqCst))
}

#[test]
fn blocking_functions_retry_too() {
    assert_eq!(sync_flaky(), Ok(3));
}

/// An outage at `rate` calls per second for a minute, every attempt failing: the requests the
/// failing service sees per second, over the last 30 s.
fn outage_requests_per_second(
    name: &str,
    budget: reliable_runtime::retry::RetryBudget,
    rate: u32,
) -> f64 {
    use reliable_runtime::clock::Clock;
    use reliable_runtime::retry::{RetryConfig, RetryPolicy};
    let (clock, hand) = Clock::manual();
    let policy = RetryPolicy::new(
        name,
        RetryConfig::default()
            .backoff(BackoffConfig::default().max_attempts(10))
            .budget(Some(budget))
            .clock(clock),
    )
    .unwrap();
    let mut requests = 0u64;
    for second in 0..60 {
        for _ in 0..rate {
            let mut state = policy.start();
            let mut attempts = 1;
            while state.after_failure(true, None).is_some() {
                attempts += 1;
            }
            if second >= 30 {
                requests += attempts;
            }
        }
        hand.advance(Duration::from_secs(1));
    }
    requests as f64 / 30.0
}

/// The documented bound: at most `rate × (1 + ratio) + min_retries_per_second` requests per
/// second in an outage; the floor dominates at low rates, and `min_retries_per_second = 0`
/// leaves the ratio alone.
#[test]
fn the_retry_budget_bounds_an_outage_as_documented() {
    use reliable_runtime::retry::RetryBudget;
    let default = RetryBudget::default();
    let with_floor = outage_requests_per_second("budget_bound_floor", default, 10);
    assert!(with_floor <= 10.0 * 1.1 + 10.0 + 0.5, "{with_floor}/s");
    assert!(
        with_floor > 15.0,
        "the floor lets most retries through: {with_floor}/s"
    );
    let without_floor =
        outage_requests_per_second("budget_bound_ratio", default.min_retries_per_second(0), 10);
    assert!(without_floor <= 10.0 * 1.1 + 0.5, "{without_floor}/s");
    assert!(
        without_floor >= 10.5,
        "the ratio still allows retries: {without_floor}/s"
    );
}

/// The one rule for user callbacks: a panic never reaches the caller. It is logged, and the
/// call goes on as without the callback's answer: `retry_if` → not retried, `retry_after` → the
/// backoff's delay, `failure_if` → counted as a failure, `on_retry` → retried anyway.
fn panicking_retry_if(_: &ApiError) -> bool {
    panic!("retry_if bug")
}

fn panicking_retry_after(_: &ApiError) -> Option<Duration> {
    panic!("retry_after bug")
}

fn panicking_failure_if(_: &ApiError) -> bool {
    panic!("failure_if bug")
}

static PANICKING_CALLS: AtomicU32 = AtomicU32::new(0);

#[with_backoff(max_attempts = 3, retry_if = panicking_retry_if, budget = false)]
async fn retry_if_panics() -> Result<(), ApiError> {
    PANICKING_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(503))
}

static HINT_CALLS: AtomicU32 = AtomicU32::new(0);

#[with_backoff(initial_delay = "1s", jitter = "none", max_attempts = 2, retry_after = panicking_retry_after, budget = false)]
async fn retry_after_panics() -> Result<(), ApiError> {
    HINT_CALLS.fetch_add(1, Ordering::SeqCst);
    Err(ApiError::Status(503))
}

#[circuit_breaker(name = "failure_if_panics", failure_threshold = 2, failure_if = panicking_failure_if)]
async fn failure_if_panics() -> Result<(), ApiError> {
    Err(ApiError::Status(404))
}

#[tokio::test(start_paused = true)]
async fn a_panicking_callback_never_reaches_the_caller() {
    assert_eq!(retry_if_panics().await, Err(ApiError::Status(503)));
    assert_eq!(PANICKING_CALLS.load(Ordering::SeqCst), 1, "not retried");

    let start = Instant::now();
    assert_eq!(retry_after_panics().await, Err(ApiError::Status(503)));
    assert_eq!(HINT_CALLS.load(Ordering::SeqCst), 2, "retried");
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(1),
        "after the backoff's delay"
    );

    for _ in 0..2 {
        assert_eq!(failure_if_panics().await, Err(ApiError::Status(404)));
    }
    let breaker = breaker_registry().get("failure_if_panics").unwrap();
    assert_eq!(breaker.state(), BreakerState::Open, "counted as failures");
}

static REFUSED_OR_RAN: AtomicU32 = AtomicU32::new(0);

#[reliable_runtime::rate_limited(name = "timeout_attempts_limit", per_minute = 50)]
#[timeout("1s")]
async fn limited_and_timed() -> Result<(), ApiError> {
    REFUSED_OR_RAN.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

/// A timeout counts the attempts that reached it, not those a limiter refused first.
#[tokio::test(start_paused = true)]
async fn timeout_attempts_count_only_attempts_that_ran() {
    let mut refused = 0;
    for _ in 0..60 {
        if limited_and_timed().await.is_err() {
            refused += 1;
        }
    }
    assert_eq!(refused, 10);
    assert_eq!(REFUSED_OR_RAN.load(Ordering::SeqCst), 50);
    let timeout = timeout_registry().get("retry::limited_and_timed").unwrap();
    assert_eq!(timeout.snapshot().attempts, 50);
}

/// Additive jitter keeps the schedule and spreads each delay by at most its factor.
#[reliable_runtime::with_backoff(
    max_attempts = 4,
    initial_delay = "1s",
    jitter = "additive",
    jitter_factor = 0.2,
    budget = false
)]
async fn spread_a_little() -> Result<(), reliable_runtime::Rejected> {
    Err(reliable_runtime::Rejected::BulkheadFull { bulkhead: "spread" })
}

#[tokio::test(start_paused = true)]
async fn additive_jitter_spreads_each_delay_by_at_most_its_factor() {
    for _ in 0..20 {
        let start = tokio::time::Instant::now();
        let _ = spread_a_little().await;
        // 1 + 2 + 4 s, each up to 20% longer.
        let elapsed = start.elapsed();
        assert!(
            elapsed >= std::time::Duration::from_secs(7)
                && elapsed <= std::time::Duration::from_millis(8_400),
            "{elapsed:?}"
        );
    }
}
