use reliable_runtime::{with_backoff, Rejected};

#[with_backoff(max_attempts = 0)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
