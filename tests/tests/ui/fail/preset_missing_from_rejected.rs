use reliable_runtime::reliable_cex_call;

// A preset caches and breaks: the error type must hold a refusal, reported once.
#[reliable_cex_call(cache_ttl = 5, key = symbol)]
async fn price(symbol: &str) -> Result<f64, String> {
    let _ = symbol;
    Ok(1.0)
}

fn main() {}
