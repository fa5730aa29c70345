//! Two configurations of one name: a policy that asks for a layer already registered under
//! its name with other settings. [`PolicyBuilder::build`](super::PolicyBuilder::build) refuses
//! it (a [`ConfigError`]); an attribute, which has no caller to refuse, takes the registered
//! instance and says so (a warning and an [`Event::ConfigConflict`](crate::event::Event)).
//!
//! Settings are compared as their serde form, so every configuration type compares the same
//! way and the error can name the first field that differs (durations as `"30s"`); clocks are
//! not settings (they are not serialised).

pub(crate) use crate::common::settings::settings_of;
pub use crate::common::settings::ConfigConflict;
use crate::error::ConfigError;
use crate::event::{self, Event};

/// What [`PolicyBuilder::build`](super::PolicyBuilder::build) does when a layer's name is
/// registered with other settings than it asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OnConflict {
    /// Refuse: `build` returns the [`ConfigError`] (the programmatic builder).
    Refuse,
    /// Take the registered instance, warn and publish an event (an attribute's call site).
    TakeRegistered,
}

impl ConfigConflict {
    /// The error `build` returns for it.
    pub(crate) fn into_error(self) -> ConfigError {
        ConfigError::new(
            self.field,
            format!(
                "{} `{}` is registered with {} = {}, and policy `{}` asks for {}; configure it \
                 once and refer to it by name (`shared_{}(\"{}\")`, or the attribute with only \
                 `name`)",
                self.layer,
                self.name,
                self.field,
                self.registered,
                self.policy,
                self.requested,
                self.layer.replace(' ', "_"),
                self.name
            ),
        )
        .in_layer(self.layer, &self.name)
    }

    /// Says it: a warning, and the event.
    pub(crate) fn report(self) {
        tracing::warn!(
            layer = self.layer,
            name = %self.name,
            policy = %self.policy,
            field = self.field,
            registered = %self.registered,
            requested = %self.requested,
            "a layer is registered under this name with other settings; the registered one is used"
        );
        event::publish(Event::ConfigConflict(self));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_first_differing_leaf_is_named_by_its_path() {
        let registered = json!({"backoff": {"max_attempts": 3, "multiplier": 2.0}, "budget": null});
        let requested = json!({"backoff": {"max_attempts": 5, "multiplier": 2.0}, "budget": null});
        let conflict =
            ConfigConflict::between("retry", "api", "fetch", &registered, &requested).unwrap();
        assert_eq!(conflict.field, "backoff.max_attempts");
        assert_eq!(
            (conflict.registered.as_str(), conflict.requested.as_str()),
            ("3", "5")
        );
        assert!(
            ConfigConflict::between("retry", "api", "fetch", &registered, &registered).is_none()
        );
    }

    #[test]
    fn a_duration_is_one_setting_and_a_scalar_is_named_value() {
        let registered = json!({"timeout": "30s"});
        let requested = json!({"timeout": "1500ms"});
        let conflict =
            ConfigConflict::between("breaker", "t", "p", &registered, &requested).unwrap();
        assert_eq!(conflict.field, "timeout");
        assert_eq!(
            (conflict.registered.as_str(), conflict.requested.as_str()),
            ("\"30s\"", "\"1500ms\"")
        );
        let conflict = ConfigConflict::between("x", "t", "p", &json!(1), &json!(2)).unwrap();
        assert_eq!(conflict.field, "value");
    }
}
