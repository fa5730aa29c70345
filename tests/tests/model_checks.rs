//! The model checks of the lock-free protocols, run by the workspace's test command.
//!
//! The runtime's half-open admission (`breaker/`), the rate limiter's ring (`limit/rate.rs`),
//! the bulkhead's slot debt (`limit/bulkhead.rs`), single-flight (`cache/flight.rs`) and the
//! latency recorder's count of completed writes (`sla/recorder.rs`) take their atomics and locks from `src/sync.rs`, which
//! swaps in loom's under `--cfg reliable_loom`; each module's `loom_models` then explores the
//! interleavings of the real code. That needs the runtime built with the flag, so this test runs
//! a second cargo (as trybuild does for the UI tests), in its own target directory so that the
//! flag does not invalidate the main build:
//!
//! ```text
//! RUSTFLAGS="--cfg reliable_loom" CARGO_TARGET_DIR=target/loom \
//!     cargo test -p reliable-runtime --release --lib loom_models
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

/// The models there are (a model that stops running must not go unnoticed).
const MODELS: usize = 16;

#[test]
fn the_lock_free_protocols_pass_their_model_checks() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("loom");
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args([
            "test",
            "-p",
            "reliable-runtime",
            "--release",
            "--lib",
            "loom_models",
        ])
        .env("RUSTFLAGS", "--cfg reliable_loom")
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTDOCFLAGS")
        .output()
        .expect("cargo runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the model checks failed:\n{stdout}\n{stderr}"
    );
    let passed = stdout
        .lines()
        .filter_map(|line| line.strip_prefix("test result: ok. "))
        .filter_map(|rest| rest.split(' ').next()?.parse::<usize>().ok())
        .sum::<usize>();
    assert_eq!(passed, MODELS, "model checks run:\n{stdout}");
}
