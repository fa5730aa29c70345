use reliable_runtime::circuit_breaker;

#[circuit_breaker]
async fn fetch() -> u32 {
    1
}

fn main() {}
