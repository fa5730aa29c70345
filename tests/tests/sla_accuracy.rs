//! SLA monitor accuracy: percentiles over the window match the exact values on random data,
//! recorded from several threads into separate shards.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use reliable_runtime::clock::Clock;
use reliable_runtime::sla::{SlaMonitor, SlaStatus, SlaThresholds, SlaWindow};
use std::sync::Arc;
use std::time::Duration;

/// The exact q-quantile by linear interpolation between closest ranks, written independently of
/// the runtime's implementation.
fn exact_quantile(values: &mut [f64], q: f64) -> f64 {
    values.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let position = q * (values.len() - 1) as f64;
    let below = values[position.floor() as usize];
    let above = values[position.ceil() as usize];
    below + (above - below) * position.fract()
}

fn assert_close(actual: f64, expected: f64, what: &str) {
    let relative = ((actual - expected) / expected).abs();
    assert!(
        relative <= 0.01,
        "{what}: {actual} vs exact {expected} ({:.3}% off)",
        relative * 100.0
    );
}

#[test]
fn percentiles_match_the_exact_window_on_random_data() {
    let (clock, hand) = Clock::manual();
    let monitor = Arc::new(
        SlaMonitor::builder("accuracy")
            .window(SlaWindow::Calls(1000))
            .clock(clock)
            .build()
            .unwrap(),
    );
    let mut rng = StdRng::seed_from_u64(7);
    let mut all: Vec<(u64, f64, bool)> = Vec::new();
    // 5000 calls, heavy-tailed latencies, recorded alternately from two threads.
    for chunk in 0..10 {
        let batch: Vec<(u64, f64, bool)> = (0..500)
            .map(|i| {
                let end = (chunk * 500 + i) as u64 + 1;
                let latency = 0.001 * (1.0 / (1.0 - rng.random::<f64>() * 0.999)).powf(1.5);
                (end, latency, rng.random_bool(0.03))
            })
            .collect();
        all.extend(&batch);
        let monitor = Arc::clone(&monitor);
        std::thread::spawn(move || {
            for (end, latency, failed) in batch {
                monitor.record_at(
                    reliable_runtime::clock::Timestamp::from_nanos(end),
                    Duration::from_secs_f64(latency),
                    failed,
                );
            }
        })
        .join()
        .unwrap();
    }
    hand.set(Duration::from_nanos(6000));
    let metrics = monitor.metrics();
    let window = &all[all.len() - 1000..];
    let mut latencies: Vec<f64> = window.iter().map(|(_, latency, _)| *latency).collect();
    assert_eq!(metrics.window_calls, 1000);
    assert_eq!(metrics.total_calls, 5000);
    assert_close(
        metrics.latency_p50,
        exact_quantile(&mut latencies, 0.50),
        "p50",
    );
    assert_close(
        metrics.latency_p95,
        exact_quantile(&mut latencies, 0.95),
        "p95",
    );
    assert_close(
        metrics.latency_p99,
        exact_quantile(&mut latencies, 0.99),
        "p99",
    );
    let failures = window.iter().filter(|(_, _, failed)| *failed).count();
    assert!((metrics.success_rate - (1000 - failures) as f64 / 1000.0).abs() < 1e-12);
}

#[test]
fn time_window_percentiles_cover_only_recent_calls() {
    let (clock, hand) = Clock::manual();
    let monitor = SlaMonitor::builder("accuracy_time")
        .window(SlaWindow::Time(Duration::from_secs(10)))
        .clock(clock)
        .build()
        .unwrap();
    for _ in 0..50 {
        monitor.record_at(hand.now(), Duration::from_secs(5), true);
    }
    hand.advance(Duration::from_secs(11));
    let mut rng = StdRng::seed_from_u64(11);
    let mut latencies: Vec<f64> = (0..200).map(|_| rng.random_range(0.010..0.200)).collect();
    for latency in &latencies {
        monitor.record_at(hand.now(), Duration::from_secs_f64(*latency), false);
    }
    let metrics = monitor.metrics();
    assert_eq!(metrics.window_calls, 200);
    assert_eq!(metrics.success_rate, 1.0);
    assert_close(
        metrics.latency_p95,
        exact_quantile(&mut latencies, 0.95),
        "p95",
    );
}

fn status_after(thresholds: SlaThresholds, calls: &[(u64, bool)]) -> SlaStatus {
    let monitor = SlaMonitor::new("status_rules", thresholds).unwrap();
    for (millis, failed) in calls {
        monitor.record_latency(Duration::from_millis(*millis), *failed);
    }
    monitor.status()
}

#[test]
fn status_rules() {
    let cex = SlaThresholds::cex(); // p95 1 s, p99 2 s, 95%, 3 failures, judged from 10 calls
    let fast_ok = vec![(50, false); 20];
    assert_eq!(status_after(cex, &fast_ok), SlaStatus::Healthy);

    // Three failures in a row: FAILED at once, whatever the window says.
    let mut three_failures = fast_ok.clone();
    three_failures.extend([(50, true); 3]);
    assert_eq!(status_after(cex, &three_failures), SlaStatus::Failed);

    // 2 failures in 20 calls (90% < 95%) but not in a row: DEGRADED.
    let mut some_failures = fast_ok.clone();
    some_failures[3].1 = true;
    some_failures[9].1 = true;
    assert_eq!(status_after(cex, &some_failures), SlaStatus::Degraded);

    // Far below target (40% < 47.5%), failures interleaved: FAILED.
    let interleaved: Vec<(u64, bool)> = (0..20).map(|i| (50, i % 5 < 3)).collect();
    assert_eq!(status_after(cex, &interleaved), SlaStatus::Failed);

    // Slow tail: p99 above 2 s with all calls succeeding: DEGRADED.
    let mut slow_tail = vec![(50, false); 95];
    slow_tail.extend([(2_500, false); 5]);
    assert_eq!(status_after(cex, &slow_tail), SlaStatus::Degraded);

    // Fewer calls than min_calls: rates are not judged yet.
    assert_eq!(
        status_after(cex, &[(50, true), (50, false)]),
        SlaStatus::Healthy
    );
}
