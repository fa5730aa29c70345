use reliable_runtime::{monitored, Rejected};

#[monitored(window = 1.5)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
