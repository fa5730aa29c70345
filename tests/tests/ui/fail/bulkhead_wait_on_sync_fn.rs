use reliable_runtime::{bulkhead, Rejected};

#[bulkhead(max_concurrent = 4, max_wait = "100ms")]
fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
