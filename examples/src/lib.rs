//! Examples live in `examples/`: `cargo run --example breaker_recovery`.
