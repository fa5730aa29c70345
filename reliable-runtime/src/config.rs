//! A configuration file (`reliable.toml`, at a path the application chooses) that declares the
//! layers by name: breakers, monitors, retries, rate limits, bulkheads, timeouts, caches and
//! presets (`[presets.name]`: a `base` preset with the fields each layer sets), and changes them
//! while the service runs.
//!
//! [`ConfigFile::apply`] validates every entry, then registers them all, or registers nothing
//! and returns the first error, naming the key and the line. Attributes and policies that give
//! a layer only its name (`#[circuit_breaker(name = "binance_api")]`,
//! `.shared_breaker("binance_api")`) take the declared instance; one that asks for other settings
//! under a declared name keeps the file's (an attribute warns and publishes
//! [`Event::ConfigConflict`](crate::event::Event::ConfigConflict), a policy builder refuses).
//! Apply the file before the first call.
//!
//! [`ConfigFile::reload`] applies a changed file to the running layers: entries registered with
//! other settings are reconfigured in place, their state kept (each change an
//! [`Event::Reconfigured`](crate::event::Event::Reconfigured)), all or nothing as well.
//! [`ConfigFile::watch`] reloads the file whenever its text changes.
//!
//! Durations are written as the attributes write them (`"30s"`, `"250ms"`, `"5m"`) or as
//! seconds; a field left out takes its default; a field the type does not have is an error.
//!
//! ```
//! use reliable_runtime::config::ConfigFile;
//! use reliable_runtime::registry::{breaker_registry, rate_limiter_registry};
//! use std::time::Duration;
//!
//! let file = ConfigFile::parse(r#"
//!     [breakers.config_doc_binance]
//!     failure_threshold = 3
//!     timeout = "20s"
//!
//!     [monitors.config_doc_orderbook]
//!     max_latency_p95 = "800ms"
//!
//!     [retries.config_doc_binance]
//!     backoff = { max_attempts = 4, initial_delay = "250ms" }
//!
//!     [rate_limits.config_doc_binance]
//!     limit = 1200
//!     window = "1m"
//!
//!     [bulkheads.config_doc_binance]
//!     max_concurrent = 25
//!
//!     [timeouts]
//!     config_doc_binance = "2s"
//!     config_doc_binance_orders = { after = "2s", multiplier = 1.5, max = "5s", deadline = "15s" }  # growing, with a deadline
//! "#).unwrap();
//! let applied = file.apply().unwrap();
//! assert_eq!(applied.registered.len(), 7);
//! let breaker = breaker_registry().get("config_doc_binance").unwrap();
//! assert_eq!(breaker.config().timeout, Duration::from_secs(20));
//! assert_eq!(rate_limiter_registry().get("config_doc_binance").unwrap().config().limit.limit, 1200);
//! // Applying the same file again changes nothing.
//! assert_eq!(file.apply().unwrap().registered.len(), 0);
//! ```

use crate::common::settings::settings_of;
use crate::error::ConfigError;
use crate::layer::{for_each_layer, Layer, LayerVisitor};
use crate::policy::conflict::ConfigConflict;
use crate::preset::{declare_preset, preset_values, PresetValues};
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde::Deserialize;
use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::marker::PhantomData;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;
use toml::Spanned;

/// A parsed configuration file: see the [module docs](self).
#[derive(Debug)]
pub struct ConfigFile {
    path: Option<PathBuf>,
    source: String,
    sections: Sections,
}

/// The file's tables, each entry with where it is in the file.
#[derive(Default)]
struct Sections {
    /// Each kind of layer's entries (a `BTreeMap<String, Spanned<T::FileEntry>>` for the layer
    /// `T` whose `FILE_SECTION` is the key): the layer table says which sections exist.
    layers: BTreeMap<&'static str, AnyEntries>,
    presets: BTreeMap<String, Spanned<PresetEntry>>,
    #[cfg(feature = "cache")]
    caches: BTreeMap<String, Spanned<crate::cache::CacheConfig>>,
}

/// One kind of layer's entries in a file.
type Entries<T> = BTreeMap<String, Spanned<<T as Layer>::FileEntry>>;

/// Some kind of layer's [`Entries`].
type AnyEntries = Box<dyn Any + Send + Sync>;

impl fmt::Debug for Sections {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sections")
            .field("layers", &self.layers.keys().collect::<Vec<_>>())
            .field("presets", &self.presets)
            .finish_non_exhaustive()
    }
}

impl<'de> Deserialize<'de> for Sections {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(SectionsVisitor)
    }
}

/// Reads the file's tables: `presets`, `caches`, and one per kind of layer.
struct SectionsVisitor;

impl<'de> Visitor<'de> for SectionsVisitor {
    type Value = Sections;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a configuration file's tables")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Sections, A::Error> {
        let mut sections = Sections::default();
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "presets" => sections.presets = map.next_value()?,
                #[cfg(feature = "cache")]
                "caches" => sections.caches = map.next_value()?,
                _ => {
                    let mut reader = ReadSection {
                        key: &key,
                        map: &mut map,
                        read: None,
                        of: PhantomData,
                    };
                    for_each_layer(&mut reader);
                    let (section, entries) = reader
                        .read
                        .ok_or_else(|| de::Error::unknown_field(&key, section_names()))??;
                    sections.layers.insert(section, entries);
                }
            }
        }
        Ok(sections)
    }
}

/// Reads the value of `key` as the entries of the kind of layer whose section it is.
struct ReadSection<'de, 'k, 'm, A: MapAccess<'de>> {
    key: &'k str,
    map: &'m mut A,
    read: Option<Result<(&'static str, AnyEntries), A::Error>>,
    of: PhantomData<&'de ()>,
}

impl<'de, A: MapAccess<'de>> LayerVisitor for ReadSection<'de, '_, '_, A> {
    fn visit<T: Layer>(&mut self) {
        if self.read.is_none() && self.key == T::FILE_SECTION {
            self.read = Some(self.map.next_value::<Entries<T>>().map(|entries| {
                let entries: AnyEntries = Box::new(entries);
                (T::FILE_SECTION, entries)
            }));
        }
    }
}

/// Every table a file may have, for the error naming one it may not.
fn section_names() -> &'static [&'static str] {
    struct Names(Vec<&'static str>);
    impl LayerVisitor for Names {
        fn visit<T: Layer>(&mut self) {
            self.0.push(T::FILE_SECTION);
        }
    }
    static NAMES: OnceLock<Vec<&'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let mut names = Names(Vec::new());
        for_each_layer(&mut names);
        names.0.push("presets");
        #[cfg(feature = "cache")]
        names.0.push("caches");
        names.0
    })
}

/// A `[presets.name]` entry: a base preset and the fields each layer changes from it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PresetEntry {
    /// A preset registered in code or declared earlier; the defaults if absent.
    base: Option<String>,
    sla: Option<toml::Table>,
    breaker: Option<toml::Table>,
    backoff: Option<toml::Table>,
    cache: Option<toml::Table>,
    timeout: Option<toml::Table>,
}

/// What [`ConfigFile::apply`] or [`ConfigFile::reload`] did, by entry (as `section.name`,
/// e.g. `breakers.binance_api`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Entries registered by this call.
    pub registered: Vec<String>,
    /// Entries registered before with other settings, reconfigured in place by
    /// [`reload`](ConfigFile::reload) (their state kept).
    pub reconfigured: Vec<String>,
    /// Entries registered before, with the same settings: left as they are.
    pub unchanged: Vec<String>,
}

/// What to do with an entry registered already with other settings.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum OnRegistered {
    /// Refuse the file ([`ConfigFile::apply`]).
    Refuse,
    /// Reconfigure the instance in place ([`ConfigFile::reload`]).
    Reconfigure,
}

impl ConfigFile {
    /// Reads and parses the TOML file at `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<ConfigFile, ConfigFileError> {
        let path = path.as_ref();
        let source = std::fs::read_to_string(path).map_err(|error| ConfigFileError {
            path: Some(path.to_owned()),
            line: None,
            key: None,
            reason: format!("cannot be read: {error}"),
        })?;
        let mut file = ConfigFile::parse(&source).map_err(|error| error.in_file(path))?;
        file.path = Some(path.to_owned());
        Ok(file)
    }

    /// Parses TOML text. Values are checked when the file is [applied](Self::apply) (where a
    /// value's limits depend on the others, e.g. `max_timeout` against `timeout`).
    ///
    /// ```
    /// use reliable_runtime::config::ConfigFile;
    ///
    /// let error = ConfigFile::parse("[breakers.api]\nfailure_treshold = 3").unwrap_err();
    /// assert_eq!(error.line(), Some(2));
    /// assert!(error.to_string().contains("unknown field `failure_treshold`"), "{error}");
    /// ```
    pub fn parse(text: &str) -> Result<ConfigFile, ConfigFileError> {
        let sections = toml::from_str(text).map_err(|error: toml::de::Error| ConfigFileError {
            path: None,
            line: error.span().map(|span| line_of(text, span.start)),
            key: None,
            reason: error.message().trim().to_owned(),
        })?;
        Ok(ConfigFile {
            path: None,
            source: text.to_owned(),
            sections,
        })
    }

    /// Validates every entry, then registers the new ones; an invalid entry, or one whose name
    /// is registered with other settings, is an error naming its key and line, and nothing
    /// is registered. Entries registered already with the same settings are left as they are,
    /// so applying one file twice is harmless.
    ///
    /// ```
    /// use reliable_runtime::config::ConfigFile;
    /// use reliable_runtime::registry::breaker_registry;
    ///
    /// let file = ConfigFile::parse("[breakers.apply_doc]\nsuccess_threshold = 0\n\n[monitors.apply_doc]\n").unwrap();
    /// let error = file.apply().unwrap_err();
    /// assert_eq!(error.key(), Some("breakers.apply_doc.success_threshold"));
    /// assert_eq!(error.line(), Some(2));
    /// assert!(breaker_registry().get("apply_doc").is_none());
    /// ```
    pub fn apply(&self) -> Result<Applied, ConfigFileError> {
        self.stage_all(OnRegistered::Refuse)
    }

    /// [`apply`](Self::apply), reconfiguring in place the entries registered already with
    /// other settings (their state kept, as their `reconfigure` does): what a service calls
    /// when its file changed. Every entry is checked first, including whether its instance can
    /// take the change (a breaker's `window` cannot change, for one); an error names the key
    /// and line, and then nothing is registered or changed.
    ///
    /// ```
    /// use reliable_runtime::config::ConfigFile;
    /// use reliable_runtime::registry::breaker_registry;
    ///
    /// ConfigFile::parse("[breakers.reload_doc]\nfailure_threshold = 5").unwrap().apply().unwrap();
    /// let breaker = breaker_registry().get("reload_doc").unwrap();
    /// let changed = ConfigFile::parse("[breakers.reload_doc]\nfailure_threshold = 2").unwrap();
    /// assert!(changed.apply().is_err(), "apply refuses to change a registered breaker");
    /// assert_eq!(changed.reload().unwrap().reconfigured, ["breakers.reload_doc"]);
    /// assert_eq!(breaker.config().failure_threshold, 2);
    /// ```
    pub fn reload(&self) -> Result<Applied, ConfigFileError> {
        self.stage_all(OnRegistered::Reconfigure)
    }

    fn stage_all(&self, on_registered: OnRegistered) -> Result<Applied, ConfigFileError> {
        let sections = &self.sections;
        let mut staging = Staging {
            file: self,
            on_registered,
            changes: Vec::new(),
            applied: Applied::default(),
        };
        let mut layers = StageLayers {
            staging: &mut staging,
            sections,
            staged: Ok(()),
        };
        for_each_layer(&mut layers);
        layers.staged?;
        staging.presets(&sections.presets)?;
        #[cfg(feature = "cache")]
        staging.caches(&sections.caches)?;
        // Every entry is valid, and each change has been checked against its instance: make
        // them all. A change can still fail here only if another thread reconfigured the same
        // instance meanwhile; the first such error is returned, the rest still made.
        let mut failed = None;
        for change in staging.changes {
            if let Err(error) = change() {
                failed.get_or_insert(error);
            }
        }
        match failed {
            Some(error) => Err(error),
            None => Ok(staging.applied),
        }
    }

    /// Watches the file at `path`: reads it every `every` and, when its text changed,
    /// [reloads](Self::reload) it, so editing the file changes the running layers. A file that
    /// cannot be read or used is logged (`tracing` error, naming the key and line) and changes
    /// nothing; the next change is tried again. Runs on the current tokio runtime until the
    /// returned handle is aborted (outside a runtime, an error); the file as it is now is
    /// applied before it returns.
    ///
    /// ```no_run
    /// use reliable_runtime::config::ConfigFile;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main] async fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let watching = ConfigFile::watch("reliable.toml", Duration::from_secs(5))?;
    /// // ... serve; edits to reliable.toml apply within 5 s ...
    /// watching.abort();
    /// # Ok(()) }
    /// ```
    pub fn watch(
        path: impl AsRef<Path>,
        every: Duration,
    ) -> Result<tokio::task::JoinHandle<()>, ConfigFileError> {
        let path = path.as_ref().to_owned();
        let runtime = tokio::runtime::Handle::try_current().map_err(|_| ConfigFileError {
            path: Some(path.clone()),
            line: None,
            key: None,
            reason: "watching needs a tokio runtime: call `watch` from within one".to_owned(),
        })?;
        let first = ConfigFile::load(&path)?;
        first.reload()?;
        let mut applied = first.source;
        Ok(runtime.spawn(async move {
            let mut ticks = tokio::time::interval(every.max(Duration::from_millis(1)));
            ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            ticks.tick().await;
            loop {
                ticks.tick().await;
                // A configuration file is small: read in place rather than on the blocking pool.
                let text = match std::fs::read_to_string(&path) {
                    Ok(text) if text == applied => continue,
                    Ok(text) => text,
                    Err(error) => {
                        tracing::error!(path = %path.display(), %error, "configuration file cannot be read; nothing changed");
                        continue;
                    }
                };
                let outcome = ConfigFile::parse(&text)
                    .map_err(|error| error.in_file(&path))
                    .and_then(|file| file.reload());
                match outcome {
                    Ok(done) => tracing::info!(
                        path = %path.display(),
                        registered = done.registered.len(),
                        reconfigured = done.reconfigured.len(),
                        "configuration file reloaded"
                    ),
                    Err(error) => {
                        tracing::error!(%error, "configuration file not applied; nothing changed");
                    }
                }
                // Not retried until it changes again: an error is logged once.
                applied = text;
            }
        }))
    }

    /// The file's path, if it was [loaded](Self::load) from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    fn error(&self, key: String, line: usize, reason: impl Into<String>) -> ConfigFileError {
        ConfigFileError {
            path: self.path.clone(),
            line: Some(line),
            key: Some(key),
            reason: reason.into(),
        }
    }

    /// The error at `key.field`, on the line of the entry at `entry` where `field` is set.
    fn field_error(
        &self,
        key: &str,
        entry: &Range<usize>,
        field: &str,
        reason: impl Into<String>,
    ) -> ConfigFileError {
        self.error(
            format!("{key}.{field}"),
            field_line(&self.source, entry, field),
            reason,
        )
    }

    /// A layer's `error` (naming its field) as the file's error in the entry `key`.
    fn config_error(
        &self,
        key: &str,
        entry: &Range<usize>,
        error: &ConfigError,
    ) -> ConfigFileError {
        self.field_error(key, entry, error.field(), error.reason())
    }
}

/// A change to make once every entry has been checked (a registration or a reconfiguration).
type Change<'a> = Box<dyn FnOnce() -> Result<(), ConfigFileError> + 'a>;

/// The instances a file will register or reconfigure once every entry has been checked.
struct Staging<'a> {
    file: &'a ConfigFile,
    on_registered: OnRegistered,
    changes: Vec<Change<'a>>,
    applied: Applied,
}

/// Stages each kind of layer's section, in the layer table's order, until one fails.
struct StageLayers<'s, 'a> {
    staging: &'s mut Staging<'a>,
    sections: &'a Sections,
    staged: Result<(), ConfigFileError>,
}

impl LayerVisitor for StageLayers<'_, '_> {
    fn visit<T: Layer>(&mut self) {
        if self.staged.is_ok() {
            if let Some(entries) = self.sections.layers.get(T::FILE_SECTION) {
                if let Some(entries) = entries.downcast_ref::<Entries<T>>() {
                    self.staged = self.staging.section::<T>(entries);
                }
            }
        }
    }
}

impl<'a> Staging<'a> {
    /// Stages every entry of the kind of layer `T`'s table.
    fn section<T: Layer>(&mut self, entries: &'a Entries<T>) -> Result<(), ConfigFileError> {
        for (name, entry) in entries {
            let value = entry.get_ref();
            self.stage(
                (T::FILE_SECTION, name),
                entry.span(),
                T::from_file(value),
                move |instance: &T, commit| instance.reconfigure_to(value, commit),
            )?;
        }
        Ok(())
    }

    /// Checks the entry `section.name` (its instance made from `config`, its settings against a
    /// registered one) and keeps its registration for later.
    fn stage<T: Layer>(
        &mut self,
        (section, name): (&str, &str),
        span: Range<usize>,
        (config, requested): (T::Config, serde_json::Value),
        reconfigure: impl Fn(&T, bool) -> Result<(), ConfigError> + 'a,
    ) -> Result<(), ConfigFileError> {
        let key = format!("{section}.{name}");
        let file = self.file;
        let (registry, kind) = (T::registry(), T::KIND);
        if let Some(registered) = registry.get(name) {
            let origin = format!("the configuration file's `{key}`");
            return match ConfigConflict::between(
                kind,
                name,
                &origin,
                &registered.settings(),
                &requested,
            ) {
                None => {
                    self.applied.unchanged.push(key);
                    Ok(())
                }
                Some(_) if self.on_registered == OnRegistered::Reconfigure => {
                    reconfigure(&registered, false)
                        .map_err(|error| file.config_error(&key, &span, &error))?;
                    self.applied.reconfigured.push(key.clone());
                    self.changes.push(Box::new(move || {
                        reconfigure(&registered, true)
                            .map_err(|error| file.config_error(&key, &span, &error))
                    }));
                    Ok(())
                }
                Some(conflict) => Err(file.field_error(
                    &key,
                    &span,
                    conflict.field,
                    format!(
                        "{kind} `{name}` is registered already with {} = {}; the file says {} \
                         (apply the file before the first call)",
                        conflict.field, conflict.registered, conflict.requested
                    ),
                )),
            };
        }
        let instance =
            T::create(name, config).map_err(|error| file.config_error(&key, &span, &error))?;
        self.applied.registered.push(key);
        self.changes.push(Box::new(move || {
            registry.register(instance);
            Ok(())
        }));
        Ok(())
    }
}

impl<'a> Staging<'a> {
    /// Stages the `[presets.name]` entries: each its base's values with the fields it sets.
    fn presets(
        &mut self,
        entries: &'a BTreeMap<String, Spanned<PresetEntry>>,
    ) -> Result<(), ConfigFileError> {
        for (name, entry) in entries {
            let key = format!("presets.{name}");
            let span = entry.span();
            let file = self.file;
            let at = |field: &str, reason: String| file.field_error(&key, &span, field, reason);
            // Errors about the entry as a whole: at its header.
            let entry_line = line_of(&file.source, span.start);
            let at_entry =
                move |key: &str, reason: &str| file.error(key.to_owned(), entry_line, reason);
            let entry = entry.get_ref();
            crate::preset::check_declarable(name)
                .map_err(|error| at_entry(&key, error.reason()))?;
            let mut values = match &entry.base {
                None => PresetValues::of(crate::preset::DEFAULT),
                Some(base) => preset_values(base).ok_or_else(|| {
                    at("base", format!("no preset `{base}` (cex, dex, twitter, one registered in code, or one declared above it)"))
                })?,
            };
            values.sla =
                overlay("sla", &values.sla, entry.sla.as_ref()).map_err(|e| at("sla", e))?;
            values.breaker = overlay("breaker", &values.breaker, entry.breaker.as_ref())
                .map_err(|e| at("breaker", e))?;
            values.backoff = overlay("backoff", &values.backoff, entry.backoff.as_ref())
                .map_err(|e| at("backoff", e))?;
            values.timeout = overlay("timeout", &values.timeout, entry.timeout.as_ref())
                .map_err(|e| at("timeout", e))?;
            #[cfg(feature = "cache")]
            cache_overlay(&mut values, entry.cache.as_ref()).map_err(|e| at("cache", e))?;
            #[cfg(not(feature = "cache"))]
            if entry.cache.is_some() {
                return Err(at(
                    "cache",
                    "needs the runtime's `cache` feature".to_owned(),
                ));
            }
            values
                .validate()
                .map_err(|error| file.config_error(&key, &span, &error))?;
            let settings = |values: &PresetValues| {
                [
                    settings_of(&values.sla),
                    settings_of(&values.breaker),
                    settings_of(&values.backoff),
                    #[cfg(feature = "cache")]
                    settings_of(&values.cache),
                    settings_of(&values.timeout),
                ]
            };
            match preset_values(name) {
                Some(declared) if settings(&declared) == settings(&values) => {
                    self.applied.unchanged.push(key);
                    continue;
                }
                Some(_) if self.on_registered == OnRegistered::Refuse => {
                    return Err(at_entry(&key, &format!("preset `{name}` is declared already with other values (reload the file to change it)")));
                }
                Some(_) => self.applied.reconfigured.push(key.clone()),
                None => self.applied.registered.push(key.clone()),
            }
            let name = name.as_str();
            let declare = move || {
                declare_preset(name, values).map_err(|error| at_entry(&key, error.reason()))
            };
            self.changes.push(Box::new(declare));
        }
        Ok(())
    }
}

/// The preset's cache with the entry's fields set; a TTL brings its range and stale period, as
/// `CacheConfig::ttl` and the attributes' `cache_ttl` do, unless the entry sets them too.
#[cfg(feature = "cache")]
fn cache_overlay(values: &mut PresetValues, fields: Option<&toml::Table>) -> Result<(), String> {
    values.cache = overlay("cache", &values.cache, fields)?;
    if let Some(fields) = fields.filter(|fields| fields.contains_key("ttl")) {
        let derived = values.cache.clone().ttl(values.cache.ttl);
        let cache = &mut values.cache;
        for (field, value, from) in [
            ("min_ttl", &mut cache.min_ttl, derived.min_ttl),
            ("max_ttl", &mut cache.max_ttl, derived.max_ttl),
            ("stale", &mut cache.stale, derived.stale),
        ] {
            if !fields.contains_key(field) {
                *value = from;
            }
        }
    }
    Ok(())
}

#[cfg(feature = "cache")]
impl<'a> Staging<'a> {
    /// Stages the `[caches.name]` entries: a cache not created yet is declared (created with
    /// these values when a fn or policy first uses it); one that exists is reconfigured by
    /// [`reload`](ConfigFile::reload), and refused by [`apply`](ConfigFile::apply) if it differs.
    fn caches(
        &mut self,
        entries: &'a BTreeMap<String, Spanned<crate::cache::CacheConfig>>,
    ) -> Result<(), ConfigFileError> {
        use crate::registry::cache_registry;
        for (name, entry) in entries {
            let key = format!("caches.{name}");
            let span = entry.span();
            let file = self.file;
            let config = entry.get_ref();
            config
                .validate()
                .map_err(|error| file.config_error(&key, &span, &error))?;
            let requested = settings_of(config);
            let existing = cache_registry().get_untyped(name);
            let current = match &existing {
                Some(cache) => cache.current_config().map(|config| settings_of(&*config)),
                None => cache_registry()
                    .declared(name)
                    .map(|config| settings_of(&config)),
            };
            let conflict = current.as_ref().and_then(|current| {
                ConfigConflict::between("cache", name, &key, current, &requested)
            });
            match (&current, conflict) {
                (Some(_), None) => {
                    self.applied.unchanged.push(key);
                    continue;
                }
                (Some(_), Some(conflict)) if self.on_registered == OnRegistered::Refuse => {
                    return Err(file.field_error(
                        &key,
                        &span,
                        conflict.field,
                        format!(
                            "cache `{name}` is {} already with {} = {}; the file says {} (reload the file to change it)",
                            if existing.is_some() { "running" } else { "declared" },
                            conflict.field, conflict.registered, conflict.requested
                        ),
                    ));
                }
                (Some(_), Some(_)) => self.applied.reconfigured.push(key.clone()),
                (None, _) => self.applied.registered.push(key.clone()),
            }
            let name = name.as_str();
            match existing {
                Some(cache) => {
                    cache
                        .reconfigure_by_name(&mut |_| config.clone(), false)
                        .map_err(|error| file.config_error(&key, &span, &error))?;
                    self.changes.push(Box::new(move || {
                        cache
                            .reconfigure_by_name(&mut |_| config.clone(), true)
                            .map_err(|error| file.config_error(&key, &span, &error))
                    }));
                }
                None => self.changes.push(Box::new(move || {
                    cache_registry().declare(name, config.clone());
                    Ok(())
                })),
            }
        }
        Ok(())
    }
}

/// `base` with the fields of `fields` set (each field replaced whole), through their TOML form.
fn overlay<T: Clone + serde::Serialize + serde::de::DeserializeOwned>(
    layer: &str,
    base: &T,
    fields: Option<&toml::Table>,
) -> Result<T, String> {
    let Some(fields) = fields else {
        return Ok(base.clone());
    };
    let mut table = match toml::Value::try_from(base) {
        Ok(toml::Value::Table(table)) => table,
        Ok(_) => toml::Table::new(),
        Err(error) => return Err(format!("{layer}: {error}")),
    };
    for (field, value) in fields {
        table.insert(field.clone(), value.clone());
    }
    toml::Value::Table(table)
        .try_into()
        .map_err(|error: toml::de::Error| error.message().trim().to_owned())
}

/// The 1-based line of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// The line where `field` is set within the entry at `span` (the first segment of a dotted
/// field, e.g. `backoff` of `backoff.max_attempts`), or the entry's own line. A table's span is
/// its `[header]`: its fields run to the next header.
fn field_line(text: &str, span: &Range<usize>, field: &str) -> usize {
    let field = field.split('.').next().unwrap_or(field);
    let start = span.start.min(text.len());
    let after = span.end.min(text.len());
    let end = text[after..]
        .find("\n[")
        .map_or(text.len(), |next| after + next + 1);
    let entry = &text[start..end];
    let mut offset = span.start;
    for line in entry.split_inclusive('\n') {
        let trimmed = line.trim_start();
        if trimmed
            .strip_prefix(field)
            .is_some_and(|rest| rest.trim_start().starts_with('='))
        {
            return line_of(text, offset);
        }
        offset += line.len();
    }
    line_of(text, span.start)
}

/// A configuration file that cannot be used: where (file, line, key) and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigFileError {
    path: Option<PathBuf>,
    line: Option<usize>,
    key: Option<String>,
    reason: String,
}

impl ConfigFileError {
    fn in_file(mut self, path: &Path) -> Self {
        self.path = Some(path.to_owned());
        self
    }

    /// The file, if it was loaded from one.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The 1-based line at fault, when known.
    pub fn line(&self) -> Option<usize> {
        self.line
    }

    /// The key at fault, e.g. `breakers.binance_api.failure_threshold`, when known (a syntax
    /// error names its place by line only).
    pub fn key(&self) -> Option<&str> {
        self.key.as_deref()
    }

    /// Why.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for ConfigFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(path) => write!(f, "{}", path.display())?,
            None => f.write_str("configuration")?,
        }
        if let Some(line) = self.line {
            write!(f, ", line {line}")?;
        }
        if let Some(key) = &self.key {
            write!(f, ", `{key}`")?;
        }
        write!(f, ": {}", self.reason)
    }
}

impl std::error::Error for ConfigFileError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_counted_from_one_and_fields_found_in_their_entry() {
        let text = "[breakers.a]\nfailure_threshold = 3\n  timeout = \"5s\"\n\n[breakers.b]\ntimeout = 1\n";
        assert_eq!(line_of(text, 0), 1);
        let a = 0..text.find("[breakers.b]").unwrap();
        assert_eq!(field_line(text, &a, "timeout"), 3);
        assert_eq!(field_line(text, &a, "failure_threshold"), 2);
        assert_eq!(
            field_line(text, &a, "window"),
            1,
            "absent: the entry's line"
        );
        let b = text.find("[breakers.b]").unwrap()..text.len();
        assert_eq!(field_line(text, &b, "timeout"), 6);
    }
}
