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
    let config = CacheConfig::default()
        .ttl(HUGE / 2)
        .policy(CachePolicy::Adaptive)
        .min_ttl(HUGE / 4)
        .max_ttl(HUGE)
        .clock(clock);
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
    let config = BackoffConfig::default()
        .initial_delay(HUGE / 2)
        .max_delay(HUGE)
        .multiplier(1e300)
        .max_attempts(10)
        .jitter(Jitter::Decorrelated);
    config.validate().unwrap();
    for retry in 1..10 {
        for unit in [0.0, 0.5, 0.999] {
            let delay = config.delay(retry, HUGE, unit);
            assert!(delay >= HUGE / 2 && delay <= HUGE, "{delay:?}");
        }
    }
    for jitter in [Jitter::None, Jitter::Full, Jitter::Equal] {
        let config = config.jitter(jitter);
        assert!(config.delay(3, HUGE, 0.5) <= HUGE);
    }
}

#[test]
fn a_breaker_with_a_huge_open_timeout_stays_open() {
    let (clock, hand) = Clock::manual();
    let breaker = CircuitBreaker::new(
        "extreme_breaker",
        BreakerConfig::cex()
            .failure_threshold(1)
            .timeout(HUGE)
            .max_timeout(HUGE)
            .timeout_multiplier(1e300)
            .clock(clock),
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
        RateLimiterConfig::new(RateLimit::per_second(2).window(HUGE).burst(Some(1))).clock(clock),
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
        RetryConfig::default()
            .budget(Some(
                RetryBudget::default()
                    .ratio(1e300)
                    .min_retries_per_second(u32::MAX)
                    .window(HUGE),
            ))
            .clock(clock),
    )
    .unwrap();
    for _ in 0..5 {
        let mut state = policy.start();
        while state.after_failure(true, None).is_some() {}
        hand.advance(Duration::from_secs(3600));
    }
    assert_eq!(policy.snapshot().budget_exhausted, 0);
}
