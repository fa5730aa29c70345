use reliable_runtime::cached;

#[cached(key = symbol.to_owned())]
async fn book(symbol: &str) -> usize {
    symbol.len()
}

fn main() {}
