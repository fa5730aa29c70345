//! An attribute whose Cargo feature is off is one error that names the feature, at the
//! attribute (not rustc's notes on each gated item its expansion would name).
//!
//! `tests/feature-off` depends on the runtime with no default feature and uses `#[cached]`,
//! `#[with_backoff]`, `#[rate_limited]` and `#[bulkhead]` under `--cfg reliable_feature_off`.
//! Built alone (so the workspace's features are not unified into it), in its own target
//! directory:
//!
//! ```text
//! RUSTFLAGS="--cfg reliable_feature_off" CARGO_TARGET_DIR=target/feature-off \
//!     cargo check -p reliable-feature-off
//! ```

use std::path::{Path, PathBuf};
use std::process::Command;

#[test]
fn each_attribute_of_a_feature_that_is_off_is_one_error_naming_it() {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from)
        .join("feature-off");
    let output = Command::new(env!("CARGO"))
        .current_dir(workspace)
        .args([
            "check",
            "-p",
            "reliable-feature-off",
            "--message-format=short",
        ])
        .env("RUSTFLAGS", "--cfg reliable_feature_off")
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RUSTDOCFLAGS")
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "it compiled:\n{stderr}");
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|line| line.contains(": error"))
        .collect();
    let expected = [
        ("src/lib.rs:9:", "cached", "cache"),
        ("src/lib.rs:15:", "with_backoff", "retry"),
        ("src/lib.rs:20:", "rate_limited", "limit"),
        ("src/lib.rs:25:", "bulkhead", "limit"),
    ];
    assert_eq!(errors.len(), expected.len(), "errors:\n{stderr}");
    for (line, attribute, feature) in expected {
        let message = format!(
            "`#[{attribute}]` needs the `{feature}` feature of `reliable-runtime`, which is off"
        );
        assert!(
            errors
                .iter()
                .any(|error| error.contains(line) && error.contains(&message)),
            "no `{message}` at {line}:\n{stderr}"
        );
    }
}
