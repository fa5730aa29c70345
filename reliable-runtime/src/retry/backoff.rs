//! Backoff: how long to wait before each retry.

use crate::clock::saturating_secs_f64;
use crate::error::ConfigError;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// How a computed delay is randomised, so that clients that failed together do not retry
/// together (the "thundering herd").
///
/// ```
/// use reliable_runtime::retry::Jitter;
/// assert_eq!(Jitter::default(), Jitter::Full);
/// assert_eq!("equal".parse::<Jitter>(), Ok(Jitter::Equal));
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Jitter {
    /// Exactly the exponential delay.
    None,
    /// Uniform in `[0, d]` (AWS "full jitter"; the default).
    #[default]
    Full,
    /// `d/2` plus uniform in `[0, d/2]`.
    Equal,
    /// AWS "decorrelated jitter": uniform in `[initial, 3 × previous]`, capped.
    Decorrelated,
    /// `d` plus uniform in `[0, d × jitter_factor]` (the hardened client's: `d × 1.1` at
    /// most with the default factor of 0.1), capped: the schedule stays, spread a little.
    Additive,
}

impl std::str::FromStr for Jitter {
    type Err = ConfigError;

    fn from_str(name: &str) -> Result<Self, ConfigError> {
        match name {
            "none" => Ok(Jitter::None),
            "full" => Ok(Jitter::Full),
            "equal" => Ok(Jitter::Equal),
            "decorrelated" => Ok(Jitter::Decorrelated),
            "additive" => Ok(Jitter::Additive),
            other => Err(ConfigError::new(
                "jitter",
                format!(
                    "unknown jitter `{other}`: {}",
                    reliable_rules::retry::jitter(other).unwrap_err()
                ),
            )),
        }
    }
}

/// Exponential backoff: delays grow by `multiplier` from `initial_delay` up to `max_delay`,
/// for at most `max_attempts` attempts in all (the first call included).
///
/// `Default`: 1 s, 60 s, ×2, 5 attempts, full jitter. Without jitter the
/// delays before retries 1, 2, 3, ... are exactly 1, 2, 4, 8, 16 s, capped at `max_delay`.
///
/// ```
/// use reliable_runtime::retry::{BackoffConfig, Jitter};
/// use std::time::Duration;
///
/// let backoff = BackoffConfig::default().jitter(Jitter::None);
/// let delays: Vec<u64> = (1..=6).map(|retry| backoff.base_delay(retry).as_secs()).collect();
/// assert_eq!(delays, vec![1, 2, 4, 8, 16, 32]);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct BackoffConfig {
    /// Delay before the first retry. Default 1 s.
    #[serde(with = "crate::common::human_duration")]
    pub initial_delay: Duration,
    /// Cap of every delay (server hints included). Default 60 s.
    #[serde(with = "crate::common::human_duration")]
    pub max_delay: Duration,
    /// Growth factor between retries. Default 2.0.
    pub multiplier: f64,
    /// Attempts in all, the first call included (1 means never retry). Default 5.
    pub max_attempts: u32,
    /// How delays are randomised. Default [`Jitter::Full`].
    pub jitter: Jitter,
    /// The share of the delay [`Jitter::Additive`] may add (0..=1). Default 0.1.
    pub jitter_factor: f64,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            initial_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            multiplier: 2.0,
            max_attempts: 5,
            jitter: Jitter::Full,
            jitter_factor: 0.1,
        }
    }
}

impl BackoffConfig {
    /// The CEX policy: 0.5 s, 10 s, 3 attempts.
    pub fn cex() -> Self {
        BackoffConfig {
            initial_delay: Duration::from_millis(500),
            max_delay: Duration::from_secs(10),
            max_attempts: 3,
            ..BackoffConfig::default()
        }
    }

    /// The DEX policy: 1 s, 30 s, 4 attempts.
    pub fn dex() -> Self {
        BackoffConfig {
            max_delay: Duration::from_secs(30),
            max_attempts: 4,
            ..BackoffConfig::default()
        }
    }

    /// The Twitter policy: 2 s, 60 s, 3 attempts.
    pub fn twitter() -> Self {
        BackoffConfig {
            initial_delay: Duration::from_secs(2),
            max_attempts: 3,
            ..BackoffConfig::default()
        }
    }

    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        use reliable_rules::retry;
        ConfigError::check("max_attempts", retry::max_attempts(self.max_attempts))?;
        ConfigError::check("multiplier", retry::multiplier(self.multiplier))?;
        ConfigError::check("jitter_factor", retry::jitter_factor(self.jitter_factor))?;
        ConfigError::check(
            "max_delay",
            retry::max_delay(self.initial_delay, self.max_delay),
        )
    }

    /// The delay before retry `retry` (1 for the first retry) without jitter, capped.
    pub fn base_delay(&self, retry: u32) -> Duration {
        let growth = self
            .multiplier
            .powi(retry.saturating_sub(1).min(1024) as i32);
        let seconds = self.initial_delay.as_secs_f64() * growth;
        if seconds.is_finite() && seconds < self.max_delay.as_secs_f64() {
            saturating_secs_f64(seconds)
        } else {
            self.max_delay
        }
    }

    /// The delay before retry `retry`, with jitter drawn from `unit` (uniform in `[0, 1)`);
    /// `previous` is the delay before the previous retry (for decorrelated jitter).
    pub fn delay(&self, retry: u32, previous: Duration, unit: f64) -> Duration {
        let unit = unit.clamp(0.0, 1.0);
        let base = self.base_delay(retry);
        let delay = match self.jitter {
            Jitter::None => base,
            Jitter::Full => base.mul_f64(unit),
            Jitter::Equal => base / 2 + (base / 2).mul_f64(unit),
            Jitter::Additive => base + base.mul_f64(self.jitter_factor.clamp(0.0, 1.0) * unit),
            Jitter::Decorrelated => {
                let low = self.initial_delay.as_secs_f64();
                let high = (previous.max(self.initial_delay).as_secs_f64() * 3.0).max(low);
                saturating_secs_f64(low + (high - low) * unit)
            }
        };
        delay.min(self.max_delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn additive_jitter_adds_at_most_its_factor_and_is_capped() {
        let backoff = BackoffConfig::default()
            .jitter(Jitter::Additive)
            .jitter_factor(0.1)
            .max_delay(Duration::from_secs(5));
        let second = Duration::from_secs(2);
        assert_eq!(backoff.delay(2, Duration::ZERO, 0.0), second);
        assert_eq!(
            backoff.delay(2, Duration::ZERO, 0.5),
            Duration::from_millis(2100)
        );
        assert_eq!(
            backoff.delay(2, Duration::ZERO, 1.0),
            Duration::from_millis(2200)
        );
        // 4 s + 10% would pass the 5 s cap only past it: 4.4 s; 8 s is capped first.
        assert_eq!(
            backoff.delay(3, Duration::ZERO, 1.0),
            Duration::from_millis(4400)
        );
        assert_eq!(
            backoff.delay(4, Duration::ZERO, 1.0),
            Duration::from_secs(5)
        );
        let wrong = backoff.jitter_factor(1.5).validate().unwrap_err();
        assert_eq!(wrong.field(), "jitter_factor");
    }

    #[test]
    fn every_jitter_name_the_attributes_accept_parses_to_its_variant() {
        for (name, variant) in reliable_rules::retry::JITTERS {
            let jitter: Jitter = name.parse().unwrap();
            assert_eq!(format!("{jitter:?}"), *variant);
        }
    }

    #[test]
    fn presets_match_the_reference_table() {
        let rows = [
            (BackoffConfig::cex(), 500, 10, 3),
            (BackoffConfig::dex(), 1_000, 30, 4),
            (BackoffConfig::twitter(), 2_000, 60, 3),
        ];
        for (config, initial_ms, max_s, attempts) in rows {
            assert_eq!(config.initial_delay, Duration::from_millis(initial_ms));
            assert_eq!(config.max_delay, Duration::from_secs(max_s));
            assert_eq!(config.max_attempts, attempts);
            assert!(config.validate().is_ok());
        }
    }

    #[test]
    fn delays_cap_at_max_delay() {
        let config = BackoffConfig {
            jitter: Jitter::None,
            max_delay: Duration::from_secs(10),
            ..BackoffConfig::default()
        };
        let delays: Vec<u64> = (1..=6)
            .map(|r| config.delay(r, Duration::ZERO, 0.5).as_secs())
            .collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(config.base_delay(10_000), Duration::from_secs(10));
    }

    #[test]
    fn validate_names_the_bad_field() {
        let bad = |config: BackoffConfig| config.validate().unwrap_err().field();
        assert_eq!(
            bad(BackoffConfig {
                max_attempts: 0,
                ..BackoffConfig::default()
            }),
            "max_attempts"
        );
        assert_eq!(
            bad(BackoffConfig {
                multiplier: 0.5,
                ..BackoffConfig::default()
            }),
            "multiplier"
        );
        assert_eq!(
            bad(BackoffConfig {
                max_delay: Duration::from_millis(1),
                ..BackoffConfig::default()
            }),
            "max_delay"
        );
        assert!("fuzzy".parse::<Jitter>().is_err());
    }
}

crate::common::setters::setters! { BackoffConfig {
    initial_delay: Duration,
    max_delay: Duration,
    multiplier: f64,
    max_attempts: u32,
    jitter: Jitter,
    jitter_factor: f64,
}}
