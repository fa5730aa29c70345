use reliable_runtime::cached;

#[cached(key = Some(symbol))]
async fn book(symbol: String) -> Result<usize, String> {
    Ok(symbol.len())
}

fn main() {}
