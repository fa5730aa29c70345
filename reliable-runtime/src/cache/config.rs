//! Cache configuration: policy, TTLs, size, stale window, jitter.

use crate::clock::Clock;
use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a cache chooses what to evict when full, and how its TTL behaves.
///
/// ```
/// use reliable_runtime::cache::CachePolicy;
/// assert_eq!("adaptive".parse::<CachePolicy>(), Ok(CachePolicy::Adaptive));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CachePolicy {
    /// Fixed TTL; when full, the entries closest to expiry go first.
    #[default]
    Ttl,
    /// Fixed TTL; when full, the least recently used entries go first.
    Lru,
    /// Fixed TTL; when full, the least frequently used entries go first.
    Lfu,
    /// The TTL moves with the hit rate (×1.2 per hit, ×0.8 per miss, within
    /// `min_ttl..=max_ttl`); when full, the least recently used entries go first.
    Adaptive,
}

impl std::str::FromStr for CachePolicy {
    type Err = ConfigError;

    fn from_str(name: &str) -> Result<Self, ConfigError> {
        match name {
            "ttl" => Ok(CachePolicy::Ttl),
            "lru" => Ok(CachePolicy::Lru),
            "lfu" => Ok(CachePolicy::Lfu),
            "adaptive" => Ok(CachePolicy::Adaptive),
            other => Err(ConfigError::new(
                "policy",
                format!(
                    "unknown policy `{other}`: {}",
                    reliable_rules::cache::policy(other).unwrap_err()
                ),
            )),
        }
    }
}

/// A cache's configuration. `Default`: TTL policy, 5 s TTL (order books),
/// 10,000 entries, 10% evicted at once when full, a stale window equal to the TTL (so a value
/// may be served up to 2× TTL after it was loaded), no TTL jitter.
///
/// ```
/// use reliable_runtime::cache::{CacheConfig, CachePolicy};
/// use std::time::Duration;
///
/// let orderbooks = CacheConfig::default().ttl(Duration::from_secs(5)).policy(CachePolicy::Adaptive).min_ttl(Duration::from_secs(2)).max_ttl(Duration::from_secs(15));
/// assert!(orderbooks.validate().is_ok());
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct CacheConfig {
    /// Eviction and TTL policy.
    pub policy: CachePolicy,
    /// How long an entry is fresh (the starting TTL for `Adaptive`).
    #[serde(with = "crate::common::human_duration")]
    pub ttl: Duration,
    /// Lowest adaptive TTL.
    #[serde(with = "crate::common::human_duration")]
    pub min_ttl: Duration,
    /// Highest adaptive TTL.
    #[serde(with = "crate::common::human_duration")]
    pub max_ttl: Duration,
    /// Entries held at most (concurrent inserts may overshoot by a few until the next eviction).
    pub max_entries: usize,
    /// Fraction of `max_entries` evicted at once when full.
    pub eviction_ratio: f64,
    /// How long after expiry an entry may still be served stale (while it is refreshed, or
    /// when the refresh fails).
    #[serde(with = "crate::common::human_duration")]
    pub stale: Duration,
    /// Random spread of each entry's TTL, as a fraction (0.1: ±10%), so entries written together
    /// do not expire together.
    pub ttl_jitter: f64,
    /// The lowest hit rate before an alert: judged each second by the runtime's watcher
    /// over the lookups of that second (at least [`HIT_RATE_MIN_LOOKUPS`] of them); `None`
    /// (the default) judges nothing.
    ///
    /// [`HIT_RATE_MIN_LOOKUPS`]: crate::cache::HIT_RATE_MIN_LOOKUPS
    pub min_hit_rate: Option<f64>,
    /// The clock (default: [`Clock::system`]).
    #[serde(skip)]
    pub clock: Clock,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            policy: CachePolicy::Ttl,
            ttl: Duration::from_secs(5),
            min_ttl: Duration::from_secs(2),
            max_ttl: Duration::from_secs(15),
            max_entries: 10_000,
            eviction_ratio: 0.1,
            stale: Duration::from_secs(5),
            ttl_jitter: 0.0,
            min_hit_rate: None,
            clock: Clock::system(),
        }
    }
}

impl CacheConfig {
    /// The order-book cache: 5 s (2..15 s), adaptive.
    pub fn orderbooks() -> Self {
        CacheConfig {
            policy: CachePolicy::Adaptive,
            ..CacheConfig::default()
        }
    }

    /// The DEX liquidity cache: 30 s (10..120 s), adaptive.
    pub fn dex_liquidity() -> Self {
        CacheConfig {
            policy: CachePolicy::Adaptive,
            ttl: Duration::from_secs(30),
            min_ttl: Duration::from_secs(10),
            max_ttl: Duration::from_secs(120),
            stale: Duration::from_secs(30),
            ..CacheConfig::default()
        }
    }

    /// The Twitter cache: 300 s (60..900 s), adaptive.
    pub fn twitter() -> Self {
        CacheConfig {
            policy: CachePolicy::Adaptive,
            ttl: Duration::from_secs(300),
            min_ttl: Duration::from_secs(60),
            max_ttl: Duration::from_secs(900),
            stale: Duration::from_secs(300),
            ..CacheConfig::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use reliable_rules::cache;
        ConfigError::check("ttl", cache::ttl(self.ttl))?;
        if self.policy == CachePolicy::Adaptive {
            ConfigError::check(
                "ttl",
                cache::adaptive_range(self.min_ttl, self.ttl, self.max_ttl),
            )?;
        }
        ConfigError::check("max_entries", cache::max_entries(self.max_entries))?;
        ConfigError::check("eviction_ratio", cache::eviction_ratio(self.eviction_ratio))?;
        ConfigError::check("ttl_jitter", cache::ttl_jitter(self.ttl_jitter))?;
        match self.min_hit_rate {
            Some(rate) => ConfigError::check("min_hit_rate", cache::min_hit_rate(rate)),
            None => Ok(()),
        }
    }

    /// Alerts when the hit rate of a second's lookups falls below `rate` (0.0 to 1.0); see
    /// [`min_hit_rate`](Self::min_hit_rate).
    ///
    /// ```
    /// use reliable_runtime::cache::CacheConfig;
    ///
    /// assert_eq!(CacheConfig::default().min_hit_rate(0.8).min_hit_rate, Some(0.8));
    /// assert_eq!(CacheConfig::default().min_hit_rate(1.5).validate().unwrap_err().field(), "min_hit_rate");
    /// ```
    pub fn min_hit_rate(mut self, rate: f64) -> Self {
        self.min_hit_rate = Some(rate);
        self
    }
}

crate::common::setters::setters! { CacheConfig {
    policy: CachePolicy,
    min_ttl: Duration,
    max_ttl: Duration,
    max_entries: usize,
    eviction_ratio: f64,
    stale: Duration,
    ttl_jitter: f64,
    clock: Clock,
}}

impl CacheConfig {
    /// Sets the TTL, and with it what follows from it: the adaptive range (0.4× to 3× the TTL,
    /// as `#[cached(ttl = ..)]` does) and the stale period (1× the TTL). Set `min_ttl`,
    /// `max_ttl` or `stale` after it to choose them yourself.
    ///
    /// ```
    /// use reliable_runtime::cache::CacheConfig;
    /// use std::time::Duration;
    ///
    /// let config = CacheConfig::default().ttl(Duration::from_secs(10));
    /// assert_eq!(config.min_ttl, Duration::from_secs(4));
    /// assert_eq!(config.max_ttl, Duration::from_secs(30));
    /// assert_eq!(config.stale, Duration::from_secs(10));
    /// ```
    #[must_use]
    pub fn ttl(mut self, ttl: Duration) -> Self {
        self.ttl = ttl;
        (self.min_ttl, self.max_ttl) = reliable_rules::cache::ttl_range(ttl);
        self.stale = ttl;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_policy_name_the_attributes_accept_parses_to_its_variant() {
        for (name, variant) in reliable_rules::cache::POLICIES {
            let policy: CachePolicy = name.parse().unwrap();
            assert_eq!(format!("{policy:?}"), *variant);
        }
    }
}
