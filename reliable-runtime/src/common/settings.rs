//! Configurations compared as their serde form: what differs between two (a conflict under one
//! name, a live reconfiguration), named by dotted paths (`failure_threshold`,
//! `backoff.max_attempts`), durations as `"30s"`. Clocks are not settings (not serialised).

use serde::Serialize;
use serde_json::Value;
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

/// Logs and publishes a reconfiguration of `layer` `name` from `before` to `after`.
pub(crate) fn reconfigured(
    layer: &'static str,
    name: &'static str,
    before: &impl Serialize,
    after: &impl Serialize,
) {
    let changes = differences(&settings_of(before), &settings_of(after));
    for change in &changes {
        tracing::info!(layer, name, field = %change.field, from = %change.from, to = %change.to, "reconfigured");
    }
    crate::event::publish(crate::event::Event::Reconfigured(Reconfigured {
        layer,
        name,
        changes,
        at: SystemTime::now(),
    }));
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
