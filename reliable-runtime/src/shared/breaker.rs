//! [`SharedBreaker`]: one breaker state for every instance: a trip in one opens them all, the
//! fleet's probes are capped, and a recovery found by one closes them all.

use super::{millis, SharedStore, Unavailable};
use crate::breaker::{BreakerState, CircuitBreaker};
use crate::error::ConfigError;
use crate::event::Event;
use std::sync::Arc;
use std::time::Duration;

/// The reason a breaker's state is set by hand; [`SharedBreaker`] closes a breaker that way
/// when the fleet recovered, and such a change is not published again (no echo).
const SET_BY_HAND: &str = "set by hand";

/// The reason a breaker opens because another instance's did (not published again either).
const OPENED_BY_FLEET: &str = "another instance's breaker opened";

/// The reason a breaker closes because another instance's probes found the service back.
const CLOSED_BY_FLEET: &str = "another instance's probes succeeded";

/// How long the server keeps a record nobody updates: an opening for its open period plus
/// this, a recovery for this (long enough for every instance's next read).
const KEEP_MS: u64 = 60_000;

/// The fleet's state, in one hash, and the instances holding probe slots, in one set (both
/// under the name's hash tag, so a cluster keeps them on one node). Timed by the server.
///
/// `TRIP (open_ms, instance, keep_ms)`: open until now + `open_ms` (a later open-until already
/// recorded stays), every probe slot freed.
const TRIP: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = redis.call('TYPE', KEYS[1]).ok
if kind ~= 'hash' and kind ~= 'none' then redis.call('DEL', KEYS[1]) end
local untill = now + tonumber(ARGV[1])
if redis.call('HGET', KEYS[1], 'state') == 'open' then
  local old = tonumber(redis.call('HGET', KEYS[1], 'open_until'))
  if old and old > untill then untill = old end
end
redis.call('HSET', KEYS[1], 'state', 'open', 'open_until', untill, 'by', ARGV[2])
redis.call('HDEL', KEYS[1], 'probe_until')
redis.call('DEL', KEYS[2])
redis.call('PEXPIRE', KEYS[1], untill - now + tonumber(ARGV[3]))
return 1
";

/// `RECOVER (keep_ms)`: the fleet closes, if its open period is over (a probe's success);
/// a success reported while the fleet is still within its open period changes nothing.
const RECOVER: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if redis.call('TYPE', KEYS[1]).ok ~= 'hash' then return 0 end
if redis.call('HGET', KEYS[1], 'state') ~= 'open' then return 0 end
local untill = tonumber(redis.call('HGET', KEYS[1], 'open_until'))
if untill and now < untill then return 0 end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('HSET', KEYS[1], 'state', 'closed')
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[1]))
return 1
";

/// `STATUS (instance, wants_probe, probers, lease_ms)`: what the fleet's state is for this
/// instance, taking a probe slot if it wants one and one is free. Answers `{code, millis}`:
/// -2 bad data, -1 no record, 0 recovered, 1 open (millis left), 2 probing with a slot of this
/// instance's, 3 probing with every slot taken. Slots not reported on within the lease are
/// freed (their holder died or saw no call).
const STATUS: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local kind = redis.call('TYPE', KEYS[1]).ok
if kind == 'none' then return {-1, 0} end
if kind ~= 'hash' then return {-2, 0} end
local state = redis.call('HGET', KEYS[1], 'state')
if state == 'closed' then return {0, 0} end
local untill = tonumber(redis.call('HGET', KEYS[1], 'open_until'))
if state ~= 'open' or not untill then return {-2, 0} end
if now < untill then return {1, untill - now} end
if redis.call('TYPE', KEYS[2]).ok ~= 'set' then redis.call('DEL', KEYS[2]) end
local lease = tonumber(redis.call('HGET', KEYS[1], 'probe_until'))
if lease and now >= lease then
  redis.call('DEL', KEYS[2])
  redis.call('HDEL', KEYS[1], 'probe_until')
end
if redis.call('SISMEMBER', KEYS[2], ARGV[1]) == 1 then return {2, 0} end
if ARGV[2] == '1' and redis.call('SCARD', KEYS[2]) < tonumber(ARGV[3]) then
  redis.call('SADD', KEYS[2], ARGV[1])
  if not redis.call('HGET', KEYS[1], 'probe_until') then
    redis.call('HSET', KEYS[1], 'probe_until', now + tonumber(ARGV[4]))
  end
  redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[4]) + 60000)
  return {2, 0}
end
return {3, 0}
";

/// Shares one [`CircuitBreaker`]'s state with every instance naming the same shared breaker on
/// one Redis:
///
/// - **A trip in one opens them all.** When an instance's breaker opens on its own (failures,
///   a failed probe), it records the opening on the server with its open-until; every instance
///   reads the record each `sync_every` (100 ms by default) and opens its closed breaker until
///   the fleet's open-until. An outage found by one instance cuts them all off within that
///   delay plus one command.
/// - **Probes are capped across the fleet.** When the open period ends, only `probing_instances`
///   instances (1 by default) take a probe slot and half-open; the others stay open (rejecting,
///   as open breakers do) until the fleet learns the outcome. So at most `probing_instances ×
///   half_open_max_calls` probes reach the service at once, however many replicas run. A slot
///   not reported on within `probe_lease` (its holder died, or saw no call) is given to another.
/// - **A recovery found by one closes them all.** A prober whose probes succeed closes its
///   breaker and records the recovery; every instance whose breaker was open with the fleet
///   closes it. A failed probe reopens the fleet.
///
/// Calls never wait on Redis: admission stays local, and costs what it costs without sharing
/// (a hold moves the open breaker's open-until; no call reads anything new). The syncing runs
/// in a task of its own (spawned on the current tokio runtime; it stops when the
/// `SharedBreaker` drops). While Redis is unavailable (the store's timeout, its breaker open),
/// each breaker works on its own: it half-opens on its own timer, and trips in that time are
/// not shared.
///
/// ```no_run
/// use reliable_runtime::breaker::BreakerConfig;
/// use reliable_runtime::registry::breaker_registry;
/// use reliable_runtime::shared::{SharedBreaker, SharedStore};
///
/// # async fn run() -> Result<(), reliable_runtime::ConfigError> {
/// let store = SharedStore::new("ingest", "redis://127.0.0.1:6379/")?;
/// let breaker = breaker_registry().get_or_create("binance_api", BreakerConfig::cex())?;
/// let _shared = SharedBreaker::start(&store, "binance_api", breaker);
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct SharedBreaker {
    task: tokio::task::JoinHandle<()>,
}

/// Stops syncing; a hold it set ends within its margin (three sync delays).
impl Drop for SharedBreaker {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// How a [`SharedBreaker`] syncs: built by [`SharedBreaker::options`].
#[derive(Debug)]
#[must_use = "nothing is shared until `start`"]
pub struct SharedBreakerOptions {
    store: SharedStore,
    name: String,
    breaker: Arc<CircuitBreaker>,
    sync_every: Duration,
    probing_instances: u32,
    probe_lease: Duration,
}

impl SharedBreakerOptions {
    /// How often the fleet's state is read (100 ms by default): the bound on how late an
    /// instance learns of a trip or a recovery, besides one command.
    pub fn sync_every(mut self, every: Duration) -> Self {
        self.sync_every = every;
        self
    }

    /// How many instances may probe at once when the open period ends (1 by default).
    pub fn probing_instances(mut self, instances: u32) -> Self {
        self.probing_instances = instances;
        self
    }

    /// How long a probe slot is held without an outcome before another instance gets it
    /// (10 s by default).
    pub fn probe_lease(mut self, lease: Duration) -> Self {
        self.probe_lease = lease;
        self
    }

    /// Starts syncing (needs a tokio runtime). `Err` names a field out of range.
    pub fn start(self) -> Result<SharedBreaker, ConfigError> {
        if self.sync_every.is_zero() {
            return Err(ConfigError::new("sync_every", "must be above zero"));
        }
        if self.probing_instances == 0 {
            return Err(ConfigError::new(
                "probing_instances",
                "at least one instance must probe, or the fleet never recovers",
            ));
        }
        if self.probe_lease < Duration::from_millis(1) {
            return Err(ConfigError::new("probe_lease", "must be 1 ms or more"));
        }
        let task = tokio::spawn(FleetSync::new(self).run());
        Ok(SharedBreaker { task })
    }
}

impl SharedBreaker {
    /// Shares `breaker`'s state as `name` on `store`'s server with the default options (read
    /// every 100 ms, one probing instance, a 10 s probe lease). Needs a tokio runtime.
    pub fn start(store: &SharedStore, name: &str, breaker: Arc<CircuitBreaker>) -> SharedBreaker {
        SharedBreaker::options(store, name, breaker)
            .start()
            .expect("the default options are valid")
    }

    /// Options for sharing `breaker`'s state as `name` on `store`'s server.
    ///
    /// ```no_run
    /// use reliable_runtime::breaker::BreakerConfig;
    /// use reliable_runtime::registry::breaker_registry;
    /// use reliable_runtime::shared::{SharedBreaker, SharedStore};
    /// use std::time::Duration;
    ///
    /// # async fn run() -> Result<(), reliable_runtime::ConfigError> {
    /// let store = SharedStore::new("ingest", "redis://127.0.0.1:6379/")?;
    /// let breaker = breaker_registry().get_or_create("okx_api", BreakerConfig::cex())?;
    /// let _shared = SharedBreaker::options(&store, "okx_api", breaker)
    ///     .sync_every(Duration::from_millis(50))
    ///     .probing_instances(2)
    ///     .start()?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn options(
        store: &SharedStore,
        name: &str,
        breaker: Arc<CircuitBreaker>,
    ) -> SharedBreakerOptions {
        SharedBreakerOptions {
            store: store.clone(),
            name: name.to_owned(),
            breaker,
            sync_every: Duration::from_millis(100),
            probing_instances: 1,
            probe_lease: Duration::from_secs(10),
        }
    }
}

/// What the fleet's record says, for this instance.
enum Fleet {
    /// No record (never tripped, or forgotten).
    Unknown,
    /// Recovered: a probe succeeded.
    Recovered,
    /// Open for this long still.
    Open(Duration),
    /// Probing; `mine` if this instance holds a slot.
    Probing { mine: bool },
    /// The record did not parse.
    Bad,
}

/// The syncing task's state.
struct FleetSync {
    events: tokio::sync::broadcast::Receiver<Event>,
    store: SharedStore,
    breaker: Arc<CircuitBreaker>,
    state_key: String,
    probers_key: String,
    /// Which instance this is, among the probe slots' holders.
    instance: String,
    /// The scripts, hashed once (each is sent by its hash).
    trip: redis::Script,
    recover: redis::Script,
    status: redis::Script,
    options: SharedBreakerOptions,
    /// Whether the breaker's open state is the fleet's (its own published trip, or one it
    /// followed): such a breaker closes when the fleet recovers.
    with_fleet: bool,
    /// Whether this task holds the breaker open past its own timeout (the fleet's open period,
    /// or slots taken by others), by moving its open-until a margin ahead at each read: when
    /// the reads stop (Redis gone, the task dropped), the hold ends by itself within it.
    holding: bool,
}

impl FleetSync {
    /// Subscribes to the breaker's events at once, before the task first runs: a trip in
    /// between would be missed.
    fn new(options: SharedBreakerOptions) -> FleetSync {
        let name = &options.name;
        FleetSync {
            events: crate::event::subscribe(),
            store: options.store.clone(),
            breaker: Arc::clone(&options.breaker),
            state_key: format!("reliable:{{{name}}}:breaker"),
            probers_key: format!("reliable:{{{name}}}:breaker:probers"),
            instance: super::instance_id(),
            trip: redis::Script::new(TRIP),
            recover: redis::Script::new(RECOVER),
            status: redis::Script::new(STATUS),
            options,
            with_fleet: false,
            holding: false,
        }
    }

    async fn run(mut self) {
        let mut tick = tokio::time::interval(self.options.sync_every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                // This breaker's own changes first: a read must not act on a state older than
                // a change already announced.
                biased;
                event = self.events.recv() => match event {
                    Ok(Event::BreakerStateChanged(change))
                        if change.breaker == self.breaker.name()
                            && ![SET_BY_HAND, OPENED_BY_FLEET, CLOSED_BY_FLEET]
                                .contains(&change.reason) =>
                    {
                        match change.to {
                            BreakerState::Open => self.trip().await,
                            BreakerState::Closed => self.recover().await,
                            _ => {}
                        }
                    }
                    Ok(_) => {}
                    // Events were lost (the bus is shared, and busy in an outage): a trip
                    // among them is shared from the breaker's state instead.
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                        if self.breaker.state() == BreakerState::Open && !self.with_fleet {
                            self.trip().await;
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
                },
                _ = tick.tick() => self.follow().await,
            }
        }
    }

    /// Records this instance's opening, for its open period.
    async fn trip(&mut self) {
        let open_for = self
            .breaker
            .snapshot()
            .open_remaining
            .map_or(self.breaker.config().timeout, Duration::from_secs_f64);
        let mut invocation = self.trip.prepare_invoke();
        invocation
            .key(&self.state_key)
            .key(&self.probers_key)
            .arg(millis(open_for))
            .arg(&self.instance)
            .arg(KEEP_MS);
        let outcome = self.store.invoke::<i64>(invocation).await;
        // Like every instance, it then probes only with a slot (the next read holds it).
        self.with_fleet = outcome.is_ok();
        if let Err(unavailable) = outcome {
            self.unread(unavailable, "a trip could not be shared");
        }
    }

    /// Records the recovery this instance's probes found.
    async fn recover(&mut self) {
        self.with_fleet = false;
        self.holding = false;
        let mut invocation = self.recover.prepare_invoke();
        invocation
            .key(&self.state_key)
            .key(&self.probers_key)
            .arg(KEEP_MS);
        let outcome = self.store.invoke::<i64>(invocation).await;
        if let Err(unavailable) = outcome {
            self.unread(unavailable, "a recovery could not be shared");
        }
    }

    /// Reads the fleet's state and brings this instance's breaker in line with it.
    async fn follow(&mut self) {
        // The breaker as it was when read: the fleet's answer applies only if it has not
        // changed meanwhile (its own probe failing, say).
        let epoch = self.breaker.epoch();
        let state = self.breaker.state();
        // Open with the fleet, it asks whatever its own timer says: the hold keeps it from
        // half-opening before it has a slot.
        let wants_probe = state == BreakerState::HalfOpen
            || (state == BreakerState::Open && (self.with_fleet || self.breaker.open_elapsed()));
        let fleet = match self.status(wants_probe).await {
            Ok(fleet) => fleet,
            Err(unavailable) => {
                return self.unread(unavailable, "the fleet's breaker state could not be read")
            }
        };
        match fleet {
            Fleet::Unknown => {
                self.let_go();
                self.with_fleet = false;
            }
            Fleet::Bad => {
                self.store.bad_data("breaker state");
                self.let_go();
                self.with_fleet = false;
            }
            Fleet::Recovered => {
                self.let_go();
                if self.with_fleet
                    && matches!(state, BreakerState::Open | BreakerState::HalfOpen)
                    && self.breaker.close_if_unchanged(epoch, CLOSED_BY_FLEET)
                {
                    tracing::info!(
                        breaker = self.breaker.name(),
                        "closed: another instance's probes found the service back"
                    );
                }
                self.with_fleet = false;
            }
            Fleet::Open(remaining) => {
                self.join(state, remaining);
                self.hold(remaining);
            }
            Fleet::Probing { mine: true } => self.let_go(),
            Fleet::Probing { mine: false } => {
                self.join(state, Duration::ZERO);
                self.hold(Duration::ZERO);
            }
        }
    }

    /// Holds the breaker open for `beyond` and a margin of three reads more.
    fn hold(&mut self, beyond: Duration) {
        // Three reads, and at least one read plus two slow answers: one late answer must not
        // let the breaker half-open without a slot.
        let every = self.options.sync_every;
        let margin = every
            .saturating_mul(3)
            .max(every.saturating_add(self.store.timeout().saturating_mul(2)));
        self.breaker.hold_open(beyond.saturating_add(margin));
        self.holding = true;
    }

    /// Ends this task's hold, if any: the breaker may half-open on its own timer.
    fn let_go(&mut self) {
        if std::mem::take(&mut self.holding) {
            self.breaker.release_hold();
        }
    }

    /// Opens a closed breaker with the fleet, for what is left of its open period.
    fn join(&mut self, state: BreakerState, remaining: Duration) {
        if state == BreakerState::Closed && self.breaker.open_with_fleet(remaining, OPENED_BY_FLEET)
        {
            tracing::info!(
                breaker = self.breaker.name(),
                "opened: another instance's breaker opened"
            );
            self.with_fleet = true;
        } else if state != BreakerState::Closed {
            self.with_fleet = true;
        }
    }

    async fn status(&self, wants_probe: bool) -> Result<Fleet, Unavailable> {
        let mut invocation = self.status.prepare_invoke();
        invocation
            .key(&self.state_key)
            .key(&self.probers_key)
            .arg(&self.instance)
            .arg(u8::from(wants_probe))
            .arg(self.options.probing_instances)
            .arg(millis(self.options.probe_lease));
        let (code, left): (i64, i64) = self.store.invoke(invocation).await?;
        Ok(match code {
            -1 => Fleet::Unknown,
            0 => Fleet::Recovered,
            1 => Fleet::Open(Duration::from_millis(u64::try_from(left).unwrap_or(0))),
            2 => Fleet::Probing { mine: true },
            3 => Fleet::Probing { mine: false },
            _ => Fleet::Bad,
        })
    }

    /// Redis did not answer: the breaker works on its own until it does. A hold ends by itself
    /// within its margin, or at once when the store's breaker is open (Redis gone, not one
    /// slow answer).
    fn unread(&mut self, unavailable: Unavailable, what: &'static str) {
        if matches!(unavailable, Unavailable::Open) {
            self.let_go();
        }
        self.store.fell_back();
        tracing::debug!(
            breaker = self.breaker.name(),
            what,
            ?unavailable,
            "Redis did not answer"
        );
    }
}
