use reliable_runtime::{rate_limited, Rejected};

#[rate_limited(per_second = 5, burst = 10)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
