use reliable_runtime::{rate_limited, Rejected};

#[rate_limited(burst = 5)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
