//! Presets: monitoring, breaker, backoff and cache configurations that go together, applied to a
//! fn in one attribute.
//!
//! A [`Preset`] is four configuration constructors. The built-ins ([`CEX`], [`DEX`],
//! [`TWITTER`]) carry the numbers of the tables below; `#[reliable_cex_call(...)]` is exactly
//! `#[reliable(preset = reliable_runtime::preset::CEX, ...)]`. Define your own as a `const`
//! (starting from a built-in: `CEX.breaker(|| ..)`), register one under a name at start-up, or
//! declare one in a configuration file, and write `#[reliable(preset = "name", ...)]`.
//!
//! | preset | SLA p95 / p99 / success / failures | breaker failures / open / successes | cache TTL (min..max), adaptive | backoff initial / max / attempts | attempt timeouts, deadline |
//! |---|---|---|---|---|---|
//! | [`CEX`] | 1 s / 2 s / 95% / 3 | 5 / 30 s / 2 | 5 s (2..15 s) | see [`BackoffConfig::cex`] | 2 s ×1.5 ≤ 5 s, 15 s ([`TimeoutConfig::cex`]) |
//! | [`DEX`] | 3 s / 5 s / 90% / 5 | 10 / 60 s / 3 | 30 s (10..120 s) | see [`BackoffConfig::dex`] | 5 s ×1.5 ≤ 15 s, 60 s ([`TimeoutConfig::dex`]) |
//! | [`TWITTER`] | 5 s / 10 s / 85% / 3 | 3 / 120 s / 1 | 300 s (60..900 s) | see [`BackoffConfig::twitter`] | 10 s ×1.5 ≤ 30 s, 90 s ([`TimeoutConfig::twitter`]) |
//! | [`DEFAULT`] | the defaults of each layer | | | | 30 s per attempt, no deadline |
//!
//! Every preset times each attempt: a hung service never hangs its caller.
//!
//! ```
//! use reliable_runtime::preset::{Preset, CEX};
//! use reliable_runtime::breaker::BreakerConfig;
//! use reliable_runtime::{reliable, Rejected};
//!
//! /// The CEX preset with a breaker that trips sooner.
//! const TOUCHY_CEX: Preset = CEX.breaker(|| BreakerConfig::cex().failure_threshold(2));
//!
//! #[derive(Debug)]
//! struct ApiError;
//! impl From<Rejected> for ApiError {
//!     fn from(_: Rejected) -> Self { ApiError }
//! }
//!
//! #[reliable(preset = TOUCHY_CEX, key = symbol, cache_ttl = 1)]
//! async fn ticker(symbol: &str) -> Result<f64, ApiError> {
//!     Ok(97_000.0)
//! }
//! # #[tokio::main(flavor = "current_thread")] async fn main() {
//! assert_eq!(ticker("BTCUSDT").await.unwrap(), 97_000.0);
//! # }
//! ```

use crate::breaker::BreakerConfig;
#[cfg(feature = "cache")]
use crate::cache::CacheConfig;
use crate::error::ConfigError;
use crate::limit::TimeoutConfig;
use crate::retry::BackoffConfig;
use crate::sla::SlaThresholds;
use dashmap::DashMap;
use std::sync::{Arc, OnceLock};

/// Configurations applied together by `#[reliable(preset = ...)]`: each is a constructor, so a
/// preset is a `const` and every call site gets fresh configuration values.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Preset {
    /// The SLA thresholds of the `#[monitored]` layer.
    pub sla: fn() -> SlaThresholds,
    /// The circuit breaker's configuration.
    pub breaker: fn() -> BreakerConfig,
    /// The retries' delays and attempts.
    pub backoff: fn() -> BackoffConfig,
    /// The cache's policy, TTLs and size.
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub cache: fn() -> CacheConfig,
    /// Each attempt's timeout and the call's deadline.
    pub timeout: fn() -> TimeoutConfig,
}

impl Preset {
    /// This preset with another SLA thresholds constructor.
    #[must_use]
    pub const fn sla(mut self, sla: fn() -> SlaThresholds) -> Self {
        self.sla = sla;
        self
    }

    /// This preset with another breaker configuration constructor.
    #[must_use]
    pub const fn breaker(mut self, breaker: fn() -> BreakerConfig) -> Self {
        self.breaker = breaker;
        self
    }

    /// This preset with another backoff constructor.
    #[must_use]
    pub const fn backoff(mut self, backoff: fn() -> BackoffConfig) -> Self {
        self.backoff = backoff;
        self
    }

    /// This preset with other time limits.
    #[must_use]
    pub const fn timeout(mut self, timeout: fn() -> TimeoutConfig) -> Self {
        self.timeout = timeout;
        self
    }

    /// This preset with another cache configuration constructor.
    #[must_use]
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub const fn cache(mut self, cache: fn() -> CacheConfig) -> Self {
        self.cache = cache;
        self
    }
}

/// Centralised exchanges (order books, tickers).
pub const CEX: Preset = Preset {
    sla: SlaThresholds::cex,
    breaker: BreakerConfig::cex,
    backoff: BackoffConfig::cex,
    #[cfg(feature = "cache")]
    cache: CacheConfig::orderbooks,
    timeout: TimeoutConfig::cex,
};

/// DEX aggregators (liquidity, quotes).
pub const DEX: Preset = Preset {
    sla: SlaThresholds::dex,
    breaker: BreakerConfig::dex,
    backoff: BackoffConfig::dex,
    #[cfg(feature = "cache")]
    cache: CacheConfig::dex_liquidity,
    timeout: TimeoutConfig::dex,
};

/// Social APIs (Twitter search and lookups).
pub const TWITTER: Preset = Preset {
    sla: SlaThresholds::twitter,
    breaker: BreakerConfig::twitter,
    backoff: BackoffConfig::twitter,
    #[cfg(feature = "cache")]
    cache: CacheConfig::twitter,
    timeout: TimeoutConfig::twitter,
};

/// The library's defaults for every layer (what the single attributes use).
pub const DEFAULT: Preset = Preset {
    sla: SlaThresholds::default,
    breaker: BreakerConfig::default,
    backoff: BackoffConfig::default,
    #[cfg(feature = "cache")]
    cache: CacheConfig::default,
    timeout: TimeoutConfig::default,
};

/// A preset's configurations as values: what a [`Preset`] makes, and what a configuration
/// file's `[presets.name]` declares (see [`declare_preset`]).
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PresetValues {
    /// The SLA thresholds of the monitor.
    pub sla: SlaThresholds,
    /// The circuit breaker's configuration.
    pub breaker: BreakerConfig,
    /// The retries' delays and attempts.
    pub backoff: BackoffConfig,
    /// The cache's policy, TTLs and size.
    #[cfg(feature = "cache")]
    #[cfg_attr(docsrs, doc(cfg(feature = "cache")))]
    pub cache: CacheConfig,
    /// Each attempt's timeout and the call's deadline.
    pub timeout: TimeoutConfig,
}

impl PresetValues {
    /// The values `preset` makes.
    pub fn of(preset: Preset) -> Self {
        PresetValues {
            sla: (preset.sla)(),
            breaker: (preset.breaker)(),
            backoff: (preset.backoff)(),
            #[cfg(feature = "cache")]
            cache: (preset.cache)(),
            timeout: (preset.timeout)(),
        }
    }

    /// Checks every configuration, naming the field as `breaker.failure_threshold`.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let within = |layer: &str, result: Result<(), ConfigError>| {
            result.map_err(|error| {
                ConfigError::new(
                    crate::common::intern::intern(&format!("{layer}.{}", error.field())),
                    error.reason(),
                )
            })
        };
        within("sla", self.sla.validate())?;
        within("breaker", self.breaker.validate())?;
        within("backoff", self.backoff.validate())?;
        #[cfg(feature = "cache")]
        within("cache", self.cache.validate())?;
        within("timeout", self.timeout.validate())?;
        Ok(())
    }
}

/// Presets declared as values (from a configuration file), by name.
fn declared() -> &'static DashMap<String, Arc<PresetValues>> {
    static DECLARED: OnceLock<DashMap<String, Arc<PresetValues>>> = OnceLock::new();
    DECLARED.get_or_init(DashMap::new)
}

/// Declares `values` as the preset `name` for `#[reliable(preset = "name")]` and
/// `PolicyBuilder::preset("name")`, replacing an earlier declaration (a reloaded file); what a
/// configuration file's `[presets.name]` does. A name registered in code
/// ([`register_preset`], and `cex`, `dex`, `twitter`) cannot be declared. Fns and policies built
/// before a change keep the values they were built with (their named layers reconfigure live).
///
/// ```
/// use reliable_runtime::preset::{declare_preset, preset_values, PresetValues, CEX};
///
/// let mut touchy = PresetValues::of(CEX);
/// touchy.breaker.failure_threshold = 2;
/// declare_preset("doc_touchy_cex", touchy).unwrap();
/// assert_eq!(preset_values("doc_touchy_cex").unwrap().breaker.failure_threshold, 2);
/// assert_eq!(declare_preset("cex", PresetValues::of(CEX)).unwrap_err().field(), "name");
/// ```
pub fn declare_preset(name: &str, values: PresetValues) -> Result<(), ConfigError> {
    check_declarable(name)?;
    values.validate()?;
    declared().insert(name.to_owned(), Arc::new(values));
    Ok(())
}

/// Whether `name` may be declared (not empty, not registered in code).
pub(crate) fn check_declarable(name: &str) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::new("name", "a preset needs a name"));
    }
    if presets().contains_key(name) {
        return Err(ConfigError::new(
            "name",
            format!("`{name}` is a preset registered in code; declare another name (with `base = \"{name}\"`)"),
        ));
    }
    Ok(())
}

/// The values of the preset named `name`: a declared one, or one registered in code.
pub fn preset_values(name: &str) -> Option<PresetValues> {
    if let Some(values) = declared().get(name) {
        return Some((**values).clone());
    }
    registered_preset(name).map(PresetValues::of)
}

fn presets() -> &'static DashMap<String, Preset> {
    static PRESETS: OnceLock<DashMap<String, Preset>> = OnceLock::new();
    PRESETS.get_or_init(|| {
        let presets = DashMap::new();
        for (name, preset) in [("cex", CEX), ("dex", DEX), ("twitter", TWITTER)] {
            presets.insert(name.to_owned(), preset);
        }
        presets
    })
}

/// Registers `preset` under `name` for `#[reliable(preset = "name")]`. Call it at start-up,
/// before the first call of a fn that names it. `cex`, `dex` and `twitter` are registered
/// already; a name can be registered once.
///
/// ```
/// use reliable_runtime::preset::{register_preset, registered_preset, DEX};
///
/// register_preset("my_dex", DEX).unwrap();
/// assert!(registered_preset("my_dex").is_some());
/// assert!(register_preset("my_dex", DEX).is_err());
/// ```
pub fn register_preset(name: &str, preset: Preset) -> Result<(), ConfigError> {
    if name.is_empty() {
        return Err(ConfigError::new("name", "a preset needs a name"));
    }
    if declared().contains_key(name) {
        return Err(ConfigError::new(
            "name",
            format!("a preset named `{name}` is declared already (by a configuration file)"),
        ));
    }
    match presets().entry(name.to_owned()) {
        dashmap::Entry::Occupied(_) => Err(ConfigError::new(
            "name",
            format!("a preset named `{name}` is registered already"),
        )),
        dashmap::Entry::Vacant(slot) => {
            slot.insert(preset);
            Ok(())
        }
    }
}

/// The preset registered under `name`.
pub fn registered_preset(name: &str) -> Option<Preset> {
    presets().get(name).map(|preset| *preset)
}

/// What `#[reliable(preset = ...)]` accepts: a [`Preset`] value or a registered name.
#[diagnostic::on_unimplemented(
    message = "`preset = ...` takes a `reliable_runtime::preset::Preset` or the name a preset was registered under; `{Self}` is neither",
    label = "not a preset",
    note = "write `preset = reliable_runtime::preset::CEX`, your own `const MY_PRESET: Preset = Preset {{ .. }}`, or `preset = \"name\"` after `register_preset(\"name\", ..)`"
)]
pub trait IntoPreset {
    /// The preset; a name nobody registered logs an error and gives [`DEFAULT`], so a typo in
    /// a name never takes the caller down.
    fn into_preset(self) -> Preset;

    /// The preset's values: [`into_preset`](Self::into_preset)'s, or for a name, those of the
    /// preset declared or registered under it.
    fn into_values(self) -> PresetValues
    where
        Self: Sized,
    {
        PresetValues::of(self.into_preset())
    }
}

impl IntoPreset for Preset {
    fn into_preset(self) -> Preset {
        self
    }
}

impl IntoPreset for &Preset {
    fn into_preset(self) -> Preset {
        *self
    }
}

impl IntoPreset for &str {
    fn into_values(self) -> PresetValues {
        match declared().get(self) {
            Some(values) => (**values).clone(),
            None => PresetValues::of(self.into_preset()),
        }
    }

    fn into_preset(self) -> Preset {
        registered_preset(self).unwrap_or_else(|| {
            tracing::error!(
                preset = self,
                "no preset is registered under this name; using the defaults"
            );
            DEFAULT
        })
    }
}
