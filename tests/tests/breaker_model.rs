//! Property test: the circuit breaker against a small reference model of its state machine.
//!
//! Thousands of random sequences of starts, finishes (success, failure, slow), cancellations and
//! clock steps run through a real breaker on a manual clock and through the model; after every
//! step the admission decision, the state and the failure count must agree.

use proptest::prelude::*;
use reliable_runtime::breaker::{
    BreakerConfig, BreakerState, BreakerWindow, CircuitBreaker, Permit,
};
use reliable_runtime::clock::Clock;
use std::collections::VecDeque;
use std::time::Duration;

#[derive(Clone, Debug)]
enum Op {
    Start,
    Finish { pick: usize, failed: bool },
    Cancel { pick: usize },
    Advance { millis: u64 },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Start),
        5 => (any::<usize>(), prop::bool::weighted(0.5)).prop_map(|(pick, failed)| Op::Finish { pick, failed }),
        1 => any::<usize>().prop_map(|pick| Op::Cancel { pick }),
        3 => prop_oneof![0u64..=500, 500u64..=5_000, 5_000u64..=40_000].prop_map(|millis| Op::Advance { millis }),
    ]
}

#[derive(Clone, Debug)]
struct Setup {
    failure_threshold: u32,
    window_failures: Option<u32>,
    failure_rate: Option<f64>,
    slow_rate: Option<f64>,
    slow_millis: u64,
    window: BreakerWindow,
    minimum_calls: u32,
    timeout_secs: u64,
    multiplier: f64,
    max_timeout_secs: u64,
    success_threshold: u32,
    half_open_max_calls: u32,
}

fn setup() -> impl Strategy<Value = Setup> {
    (
        0u32..=5,
        prop::option::of(prop_oneof![Just(0.25), Just(0.5), Just(1.0)]),
        prop::option::of(prop_oneof![Just(0.5), Just(1.0)]),
        prop_oneof![Just(200u64), Just(1_000), Just(3_000)],
        prop_oneof![
            (1u32..=8).prop_map(BreakerWindow::Calls),
            prop_oneof![Just(10u64), Just(60)]
                .prop_map(|s| BreakerWindow::Time(Duration::from_secs(s))),
        ],
        1u32..=5,
        1u64..=10,
        prop_oneof![Just(1.0), Just(2.0)],
        0u64..=30,
        1u32..=3,
        1u32..=3,
        prop::option::of(1u32..=4),
    )
        .prop_map(
            |(
                failure_threshold,
                failure_rate,
                slow_rate,
                slow_millis,
                window,
                minimum_calls,
                timeout_secs,
                multiplier,
                extra,
                success_threshold,
                half_open_max_calls,
                window_failures,
            )| {
                // A count window of N calls cannot hold more than N failures.
                let window_failures = match window {
                    BreakerWindow::Calls(n) => window_failures.map(|count| count.min(n)),
                    BreakerWindow::Time(_) => window_failures,
                };
                let failure_threshold =
                    if failure_rate.is_none() && slow_rate.is_none() && window_failures.is_none() {
                        failure_threshold.max(1)
                    } else {
                        failure_threshold
                    };
                Setup {
                    failure_threshold,
                    window_failures,
                    failure_rate,
                    slow_rate,
                    slow_millis,
                    window,
                    minimum_calls,
                    timeout_secs,
                    multiplier,
                    max_timeout_secs: timeout_secs + extra,
                    success_threshold,
                    half_open_max_calls,
                }
            },
        )
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum ModelState {
    Closed,
    Open,
    HalfOpen,
}

/// The reference model: plain fields, no atomics, written from the documented rules.
struct Model {
    setup: Setup,
    state: ModelState,
    generation: u64,
    consecutive: u32,
    /// (end millis, failed, slow) of closed-state calls, for the rate rules.
    outcomes: VecDeque<(u64, bool, bool)>,
    open_until: u64,
    trips: u32,
    in_flight: u32,
    successes: u32,
}

#[derive(Clone, Copy, Debug)]
struct ModelPermit {
    generation: u64,
    state: ModelState,
    start: u64,
}

impl Model {
    fn new(setup: Setup) -> Self {
        Model {
            setup,
            state: ModelState::Closed,
            generation: 0,
            consecutive: 0,
            outcomes: VecDeque::new(),
            open_until: 0,
            trips: 0,
            in_flight: 0,
            successes: 0,
        }
    }

    fn uses_window(&self) -> bool {
        self.setup.window_failures.is_some()
            || self.setup.failure_rate.is_some()
            || self.setup.slow_rate.is_some()
    }

    fn enter(&mut self, state: ModelState, now: u64) {
        match state {
            ModelState::Open => {
                self.trips += 1;
                let grown = self.setup.timeout_secs as f64
                    * self.setup.multiplier.powi(self.trips as i32 - 1);
                let timeout = grown.min(self.setup.max_timeout_secs as f64);
                self.open_until = now + (timeout * 1000.0) as u64;
            }
            ModelState::HalfOpen => self.successes = 0,
            ModelState::Closed => {
                self.trips = 0;
                self.consecutive = 0;
                self.outcomes.clear();
            }
        }
        self.state = state;
        self.generation += 1;
        self.in_flight = 0;
    }

    fn start(&mut self, now: u64) -> Option<ModelPermit> {
        if self.state == ModelState::Open {
            if now < self.open_until {
                return None;
            }
            self.enter(ModelState::HalfOpen, now);
        }
        if self.state == ModelState::HalfOpen {
            if self.in_flight >= self.setup.half_open_max_calls {
                return None;
            }
            self.in_flight += 1;
        }
        Some(ModelPermit {
            generation: self.generation,
            state: self.state,
            start: now,
        })
    }

    fn window_counts(&self, now: u64) -> (u32, u32, u32) {
        let recent: Vec<&(u64, bool, bool)> = match self.setup.window {
            BreakerWindow::Calls(n) => self.outcomes.iter().rev().take(n as usize).collect(),
            BreakerWindow::Time(span) => {
                let bucket = span.as_millis() as u64 / 10;
                let current = now / bucket + 1;
                let oldest = current.saturating_sub(9);
                self.outcomes
                    .iter()
                    .filter(|(end, _, _)| end / bucket + 1 >= oldest)
                    .collect()
            }
        };
        let calls = recent.len() as u32;
        let failures = recent.iter().filter(|o| o.1).count() as u32;
        let slow = recent.iter().filter(|o| o.2).count() as u32;
        (calls, failures, slow)
    }

    fn finish(&mut self, permit: ModelPermit, failed: bool, now: u64) {
        if permit.generation != self.generation || permit.state != self.state {
            return;
        }
        match permit.state {
            ModelState::Closed => {
                let slow =
                    self.setup.slow_rate.is_some() && now - permit.start >= self.setup.slow_millis;
                if self.uses_window() {
                    self.outcomes.push_back((now, failed, slow));
                }
                if failed {
                    self.consecutive += 1;
                } else {
                    self.consecutive = 0;
                }
                if !(failed || slow) {
                    return;
                }
                if self.setup.failure_threshold > 0
                    && self.consecutive >= self.setup.failure_threshold
                {
                    self.enter(ModelState::Open, now);
                    return;
                }
                if !self.uses_window() {
                    return;
                }
                let (calls, failures, slow_calls) = self.window_counts(now);
                // The count rule does not wait for `minimum_calls`.
                if self
                    .setup
                    .window_failures
                    .is_some_and(|limit| failures >= limit)
                {
                    self.enter(ModelState::Open, now);
                    return;
                }
                if calls < self.setup.minimum_calls {
                    return;
                }
                let rate_fires = |limit: Option<f64>, count: u32| {
                    limit.is_some_and(|limit| f64::from(count) / f64::from(calls) >= limit)
                };
                if rate_fires(self.setup.failure_rate, failures)
                    || rate_fires(self.setup.slow_rate, slow_calls)
                {
                    self.enter(ModelState::Open, now);
                }
            }
            ModelState::HalfOpen => {
                self.in_flight -= 1;
                if failed {
                    self.enter(ModelState::Open, now);
                    return;
                }
                self.successes += 1;
                if self.successes >= self.setup.success_threshold {
                    self.enter(ModelState::Closed, now);
                }
            }
            ModelState::Open => {}
        }
    }

    fn cancel(&mut self, permit: ModelPermit) {
        if permit.state == ModelState::HalfOpen
            && permit.generation == self.generation
            && self.state == ModelState::HalfOpen
        {
            self.in_flight -= 1;
        }
    }
}

fn to_model(state: BreakerState) -> ModelState {
    match state {
        BreakerState::Closed => ModelState::Closed,
        BreakerState::Open => ModelState::Open,
        BreakerState::HalfOpen => ModelState::HalfOpen,
        other => panic!("the sequence never sets {other} by hand"),
    }
}

fn run(setup: Setup, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let (clock, hand) = Clock::manual();
    let mut config = BreakerConfig::default()
        .failure_threshold(setup.failure_threshold)
        .slow_call_duration(Duration::from_millis(setup.slow_millis))
        .window(setup.window)
        .minimum_calls(setup.minimum_calls)
        .timeout(Duration::from_secs(setup.timeout_secs))
        .timeout_multiplier(setup.multiplier)
        .max_timeout(Duration::from_secs(setup.max_timeout_secs))
        .success_threshold(setup.success_threshold)
        .half_open_max_calls(setup.half_open_max_calls)
        .clock(clock);
    // Either rule may be off: the fields, which hold the `Option`.
    config.window_failure_threshold = setup.window_failures;
    config.failure_rate_threshold = setup.failure_rate;
    config.slow_call_rate_threshold = setup.slow_rate;
    let breaker = CircuitBreaker::new("model", config).expect("generated configs are valid");
    let mut model = Model::new(setup);
    let mut now = 0u64;
    let mut in_flight: Vec<(Permit<'_>, ModelPermit)> = Vec::new();
    for (step, op) in ops.into_iter().enumerate() {
        match op {
            Op::Start => {
                let real = breaker.try_acquire();
                let expected = model.start(now);
                prop_assert_eq!(
                    real.is_ok(),
                    expected.is_some(),
                    "step {}: admission differs",
                    step
                );
                if let (Ok(permit), Some(model_permit)) = (real, expected) {
                    in_flight.push((permit, model_permit));
                }
            }
            Op::Finish { pick, failed } if !in_flight.is_empty() => {
                let (permit, model_permit) = in_flight.swap_remove(pick % in_flight.len());
                if failed {
                    permit.failure();
                } else {
                    permit.success();
                }
                model.finish(model_permit, failed, now);
            }
            Op::Cancel { pick } if !in_flight.is_empty() => {
                let (permit, model_permit) = in_flight.swap_remove(pick % in_flight.len());
                drop(permit);
                model.cancel(model_permit);
            }
            Op::Advance { millis } => {
                now += millis;
                hand.advance(Duration::from_millis(millis));
            }
            Op::Finish { .. } | Op::Cancel { .. } => {}
        }
        prop_assert_eq!(
            to_model(breaker.state()),
            model.state,
            "step {}: state differs",
            step
        );
        if model.state == ModelState::Closed {
            prop_assert_eq!(
                breaker.snapshot().failure_count,
                model.consecutive,
                "step {}: failure count differs",
                step
            );
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    #[test]
    fn breaker_matches_the_reference_model(setup in setup(), ops in prop::collection::vec(op(), 1..200)) {
        run(setup, ops)?;
    }
}
