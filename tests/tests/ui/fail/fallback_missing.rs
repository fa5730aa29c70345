use reliable_runtime::graceful_degradation;

#[derive(Debug)]
pub struct ApiError;

#[graceful_degradation(name = "prices")]
fn price() -> Result<f64, ApiError> {
    Err(ApiError)
}

fn main() {
    let _ = price();
}
