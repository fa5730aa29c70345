//! What a caller learns: where a value came from, through the attributes and through `Policy`.

use reliable_runtime::clock::Clock;
use reliable_runtime::served::{observe, observe_blocking, Source};
use reliable_runtime::{cached, graceful_degradation, Policy, Rejected};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

#[derive(Clone, Debug, PartialEq)]
enum ApiError {
    Down,
    Rejected(Rejected),
}

impl From<Rejected> for ApiError {
    fn from(rejected: Rejected) -> Self {
        ApiError::Rejected(rejected)
    }
}

static DOWN: AtomicBool = AtomicBool::new(false);

fn no_book(_symbol: &str) -> Result<Vec<f64>, ApiError> {
    Ok(Vec::new())
}

#[graceful_degradation(fallback = no_book, name = "served_book")]
#[cached(ttl = "10s", stale = "60s", name = "served_book")]
async fn book(symbol: &str) -> Result<Vec<f64>, ApiError> {
    if DOWN.load(Ordering::SeqCst) {
        return Err(ApiError::Down);
    }
    Ok(vec![symbol.len() as f64])
}

#[tokio::test]
async fn a_caller_learns_fresh_cached_stale_and_fallback_through_the_attributes() {
    let (clock, hand) = Clock::manual();
    reliable_runtime::registry::cache_registry()
        .get_or_create::<(String,), Vec<f64>>(
            "served_book",
            reliable_runtime::cache::CacheConfig::default()
                .ttl(Duration::from_secs(10))
                .stale(Duration::from_secs(60))
                .clock(clock),
        )
        .unwrap();
    let fresh = observe(book("BTC")).await;
    assert_eq!((fresh.value, fresh.source), (Ok(vec![3.0]), Source::Fresh));
    let hit = observe(book("BTC")).await;
    assert_eq!((hit.value, hit.source), (Ok(vec![3.0]), Source::Cached));

    // Past its TTL while the source is down: the stale value, with its age (since it was loaded).
    DOWN.store(true, Ordering::SeqCst);
    hand.advance(Duration::from_secs(15));
    let stale = observe(book("BTC")).await;
    assert_eq!(stale.value, Ok(vec![3.0]));
    assert_eq!(
        stale.source,
        Source::Stale {
            age: Duration::from_secs(15)
        }
    );
    // Nothing cached for this one: the fallback's empty book, and why.
    let fallback = observe(book("ETH")).await;
    assert_eq!(fallback.value, Ok(Vec::new()));
    assert!(
        matches!(&fallback.source, Source::Fallback { cause } if cause.contains("ApiError")),
        "{:?}",
        fallback.source
    );
    DOWN.store(false, Ordering::SeqCst);
    // Callers that do not ask see the same values as ever.
    assert_eq!(book("BTC").await, Ok(vec![3.0]));
}

#[cached(ttl = 60, name = "served_inner")]
async fn inner(x: u32) -> Result<u32, ApiError> {
    Ok(x)
}

#[reliable_runtime::monitored(name = "served_outer")]
async fn outer(x: u32) -> Result<u32, ApiError> {
    // A cache hit inside the body does not make the outer call a cache hit.
    inner(x).await?;
    inner(x).await
}

#[tokio::test]
async fn a_call_reports_its_own_source_not_its_bodys() {
    let served = observe(outer(7)).await;
    assert_eq!((served.value, served.source), (Ok(7), Source::Fresh));
    // Observers nest: each sees its own call.
    let nested = observe(async {
        let inner_served = observe(inner(7)).await;
        assert_eq!(inner_served.source, Source::Cached);
        outer(7).await
    })
    .await;
    assert_eq!(nested.source, Source::Fresh);
}

#[tokio::test]
async fn a_policy_reports_sources_too() {
    let policy = Policy::builder("served_policy")
        .breaker("served_policy", |breaker| breaker.failure_threshold(1))
        .cache("served_policy", |cache| cache.ttl(Duration::from_secs(60)))
        .build()
        .unwrap();
    let fresh = observe(policy.cached(1u8, || async { Ok::<_, ApiError>("one") })).await;
    assert_eq!(fresh.source, Source::Fresh);
    let hit = observe(policy.cached(1u8, || async { Ok::<_, ApiError>("one") })).await;
    assert_eq!(hit.source, Source::Cached);
    // A failure opens the breaker; the next call is refused and the fallback answers.
    let _ = policy.call(|| async { Err::<(), _>(ApiError::Down) }).await;
    let answered =
        observe(policy.call_or_else(|| async { Ok::<_, ApiError>(1) }, |_| async { Ok(0) })).await;
    assert_eq!(answered.value, Ok(0));
    assert!(
        matches!(&answered.source, Source::Fallback { cause } if cause.contains("served_policy")),
        "{:?}",
        answered.source
    );
    let blocking = observe_blocking(|| policy.cached_blocking(2u8, || Ok::<_, ApiError>("two")));
    assert_eq!(blocking.source, Source::Fresh);
}

#[cached(ttl = 60, name = "served_race")]
async fn slow_fresh(x: u32) -> Result<u32, ApiError> {
    // Waits, so the observed call is polled again, perhaps on another worker thread.
    tokio::task::yield_now().await;
    tokio::time::sleep(Duration::from_millis(1)).await;
    Ok(x)
}

/// More tasks than workers, each observing its own call while others observe theirs: every
/// observer gets its own call's source, whatever threads its polls ran on.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_observers_each_see_their_own_call() {
    for round in 0..20u32 {
        // Keys below 8 are cached before the round starts; the others load now.
        for key in 0..8 {
            slow_fresh(round * 1_000 + key).await.unwrap();
        }
        let tasks: Vec<_> = (0..64u32)
            .map(|i| {
                tokio::spawn(async move {
                    let key = round * 1_000 + i;
                    let served = observe(slow_fresh(key)).await;
                    (i, served)
                })
            })
            .collect();
        for task in tasks {
            let (i, served) = task.await.unwrap();
            assert_eq!(served.value, Ok(round * 1_000 + i));
            let expected = if i < 8 { Source::Cached } else { Source::Fresh };
            assert_eq!(served.source, expected, "round {round}, task {i}");
        }
    }
}
