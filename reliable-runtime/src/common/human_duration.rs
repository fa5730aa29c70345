//! Durations in configuration files as people write them: `"30s"`, `"250ms"`, `"5m"` (the
//! grammar of the attributes), or a number of seconds (`30`, `0.25`). Written back in the largest
//! unit that says them exactly. Used as `#[serde(with = "crate::common::human_duration")]`.

use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};
use std::fmt;
use std::time::Duration;

pub(crate) fn serialize<S: Serializer>(
    duration: &Duration,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&reliable_rules::duration::format(*duration))
}

pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Duration, D::Error> {
    deserializer.deserialize_any(HumanDuration)
}

pub(crate) struct HumanDuration;

impl Visitor<'_> for HumanDuration {
    type Value = Duration;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a duration: a string with a unit (\"30s\", \"250ms\", \"5m\") or a number of seconds",
        )
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Duration, E> {
        reliable_rules::duration::parse(text).map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, secs: u64) -> Result<Duration, E> {
        Ok(Duration::from_secs(secs))
    }

    fn visit_i64<E: de::Error>(self, secs: i64) -> Result<Duration, E> {
        u64::try_from(secs)
            .map(Duration::from_secs)
            .map_err(|_| E::custom("a duration cannot be negative"))
    }

    fn visit_f64<E: de::Error>(self, secs: f64) -> Result<Duration, E> {
        reliable_rules::duration::from_secs_f64(secs).map_err(E::custom)
    }
}

/// `Option<Duration>` fields: `#[serde(default, with = "crate::common::human_duration::option")]`.
pub(crate) mod option {
    use serde::{Deserializer, Serializer};
    use std::time::Duration;

    pub(crate) fn serialize<S: Serializer>(
        duration: &Option<Duration>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match duration {
            Some(duration) => super::serialize(duration, serializer),
            None => serializer.serialize_none(),
        }
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Duration>, D::Error> {
        super::deserialize(deserializer).map(Some)
    }
}

#[cfg(test)]
mod tests {
    use serde::{Deserialize, Serialize};
    use std::time::Duration;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Timed {
        #[serde(with = "super")]
        after: Duration,
    }

    #[test]
    fn strings_with_units_and_numbers_of_seconds_read_and_write_back() {
        for (json, expected) in [
            (r#"{"after":"250ms"}"#, Duration::from_millis(250)),
            (r#"{"after":"5m"}"#, Duration::from_secs(300)),
            (r#"{"after":30}"#, Duration::from_secs(30)),
            (r#"{"after":0.5}"#, Duration::from_millis(500)),
        ] {
            let timed: Timed = serde_json::from_str(json).unwrap();
            assert_eq!(timed.after, expected, "{json}");
            let written = serde_json::to_string(&timed).unwrap();
            assert_eq!(serde_json::from_str::<Timed>(&written).unwrap(), timed);
        }
        assert_eq!(
            serde_json::to_string(&Timed {
                after: Duration::from_secs(90)
            })
            .unwrap(),
            r#"{"after":"90s"}"#
        );
        for bad in [
            r#"{"after":"5"}"#,
            r#"{"after":-1}"#,
            r#"{"after":"5 parsecs"}"#,
            r#"{"after":true}"#,
        ] {
            let error = serde_json::from_str::<Timed>(bad).unwrap_err().to_string();
            assert!(
                error.contains("after")
                    || error.contains("duration")
                    || error.contains("unit")
                    || error.contains("negative"),
                "{bad}: {error}"
            );
        }
    }
}
