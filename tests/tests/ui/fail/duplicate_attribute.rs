use reliable_runtime::{monitored, Rejected};

#[monitored(name = "a")]
#[monitored(name = "b")]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
