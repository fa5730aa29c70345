use reliable_runtime::{circuit_breaker, Rejected};

#[circuit_breaker(timout = 30)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
