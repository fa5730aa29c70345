use reliable_runtime::cached;

#[cached(key = sym.to_owned())]
async fn book(symbol: &str) -> Result<usize, String> {
    Ok(symbol.len())
}

fn main() {}
