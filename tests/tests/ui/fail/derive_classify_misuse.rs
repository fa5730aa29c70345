use reliable_runtime::classify::Classify;
use std::time::Duration;

#[derive(Classify)]
enum Misspelt {
    #[classify(transiant)]
    Reset,
}

#[derive(Classify)]
enum NoSuchField {
    #[classify(status = code)]
    Http { status: u16 },
    #[classify(rate_limited, retry_after = 1)]
    SlowDown(Option<Duration>),
}

#[derive(Classify)]
enum TwoClasses {
    #[classify(transient, permanent)]
    Reset,
    #[classify(delegate)]
    Both(std::io::Error, u16),
    #[classify(permanent, retry_after = 0)]
    Hint(Duration),
}

#[derive(Classify)]
struct NotAnEnum {
    status: u16,
}

#[derive(Classify)]
enum WrongFieldType {
    #[classify(status = 0)]
    Http(String),
}

fn main() {}
