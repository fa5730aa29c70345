//! [`SlaStatus`] and its change, the event it publishes.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

/// Health of a monitored source. Serializes as `"HEALTHY"`, `"DEGRADED"`, `"FAILED"`.
///
/// ```
/// use reliable_runtime::sla::SlaStatus;
/// assert_eq!(serde_json::to_string(&SlaStatus::Degraded).unwrap(), "\"DEGRADED\"");
/// assert!(SlaStatus::Failed > SlaStatus::Degraded);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SlaStatus {
    /// Every threshold is met.
    Healthy,
    /// A threshold is exceeded; the source still mostly works.
    Degraded,
    /// The source is failing.
    Failed,
}

impl SlaStatus {
    /// The status in capitals: `"HEALTHY"`, `"DEGRADED"` or `"FAILED"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SlaStatus::Healthy => "HEALTHY",
            SlaStatus::Degraded => "DEGRADED",
            SlaStatus::Failed => "FAILED",
        }
    }

    pub(super) fn from_u8(value: u8) -> Self {
        match value {
            1 => SlaStatus::Degraded,
            2 => SlaStatus::Failed,
            _ => SlaStatus::Healthy,
        }
    }
}

impl fmt::Display for SlaStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A monitored source's status change.
#[derive(Clone, Debug, Serialize)]
pub struct SlaStatusChange {
    /// The source's registry name.
    pub source: Arc<str>,
    /// The previous status.
    pub from: SlaStatus,
    /// The new status.
    pub to: SlaStatus,
    /// Wall-clock time the change was seen.
    #[serde(serialize_with = "crate::common::clock::unix_seconds")]
    pub at: SystemTime,
}
