//! `#[derive(Classify)]` on generic, tuple, named and unit variants, and with a renamed crate.
use reliable_runtime::classify::{Classify, ErrorClass};
use std::time::Duration;

#[derive(Debug, Classify)]
enum Wrapped<E: Classify> {
    #[classify(delegate)]
    Inner(E),
    #[classify(delegate)]
    Named { source: std::io::Error },
    #[classify(rate_limited, retry_after = wait)]
    SlowDown { code: u16, wait: Duration },
    #[classify(rate_limited)]
    Limited,
    #[classify(unknown)]
    Other(String, u32),
}

mod renamed {
    pub use reliable_runtime as runtime;
}

#[derive(Classify)]
#[classify(crate = renamed::runtime)]
enum Empty {}

fn main() {
    let inner: Wrapped<ErrorClass> = Wrapped::Inner(ErrorClass::Permanent);
    assert_eq!(inner.class(), ErrorClass::Permanent);
    let wait = Duration::from_secs(1);
    let limited: Wrapped<ErrorClass> = Wrapped::SlowDown { code: 429, wait };
    assert_eq!(limited.class().retry_after(), Some(wait));
    let _ = |empty: Empty| empty.class();
}
