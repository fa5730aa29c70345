//! Reading the health of many sources: `get_system_health()` with 10,000 monitored sources and
//! 1,000 breakers, and the `/metrics` text with 1,000 sources, each beside a hand-written floor.
//!
//! `cargo bench -p reliable-benches --bench health`. The registries are global, so the groups
//! run in order: `metrics_text` registers 1,000 sources (and 100 breakers), then
//! `system_health` adds up to 10,000 (and 1,000).
//!
//! The floor is what a read cannot do without: copy each source's window of 100 calls out of
//! memory, count its failures and sum its latencies, and select its three percentiles. For
//! `/metrics` it then writes the same series as ours with `write!`.

use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion};
use reliable_runtime::breaker::{BreakerConfig, CircuitBreaker};
use reliable_runtime::get_system_health;
use reliable_runtime::health::prometheus_text;
use reliable_runtime::registry::{breaker_registry, sla_registry};
use reliable_runtime::sla::{SlaMonitor, SlaThresholds};
use std::fmt::Write;
use std::time::Duration;

const WINDOW: usize = 100;

/// A source's name, its group (one exchange per 10 sources) and its calls.
struct Source {
    name: String,
    group: String,
    calls: Vec<(u64, bool)>,
}

/// Latencies from 1 ms to about 100 ms and one failure in 20, from a fixed seed, so every run
/// measures the same windows.
fn sources(range: std::ops::Range<usize>) -> Vec<Source> {
    let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let all: Vec<Source> = (0..range.end)
        .map(|index| Source {
            name: format!("source_{index:05}"),
            group: format!("exchange_{:04}", index / 10),
            calls: (0..WINDOW)
                .map(|_| (1_000_000 + next() % 100_000_000, next() % 20 == 0))
                .collect(),
        })
        .collect();
    all.into_iter().skip(range.start).collect()
}

/// Registers `sources` (a full window each) and a breaker per 10 of them.
fn register(sources: &[Source]) -> Vec<std::sync::Arc<SlaMonitor>> {
    sources
        .iter()
        .map(|source| {
            let monitor = SlaMonitor::builder(source.name.as_str())
                .thresholds(SlaThresholds::cex())
                .group(source.group.as_str())
                .build()
                .unwrap();
            for &(latency, failed) in &source.calls {
                monitor.record_latency(Duration::from_nanos(latency), failed);
            }
            let monitor = sla_registry().register(monitor);
            if source.name.ends_with('0') {
                let breaker = CircuitBreaker::new(&source.group, BreakerConfig::default())
                    .unwrap()
                    .with_group(source.group.as_str());
                breaker_registry().register(breaker);
            }
            monitor
        })
        .collect()
}

/// What the floor computes of a window.
#[derive(Clone, Copy, Default)]
struct Figures {
    p50: u64,
    p95: u64,
    p99: u64,
    /// Computed as a health read computes it (`latency_mean`); `/metrics` no longer writes it.
    #[allow(dead_code)]
    mean: f64,
    success_rate: f64,
}

/// The floor's read of one window: copy, count, sum, select three ranks.
fn floor_figures(calls: &[(u64, bool)], scratch: &mut Vec<u64>) -> Figures {
    scratch.clear();
    let mut failed = 0u64;
    let mut sum = 0u64;
    for &(latency, failure) in calls {
        scratch.push(latency);
        failed += u64::from(failure);
        sum += latency;
    }
    let last = scratch.len() - 1;
    let rank = |q: f64| (q * last as f64).round() as usize;
    let (p99_rank, p95_rank, p50_rank) = (rank(0.99), rank(0.95), rank(0.50));
    let (below, p99, _) = scratch.select_nth_unstable(p99_rank);
    let p99 = *p99;
    let (below, p95, _) = below.select_nth_unstable(p95_rank);
    let p95 = *p95;
    let (_, p50, _) = below.select_nth_unstable(p50_rank);
    Figures {
        p50: *p50,
        p95,
        p99,
        mean: sum as f64 / calls.len() as f64,
        success_rate: (calls.len() as u64 - failed) as f64 / calls.len() as f64,
    }
}

fn floor_read(sources: &[Source], out: &mut Vec<Figures>, scratch: &mut Vec<u64>) {
    out.clear();
    out.extend(
        sources
            .iter()
            .map(|source| floor_figures(&source.calls, scratch)),
    );
}

/// The floor's `/metrics`: its read, then the series ours writes for sources and breakers.
fn floor_metrics(sources: &[Source], figures: &mut Vec<Figures>, scratch: &mut Vec<u64>) -> String {
    floor_read(sources, figures, scratch);
    let mut text = String::with_capacity(1 << 20);
    let breakers = sources.iter().filter(|source| source.name.ends_with('0'));
    for family in ["state", "not_permitted", "failure_rate", "trips"] {
        let _ = writeln!(
            text,
            "# HELP breaker_{family} help\n# TYPE breaker_{family} gauge"
        );
        for source in breakers.clone() {
            if family == "state" {
                for state in ["closed", "open", "half_open", "forced_open", "disabled"] {
                    let _ = writeln!(
                        text,
                        "breaker_state{{name=\"{}\",state=\"{state}\"}} {}",
                        source.group,
                        u8::from(state == "closed")
                    );
                }
            } else {
                let _ = writeln!(text, "breaker_{family}{{name=\"{}\"}} 0", source.group);
            }
        }
    }
    let _ = writeln!(text, "# HELP status help\n# TYPE status gauge");
    for (source, figures) in sources.iter().zip(figures.iter()) {
        for status in ["healthy", "degraded", "failed"] {
            let current = u8::from((figures.success_rate > 0.9) == (status == "healthy"));
            let _ = writeln!(
                text,
                "status{{source=\"{}\",status=\"{status}\"}} {current}",
                source.name
            );
        }
    }
    let _ = writeln!(text, "# HELP latency help\n# TYPE latency summary");
    for (source, figures) in sources.iter().zip(figures.iter()) {
        for (quantile, nanos) in [
            ("0.5", figures.p50),
            ("0.95", figures.p95),
            ("0.99", figures.p99),
        ] {
            let _ = writeln!(
                text,
                "latency{{source=\"{}\",quantile=\"{quantile}\"}} {}",
                source.name,
                nanos as f64 / 1e9
            );
        }
    }
    let _ = writeln!(text, "# HELP window_calls help\n# TYPE window_calls gauge");
    for source in sources {
        let _ = writeln!(text, "window_calls{{source=\"{}\"}} {WINDOW}", source.name);
    }
    let _ = writeln!(text, "# HELP success help\n# TYPE success gauge");
    for (source, figures) in sources.iter().zip(figures.iter()) {
        let _ = writeln!(
            text,
            "success{{source=\"{}\"}} {}",
            source.name, figures.success_rate
        );
    }
    let _ = writeln!(text, "# HELP calls help\n# TYPE calls counter");
    for (source, figures) in sources.iter().zip(figures.iter()) {
        let failed = ((1.0 - figures.success_rate) * WINDOW as f64) as u64;
        let _ = writeln!(
            text,
            "calls{{source=\"{}\",outcome=\"success\"}} {}",
            source.name,
            WINDOW as u64 - failed
        );
        let _ = writeln!(
            text,
            "calls{{source=\"{}\",outcome=\"failure\"}} {failed}",
            source.name
        );
    }
    text
}

/// Records one more call into every monitor, so no window is as the last read left it.
fn change_every_window(monitors: &[std::sync::Arc<SlaMonitor>]) {
    for (index, monitor) in monitors.iter().enumerate() {
        monitor.record_latency(Duration::from_micros(1_000 + index as u64 % 977), false);
    }
}

fn metrics_text(c: &mut Criterion) {
    let sources = sources(0..1_000);
    let monitors = register(&sources);
    let mut group = c.benchmark_group("metrics_text");
    group.sample_size(20);
    let (mut figures, mut scratch) = (Vec::new(), Vec::new());
    group.bench_function("floor", |b| {
        b.iter(|| black_box(floor_metrics(&sources, &mut figures, &mut scratch)))
    });
    group.bench_function("reliable_unchanged", |b| {
        b.iter(|| black_box(prometheus_text(&get_system_health())))
    });
    group.bench_function("reliable_every_window_changed", |b| {
        b.iter_batched(
            || change_every_window(&monitors),
            |()| black_box(prometheus_text(&get_system_health())),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

fn system_health(c: &mut Criterion) {
    let mut sources_all = sources(0..1_000);
    let added = sources(1_000..10_000);
    let mut monitors: Vec<_> = sla_registry().all();
    monitors.extend(register(&added));
    sources_all.extend(added);
    assert_eq!(sla_registry().all().len(), 10_000);
    assert_eq!(breaker_registry().all().len(), 1_000);
    let mut group = c.benchmark_group("system_health");
    group.sample_size(20);
    let (mut figures, mut scratch) = (Vec::new(), Vec::new());
    group.bench_function("floor", |b| {
        b.iter(|| {
            floor_read(&sources_all, &mut figures, &mut scratch);
            black_box(&figures);
        })
    });
    // The floor's copy of the windows (16 MB) is not part of ours: gone, it leaves the cache
    // to the registries, as in a process that has only them.
    drop(sources_all);
    group.bench_function("reliable_unchanged", |b| {
        b.iter(|| black_box(get_system_health()))
    });
    group.bench_function("reliable_every_window_changed", |b| {
        b.iter_batched(
            || change_every_window(&monitors),
            |()| black_box(get_system_health()),
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group!(benches, metrics_text, system_health);
criterion_main!(benches);
