use reliable_runtime::{rate_limited, Rejected};

#[rate_limited(per_second = 10, per_minute = 60)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
