//! Configurations at the edges of what validation accepts (`Duration::MAX`-scale durations,
//! huge multipliers) work without panicking: configurations come from files, so a typo must
//! never crash a caller. Each case failed (a panic converting seconds to a `Duration`) before
//! durations computed in floating point saturated.

use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use reliable_runtime::cache::{Cache, CacheConfig, CachePolicy};
use reliable_runtime::clock::Clock;
use reliable_runtime::limit::{RateLimit, RateLimiter, RateLimiterConfig};
use reliable_runtime::retry::{BackoffConfig, Jitter, RetryBudget, RetryConfig, RetryPolicy};
use std::time::Duration;

const HUGE: Duration = Duration::MAX;

#[test]
fn an_adaptive_cache_with_a_huge_ttl_adapts_without_panicking() {
    let (clock, hand) = Clock::manual();
    let config = CacheConfig {
        policy: CachePolicy::Adaptive,
        ttl: HUGE / 2,
        min_ttl: HUGE / 4,
        max_ttl: HUGE,
        clock,
        ..CacheConfig::default()
    };
    config.validate().unwrap();
    let cache: Cache<u32, u32> = Cache::new("extreme_adaptive", config).unwrap();
    for key in 0..50 {
        cache.insert(key, key);
        assert_eq!(cache.get(&key), Some(key)); // hits grow the TTL toward the maximum
        assert_eq!(cache.get(&(key + 1_000)), None); // misses shrink it
        hand.advance(Duration::from_secs(3600));
    }
    // TTLs are kept in nanoseconds: they saturate at 584 years.
    let ttl = cache.current_ttl();
    assert!(ttl >= Duration::from_nanos(u64::MAX), "{ttl:?}");
}

#[test]
fn decorrelated_jitter_with_huge_delays_saturates() {
    let config = BackoffConfig {
        initial_delay: HUGE / 2,
        max_delay: HUGE,
        multiplier: 1e300,
        max_attempts: 10,
        jitter: Jitter::Decorrelated,
    };
    config.validate().unwrap();
    for retry in 1..10 {
        for unit in [0.0, 0.5, 0.999] {
            let delay = config.delay(retry, HUGE, unit);
            assert!(delay >= HUGE / 2 && delay <= HUGE, "{delay:?}");
        }
    }
    for jitter in [Jitter::None, Jitter::Full, Jitter::Equal] {
        let config = BackoffConfig { jitter, ..config };
        assert!(config.delay(3, HUGE, 0.5) <= HUGE);
    }
}

#[test]
fn a_breaker_with_a_huge_open_timeout_stays_open() {
    let (clock, hand) = Clock::manual();
    let breaker = CircuitBreaker::new(
        "extreme_breaker",
        BreakerConfig {
            failure_threshold: 1,
            timeout: HUGE,
            max_timeout: HUGE,
            timeout_multiplier: 1e300,
            clock,
            ..BreakerConfig::cex()
        },
    )
    .unwrap();
    for _ in 0..3 {
        if let Ok(permit) = breaker.try_acquire() {
            permit.failure();
        }
        hand.advance(Duration::from_secs(86_400 * 365));
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let rejected = breaker.try_acquire().unwrap_err();
    assert!(rejected.retry_after().unwrap() > Duration::from_secs(86_400 * 365 * 100));
    assert!(breaker.snapshot().open_remaining.unwrap() > 0.0);
}

#[test]
fn a_rate_limit_with_a_huge_window_refuses_with_a_huge_wait() {
    let (clock, hand) = Clock::manual();
    let limiter = RateLimiter::new(
        "extreme_limiter",
        RateLimiterConfig {
            limit: RateLimit {
                limit: 2,
                window: HUGE,
                burst: Some(1),
            },
            clock,
        },
    )
    .unwrap();
    assert!(limiter.try_acquire().is_ok());
    hand.advance(Duration::from_secs(86_400 * 365));
    let rejected = limiter.try_acquire().unwrap_err();
    assert!(rejected.retry_after().unwrap() > Duration::from_secs(86_400 * 365 * 100));
    assert!(limiter.snapshot().next_slot_in > 0.0);
}

#[test]
fn a_retry_budget_over_a_huge_window_counts_without_panicking() {
    let (clock, hand) = Clock::manual();
    let policy = RetryPolicy::new(
        "extreme_budget",
        RetryConfig {
            budget: Some(RetryBudget {
                ratio: 1e300,
                min_retries_per_second: u32::MAX,
                window: HUGE,
            }),
            clock,
            ..RetryConfig::default()
        },
    )
    .unwrap();
    for _ in 0..5 {
        let mut state = policy.start();
        while state.after_failure(true, None).is_some() {}
        hand.advance(Duration::from_secs(3600));
    }
    assert_eq!(policy.snapshot().budget_exhausted, 0);
}
