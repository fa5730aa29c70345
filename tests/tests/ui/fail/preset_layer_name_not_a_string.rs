use reliable_runtime::{reliable_cex_call, Rejected};

#[reliable_cex_call(key = symbol.to_owned(), breaker = 5)]
async fn ticker(symbol: &str) -> Result<f64, Rejected> {
    Ok(symbol.len() as f64)
}

fn main() {}
