use reliable_runtime::{circuit_breaker, Rejected};

fn is_server_error(status: &u16) -> bool {
    *status >= 500
}

#[circuit_breaker(failure_if = is_server_error)]
async fn fetch() -> Result<(), Rejected> {
    Ok(())
}

fn main() {}
