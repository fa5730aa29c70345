// A renamed runtime (`crate = path`): its attributes written through the new name still join
// one pipeline.
use reliable_runtime as my_alias;

#[derive(Debug)]
pub struct ApiError;

impl From<my_alias::Rejected> for ApiError {
    fn from(_: my_alias::Rejected) -> Self {
        ApiError
    }
}

#[my_alias::monitored(crate = my_alias)]
#[my_alias::circuit_breaker(name = "ui_renamed", failure_threshold = 3)]
#[my_alias::timeout("2s")]
async fn fetch() -> Result<u64, ApiError> {
    Ok(1)
}

fn main() {
    let _ = fetch();
}
