//! Configurations compared as their serde form: what differs between two (a conflict under one
//! name, a live reconfiguration), named by dotted paths (`failure_threshold`,
//! `backoff.max_attempts`), durations as `"30s"`. Clocks are not settings (not serialised).

use crate::common::intern::intern;
use serde::Serialize;
use serde_json::Value;
use std::sync::Arc;
use std::time::SystemTime;

/// `value`'s serde form (`Null` if it cannot be serialised, which no configuration type does).
pub(crate) fn settings_of(value: &impl Serialize) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Every leaf where `before` and `after` differ, in field order: its dotted path (`value` for
/// a bare value) and both values.
pub(crate) fn differences(before: &Value, after: &Value) -> Vec<SettingChange> {
    let mut changes = Vec::new();
    collect("", before, after, &mut changes);
    changes
}

fn collect(path: &str, before: &Value, after: &Value, changes: &mut Vec<SettingChange>) {
    match (before, after) {
        (Value::Object(before_fields), Value::Object(after_fields)) => {
            for (key, value) in before_fields {
                let field = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                collect(
                    &field,
                    value,
                    after_fields.get(key).unwrap_or(&Value::Null),
                    changes,
                );
            }
        }
        _ if before == after => {}
        _ => changes.push(SettingChange {
            field: if path.is_empty() {
                "value".to_owned()
            } else {
                path.to_owned()
            },
            from: before.to_string(),
            to: after.to_string(),
        }),
    }
}

/// One setting a reconfiguration changed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct SettingChange {
    /// Its dotted path, e.g. `failure_threshold` or `backoff.max_attempts`.
    pub field: String,
    /// The value before (JSON).
    pub from: String,
    /// The value after (JSON).
    pub to: String,
}

/// A running instance took a new configuration (its state kept): the payload of
/// [`Event::Reconfigured`](crate::event::Event::Reconfigured).
#[derive(Clone, Debug, Serialize)]
pub struct Reconfigured {
    /// The layer's kind: "breaker", "monitor", "retry", "rate limit", "bulkhead", "timeout".
    pub layer: &'static str,
    /// Its registry name.
    pub name: &'static str,
    /// What changed (empty if the new configuration equals the old).
    pub changes: Vec<SettingChange>,
    /// Wall-clock time of the change.
    #[serde(serialize_with = "crate::common::clock::unix_seconds")]
    pub at: SystemTime,
}

/// A layer registered under one name with other settings than a policy asked for.
///
/// ```
/// use reliable_runtime::breaker::BreakerConfig;
/// use reliable_runtime::event::{subscribe, Event};
/// use reliable_runtime::registry::breaker_registry;
/// use reliable_runtime::{circuit_breaker, Rejected};
///
/// #[derive(Debug)]
/// struct ApiError;
/// impl From<Rejected> for ApiError {
///     fn from(_: Rejected) -> Self { ApiError }
/// }
///
/// #[circuit_breaker(name = "conflict_doc", failure_threshold = 2)]
/// async fn ticker() -> Result<u32, ApiError> { Ok(1) }
///
/// # #[tokio::main(flavor = "current_thread")] async fn main() {
/// // Declared elsewhere with 4 failures.
/// breaker_registry().get_or_create("conflict_doc", BreakerConfig::default().failure_threshold(4)).unwrap();
/// let mut events = subscribe();
/// ticker().await.unwrap(); // runs with the declared breaker, and says so
/// let Ok(Event::ConfigConflict(conflict)) = events.try_recv() else { panic!("no conflict event") };
/// assert_eq!((conflict.layer, conflict.field), ("breaker", "failure_threshold"));
/// assert_eq!((conflict.registered.as_str(), conflict.requested.as_str()), ("4", "2"));
/// # }
/// ```
#[derive(Clone, Debug, Serialize)]
pub struct ConfigConflict {
    /// The layer's kind: "breaker", "monitor", "retry", "rate limit", "bulkhead", "timeout".
    pub layer: &'static str,
    /// The registered name both configurations use.
    pub name: Arc<str>,
    /// The policy that asked (an attribute's is its fn's path).
    pub policy: Arc<str>,
    /// The first setting that differs, as a dotted path (`failure_threshold`, `backoff.max_attempts`).
    pub field: &'static str,
    /// Its registered value (JSON).
    pub registered: String,
    /// The value the policy asked for (JSON).
    pub requested: String,
}

impl ConfigConflict {
    /// The conflict between `registered` and `requested`, if they differ.
    pub(crate) fn between(
        layer: &'static str,
        name: &str,
        policy: &str,
        registered: &Value,
        requested: &Value,
    ) -> Option<ConfigConflict> {
        let first = differences(registered, requested).into_iter().next()?;
        Some(ConfigConflict {
            layer,
            name: name.into(),
            policy: policy.into(),
            field: intern(&first.field),
            registered: first.from,
            requested: first.to,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_differing_leaf_is_named_by_its_path() {
        let before = json!({"backoff": {"max_attempts": 3, "multiplier": 2.0}, "budget": null, "timeout": "30s"});
        let after = json!({"backoff": {"max_attempts": 5, "multiplier": 2.0}, "budget": null, "timeout": "1500ms"});
        let changes = differences(&before, &after);
        let fields: Vec<_> = changes.iter().map(|change| change.field.as_str()).collect();
        assert_eq!(fields, ["backoff.max_attempts", "timeout"]);
        assert_eq!(
            (changes[1].from.as_str(), changes[1].to.as_str()),
            ("\"30s\"", "\"1500ms\"")
        );
        assert!(differences(&before, &before).is_empty());
        assert_eq!(differences(&json!(1), &json!(2))[0].field, "value");
    }
}
