use reliable_runtime::{monitored, with_backoff, Rejected};

fn is_transient(status: &u16) -> bool {
    *status >= 500
}

// `#[monitored]` expands first and takes `#[with_backoff]` with it: the mistyped `retry_if` is
// still reported at `retry_if`, not at `#[monitored]`.
#[monitored]
#[with_backoff(retry_if = is_transient)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
