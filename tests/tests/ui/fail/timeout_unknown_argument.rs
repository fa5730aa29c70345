use reliable_runtime::{timeout, Rejected};

#[timeout("2s", label = "x")]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

#[timeout("2s", name = 5)]
async fn fetch_named() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
