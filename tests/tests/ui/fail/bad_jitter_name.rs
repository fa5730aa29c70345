use reliable_runtime::{with_backoff, Rejected};

#[with_backoff(jitter = "fuzzy")]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
