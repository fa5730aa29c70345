//! [`SharedRateLimiter`]: one weighted sliding-window limit for every instance, kept in Redis.

use super::{SharedStore, Unavailable};
use crate::common::intern::intern;
use crate::error::{ConfigError, Rejected};
use crate::limit::{RateLimit, WeightedLimiter};
use std::time::Duration;

/// The admission, atomic on the server: drop the entries older than the longest window, sum
/// each window's weights, and admit (`{0, bad}`) or say how many microseconds until the weight
/// fits (`{wait, bad}`; `{-1, bad}`: it never fits). The server's clock times every entry, so
/// instances with skewed clocks share one timeline. Members are `<sequence>:<weight>`; one that
/// does not parse (another version's, a corrupt one) counts nothing and is reported in `bad`.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local weight = tonumber(ARGV[1])
local windows = tonumber(ARGV[2])
local longest = 0
for i = 0, windows - 1 do
  local span = tonumber(ARGV[3 + 2 * i])
  if span > longest then longest = span end
end
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - longest)
local wait = 0
local bad = 0
for i = 0, windows - 1 do
  local span = tonumber(ARGV[3 + 2 * i])
  local limit = tonumber(ARGV[4 + 2 * i])
  local entries = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. (now - span), '+inf', 'WITHSCORES')
  local sum = 0
  for j = 1, #entries, 2 do
    local w = tonumber(string.match(entries[j], '^%d+:(%d+)$'))
    if w then sum = sum + w else bad = bad + 1 end
  end
  if sum + weight > limit then
    if weight > limit then return {-1, bad} end
    local over = sum + weight - limit
    for j = 1, #entries, 2 do
      local w = tonumber(string.match(entries[j], '^%d+:(%d+)$'))
      if w then
        over = over - w
        if over <= 0 then
          local free = tonumber(entries[j + 1]) + span - now
          if free < 1 then free = 1 end
          if free > wait then wait = free end
          break
        end
      end
    end
  end
end
if wait > 0 then return {wait, bad} end
local sequence = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now, sequence .. ':' .. weight)
local keep = math.floor(longest / 1000) + 1000
redis.call('PEXPIRE', KEYS[1], keep)
redis.call('PEXPIRE', KEYS[2], keep)
return {0, bad}
";

/// A weighted limit over several sliding windows, exact across every instance that names it
/// in one Redis: their calls together never exceed a window's limit (the check and the record
/// are one script on the server, timed by the server's clock).
///
/// When Redis is down or slow (past the store's timeout, or its breaker open), each instance
/// falls back to a local [`WeightedLimiter`] with `local_share` of each limit (1.0 by default:
/// the whole limit per instance, so N instances may admit up to N times it until Redis is
/// back; set it to 1/N to stay under the limit), counted in the store's `fallbacks`.
///
/// ```no_run
/// use reliable_runtime::limit::RateLimit;
/// use reliable_runtime::shared::{SharedRateLimiter, SharedStore};
///
/// # async fn run() -> Result<(), reliable_runtime::ConfigError> {
/// let store = SharedStore::new("orders", "redis://127.0.0.1:6379/")?;
/// let limit = SharedRateLimiter::new(&store, "binance_weight", &[RateLimit::per_minute(1200)])?
///     .local_share(0.25)?; // four replicas
/// let admitted = limit.try_acquire(10).await.is_ok();
/// # let _ = admitted;
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SharedRateLimiter {
    store: SharedStore,
    name: &'static str,
    keys: [String; 2],
    limits: Vec<RateLimit>,
    local: WeightedLimiter,
    script: redis::Script,
}

impl SharedRateLimiter {
    /// The limit `name` of `limits` (each a window and its weight), shared by every instance
    /// naming it on `store`'s server; checked as a [`WeightedLimiter`]'s.
    pub fn new(
        store: &SharedStore,
        name: &str,
        limits: &[RateLimit],
    ) -> Result<SharedRateLimiter, ConfigError> {
        let local = WeightedLimiter::new(name, limits, crate::clock::Clock::system())?;
        Ok(SharedRateLimiter {
            store: store.clone(),
            name: intern(name),
            // One hash tag: both keys on one node of a cluster.
            keys: [
                format!("reliable:{{{name}}}:limit"),
                format!("reliable:{{{name}}}:sequence"),
            ],
            limits: limits.to_vec(),
            local,
            script: redis::Script::new(ADMIT),
        })
    }

    /// With the local fallback admitting `share` (0..=1) of each window's limit.
    pub fn local_share(mut self, share: f64) -> Result<SharedRateLimiter, ConfigError> {
        if !(share > 0.0 && share <= 1.0) {
            return Err(ConfigError::new(
                "local_share",
                "must be above 0 and at most 1",
            ));
        }
        let scaled: Vec<RateLimit> = self
            .limits
            .iter()
            .map(|limit| {
                let share = (f64::from(limit.limit) * share).floor().max(1.0) as u32;
                limit.limit(share)
            })
            .collect();
        self.local = WeightedLimiter::new(self.name, &scaled, crate::clock::Clock::system())?;
        Ok(self)
    }

    /// The limit's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The local limiter used while Redis is unavailable.
    pub fn local(&self) -> &WeightedLimiter {
        &self.local
    }

    /// Admits a call of `weight` in every window, or refuses with
    /// `Rejected::RateLimited { retry_after }`. Answered by Redis, or locally within the
    /// store's timeout when Redis cannot answer.
    pub async fn try_acquire(&self, weight: u32) -> Result<(), Rejected> {
        if weight == 0 {
            return Ok(());
        }
        let mut invocation = self.script.prepare_invoke();
        invocation
            .key(&self.keys[0])
            .key(&self.keys[1])
            .arg(weight)
            .arg(self.limits.len());
        for limit in &self.limits {
            invocation
                .arg(u64::try_from(limit.window.as_micros()).unwrap_or(u64::MAX))
                .arg(limit.limit);
        }
        let answer = self
            .store
            .run(|mut connection| async move {
                invocation.invoke_async::<(i64, i64)>(&mut connection).await
            })
            .await;
        match answer {
            Ok((result, bad)) => {
                if bad > 0 {
                    self.store.bad_data("a rate-limit entry");
                }
                match result {
                    0 => Ok(()),
                    wait if wait > 0 => Err(self.limited(Duration::from_micros(wait as u64))),
                    _ => Err(self.limited(self.longest())),
                }
            }
            Err(unavailable) => {
                if !matches!(unavailable, Unavailable::Open) {
                    tracing::debug!(limit = self.name, ?unavailable, "answered locally");
                }
                self.store.fell_back();
                self.local.try_acquire(weight)
            }
        }
    }

    fn longest(&self) -> Duration {
        self.limits
            .iter()
            .map(|limit| limit.window)
            .max()
            .unwrap_or_default()
    }

    fn limited(&self, retry_after: Duration) -> Rejected {
        Rejected::RateLimited {
            limiter: self.name,
            retry_after,
        }
    }
}
