use reliable_runtime::with_backoff;

#[with_backoff]
async fn fetch() -> u32 {
    1
}

fn main() {}
