//! [`SharedRateLimiter`]: one weighted sliding-window limit for every instance, kept in Redis.

use super::{SharedStore, Unavailable};
use crate::common::intern::intern;
use crate::error::{ConfigError, Rejected};
use crate::limit::{RateLimit, WeightedLimiter};
use std::time::Duration;

/// The admission, atomic on the server. Each window is a sorted set of the calls within it
/// (members `<sequence>:<weight>`, scored by the server's clock in microseconds) and its
/// running sum of weights in one hash: a call expires the entries leaving each window (their
/// weights subtracted, the sum written back at once) and compares the sum, so an admission
/// costs the same whatever the window holds. A sum that cannot be right (lost, negative, above
/// an empty set, or not covered by the set's entries) is recounted from the set; a call is
/// never admitted on a sum the entries do not back. Answers `{0, bad}` (admitted), `{wait,
/// bad}` (microseconds until the weight fits), `{-1, bad}` (it never fits: checked before
/// anything is written) or `{-2, bad}` (a key holds another type: answered locally, the keys
/// left alone). Members that do not parse (another version's, a corrupt one) count nothing and
/// are reported in `bad`. The server's clock times every entry, so instances with skewed
/// clocks share one timeline. KEYS: the sequence, the sums (a field per span), then one set
/// per window; ARGV: the weight, then each window's span (µs) and limit.
const ADMIT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local weight = tonumber(ARGV[1])
local windows = #KEYS - 2
local bad = 0
local function kind(key) return redis.call('TYPE', key).ok end
local k = kind(KEYS[1])
if k ~= 'string' and k ~= 'none' then return {-2, 1} end
k = kind(KEYS[2])
if k ~= 'hash' and k ~= 'none' then return {-2, 1} end
local longest = 0
for i = 1, windows do
  local span, limit = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  if weight > limit then return {-1, 0} end
  if span > longest then longest = span end
  k = kind(KEYS[2 + i])
  if k ~= 'zset' and k ~= 'none' then return {-2, 1} end
end
local function weight_of(member, count)
  local w = tonumber(string.match(member, '^%d+:(%d+)$'))
  if not w and count then bad = bad + 1 end
  return w or 0
end
local function recount(set)
  local sum = 0
  for _, member in ipairs(redis.call('ZRANGE', set, 0, -1)) do
    sum = sum + weight_of(member, true)
  end
  return sum
end
local wait = 0
for i = 1, windows do
  local set, field = KEYS[2 + i], ARGV[2 * i]
  local span, limit = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local cutoff = string.format('%d', now - span)
  local sum = tonumber(redis.call('HGET', KEYS[2], field))
  if sum then
    for _, member in ipairs(redis.call('ZRANGEBYSCORE', set, '-inf', cutoff)) do
      sum = sum - weight_of(member, true)
    end
  end
  redis.call('ZREMRANGEBYSCORE', set, '-inf', cutoff)
  if not sum or sum < 0 or (sum > 0 and redis.call('ZCARD', set) == 0) then
    sum = recount(set)
  end
  redis.call('HSET', KEYS[2], field, sum)
  if sum + weight > limit then
    local over, offset, free = sum + weight - limit, 0, nil
    while over > 0 and not free do
      local chunk = redis.call('ZRANGE', set, offset, offset + 99, 'WITHSCORES')
      if #chunk == 0 then break end
      for j = 1, #chunk, 2 do
        over = over - weight_of(chunk[j], false)
        if over <= 0 then
          free = tonumber(chunk[j + 1]) + span - now
          break
        end
      end
      offset = offset + 100
    end
    if not free then
      -- The entries do not back the sum: recount, and refuse for the window if still over.
      sum = recount(set)
      redis.call('HSET', KEYS[2], field, sum)
      if sum + weight > limit then free = span end
    end
    if free then
      if free < 1 then free = 1 end
      if free > wait then wait = free end
    end
  end
end
local keep = math.floor(longest / 1000) + 1000
if wait == 0 then
  local member = redis.call('INCR', KEYS[1]) .. ':' .. weight
  local score = string.format('%d', now)
  for i = 1, windows do
    redis.call('ZADD', KEYS[2 + i], score, member)
    redis.call('HINCRBY', KEYS[2], ARGV[2 * i], weight)
  end
end
for i = 1, #KEYS do redis.call('PEXPIRE', KEYS[i], keep) end
return {wait, bad}
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
    /// The sequence, the sums, then one set per window.
    keys: Vec<String>,
    limits: Vec<RateLimit>,
    /// What the script checks: each window's span (µs) and limit, in the order of `keys`' sets.
    windows: Vec<(u64, u32)>,
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
        // Spans are distinct: the local limiter refuses two windows of one span.
        let windows: Vec<(u64, u32)> = limits
            .iter()
            .map(|limit| {
                let span = u64::try_from(limit.window.as_micros()).unwrap_or(u64::MAX);
                (span, limit.limit)
            })
            .collect();
        Ok(SharedRateLimiter {
            store: store.clone(),
            name: intern(name),
            // One hash tag: every key on one node of a cluster.
            keys: [
                format!("reliable:{{{name}}}:sequence"),
                format!("reliable:{{{name}}}:sums"),
            ]
            .into_iter()
            .chain(
                windows
                    .iter()
                    .map(|(span, _)| format!("reliable:{{{name}}}:window:{span}")),
            )
            .collect(),
            windows,
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
        self.answer(weight).await.0
    }

    /// [`try_acquire`](Self::try_acquire)'s answer, and whether it was given locally.
    async fn answer(&self, weight: u32) -> (Result<(), Rejected>, bool) {
        if weight == 0 {
            return (Ok(()), false);
        }
        if !self.fits(weight) {
            return (Err(self.limited(self.longest())), false);
        }
        let mut invocation = self.script.prepare_invoke();
        for key in &self.keys {
            invocation.key(key);
        }
        invocation.arg(weight);
        for (span, limit) in &self.windows {
            invocation.arg(span).arg(limit);
        }
        match self.store.invoke::<(i64, i64)>(invocation).await {
            Ok((result, bad)) => {
                if bad > 0 {
                    self.store.bad_data("a rate-limit entry");
                }
                match result {
                    0 => (Ok(()), false),
                    wait if wait > 0 => {
                        (Err(self.limited(Duration::from_micros(wait as u64))), false)
                    }
                    -1 => (Err(self.limited(self.longest())), false),
                    // A key of another type: answered locally, not a failure of Redis.
                    _ => {
                        self.store.fell_back();
                        (self.local.try_acquire(weight), true)
                    }
                }
            }
            Err(unavailable) => {
                if !matches!(unavailable, Unavailable::Open) {
                    tracing::debug!(limit = self.name, ?unavailable, "answered locally");
                }
                self.store.fell_back();
                (self.local.try_acquire(weight), true)
            }
        }
    }

    /// Admits a call of `weight`, waiting as long as the server says it must, a second at most
    /// between two asks (so a wait that began on the local share goes back to Redis once it
    /// answers). Refuses at once a weight above a window's whole limit, which could never be
    /// admitted, and, while Redis is unavailable, a weight above the local share's.
    pub async fn acquire(&self, weight: u32) -> Result<(), Rejected> {
        loop {
            match self.answer(weight).await {
                (Err(refused), locally)
                    if !self.fits(weight) || (locally && !self.local.fits(weight)) =>
                {
                    return Err(refused)
                }
                (Err(Rejected::RateLimited { retry_after, .. }), _) => {
                    let wait =
                        retry_after.clamp(Duration::from_micros(100), Duration::from_secs(1));
                    tokio::time::sleep(wait).await;
                }
                (admitted, _) => return admitted,
            }
        }
    }

    /// Admits a call of `weight` from the local share alone, asking nothing of Redis (a
    /// blocking caller, which cannot wait on the server).
    pub fn try_acquire_locally(&self, weight: u32) -> Result<(), Rejected> {
        self.local.try_acquire(weight)
    }

    /// Whether a call of `weight` fits every window's limit at all.
    pub fn fits(&self, weight: u32) -> bool {
        self.limits.iter().all(|limit| weight <= limit.limit)
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
