use reliable_runtime::{rate_limited, Rejected};

#[rate_limited(per_second = 5_000_000)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
