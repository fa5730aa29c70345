//! Benchmarks live in `benches/reliability.rs`: `cargo bench -p reliable-benches`.
