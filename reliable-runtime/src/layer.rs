//! The layers kept by name, in one table.
//!
//! Each entry of [`layers!`] says, for one kind of layer, all that the code around it needs:
//! its registry, its kind's name in messages, its configuration and a configuration file's
//! section for it, how its settings are compared and changed in place, and its health
//! section. From that one entry come the layer's [`Registered`] and [`Layer`] impls and its
//! public registry accessor (in [`crate::registry`]); every place that treats all layers alike
//! (configuration files, the conflict check of [`PolicyBuilder::build`](crate::PolicyBuilder::build),
//! the health routes, Prometheus, test scopes) goes through [`Layer`] and [`for_each_layer`],
//! so a new kind of layer is its own module plus one entry here.
//!
//! What stays per layer, on purpose:
//! - its place in the call pipeline (`policy/layers.rs`, `policy/builder.rs`): the pipeline's
//!   admission is static code, so the hot paths pay nothing for a layer a policy lacks (no
//!   dynamic dispatch, no list walk: see BENCHMARKS.md);
//! - its field in [`SystemHealth`](crate::health::SystemHealth), the documented JSON contract;
//! - a [`Rejected`](crate::Rejected) variant, when it refuses calls of its own kind.

use crate::common::registry::{Registered, Registry};
use crate::common::settings::settings_of;
use crate::error::ConfigError;
use crate::health::{Exposition, SystemHealth};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;

/// A kind of layer kept by name: what code that treats every layer alike needs of it.
pub(crate) trait Layer: Registered + Send + Sync + 'static {
    /// The kind's name in errors, conflicts and events ("rate limit").
    const KIND: &'static str;
    /// The configuration file's table of this kind (`[bulkheads.name]`).
    const FILE_SECTION: &'static str;
    /// The kind's field in [`SystemHealth`] and the health routes' JSON.
    #[cfg(feature = "http-health")]
    const HEALTH_FIELD: &'static str;
    /// Whether the `/limits` route shows this kind.
    #[cfg(feature = "http-health")]
    const ON_LIMITS_ROUTE: bool;
    /// One entry of the file's section: the settings compared and changed in place.
    type FileEntry: DeserializeOwned + Clone + fmt::Debug + Send + Sync;
    /// What health shows of one instance.
    type Snapshot: Serialize;

    /// The kind's registry.
    fn registry() -> &'static Registry<Self>;
    /// The instance's settings, in the form [`settings_of`] compares.
    fn settings(&self) -> Value;
    /// The instance's configuration and the settings a file's entry asks for.
    fn from_file(entry: &Self::FileEntry) -> (Self::Config, Value);
    /// Changes the instance to the file's entry (`commit`), or only checks that it could.
    fn reconfigure_to(&self, entry: &Self::FileEntry, commit: bool) -> Result<(), ConfigError>;
    /// What health shows of the instance now.
    fn snapshot(&self) -> Self::Snapshot;
    /// The kind's section of `health`.
    fn health_section(health: &SystemHealth) -> &BTreeMap<String, Self::Snapshot>;
    /// Writes the kind's Prometheus families for `instances`.
    fn write_metrics(instances: &BTreeMap<String, Self::Snapshot>, out: &mut Exposition);
}

/// Code run once per kind of layer, in the table's order (see [`for_each_layer`]).
pub(crate) trait LayerVisitor {
    fn visit<T: Layer>(&mut self);
}

/// Each instance of `T` (in the caller's test scope) by name, with its snapshot.
pub(crate) fn snapshots<T: Layer>() -> BTreeMap<String, T::Snapshot> {
    T::registry()
        .all()
        .iter()
        .map(|instance| (instance.name().to_owned(), instance.snapshot()))
        .collect()
}

/// The table: one entry per kind of layer kept by name.
///
/// - `registry`: the public accessor's name, and what it holds (its doc);
/// - `kind`: the kind's name in messages;
/// - `config`: what [`Registered::create`] takes (`new(name, config)`);
/// - `file`: the configuration file's section, and its entries' type (`config` is made
///   `From` an entry);
/// - `settings`: the instance's settings, as a file's entry or a builder asks for them;
/// - `reconfigure`: the inherent method changing the instance by a change of its entry (its
///   check is `check_reconfigure`, with the same argument);
/// - `health`: the kind's field in [`SystemHealth`], its snapshot and whether `/limits`
///   shows it;
/// - `metrics`: the fn writing the kind's Prometheus families.
macro_rules! layers {
    ($(
        $(#[cfg($cfg:meta)])?
        $layer:ident in $module:ident {
            registry: $registry:ident, of $plural:literal,
            kind: $kind:literal,
            config: $config:ty,
            file: $section:ident of $entry:ty,
            settings: |$instance:ident| $settings:expr,
            reconfigure: $reconfigure:ident,
            health: $health:ident of $snapshot:ty = $snapshot_fn:ident, on_limits_route: $limits:literal,
            metrics: $metrics:path,
        }
    )*) => {
        $(
            $(#[cfg($cfg)])?
            impl Registered for crate::$module::$layer {
                type Config = $config;
                fn name(&self) -> &str {
                    crate::$module::$layer::name(self)
                }
                fn create(name: &str, config: $config) -> Result<Self, ConfigError> {
                    crate::$module::$layer::new(name, config)
                }
            }

            $(#[cfg($cfg)])?
            impl Layer for crate::$module::$layer {
                const KIND: &'static str = $kind;
                const FILE_SECTION: &'static str = stringify!($section);
                #[cfg(feature = "http-health")]
                const HEALTH_FIELD: &'static str = stringify!($health);
                #[cfg(feature = "http-health")]
                const ON_LIMITS_ROUTE: bool = $limits;
                type FileEntry = $entry;
                type Snapshot = $snapshot;

                fn registry() -> &'static Registry<Self> {
                    static REGISTRY: std::sync::OnceLock<Registry<crate::$module::$layer>> =
                        std::sync::OnceLock::new();
                    REGISTRY.get_or_init(Registry::new)
                }
                fn settings(&self) -> Value {
                    let $instance = self;
                    settings_of($settings)
                }
                fn from_file(entry: &$entry) -> ($config, Value) {
                    (<$config>::from(entry.clone()), settings_of(entry))
                }
                fn reconfigure_to(&self, entry: &$entry, commit: bool) -> Result<(), ConfigError> {
                    let change = |_| entry.clone();
                    if commit {
                        self.$reconfigure(change)
                    } else {
                        self.check_reconfigure(change)
                    }
                }
                fn snapshot(&self) -> $snapshot {
                    crate::$module::$layer::$snapshot_fn(self)
                }
                fn health_section(health: &SystemHealth) -> &BTreeMap<String, $snapshot> {
                    &health.$health
                }
                fn write_metrics(instances: &BTreeMap<String, $snapshot>, out: &mut Exposition) {
                    $metrics(instances, out)
                }
            }
        )*

        /// The public registry accessors, one per kind (re-exported by [`crate::registry`]).
        pub(crate) mod registries {
            use super::Layer;
            use crate::common::registry::Registry;
            $(
                $(#[cfg($cfg)])?
                $(#[cfg_attr(docsrs, doc(cfg($cfg)))])?
                #[doc = concat!("The registry of ", $plural, ".")]
                pub fn $registry() -> &'static Registry<crate::$module::$layer> {
                    <crate::$module::$layer as Layer>::registry()
                }
            )*
        }

        /// Runs `visitor` once per kind of layer, in the table's order.
        pub(crate) fn for_each_layer(visitor: &mut impl LayerVisitor) {
            $(
                $(#[cfg($cfg)])?
                visitor.visit::<crate::$module::$layer>();
            )*
        }
    };
}

layers! {
    SlaMonitor in sla {
        registry: sla_registry, of "SLA monitors",
        kind: "monitor",
        config: crate::sla::SlaThresholds,
        file: monitors of crate::sla::SlaThresholds,
        settings: |monitor| &monitor.thresholds(),
        reconfigure: reconfigure,
        health: data_sources of crate::sla::SlaMetrics = metrics, on_limits_route: false,
        metrics: crate::sla::write_metrics,
    }
    CircuitBreaker in breaker {
        registry: breaker_registry, of "circuit breakers",
        kind: "breaker",
        config: crate::breaker::BreakerConfig,
        file: breakers of crate::breaker::BreakerConfig,
        settings: |breaker| &*breaker.config(),
        reconfigure: reconfigure,
        health: circuit_breakers of crate::breaker::BreakerSnapshot = snapshot, on_limits_route: false,
        metrics: crate::breaker::write_metrics,
    }
    #[cfg(feature = "retry")]
    RetryPolicy in retry {
        registry: retry_registry, of "retry policies",
        kind: "retry",
        config: crate::retry::RetryConfig,
        file: retries of crate::retry::RetryConfig,
        settings: |retry| &*retry.config(),
        reconfigure: reconfigure,
        health: retries of crate::retry::RetrySnapshot = snapshot, on_limits_route: false,
        metrics: crate::retry::policy::write_metrics,
    }
    #[cfg(feature = "limit")]
    RateLimiter in limit {
        registry: rate_limiter_registry, of "rate limiters",
        kind: "rate limit",
        config: crate::limit::RateLimiterConfig,
        file: rate_limits of crate::limit::RateLimit,
        settings: |limiter| &limiter.limit(),
        reconfigure: reconfigure,
        health: rate_limiters of crate::limit::RateLimiterSnapshot = snapshot, on_limits_route: true,
        metrics: crate::limit::rate::write_metrics,
    }
    #[cfg(feature = "limit")]
    Bulkhead in limit {
        registry: bulkhead_registry, of "bulkheads",
        kind: "bulkhead",
        config: crate::limit::BulkheadConfig,
        file: bulkheads of crate::limit::BulkheadConfig,
        settings: |bulkhead| &bulkhead.config(),
        reconfigure: reconfigure,
        health: bulkheads of crate::limit::BulkheadSnapshot = snapshot, on_limits_route: true,
        metrics: crate::limit::bulkhead::write_metrics,
    }
    TimeoutPolicy in limit {
        registry: timeout_registry, of "per-attempt timeouts",
        kind: "timeout",
        config: crate::limit::TimeoutConfig,
        file: timeouts of crate::limit::TimeoutConfig,
        settings: |timeout| &timeout.config(),
        reconfigure: reconfigure_by,
        health: timeouts of crate::limit::TimeoutSnapshot = snapshot, on_limits_route: true,
        metrics: crate::limit::timeout::write_metrics,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ConfigFile;
    use crate::health::prometheus_text;

    /// One entry of every kind's file section, named `layer_table_<section>`.
    const ONE_OF_EACH: &str = r#"
        [monitors.layer_table_monitors]
        [breakers.layer_table_breakers]
        [retries.layer_table_retries]
        [rate_limits.layer_table_rate_limits]
        limit = 5
        window = "1s"
        [bulkheads.layer_table_bulkheads]
        max_concurrent = 2
        [timeouts]
        layer_table_timeouts = "2s"
    "#;

    /// Every kind in the table is read from its file section into its registry, compared and
    /// changed in place through its entry, and shown by health and Prometheus under its name.
    #[test]
    fn every_kind_in_the_table_goes_from_its_file_section_to_health() {
        let applied = ConfigFile::parse(ONE_OF_EACH)
            .and_then(|file| file.apply())
            .unwrap_or_else(|error| panic!("{error}"));
        let health = crate::get_system_health();
        let metrics = prometheus_text(&health);

        struct Check<'a> {
            registered: &'a [String],
            health: &'a SystemHealth,
            metrics: &'a str,
            kinds: Vec<&'static str>,
        }
        impl LayerVisitor for Check<'_> {
            fn visit<T: Layer>(&mut self) {
                let section = T::FILE_SECTION;
                let name = format!("layer_table_{section}");
                assert!(
                    self.registered.contains(&format!("{section}.{name}")),
                    "{section}: the file's entry is registered ({:?})",
                    self.registered
                );
                let instance = T::registry().get(&name).expect("in its registry");
                assert!(
                    T::health_section(self.health).contains_key(&name),
                    "{section}"
                );
                assert!(snapshots::<T>().contains_key(&name), "{section}");
                assert!(
                    self.metrics.contains(&format!("=\"{name}\"")),
                    "{section}: a Prometheus sample names it"
                );
                // Its settings are what the file asked for, so the same entry is no change.
                let file: toml::Table = toml::from_str(ONE_OF_EACH).unwrap();
                let entry: T::FileEntry = file[section][&name].clone().try_into().unwrap();
                assert_eq!(instance.settings(), T::from_file(&entry).1, "{section}");
                instance.reconfigure_to(&entry, false).unwrap();
                instance.reconfigure_to(&entry, true).unwrap();
                self.kinds.push(T::KIND);
            }
        }
        let mut check = Check {
            registered: &applied.registered,
            health: &health,
            metrics: &metrics,
            kinds: Vec::new(),
        };
        for_each_layer(&mut check);
        let mut kinds = check.kinds.clone();
        kinds.sort_unstable();
        kinds.dedup();
        assert_eq!(
            kinds.len(),
            applied.registered.len(),
            "one kind per section"
        );
    }

    /// A table the layer table has no kind for is an error naming it and the tables there are.
    #[test]
    fn a_section_no_kind_has_is_an_error_listing_the_sections() {
        let error = ConfigFile::parse("[breakers.a]\n\n[bulkhaeds.b]\n").unwrap_err();
        let reason = error.reason();
        assert!(reason.contains("`bulkhaeds`"), "{reason}");
        for section in ["monitors", "breakers", "bulkheads", "timeouts", "presets"] {
            assert!(
                reason.contains(&format!("`{section}`")),
                "{section}: {reason}"
            );
        }
    }
}
