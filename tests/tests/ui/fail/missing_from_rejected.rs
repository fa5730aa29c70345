use reliable_runtime::circuit_breaker;

#[circuit_breaker]
async fn fetch() -> Result<u32, String> {
    Ok(1)
}

fn main() {}
