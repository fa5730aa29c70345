use reliable_runtime::monitored;

#[monitored]
struct Orderbook;

fn main() {}
