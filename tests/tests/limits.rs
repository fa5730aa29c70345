//! Rate limits and bulkheads through the attributes.

use reliable_runtime::clock::Clock;
use reliable_runtime::limit::{RateLimit, RateLimiterConfig};
use reliable_runtime::registry::{breaker_registry, bulkhead_registry, rate_limiter_registry};
use reliable_runtime::{bulkhead, circuit_breaker, rate_limited, Rejected};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;
use tokio::time::Instant;

#[derive(Debug, PartialEq)]
enum ApiError {
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

#[rate_limited(name = "limits_per_minute", per_minute = 60)]
async fn refuse_over_limit() -> Result<(), ApiError> {
    Ok(())
}

#[rate_limited(name = "limits_waiting", per_minute = 60, wait = true)]
async fn wait_for_slot() -> Result<(), ApiError> {
    Ok(())
}

fn register_on_tokio_clock(name: &str) {
    rate_limiter_registry()
        .get_or_create(
            name,
            RateLimiterConfig::new(RateLimit::per_minute(60)).clock(Clock::tokio()),
        )
        .unwrap();
}

#[tokio::test(start_paused = true)]
async fn sixty_a_minute_then_the_61st_is_refused() {
    register_on_tokio_clock("limits_per_minute");
    for i in 0..60 {
        assert_eq!(refuse_over_limit().await, Ok(()), "call {i}");
        tokio::time::advance(Duration::from_millis(500)).await;
    }
    match refuse_over_limit().await {
        Err(ApiError::Rejected(Rejected::RateLimited {
            limiter,
            retry_after,
        })) => {
            assert_eq!(limiter, "limits_per_minute");
            assert_eq!(retry_after, Duration::from_secs(30));
        }
        other => panic!("expected a rate limit, got {other:?}"),
    }
    tokio::time::advance(Duration::from_secs(30)).await;
    assert_eq!(refuse_over_limit().await, Ok(()));
    let snapshot = rate_limiter_registry()
        .get("limits_per_minute")
        .unwrap()
        .snapshot();
    assert_eq!((snapshot.admitted, snapshot.limited), (61, 1));
}

#[tokio::test(start_paused = true)]
async fn with_wait_the_61st_waits_for_its_slot() {
    register_on_tokio_clock("limits_waiting");
    let start = Instant::now();
    for _ in 0..60 {
        assert_eq!(wait_for_slot().await, Ok(()));
    }
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(wait_for_slot().await, Ok(()));
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(60),
        "the 61st waited for the first to leave the window"
    );
}

static BEHIND_LIMIT: AtomicU32 = AtomicU32::new(0);

#[circuit_breaker(name = "limits_breaker", failure_threshold = 1)]
#[rate_limited(name = "limits_before_breaker", per_second = 1)]
async fn limited_behind_breaker() -> Result<(), ApiError> {
    BEHIND_LIMIT.fetch_add(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test]
async fn a_rate_limited_call_does_not_count_for_the_breaker() {
    assert_eq!(limited_behind_breaker().await, Ok(()));
    for _ in 0..5 {
        assert!(matches!(
            limited_behind_breaker().await,
            Err(ApiError::Rejected(Rejected::RateLimited { .. }))
        ));
    }
    assert_eq!(BEHIND_LIMIT.load(Ordering::SeqCst), 1);
    let breaker = breaker_registry().get("limits_breaker").unwrap();
    assert_eq!(breaker.snapshot().failure_count, 0);
    assert!(!breaker.state().is_open());
}

static IN_FLIGHT: AtomicU32 = AtomicU32::new(0);
static MAX_IN_FLIGHT: AtomicU32 = AtomicU32::new(0);

#[bulkhead(name = "limits_bulkhead", max_concurrent = 3, max_wait = "10s")]
async fn guarded_work() -> Result<(), ApiError> {
    let now = IN_FLIGHT.fetch_add(1, Ordering::SeqCst) + 1;
    MAX_IN_FLIGHT.fetch_max(now, Ordering::SeqCst);
    for _ in 0..20 {
        tokio::task::yield_now().await;
    }
    IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_flight_never_exceeds_the_bulkhead() {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..200 {
        tasks.spawn(guarded_work());
    }
    while let Some(result) = tasks.join_next().await {
        assert_eq!(result.unwrap(), Ok(()));
    }
    assert!(MAX_IN_FLIGHT.load(Ordering::SeqCst) <= 3);
    assert_eq!(
        MAX_IN_FLIGHT.load(Ordering::SeqCst),
        3,
        "the tasks did overlap"
    );
    let snapshot = bulkhead_registry()
        .get("limits_bulkhead")
        .unwrap()
        .snapshot();
    assert_eq!((snapshot.admitted, snapshot.in_flight), (200, 0));
}

#[bulkhead(name = "limits_refusing", max_concurrent = 1)]
async fn refusing() -> Result<(), ApiError> {
    tokio::time::sleep(Duration::from_secs(1)).await;
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn without_max_wait_a_full_bulkhead_refuses_at_once() {
    let (first, second) = tokio::join!(refusing(), refusing());
    assert_eq!(first, Ok(()));
    assert_eq!(
        second,
        Err(ApiError::Rejected(Rejected::BulkheadFull {
            bulkhead: "limits_refusing"
        }))
    );
}

/// Whether the bulkhead slot was still held when the cancelled body's drop code ran.
static SLOT_HELD_WHILE_DROPPING: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

struct CheckSlotOnDrop;

impl Drop for CheckSlotOnDrop {
    fn drop(&mut self) {
        let bulkhead = bulkhead_registry().get("limits_drop_order").unwrap();
        SLOT_HELD_WHILE_DROPPING.store(bulkhead.snapshot().in_flight == 1, Ordering::SeqCst);
    }
}

#[bulkhead(name = "limits_drop_order", max_concurrent = 1)]
async fn holds_a_connection() -> Result<(), ApiError> {
    let _connection = CheckSlotOnDrop;
    tokio::task::yield_now().await;
    Ok(())
}

/// A cancelled call ends (its drop code runs, closing what it opened) before its slot frees
/// for the next caller, so the two never overlap.
#[test]
fn a_cancelled_call_ends_before_its_slot_frees() {
    let mut call = Box::pin(holds_a_connection());
    let mut context = std::task::Context::from_waker(std::task::Waker::noop());
    let first = std::future::Future::poll(call.as_mut(), &mut context);
    assert!(first.is_pending(), "inside the body");
    drop(call);
    assert!(SLOT_HELD_WHILE_DROPPING.load(Ordering::SeqCst));
    let bulkhead = bulkhead_registry().get("limits_drop_order").unwrap();
    assert_eq!(bulkhead.snapshot().in_flight, 0, "and then it frees");
}

/// Endpoints of one exchange share its weight limit, each with its own request weight; the
/// server's report of used weight tightens it; a waiting policy waits for the weight to fit.
#[tokio::test(start_paused = true)]
async fn endpoints_share_a_weighted_limit_corrected_by_the_server() {
    use reliable_runtime::clock::Clock;
    use reliable_runtime::limit::WeightedLimiter;
    use reliable_runtime::{Policy, Rejected};
    use std::sync::Arc;
    use std::time::Duration;
    let weight = Arc::new(
        WeightedLimiter::new(
            "limits_exchange_weight",
            &[RateLimit::per_minute(1200), RateLimit::per_second(300)],
            Clock::tokio(),
        )
        .unwrap(),
    );
    let depth = Policy::builder("limits_depth")
        .weighted_limit(Arc::clone(&weight), 250)
        .build()
        .unwrap();
    let ticker = Policy::builder("limits_ticker")
        .weighted_limit(Arc::clone(&weight), 2)
        .wait_for_rate_limit()
        .build()
        .unwrap();
    let ok = || async { Ok::<_, Rejected>(()) };
    assert_eq!(depth.call(ok).await, Ok(()));
    // 250 of the second's 300 used: another depth does not fit, a ticker does.
    assert!(matches!(
        depth.call(ok).await,
        Err(Rejected::RateLimited { retry_after, .. }) if retry_after == Duration::from_secs(1)
    ));
    assert_eq!(ticker.call(ok).await, Ok(()));
    // The server says 1190 of its minute is used: a ticker (2) waits until the minute frees
    // enough, the correction leaving it a minute after it was made.
    assert!(weight.correct(Duration::from_secs(60), 1_199));
    let start = tokio::time::Instant::now();
    assert_eq!(ticker.call(ok).await, Ok(()));
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    // A blocking call takes the same weight.
    assert_eq!(
        depth.call_blocking(|| Ok::<_, Rejected>(())),
        Ok(()),
        "the minute is empty again"
    );
    assert_eq!(weight.snapshot().admitted, 4);
}
