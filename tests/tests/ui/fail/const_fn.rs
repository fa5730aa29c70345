use reliable_runtime::monitored;

#[monitored]
const fn fetch() -> u32 {
    1
}

fn main() {}
