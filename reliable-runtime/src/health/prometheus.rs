//! The health in Prometheus' text exposition format (0.0.4), named after resilience4j's
//! Micrometer metrics where they exist (`resilience4j_circuitbreaker_state`,
//! `resilience4j_retry_calls_total`, `resilience4j_bulkhead_available_concurrent_calls`, ...),
//! Micrometer's cache metrics for caches (`cache_gets_total{result}`), and `reliable_*` for the
//! rest (sources' SLA, timeouts, fallbacks).

use super::SystemHealth;
use crate::layer::{Layer, LayerVisitor};
use std::collections::BTreeMap;
use std::fmt::Write;

/// The health in Prometheus' text format: what the `/metrics` route serves.
///
/// ```
/// use reliable_runtime::breaker::BreakerConfig;
/// use reliable_runtime::health::prometheus_text;
/// use reliable_runtime::registry::breaker_registry;
///
/// breaker_registry().get_or_create("prometheus_doc", BreakerConfig::default()).unwrap();
/// let text = prometheus_text(&reliable_runtime::get_system_health());
/// assert!(text.contains("# TYPE resilience4j_circuitbreaker_state gauge"));
/// assert!(text.contains(r#"resilience4j_circuitbreaker_state{name="prometheus_doc",state="closed"} 1"#));
/// ```
pub fn prometheus_text(health: &SystemHealth) -> String {
    let mut out = Exposition::default();

    crate::layer::for_each_layer(&mut Sections {
        health,
        out: &mut out,
    });

    #[cfg(feature = "redis")]
    out.per_instance_by(
        ("reliable_shared_store_operations_total", "counter", "Operations of a Redis store the shared states use that did not go as asked, by kind: failed (an error or the timeout), local (answered locally), bad_data (an entry that did not parse)"),
        ("store", "kind"),
        &health.shared_stores,
        |store| [("failed", store.failures), ("local", store.fallbacks), ("bad_data", store.bad_data)],
    );

    #[cfg(feature = "cache")]
    {
        let caches = &health.cache_stats;
        out.per_instance_by(
            ("cache_gets_total", "counter", "Cache lookups, by result"),
            ("cache", "result"),
            caches,
            |cache| [("hit", cache.hits), ("miss", cache.misses)],
        );
        out.per_instance(
            (
                "cache_evictions_total",
                "counter",
                "Entries the cache evicted",
            ),
            "cache",
            caches,
            |cache| cache.evictions,
        );
        out.per_instance(
            ("cache_size", "gauge", "Entries the cache holds"),
            "cache",
            caches,
            |cache| cache.size,
        );
    }
    out.text
}

/// Writes each kind of layer's families from its section of the health.
struct Sections<'a> {
    health: &'a SystemHealth,
    out: &'a mut Exposition,
}

impl LayerVisitor for Sections<'_> {
    fn visit<T: Layer>(&mut self) {
        T::write_metrics(T::health_section(self.health), self.out);
    }
}

/// The text being written, and the family whose samples follow: each kind of layer writes its
/// families (its `write_metrics`, named in the layer table).
#[derive(Default)]
pub(crate) struct Exposition {
    text: String,
    family: &'static str,
}

impl Exposition {
    pub(crate) fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self.family = name;
    }

    /// The family `(name, type, help)` with one sample per instance, labelled
    /// `label="<instance>"`.
    pub(crate) fn per_instance<S, V: Into<Value>>(
        &mut self,
        (name, kind, help): (&'static str, &str, &str),
        label: &str,
        instances: &BTreeMap<String, S>,
        value: impl Fn(&S) -> V,
    ) {
        self.family(name, kind, help);
        for (instance, snapshot) in instances {
            self.sample(&[(label, instance)], value(snapshot));
        }
    }

    /// The family `(name, type, help)` with, per instance, one sample for each
    /// `(value of by, value)` that `values` gives: `label="<instance>",by="<value of by>"`.
    pub(crate) fn per_instance_by<S, V: Into<Value>, const N: usize>(
        &mut self,
        (name, kind, help): (&'static str, &str, &str),
        (label, by): (&str, &str),
        instances: &BTreeMap<String, S>,
        values: impl Fn(&S) -> [(&'static str, V); N],
    ) {
        self.family(name, kind, help);
        for (instance, snapshot) in instances {
            for (by_value, value) in values(snapshot) {
                self.sample(&[(label, instance), (by, by_value)], value);
            }
        }
    }

    /// A sample of the family.
    pub(crate) fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) {
        self.text.push_str(self.family);
        self.text.push('{');
        for (index, (label, value)) in labels.iter().enumerate() {
            if index > 0 {
                self.text.push(',');
            }
            self.text.push_str(label);
            self.text.push_str("=\"");
            // The format's escapes: a label value is any UTF-8, names come from users.
            if value.contains(['\\', '"', '\n']) {
                for c in value.chars() {
                    match c {
                        '\\' => self.text.push_str("\\\\"),
                        '"' => self.text.push_str("\\\""),
                        '\n' => self.text.push_str("\\n"),
                        c => self.text.push(c),
                    }
                }
            } else {
                self.text.push_str(value);
            }
            self.text.push('"');
        }
        self.text.push_str("} ");
        value.into().write_to(&mut self.text);
        self.text.push('\n');
    }
}

/// A sample's value, written as the format wants it (without allocating: `/metrics` writes
/// several per source).
#[derive(Clone, Copy)]
pub(crate) enum Value {
    Integer(u64),
    Float(f64),
}

impl Value {
    fn write_to(self, text: &mut String) {
        match self {
            Value::Integer(value) => {
                let _ = write!(text, "{value}");
            }
            Value::Float(value) if value.is_nan() => text.push_str("NaN"),
            Value::Float(value) if value.is_infinite() => {
                text.push_str(if value > 0.0 { "+Inf" } else { "-Inf" })
            }
            Value::Float(value) => {
                let _ = write!(text, "{value}");
            }
        }
    }
}

macro_rules! integers {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(value: $t) -> Value {
                Value::Integer(u64::from(value))
            }
        }
    )*};
}

integers!(u8, u32, u64);

impl From<f64> for Value {
    fn from(value: f64) -> Value {
        Value::Float(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = Exposition::default();
        out.family("x_total", "counter", "x");
        out.sample(&[("name", "a\"b\\c\nd")], 1u8);
        assert!(
            out.text.ends_with("x_total{name=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{}",
            out.text
        );
    }
}
