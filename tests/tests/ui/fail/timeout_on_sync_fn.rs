use reliable_runtime::{timeout, Rejected};

#[timeout("250ms")]
fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
