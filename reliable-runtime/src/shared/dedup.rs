//! [`DedupStore`]: "have we seen this id?" across every instance.

use super::SharedStore;
use crate::common::recency;
use crate::error::ConfigError;
use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// Remembers ids (message ids, idempotency keys) for `ttl` across every instance on one
/// Redis: [`first_time`](Self::first_time) is `true` for exactly one caller of an id while it
/// is remembered (`SET NX` with the TTL, atomic on the server).
///
/// While Redis is unavailable, ids are remembered locally (at most `max_local` of them, the
/// oldest forgotten first): an id is then still seen once per instance, but two instances
/// may both see it first.
///
/// ```no_run
/// use reliable_runtime::shared::{DedupStore, SharedStore};
/// use std::time::Duration;
///
/// # async fn run() -> Result<(), reliable_runtime::ConfigError> {
/// let store = SharedStore::new("consumer", "redis://127.0.0.1:6379/")?;
/// let seen = DedupStore::new(&store, "trades", Duration::from_secs(3600))?;
/// if seen.first_time("trade-42").await {
///     // process it
/// }
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct DedupStore {
    store: SharedStore,
    prefix: String,
    ttl: Duration,
    max_local: usize,
    local: Mutex<HashMap<String, Instant>>,
}

impl DedupStore {
    /// Ids of `name`, remembered for `ttl` (at least a millisecond).
    pub fn new(store: &SharedStore, name: &str, ttl: Duration) -> Result<DedupStore, ConfigError> {
        if ttl < Duration::from_millis(1) {
            return Err(ConfigError::new("ttl", "must be at least 1 ms"));
        }
        Ok(DedupStore {
            store: store.clone(),
            prefix: format!("reliable:{{{name}}}:seen:"),
            ttl,
            max_local: 100_000,
            local: Mutex::new(HashMap::new()),
        })
    }

    /// Whether this is the first time any instance sees `id` while it is remembered; records
    /// it either way.
    pub async fn first_time(&self, id: &str) -> bool {
        let key = format!("{}{id}", self.prefix);
        let ttl = super::millis(self.ttl);
        let answer = self
            .store
            .run(|mut connection| async move {
                redis::cmd("SET")
                    .arg(&key)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl)
                    .query_async::<Option<String>>(&mut connection)
                    .await
            })
            .await;
        match answer {
            Ok(set) => set.is_some(),
            Err(_) => {
                self.store.fell_back();
                self.first_time_locally(id)
            }
        }
    }

    fn first_time_locally(&self, id: &str) -> bool {
        let mut local = self.local.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if local
            .get(id)
            .is_some_and(|seen| now.duration_since(*seen) < self.ttl)
        {
            return false;
        }
        if local.len() >= self.max_local {
            let ttl = self.ttl;
            local.retain(|_, seen| now.duration_since(*seen) < ttl);
            // Still full: forget the oldest tenth.
            let forget = if local.len() >= self.max_local {
                recency::tenth(self.max_local)
            } else {
                0
            };
            if let Some(cutoff) = recency::cutoff(local.values().copied(), forget) {
                local.retain(|_, seen| *seen > cutoff);
            }
        }
        local.insert(id.to_owned(), now);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Without Redis, a full local table forgets its oldest tenth and keeps the newest ids.
    #[test]
    fn the_local_table_stays_bounded() {
        let store = SharedStore::new("dedup_unit", "redis://127.0.0.1:9/").unwrap();
        let mut seen = DedupStore::new(&store, "unit", Duration::from_secs(60)).unwrap();
        seen.max_local = 10;
        for id in 0..25 {
            assert!(seen.first_time_locally(&id.to_string()));
            assert!(!seen.first_time_locally(&id.to_string()), "{id} seen twice");
        }
        let local = seen.local.lock().unwrap();
        assert!(local.len() <= 10, "{}", local.len());
        assert!(local.contains_key("24"));
    }
}
