//! Stress: two threads race for half-open probe slots; in flight never exceeds the cap.

use reliable_runtime::breaker::{BreakerConfig, BreakerState, CircuitBreaker};
use reliable_runtime::clock::Clock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Barrier};
use std::time::Duration;

#[test]
fn half_open_never_admits_more_than_the_cap() {
    const CAP: u32 = 3;
    let (clock, hand) = Clock::manual();
    let breaker = Arc::new(
        CircuitBreaker::new(
            "stress_half_open",
            BreakerConfig::cex()
                .failure_threshold(1)
                .half_open_max_calls(CAP)
                // Probes succeed, but never enough to close: the breaker stays half-open.
                .success_threshold(u32::MAX)
                .clock(clock),
        )
        .unwrap(),
    );
    breaker.try_acquire().unwrap().failure();
    hand.advance(Duration::from_secs(30));

    let in_flight = Arc::new(AtomicUsize::new(0));
    let max_seen = Arc::new(AtomicUsize::new(0));
    let admitted = Arc::new(AtomicUsize::new(0));
    let start = Arc::new(Barrier::new(2));
    let threads: Vec<_> = (0..2)
        .map(|thread| {
            let (breaker, in_flight, max_seen, admitted, start) = (
                Arc::clone(&breaker),
                Arc::clone(&in_flight),
                Arc::clone(&max_seen),
                Arc::clone(&admitted),
                Arc::clone(&start),
            );
            std::thread::spawn(move || {
                start.wait();
                let mut held = Vec::new();
                for i in 0..200_000usize {
                    if let Ok(permit) = breaker.try_acquire() {
                        let now = in_flight.fetch_add(1, Ordering::SeqCst) + 1;
                        max_seen.fetch_max(now, Ordering::SeqCst);
                        admitted.fetch_add(1, Ordering::Relaxed);
                        held.push(permit);
                    }
                    // Each thread holds up to two probes, releasing them in varied ways.
                    if held.len() == 2 || (i + thread) % 3 == 0 {
                        if let Some(permit) = held.pop() {
                            in_flight.fetch_sub(1, Ordering::SeqCst);
                            if i % 2 == 0 {
                                permit.success();
                            } else {
                                drop(permit); // cancelled
                            }
                        }
                    }
                }
                for permit in held {
                    in_flight.fetch_sub(1, Ordering::SeqCst);
                    permit.success();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(breaker.state(), BreakerState::HalfOpen);
    assert!(
        max_seen.load(Ordering::SeqCst) <= CAP as usize,
        "saw {} probes in flight",
        max_seen.load(Ordering::SeqCst)
    );
    assert!(
        admitted.load(Ordering::Relaxed) > 1000,
        "the threads did contend for slots"
    );
    // Every slot came back: the cap is available again.
    let probes: Vec<_> = (0..CAP)
        .map(|_| breaker.try_acquire().expect("slot freed"))
        .collect();
    assert!(breaker.try_acquire().is_err());
    drop(probes);
}

#[test]
fn closed_breaker_counts_concurrent_failures_exactly_once_per_trip() {
    let breaker = Arc::new(
        CircuitBreaker::new("stress_trip", BreakerConfig::cex().failure_threshold(1000)).unwrap(),
    );
    let mut events = reliable_runtime::event::subscribe();
    let threads: Vec<_> = (0..2)
        .map(|_| {
            let breaker = Arc::clone(&breaker);
            std::thread::spawn(move || {
                for _ in 0..10_000 {
                    if let Ok(permit) = breaker.try_acquire() {
                        permit.failure();
                    }
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    assert_eq!(breaker.state(), BreakerState::Open);
    let mut opened = 0;
    while let Ok(event) = events.try_recv() {
        if let reliable_runtime::event::Event::BreakerStateChanged(change) = event {
            if change.breaker == "stress_trip" && change.to == BreakerState::Open {
                opened += 1;
            }
        }
    }
    assert_eq!(
        opened, 1,
        "two racing failures must not open the breaker twice"
    );
}
