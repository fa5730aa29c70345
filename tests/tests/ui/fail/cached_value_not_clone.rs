use reliable_runtime::cached;

pub struct OrderBook;

#[cached(key = symbol.to_owned())]
async fn book(symbol: &str) -> Result<OrderBook, String> {
    let _ = symbol;
    Ok(OrderBook)
}

fn main() {}
