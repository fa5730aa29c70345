use reliable_runtime::{timeout, Rejected};

#[timeout]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
