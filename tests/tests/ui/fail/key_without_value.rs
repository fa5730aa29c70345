use reliable_runtime::{monitored, Rejected};

#[monitored(name)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
