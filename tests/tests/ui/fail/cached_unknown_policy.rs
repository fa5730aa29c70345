use reliable_runtime::cached;

#[cached(policy = "fifo")]
async fn book(symbol: &str) -> Result<usize, String> {
    Ok(symbol.len())
}

fn main() {}
