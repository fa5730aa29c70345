//! Presets: monitoring, breaker, backoff and cache configurations that go together, applied to a
//! fn in one attribute.
//!
//! A [`Preset`] is four configuration constructors. The built-ins ([`CEX`], [`DEX`],
//! [`TWITTER`]) carry the numbers of the tables below; `#[reliable_cex_call(...)]` is exactly
//! `#[reliable(preset = reliable_runtime::preset::CEX, ...)]`. Define your own as a `const`
//! (starting from a built-in with `..CEX`), or register one under a name at start-up and write
//! `#[reliable(preset = "name", ...)]`.
//!
//! | preset | SLA p95 / p99 / success / failures | breaker failures / open / successes | cache TTL (min..max), adaptive | backoff initial / max / attempts |
//! |---|---|---|---|---|
//! | [`CEX`] | 1 s / 2 s / 95% / 3 | 5 / 30 s / 2 | 5 s (2..15 s) | see [`BackoffConfig::cex`] |
//! | [`DEX`] | 3 s / 5 s / 90% / 5 | 10 / 60 s / 3 | 30 s (10..120 s) | see [`BackoffConfig::dex`] |
//! | [`TWITTER`] | 5 s / 10 s / 85% / 3 | 3 / 120 s / 1 | 300 s (60..900 s) | see [`BackoffConfig::twitter`] |
//!
//! ```
//! use reliable_runtime::preset::{Preset, CEX};
//! use reliable_runtime::breaker::BreakerConfig;
//! use reliable_runtime::{reliable, Rejected};
//!
//! /// The CEX preset with a breaker that trips sooner.
//! const TOUCHY_CEX: Preset = Preset {
//!     breaker: || BreakerConfig { failure_threshold: 2, ..BreakerConfig::cex() },
//!     ..CEX
//! };
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
use crate::cache::CacheConfig;
use crate::error::ConfigError;
use crate::retry::BackoffConfig;
use crate::sla::SlaThresholds;
use dashmap::DashMap;
use std::sync::OnceLock;

/// Configurations applied together by `#[reliable(preset = ...)]`: each is a constructor, so a
/// preset is a `const` and every call site gets fresh configuration values.
#[derive(Clone, Copy, Debug)]
pub struct Preset {
    /// The SLA thresholds of the `#[monitored]` layer.
    pub sla: fn() -> SlaThresholds,
    /// The circuit breaker's configuration.
    pub breaker: fn() -> BreakerConfig,
    /// The retries' delays and attempts.
    pub backoff: fn() -> BackoffConfig,
    /// The cache's policy, TTLs and size.
    pub cache: fn() -> CacheConfig,
}

/// Centralised exchanges (order books, tickers).
pub const CEX: Preset = Preset {
    sla: SlaThresholds::cex,
    breaker: BreakerConfig::cex,
    backoff: BackoffConfig::cex,
    cache: CacheConfig::orderbooks,
};

/// DEX aggregators (liquidity, quotes).
pub const DEX: Preset = Preset {
    sla: SlaThresholds::dex,
    breaker: BreakerConfig::dex,
    backoff: BackoffConfig::dex,
    cache: CacheConfig::dex_liquidity,
};

/// Social APIs (Twitter search and lookups).
pub const TWITTER: Preset = Preset {
    sla: SlaThresholds::twitter,
    breaker: BreakerConfig::twitter,
    backoff: BackoffConfig::twitter,
    cache: CacheConfig::twitter,
};

/// The library's defaults for every layer (what the single attributes use).
pub const DEFAULT: Preset = Preset {
    sla: SlaThresholds::default,
    breaker: BreakerConfig::default,
    backoff: BackoffConfig::default,
    cache: CacheConfig::default,
};

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
