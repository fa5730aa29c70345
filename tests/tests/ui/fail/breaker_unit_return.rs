use reliable_runtime::circuit_breaker;

#[circuit_breaker]
async fn fetch() {}

fn main() {}
