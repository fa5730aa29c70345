use reliable_runtime::{bulkhead, Rejected};

#[bulkhead(max_wait = "100ms")]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
