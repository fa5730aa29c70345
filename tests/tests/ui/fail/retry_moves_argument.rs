use reliable_runtime::{with_backoff, Rejected};

fn consume(_: String) {}

#[with_backoff]
async fn fetch(symbol: String) -> Result<(), Rejected> {
    consume(symbol);
    Ok(())
}

fn main() {}
