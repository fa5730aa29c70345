use reliable_runtime::monitored;

// `p99` written before `p95`: still one error, at `p99`.
#[monitored(p99 = "500ms", p95 = "1s")]
fn parse(raw: &str) -> usize {
    raw.len()
}

fn main() {}
