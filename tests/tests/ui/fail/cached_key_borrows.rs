use reliable_runtime::cached;

#[cached(key = symbol)]
async fn quote(symbol: &str) -> Result<usize, String> {
    Ok(symbol.len())
}

fn main() {}
