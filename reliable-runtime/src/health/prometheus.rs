//! The health in Prometheus' text exposition format (0.0.4), named after resilience4j's
//! Micrometer metrics where they exist (`resilience4j_circuitbreaker_state`,
//! `resilience4j_retry_calls_total`, `resilience4j_bulkhead_available_concurrent_calls`, ...),
//! Micrometer's cache metrics for caches (`cache_gets_total{result}`), and `reliable_*` for the
//! rest (sources' SLA, timeouts, fallbacks).

use super::SystemHealth;
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

    let states = ["closed", "open", "half_open", "forced_open", "disabled"];
    out.family(
        "resilience4j_circuitbreaker_state",
        "gauge",
        "The states of the circuit breaker (1 for the current one)",
    );
    for (name, breaker) in &health.circuit_breakers {
        let current = breaker.state.as_str();
        for state in states {
            out.sample(
                &[("name", name), ("state", state)],
                u8::from(current.eq_ignore_ascii_case(state)),
            );
        }
    }
    out.family(
        "resilience4j_circuitbreaker_not_permitted_calls_total",
        "counter",
        "Calls the circuit breaker refused",
    );
    for (name, breaker) in &health.circuit_breakers {
        out.sample(&[("name", name)], breaker.not_permitted_calls);
    }
    out.family("resilience4j_circuitbreaker_failure_rate", "gauge", "The failure rate of the circuit breaker's window, in percent (absent until the window has its minimum of calls)");
    for (name, breaker) in &health.circuit_breakers {
        if let Some(rate) = breaker.failure_rate {
            out.sample(&[("name", name)], rate * 100.0);
        }
    }
    out.family(
        "reliable_circuitbreaker_trips_total",
        "counter",
        "Times the circuit breaker opened",
    );
    for (name, breaker) in &health.circuit_breakers {
        out.sample(&[("name", name)], breaker.trips);
    }

    out.family(
        "reliable_source_status",
        "gauge",
        "The SLA status of the monitored source (1 for the current one)",
    );
    for (source, metrics) in &health.data_sources {
        let current = metrics.status.as_str();
        for status in ["healthy", "degraded", "failed"] {
            out.sample(
                &[("source", source), ("status", status)],
                u8::from(current.eq_ignore_ascii_case(status)),
            );
        }
    }
    // No `_sum` and `_count`: Prometheus reads those as counters (`rate()` over them), and
    // the window's calls and their total time go down as calls leave it. The calls since the
    // monitor was created are `reliable_source_calls_total`; the window's are a gauge.
    out.family(
        "reliable_source_latency_seconds",
        "summary",
        "Latency percentiles over the source's SLA window",
    );
    for (source, metrics) in &health.data_sources {
        for (quantile, value) in [
            ("0.5", metrics.latency_p50),
            ("0.95", metrics.latency_p95),
            ("0.99", metrics.latency_p99),
        ] {
            out.sample(&[("source", source), ("quantile", quantile)], value);
        }
    }
    out.family(
        "reliable_source_window_calls",
        "gauge",
        "Calls in the source's SLA window",
    );
    for (source, metrics) in &health.data_sources {
        out.sample(&[("source", source)], metrics.window_calls);
    }
    out.family(
        "reliable_source_success_rate",
        "gauge",
        "Success rate over the source's SLA window (0 to 1)",
    );
    for (source, metrics) in &health.data_sources {
        out.sample(&[("source", source)], metrics.success_rate);
    }
    out.family(
        "reliable_source_calls_total",
        "counter",
        "Calls recorded for the source since it was created, by outcome",
    );
    for (source, metrics) in &health.data_sources {
        let failed = metrics.total_failures;
        out.sample(
            &[("source", source), ("outcome", "success")],
            metrics.total_calls.saturating_sub(failed),
        );
        out.sample(&[("source", source), ("outcome", "failure")], failed);
    }

    #[cfg(feature = "retry")]
    {
        out.family(
            "resilience4j_retry_calls_total",
            "counter",
            "Calls through the retry policy, by kind",
        );
        for (name, retry) in &health.retries {
            out.sample(&[("name", name), ("kind", "gave_up")], retry.gave_up);
            out.sample(&[("name", name), ("kind", "all")], retry.calls);
        }
        out.family("reliable_retry_retries_total", "counter", "Retries made");
        for (name, retry) in &health.retries {
            out.sample(&[("name", name)], retry.retries);
        }
        out.family(
            "reliable_retry_budget_exhausted_total",
            "counter",
            "Retries the retry budget refused",
        );
        for (name, retry) in &health.retries {
            out.sample(&[("name", name)], retry.budget_exhausted);
        }
    }

    #[cfg(feature = "limit")]
    {
        out.family(
            "resilience4j_ratelimiter_limit",
            "gauge",
            "Calls the rate limiter admits per window",
        );
        for (name, limiter) in &health.rate_limiters {
            out.sample(&[("name", name)], limiter.limit);
        }
        out.family(
            "reliable_ratelimiter_calls_total",
            "counter",
            "Calls the rate limiter judged, by outcome",
        );
        for (name, limiter) in &health.rate_limiters {
            out.sample(&[("name", name), ("kind", "admitted")], limiter.admitted);
            out.sample(&[("name", name), ("kind", "limited")], limiter.limited);
        }
        out.family(
            "resilience4j_bulkhead_available_concurrent_calls",
            "gauge",
            "Calls the bulkhead would admit now",
        );
        for (name, bulkhead) in &health.bulkheads {
            out.sample(
                &[("name", name)],
                bulkhead.max_concurrent.saturating_sub(bulkhead.in_flight),
            );
        }
        out.family(
            "resilience4j_bulkhead_max_allowed_concurrent_calls",
            "gauge",
            "The bulkhead's size",
        );
        for (name, bulkhead) in &health.bulkheads {
            out.sample(&[("name", name)], bulkhead.max_concurrent);
        }
        out.family(
            "reliable_bulkhead_calls_total",
            "counter",
            "Calls the bulkhead judged, by outcome",
        );
        for (name, bulkhead) in &health.bulkheads {
            out.sample(&[("name", name), ("kind", "admitted")], bulkhead.admitted);
            out.sample(&[("name", name), ("kind", "rejected")], bulkhead.rejected);
        }
    }

    out.family(
        "reliable_timeout_attempts_total",
        "counter",
        "Attempts given a deadline, by outcome",
    );
    for (name, timeout) in &health.timeouts {
        out.sample(&[("name", name), ("kind", "timed_out")], timeout.timeouts);
        out.sample(&[("name", name), ("kind", "all")], timeout.attempts);
    }

    #[cfg(feature = "redis")]
    {
        out.family(
            "reliable_shared_store_operations_total",
            "counter",
            "Operations of a Redis store the shared states use that did not go as asked, by kind: failed (an error or the timeout), local (answered locally), bad_data (an entry that did not parse)",
        );
        for (name, store) in &health.shared_stores {
            out.sample(&[("store", name), ("kind", "failed")], store.failures);
            out.sample(&[("store", name), ("kind", "local")], store.fallbacks);
            out.sample(&[("store", name), ("kind", "bad_data")], store.bad_data);
        }
    }

    #[cfg(feature = "cache")]
    {
        out.family("cache_gets_total", "counter", "Cache lookups, by result");
        for (name, cache) in &health.cache_stats {
            out.sample(&[("cache", name), ("result", "hit")], cache.hits);
            out.sample(&[("cache", name), ("result", "miss")], cache.misses);
        }
        out.family(
            "cache_evictions_total",
            "counter",
            "Entries the cache evicted",
        );
        for (name, cache) in &health.cache_stats {
            out.sample(&[("cache", name)], cache.evictions);
        }
        out.family("cache_size", "gauge", "Entries the cache holds");
        for (name, cache) in &health.cache_stats {
            out.sample(&[("cache", name)], cache.size);
        }
    }
    out.text
}

/// The text being written, and the family whose samples follow.
#[derive(Default)]
struct Exposition {
    text: String,
    family: &'static str,
}

impl Exposition {
    fn family(&mut self, name: &'static str, kind: &str, help: &str) {
        let _ = writeln!(self.text, "# HELP {name} {help}\n# TYPE {name} {kind}");
        self.family = name;
    }

    /// A sample of the family.
    fn sample(&mut self, labels: &[(&str, &str)], value: impl Into<Value>) {
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
enum Value {
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
