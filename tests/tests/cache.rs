//! The cache engine: TTL and stale windows, eviction policies, adaptive TTL, jitter,
//! single-flight, stale-while-revalidate, stale-if-error, bounded memory.

use reliable_runtime::cache::{Cache, CacheConfig, CachePolicy, Lookup};
use reliable_runtime::clock::{Clock, ManualClock};
use reliable_runtime::event::{subscribe, Event};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn cache(config: CacheConfig) -> (Cache<String, u64>, ManualClock) {
    let (clock, hand) = Clock::manual();
    let cache = Cache::new("cache_test", config.clock(clock)).unwrap();
    (cache, hand)
}

fn key(i: usize) -> String {
    format!("key{i}")
}

#[test]
fn ttl_then_stale_window_then_miss() {
    let (cache, hand) = cache(
        CacheConfig::default()
            .ttl(Duration::from_secs(5))
            .stale(Duration::from_secs(5)),
    );
    cache.insert(key(1), 10);
    hand.advance(Duration::from_secs(4));
    assert_eq!(cache.lookup("key1"), Lookup::Fresh(10));
    hand.advance(Duration::from_secs(2));
    assert_eq!(
        cache.lookup("key1"),
        Lookup::Stale {
            value: 10,
            age: Duration::from_secs(6)
        }
    );
    hand.advance(Duration::from_secs(5));
    assert_eq!(cache.lookup("key1"), Lookup::Miss);
    let snapshot = cache.snapshot();
    assert_eq!((snapshot.hits, snapshot.misses), (1, 2));
}

#[test]
fn lru_evicts_the_least_recently_used() {
    let (cache, hand) = cache(
        CacheConfig::default()
            .ttl(Duration::from_secs(3600))
            .policy(CachePolicy::Lru)
            .max_entries(10)
            .eviction_ratio(0.5),
    );
    for i in 0..10 {
        cache.insert(key(i), i as u64);
        hand.advance(Duration::from_millis(2));
    }
    // Use the five oldest again: now the five newest are the least recently used.
    for i in 0..5 {
        assert_eq!(cache.get(key(i).as_str()), Some(i as u64));
        hand.advance(Duration::from_millis(2));
    }
    cache.insert(key(10), 10);
    // 11 entries, keep 5: the five unused ones go, then the least recently used of the rest.
    assert_eq!(cache.len(), 5);
    for i in [1, 2, 3, 4, 10] {
        assert!(
            cache.get(key(i).as_str()).is_some(),
            "recently used key{i} kept"
        );
    }
    for i in [0, 5, 6, 7, 8, 9] {
        assert!(cache.get(key(i).as_str()).is_none(), "key{i} evicted");
    }
    assert_eq!(cache.snapshot().evictions, 6);
}

#[test]
fn lfu_evicts_the_least_frequently_used() {
    let (cache, hand) = cache(
        CacheConfig::default()
            .ttl(Duration::from_secs(3600))
            .policy(CachePolicy::Lfu)
            .max_entries(10)
            .eviction_ratio(0.5),
    );
    for i in 0..10 {
        cache.insert(key(i), i as u64);
    }
    // Keys 5..10 are hot (hits are sampled, so many of them); 0..5 are cold.
    for _ in 0..400 {
        for i in 5..10 {
            cache.get(key(i).as_str());
        }
    }
    hand.advance(Duration::from_millis(1));
    cache.insert(key(10), 10);
    for i in 5..10 {
        assert!(cache.get(key(i).as_str()).is_some(), "hot key{i} kept");
    }
    for i in 0..5 {
        assert!(cache.get(key(i).as_str()).is_none(), "cold key{i} evicted");
    }
}

#[test]
fn ttl_policy_evicts_those_closest_to_expiry_and_expired_first() {
    let (cache, hand) = cache(
        CacheConfig::default()
            .ttl(Duration::from_secs(10))
            .max_entries(4)
            .eviction_ratio(0.5)
            .stale(Duration::ZERO),
    );
    for i in 0..4 {
        cache.insert(key(i), i as u64);
        hand.advance(Duration::from_secs(1));
    }
    cache.insert(key(4), 4);
    // Keep 2: the two inserted last.
    assert_eq!(cache.len(), 2);
    assert!(cache.get("key3").is_some() && cache.get("key4").is_some());
}

#[test]
fn adaptive_ttl_moves_as_specified_within_bounds() {
    let (cache, _hand) = cache(
        CacheConfig::default()
            .ttl(Duration::from_secs(5))
            .policy(CachePolicy::Adaptive)
            .min_ttl(Duration::from_secs(2))
            .max_ttl(Duration::from_secs(15)),
    );
    cache.insert(key(1), 1);
    cache.get("key1"); // hit: 5 × 1.2 = 6
    cache.get("missing"); // miss: 6 × 0.8 = 4.8
    assert!(
        (cache.current_ttl().as_secs_f64() - 4.8).abs() < 1e-6,
        "{:?}",
        cache.current_ttl()
    );
    for _ in 0..50 {
        cache.get("key1"); // capped at 15
    }
    cache.get("missing"); // 15 × 0.8 = 12
    assert!((cache.current_ttl().as_secs_f64() - 12.0).abs() < 1e-6);
    for _ in 0..50 {
        cache.get("missing"); // floored at 2
        assert!(cache.current_ttl() >= Duration::from_secs(2));
    }
    assert!((cache.current_ttl().as_secs_f64() - 2.0).abs() < 1e-6);
    assert_eq!(
        cache.snapshot().ttl_seconds,
        cache.current_ttl().as_secs_f64()
    );
}

#[test]
fn ttl_jitter_spreads_expiry() {
    let (cache, hand) = cache(
        CacheConfig::default()
            .ttl(Duration::from_secs(100))
            .stale(Duration::ZERO)
            .ttl_jitter(0.2)
            .max_entries(100_000),
    );
    for i in 0..1000 {
        cache.insert(key(i), 0);
    }
    let fresh_at = |cache: &Cache<String, u64>| {
        (0..1000)
            .filter(|&i| cache.get(key(i).as_str()).is_some())
            .count()
    };
    hand.set(Duration::from_secs(79));
    assert_eq!(
        fresh_at(&cache),
        1000,
        "nothing expires before 80% of the TTL"
    );
    hand.set(Duration::from_secs(100));
    let half = fresh_at(&cache);
    assert!(
        (300..700).contains(&half),
        "about half expired at the nominal TTL: {half}"
    );
    hand.set(Duration::from_secs(121));
    assert_eq!(fresh_at(&cache), 0, "everything expired by 120% of the TTL");
}

#[tokio::test(start_paused = true)]
async fn a_thousand_cold_callers_run_one_load() {
    let cache: Arc<Cache<String, u64>> =
        Arc::new(Cache::new("single_flight", CacheConfig::default()).unwrap());
    let loads = Arc::new(AtomicU32::new(0));
    let mut callers = tokio::task::JoinSet::new();
    for _ in 0..1000 {
        let (cache, loads) = (Arc::clone(&cache), Arc::clone(&loads));
        callers.spawn(async move {
            cache
                .get_or_load("BTCUSDT".to_string(), || async {
                    loads.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Ok::<_, ()>(97_000)
                })
                .await
        });
    }
    while let Some(result) = callers.join_next().await {
        assert_eq!(result.unwrap(), Ok(97_000));
    }
    assert_eq!(loads.load(Ordering::SeqCst), 1);
    assert_eq!(cache.snapshot().loads, 1);
}

#[tokio::test(start_paused = true)]
async fn stale_while_revalidate_does_not_wait_for_the_refresh() {
    let clock = Clock::tokio();
    let cache: Arc<Cache<String, u64>> = Arc::new(
        Cache::new(
            "swr",
            CacheConfig::default()
                .ttl(Duration::from_secs(5))
                .stale(Duration::from_secs(5))
                .clock(clock),
        )
        .unwrap(),
    );
    cache.insert("k".into(), 1);
    tokio::time::advance(Duration::from_secs(6)).await;
    let refresher = {
        let cache = Arc::clone(&cache);
        tokio::spawn(async move {
            cache
                .get_or_load("k".to_string(), || async {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok::<_, ()>(2)
                })
                .await
        })
    };
    tokio::task::yield_now().await; // the refresh is in flight
    let start = tokio::time::Instant::now();
    let during = cache
        .get_or_load("k".to_string(), || async { Ok::<_, ()>(99) })
        .await;
    assert_eq!(during, Ok(1), "the stale value, at once");
    assert_eq!(start.elapsed(), Duration::ZERO);
    assert_eq!(refresher.await.unwrap(), Ok(2));
    assert_eq!(cache.get("k"), Some(2));
}

#[tokio::test(start_paused = true)]
async fn stale_if_error_serves_the_stale_value_and_says_so() {
    let clock = Clock::tokio();
    let cache: Cache<String, u64> = Cache::new(
        "stale_if_error",
        CacheConfig::default()
            .ttl(Duration::from_secs(5))
            .stale(Duration::from_secs(5))
            .clock(clock),
    )
    .unwrap();
    let mut events = subscribe();
    cache.insert("k".into(), 1);
    tokio::time::advance(Duration::from_secs(7)).await;
    let served = cache
        .get_or_load("k".to_string(), || async { Err::<u64, _>("503") })
        .await;
    assert_eq!(served, Ok(1));
    let event = loop {
        match events.try_recv().unwrap() {
            Event::StaleServed(event) if event.cache == "stale_if_error" => break event,
            _ => continue,
        }
    };
    assert_eq!(event.age, Duration::from_secs(7));
    assert_eq!(cache.snapshot().stale_if_error, 1);
}

#[tokio::test]
async fn errors_are_not_cached() {
    let cache: Cache<String, u64> = Cache::new("errors", CacheConfig::default()).unwrap();
    assert_eq!(
        cache
            .get_or_load("k".to_string(), || async { Err::<u64, _>("down") })
            .await,
        Err("down")
    );
    assert_eq!(
        cache
            .get_or_load("k".to_string(), || async { Ok::<_, &str>(5) })
            .await,
        Ok(5)
    );
    let snapshot = cache.snapshot();
    assert_eq!((snapshot.loads, snapshot.load_errors), (2, 1));
}

#[tokio::test]
async fn warmup_fills_keys_ahead_of_traffic() {
    let cache: Cache<String, usize> = Cache::new("warmup", CacheConfig::default()).unwrap();
    let loaded = cache
        .warmup(["BTC", "ETH", "SOL"].map(String::from), |symbol| {
            let len = symbol.len();
            async move { Ok::<_, ()>(len) }
        })
        .await;
    assert_eq!(loaded, 3);
    assert_eq!(cache.get("ETH"), Some(3));
}

#[test]
fn a_million_keys_stay_within_max_entries() {
    let (cache, _hand) = cache(CacheConfig::default().max_entries(10_000));
    for i in 0..1_000_000u64 {
        cache.insert(format!("k{i}"), i);
        assert!(
            cache.len() <= 10_001,
            "{} entries after {i} inserts",
            cache.len()
        );
    }
    assert!(cache.len() <= 10_000);
    assert!(cache.snapshot().evictions >= 990_000);
}

#[test]
fn bad_configuration_is_an_error() {
    let bad = |config: CacheConfig| {
        Cache::<String, u64>::new("bad", config)
            .unwrap_err()
            .field()
    };
    assert_eq!(bad(CacheConfig::default().max_entries(0)), "max_entries");
    assert_eq!(bad(CacheConfig::default().ttl_jitter(0.9)), "ttl_jitter");
    assert_eq!(
        bad(CacheConfig::default()
            .policy(CachePolicy::Adaptive)
            .min_ttl(Duration::from_secs(10))),
        "ttl"
    );
}

/// A reconfigured cache keeps its entries with their own deadlines; entries stored after take
/// the new TTL and stale period; the policy and a bad value are refused, changing nothing.
#[test]
fn a_reconfigured_ttl_applies_to_entries_stored_from_then_on() {
    let (cache, hand) = cache(CacheConfig::default().ttl(Duration::from_secs(10)));
    cache.insert(key(1), 1);
    cache
        .reconfigure(|config| config.ttl(Duration::from_secs(2)))
        .unwrap();
    cache.insert(key(2), 2);
    hand.advance(Duration::from_secs(3));
    assert!(
        matches!(cache.lookup(&key(1)), Lookup::Fresh(1)),
        "kept its 10 s"
    );
    assert!(
        matches!(cache.lookup(&key(2)), Lookup::Stale { value: 2, .. }),
        "the new 2 s, then 2 s stale"
    );
    hand.advance(Duration::from_secs(2));
    assert!(matches!(cache.lookup(&key(2)), Lookup::Miss));

    let error = cache
        .reconfigure(|config| config.policy(CachePolicy::Lru))
        .unwrap_err();
    assert_eq!(error.field(), "policy");
    assert_eq!(cache.config().policy, CachePolicy::Ttl);
    assert_eq!(cache.current_ttl(), Duration::from_secs(2));
}

/// An adaptive TTL goes on from where the hits took it when other settings change, within
/// the new range, and restarts from a new TTL.
#[test]
fn an_adaptive_ttl_survives_a_reconfiguration_within_the_new_range() {
    let (cache, _hand) = cache(CacheConfig::orderbooks());
    cache.insert(key(1), 1);
    for _ in 0..3 {
        assert!(cache.get(&key(1)).is_some());
    }
    assert!(cache.get(&key(2)).is_none()); // the miss applies 3 hits and itself: 5 × 1.2³ × 0.8
    let adapted = cache.current_ttl();
    assert!(adapted > Duration::from_secs(6), "{adapted:?}");
    cache.reconfigure(|config| config.max_entries(500)).unwrap();
    assert_eq!(cache.current_ttl(), adapted);
    cache
        .reconfigure(|config| config.max_ttl(Duration::from_secs(6)))
        .unwrap();
    assert_eq!(
        cache.current_ttl(),
        Duration::from_secs(6),
        "clamped to the new range"
    );
    cache
        .reconfigure(|config| config.ttl(Duration::from_secs(3)))
        .unwrap();
    assert_eq!(cache.current_ttl(), Duration::from_secs(3));
}

/// A lower size evicts at once, as a full cache does, keeping the counters.
#[test]
fn a_lower_size_evicts_at_once() {
    let (cache, _hand) = cache(CacheConfig::default());
    for i in 0..100 {
        cache.insert(key(i), i as u64);
    }
    cache.get(&key(0));
    cache.reconfigure(|config| config.max_entries(40)).unwrap();
    assert_eq!(cache.len(), 36, "down to 40 less its eviction ratio, 10%");
    let stats = cache.snapshot();
    assert_eq!((stats.hits, stats.evictions), (1, 64));
}
