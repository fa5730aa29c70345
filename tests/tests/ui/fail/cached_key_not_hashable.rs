use reliable_runtime::cached;

#[cached(key = price)]
async fn quote(price: f64) -> Result<f64, String> {
    Ok(price)
}

fn main() {}
