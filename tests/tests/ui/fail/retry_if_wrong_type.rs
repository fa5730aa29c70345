use reliable_runtime::{with_backoff, Rejected};

fn is_transient(status: &u16) -> bool {
    *status >= 500
}

#[with_backoff(retry_if = is_transient)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
