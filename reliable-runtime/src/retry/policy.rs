//! [`RetryPolicy`]: a named retry policy, its configuration and each call's [`RetryState`].

use super::budget::{BudgetTracker, RetryBudget};
use super::events::{RetryAttempted, RetryBudgetExhausted};
use super::{BackoffConfig, Jitter};
use crate::clock::Clock;
use crate::common::intern::intern;
use crate::common::live::Live;
use crate::common::shard::ShardedCounter;
use crate::error::{catch_callback, ConfigError, Failure, Rejected};
use crate::event::{self, Event};
use crate::health::Exposition;
use crate::served::GaveUp;
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// A retry policy's configuration.
///
/// ```
/// use reliable_runtime::retry::{BackoffConfig, RetryConfig};
///
/// let config = RetryConfig::default().backoff(BackoffConfig::cex()).budget(None);
/// assert!(config.validate().is_ok());
/// ```
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct RetryConfig {
    /// Delays and attempts.
    pub backoff: BackoffConfig,
    /// The retry budget; `None` turns it off (not recommended: an outage then multiplies load
    /// by `max_attempts`). Default: [`RetryBudget::default`].
    pub budget: Option<RetryBudget>,
    /// Whether an attempt that timed out (`Rejected::Timeout`) is retried. Other rejections
    /// (open breaker, rate limit, full bulkhead) never are. Default `true`.
    pub retry_timeouts: bool,
    /// The clock of the budget's window (default: [`Clock::system`]).
    #[serde(skip)]
    pub clock: Clock,
}

impl Default for RetryConfig {
    fn default() -> Self {
        RetryConfig {
            backoff: BackoffConfig::default(),
            budget: Some(RetryBudget::default()),
            retry_timeouts: true,
            clock: Clock::system(),
        }
    }
}

impl RetryConfig {
    /// Checks every field.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.backoff.validate()?;
        if let Some(budget) = &self.budget {
            budget.validate()?;
        }
        Ok(())
    }
}

/// A named retry policy shared by every call site that names it.
pub struct RetryPolicy {
    name: &'static str,
    /// Read when an attempt has failed; swapped whole by [`reconfigure`](Self::reconfigure).
    config: Live<RetryConfig>,
    /// The clock, fixed at creation (a reconfiguration keeps it).
    clock: Clock,
    budget: Option<BudgetTracker>,
    calls: ShardedCounter,
    retries: ShardedCounter,
    gave_up: ShardedCounter,
    budget_exhausted: ShardedCounter,
}

impl fmt::Debug for RetryPolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RetryPolicy")
            .field("name", &self.name)
            .field("config", &self.config())
            .finish_non_exhaustive()
    }
}

/// A retry policy's counters, as `get_system_health()` shows them (`retries`).
///
/// The counters start at zero when the policy is created (on the first call of a fn that
/// names it, or when it is registered by hand), add up every call site that shares the
/// policy's name, and are never reset.
///
/// ```
/// use reliable_runtime::retry::{BackoffConfig, Jitter, RetryConfig, RetryPolicy};
///
/// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
/// let backoff = BackoffConfig::default().max_attempts(3).jitter(Jitter::None);
/// let policy = RetryPolicy::new("retry_snapshot_doc", RetryConfig::default().backoff(backoff)).unwrap();
/// let _ = policy.call(|| async { Err::<(), _>("503") }).await;
/// let stats = policy.snapshot();
/// assert_eq!((stats.calls, stats.retries, stats.gave_up, stats.budget_exhausted), (1, 2, 1, 0));
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RetrySnapshot {
    /// Calls made through the policy that may retry: one per call, however many attempts it
    /// took (the retry budget's `ratio` applies to this count). One-shot calls of a `Policy`
    /// (`call_once` and its forms) are not counted.
    pub calls: u64,
    /// Retries granted: counted when a failed attempt is given another (before the delay), so
    /// a call cancelled during its backoff still counts its retry.
    pub retries: u64,
    /// Calls that ended because their last allowed attempt (the `max_attempts`-th) failed with
    /// an error worth retrying, or because the wait before the next one would have ended past
    /// the call's deadline. Calls stopped by an error `retry_if` rejects, by a refusal or by
    /// the budget are not counted here.
    pub gave_up: u64,
    /// Retries refused because the retry budget was spent; each ends its call with the last
    /// error and publishes an [`Event::RetryBudgetExhausted`].
    pub budget_exhausted: u64,
    /// Attempts allowed per call, the first included (the configuration, not a count).
    pub max_attempts: u32,
}

/// The last error of a call whose retries ran out, with the number of attempts made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryError<E> {
    /// The last attempt's error.
    pub error: E,
    /// Attempts made, the first included.
    pub attempts: u32,
}

impl<E: fmt::Display> fmt::Display for RetryError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (after {} attempts)", self.error, self.attempts)
    }
}

impl<E: std::error::Error + 'static> std::error::Error for RetryError<E> {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.error)
    }
}

impl<E> RetryError<E> {
    /// The last attempt's error.
    pub fn into_inner(self) -> E {
        self.error
    }
}

impl RetryPolicy {
    /// A policy named `name`, after validating `config`.
    pub fn new(name: impl AsRef<str>, config: RetryConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(RetryPolicy {
            name: intern(name.as_ref()),
            budget: config
                .budget
                .map(|budget| BudgetTracker::new(budget, &config.clock)),
            clock: config.clock.clone(),
            config: Live::new(config),
            calls: ShardedCounter::new(),
            retries: ShardedCounter::new(),
            gave_up: ShardedCounter::new(),
            budget_exhausted: ShardedCounter::new(),
        })
    }

    /// The policy's registry name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The configuration now (a [`reconfigure`](Self::reconfigure) replaces it).
    pub fn config(&self) -> Arc<RetryConfig> {
        self.config.load_full()
    }

    /// Changes the running policy's configuration: `change` gets the current one and returns
    /// the new one, which the next failed attempt follows (attempts, delays, jitter, whether
    /// timeouts are retried). The counters are kept. An invalid configuration, or a change of
    /// the retry budget (it keeps its own account), is an `Err` naming the field and changes
    /// nothing. Each change is an [`Event::Reconfigured`] (an info alert).
    ///
    /// ```
    /// use reliable_runtime::retry::{RetryConfig, RetryPolicy};
    ///
    /// let policy = RetryPolicy::new("retry_reconfigure_doc", RetryConfig::default()).unwrap();
    /// policy.reconfigure(|config| config.max_attempts(5)).unwrap();
    /// assert_eq!(policy.config().backoff.max_attempts, 5);
    /// let error = policy.reconfigure(|config| config.max_attempts(0)).unwrap_err();
    /// assert_eq!(error.field(), "max_attempts");
    /// ```
    pub fn reconfigure(
        &self,
        change: impl FnOnce(RetryConfig) -> RetryConfig,
    ) -> Result<(), ConfigError> {
        self.config
            .change(("retry", self.name), change, |current, next| {
                self.check_change(current, next)
            })?;
        Ok(())
    }

    /// [`reconfigure`](Self::reconfigure)'s checks, changing nothing.
    pub(crate) fn check_reconfigure(
        &self,
        change: impl FnOnce(RetryConfig) -> RetryConfig,
    ) -> Result<(), ConfigError> {
        self.config
            .check(change, |current, next| self.check_change(current, next))
    }

    fn check_change(
        &self,
        current: &RetryConfig,
        next: &mut RetryConfig,
    ) -> Result<(), ConfigError> {
        next.clock = self.clock.clone();
        next.validate()?;
        if next.budget != current.budget {
            return Err(ConfigError::new(
                "budget",
                "cannot change while the policy runs: the budget keeps its own account",
            ));
        }
        Ok(())
    }

    /// The policy's counters now.
    pub fn snapshot(&self) -> RetrySnapshot {
        RetrySnapshot {
            calls: self.calls.sum(),
            retries: self.retries.sum(),
            gave_up: self.gave_up.sum(),
            budget_exhausted: self.budget_exhausted.sum(),
            max_attempts: self.config.load().backoff.max_attempts,
        }
    }

    /// Starts a call: counts it (the budget's calls are this count).
    #[inline]
    pub fn start(&self) -> RetryState<'_> {
        self.calls.add(1);
        RetryState {
            policy: self,
            attempts: 0,
            previous_delay: Duration::ZERO,
            time_left: None,
            gave_up: None,
        }
    }

    /// Counts a call (the budget's calls are this count) whose retry state is made only if an
    /// attempt fails ([`resume`](Self::resume)): a call that succeeds at once keeps none.
    #[inline]
    pub(crate) fn count_call(&self) {
        self.calls.add(1);
    }

    /// The retry state of a call counted by [`count_call`](Self::count_call).
    pub(crate) fn resume(&self) -> RetryState<'_> {
        RetryState {
            policy: self,
            attempts: 0,
            previous_delay: Duration::ZERO,
            time_left: None,
            gave_up: None,
        }
    }

    /// Runs `op` until it succeeds or retries run out; every `Err` is retryable.
    ///
    /// Sleeps with `tokio::time::sleep`, so it needs a tokio runtime (paused time works).
    pub async fn call<T, E, F, Fut>(&self, op: F) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        self.call_if(op, |_| true).await
    }

    /// Runs `op` until it succeeds, fails with an error `retry_if` rejects, or retries run out.
    ///
    /// ```
    /// use reliable_runtime::retry::{RetryConfig, RetryPolicy};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)] async fn main() {
    /// let policy = RetryPolicy::new("call_if_doc", RetryConfig::default()).unwrap();
    /// let error = policy.call_if(|| async { Err::<(), u16>(404) }, |status| *status >= 500).await.unwrap_err();
    /// assert_eq!(error.attempts, 1); // a 404 is not retried
    /// # }
    /// ```
    pub async fn call_if<T, E, F, Fut>(
        &self,
        mut op: F,
        retry_if: impl Fn(&E) -> bool,
    ) -> Result<T, RetryError<E>>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let mut state = self.start();
        loop {
            let error = match op().await {
                Ok(value) => return Ok(value),
                Err(error) => error,
            };
            let retryable = catch_callback("retry_if", false, || retry_if(&error));
            match state.after_failure(retryable, None) {
                Some(delay) => tokio::time::sleep(delay).await,
                None => {
                    return Err(RetryError {
                        error,
                        attempts: state.attempts(),
                    })
                }
            }
        }
    }
}

/// One call's progress through its retries.
#[derive(Debug)]
pub struct RetryState<'a> {
    policy: &'a RetryPolicy,
    attempts: u32,
    previous_delay: Duration,
    /// What is left of the call's deadline, for the next decision only.
    time_left: Option<Duration>,
    gave_up: Option<GaveUp>,
}

impl RetryState<'_> {
    /// Attempts made so far.
    pub fn attempts(&self) -> u32 {
        self.attempts
    }

    /// Why the last decision was not to retry, if it was not.
    pub fn gave_up(&self) -> Option<GaveUp> {
        self.gave_up
    }

    /// The next decision does not retry when its wait would not end `left` from now (what is
    /// left of the call's deadline).
    pub fn time_left(&mut self, left: Duration) {
        self.time_left = Some(left);
    }

    /// After a failed attempt: the delay before the next one, or `None` to give up (the error
    /// is not `retryable`, attempts ran out, or the budget is spent). `hint` is a server's
    /// Retry-After; it replaces the backoff delay, capped by `max_delay`.
    pub fn after_failure(&mut self, retryable: bool, hint: Option<Duration>) -> Option<Duration> {
        self.attempts += 1;
        let time_left = self.time_left.take();
        if !retryable {
            self.gave_up = Some(GaveUp::NotRetryable);
            return None;
        }
        let policy = self.policy;
        let config = policy.config.load();
        let backoff = &config.backoff;
        if self.attempts >= backoff.max_attempts {
            policy.gave_up.add(1);
            self.gave_up = Some(GaveUp::AttemptsExhausted);
            return None;
        }
        let delay = match hint {
            Some(hint) => hint.min(backoff.max_delay),
            None => backoff.delay(self.attempts, self.previous_delay, rand::rng().random()),
        };
        // The wait would use up the deadline: the next attempt could not even start.
        if time_left.is_some_and(|left| delay >= left) {
            policy.gave_up.add(1);
            self.gave_up = Some(GaveUp::DeadlineReached);
            return None;
        }
        if let Some(budget) = &policy.budget {
            if !budget.withdraw(&policy.clock, policy.calls.sum()) {
                policy.budget_exhausted.add(1);
                tracing::warn!(policy = policy.name, "retry budget exhausted; not retrying");
                event::publish(Event::RetryBudgetExhausted(RetryBudgetExhausted {
                    policy: policy.name,
                    ratio: budget.budget().ratio,
                }));
                self.gave_up = Some(GaveUp::BudgetSpent);
                return None;
            }
        }
        self.gave_up = None;
        self.previous_delay = delay;
        policy.retries.add(1);
        event::publish(Event::RetryAttempted(RetryAttempted {
            policy: policy.name,
            attempt: self.attempts + 1,
            delay,
        }));
        Some(delay)
    }

    /// [`after_failure`](Self::after_failure) for a pipeline outcome: rejections are never
    /// retried, except timeouts when the policy says so.
    pub fn after_outcome<E>(
        &mut self,
        failure: &Failure<E>,
        retry_if: impl FnOnce(&E) -> bool,
        retry_after: impl FnOnce(&E) -> Option<Duration>,
    ) -> Option<Duration> {
        match failure {
            Failure::Inner(error) => {
                let retryable = catch_callback("retry_if", false, || retry_if(error));
                let hint = if retryable {
                    catch_callback("retry_after", None, || retry_after(error))
                } else {
                    None
                };
                self.after_failure(retryable, hint)
            }
            Failure::Rejected(Rejected::Timeout { .. }) => {
                self.after_failure(self.policy.config.load().retry_timeouts, None)
            }
            Failure::Rejected(_) => self.after_failure(false, None),
        }
    }
}

/// The retry policies' Prometheus families (resilience4j's names).
pub(crate) fn write_metrics(retries: &BTreeMap<String, RetrySnapshot>, out: &mut Exposition) {
    out.per_instance_by(
        (
            "resilience4j_retry_calls_total",
            "counter",
            "Calls through the retry policy, by kind",
        ),
        ("name", "kind"),
        retries,
        |retry| [("gave_up", retry.gave_up), ("all", retry.calls)],
    );
    out.per_instance(
        ("reliable_retry_retries_total", "counter", "Retries made"),
        "name",
        retries,
        |retry| retry.retries,
    );
    out.per_instance(
        (
            "reliable_retry_budget_exhausted_total",
            "counter",
            "Retries the retry budget refused",
        ),
        "name",
        retries,
        |retry| retry.budget_exhausted,
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(max_attempts: u32, budget: Option<RetryBudget>) -> RetryPolicy {
        RetryPolicy::new(
            "unit_retry",
            RetryConfig {
                backoff: BackoffConfig {
                    max_attempts,
                    jitter: Jitter::None,
                    ..BackoffConfig::default()
                },
                budget,
                ..RetryConfig::default()
            },
        )
        .unwrap()
    }

    #[test]
    fn gives_up_after_max_attempts() {
        let policy = policy(3, None);
        let mut state = policy.start();
        assert_eq!(
            state.after_failure(true, None),
            Some(Duration::from_secs(1))
        );
        assert_eq!(
            state.after_failure(true, None),
            Some(Duration::from_secs(2))
        );
        assert_eq!(state.after_failure(true, None), None);
        assert_eq!(state.attempts(), 3);
        assert_eq!(policy.snapshot().gave_up, 1);
        assert_eq!(policy.snapshot().retries, 2);
    }

    #[test]
    fn hints_replace_the_backoff_and_are_capped() {
        let policy = policy(5, None);
        let mut state = policy.start();
        assert_eq!(
            state.after_failure(true, Some(Duration::from_secs(7))),
            Some(Duration::from_secs(7))
        );
        assert_eq!(
            state.after_failure(true, Some(Duration::from_secs(600))),
            Some(Duration::from_secs(60))
        );
    }

    #[test]
    fn rejections_are_not_retried_but_timeouts_are() {
        let policy = policy(5, None);
        let mut state = policy.start();
        let open: Failure<()> = Failure::Rejected(Rejected::CircuitOpen {
            breaker: "b",
            retry_after: None,
        });
        assert_eq!(state.after_outcome(&open, |_| true, |_| None), None);
        let mut state = policy.start();
        let timeout: Failure<()> = Failure::Rejected(Rejected::Timeout {
            after: Duration::from_secs(1),
        });
        assert!(state.after_outcome(&timeout, |_| true, |_| None).is_some());
    }

    #[test]
    fn the_budget_bounds_retries() {
        let budget = RetryBudget {
            ratio: 0.1,
            min_retries_per_second: 1,
            window: Duration::from_secs(10),
        };
        let policy = policy(5, Some(budget));
        let mut retries = 0;
        for _ in 0..100 {
            let mut state = policy.start();
            while state.after_failure(true, None).is_some() {
                retries += 1;
            }
        }
        // At most 10% of 100 calls plus 1/s over 10 s; the rest were refused.
        assert!((19..=20).contains(&retries), "{retries} retries");
        assert!(policy.snapshot().budget_exhausted >= 70);
    }
}

crate::common::setters::setters! { RetryConfig {
    backoff: BackoffConfig,
    budget: Option<RetryBudget>,
    retry_timeouts: bool,
    clock: Clock,
}}

impl RetryConfig {
    /// Sets the retry budget's ratio (retries allowed per call), turning the budget on with
    /// its other fields at their defaults when it was off.
    #[must_use]
    pub fn budget_ratio(mut self, ratio: f64) -> Self {
        self.budget.get_or_insert_with(RetryBudget::default).ratio = ratio;
        self
    }

    /// Sets the backoff's `max_attempts`: attempts in all, the first call included.
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.backoff.max_attempts = attempts;
        self
    }

    /// Sets the backoff's `initial_delay`.
    #[must_use]
    pub fn initial_delay(mut self, delay: Duration) -> Self {
        self.backoff.initial_delay = delay;
        self
    }

    /// Sets the backoff's `max_delay`.
    #[must_use]
    pub fn max_delay(mut self, delay: Duration) -> Self {
        self.backoff.max_delay = delay;
        self
    }

    /// Sets the backoff's `multiplier`.
    #[must_use]
    pub fn multiplier(mut self, multiplier: f64) -> Self {
        self.backoff.multiplier = multiplier;
        self
    }

    /// Sets the backoff's `jitter`.
    #[must_use]
    pub fn jitter(mut self, jitter: Jitter) -> Self {
        self.backoff.jitter = jitter;
        self
    }

    /// Sets the backoff's `jitter_factor` (what [`Jitter::Additive`] may add).
    #[must_use]
    pub fn jitter_factor(mut self, factor: f64) -> Self {
        self.backoff.jitter_factor = factor;
        self
    }
}
