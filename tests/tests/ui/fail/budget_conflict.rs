use reliable_runtime::{with_backoff, Rejected};

#[with_backoff(budget = false, budget_ratio = 0.2)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
