use reliable_runtime::graceful_degradation;

#[graceful_degradation(fallback = 0.0)]
fn price() -> f64 {
    1.0
}

fn main() {
    let _ = price();
}
