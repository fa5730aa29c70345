use reliable_runtime::{reliable_cex_call, timeout, Rejected};

#[timeout("2s", max = "1s", multiplier = 0.5)]
async fn shrinking() -> Result<(), Rejected> {
    Ok(())
}

#[timeout("2s", deadline = "500ms")]
async fn short_deadline() -> Result<(), Rejected> {
    Ok(())
}

#[reliable_cex_call(timeout = "2s", timeout_cap = "1s")]
async fn capped_below() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
