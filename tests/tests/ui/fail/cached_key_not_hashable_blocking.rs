use reliable_runtime::cached;

// A blocking fn's key is reported once too, at the key.
#[cached(key = price)]
fn quote(price: f64) -> Result<f64, String> {
    Ok(price)
}

fn main() {}
