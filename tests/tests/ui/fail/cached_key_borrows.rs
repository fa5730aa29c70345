use reliable_runtime::cached;

#[cached(key = symbol.trim())]
async fn quote(symbol: &str) -> Result<usize, String> {
    Ok(symbol.len())
}

fn main() {}
