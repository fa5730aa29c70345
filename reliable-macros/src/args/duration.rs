//! Durations written in attributes, checked at compile time.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

/// A duration in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nanos(pub(crate) u64);

impl Nanos {
    pub(crate) fn from_secs_f64(secs: f64) -> Result<Nanos, String> {
        reliable_rules::duration::from_secs_f64(secs)
            .map(|duration| Nanos(duration.as_nanos() as u64))
    }
}

impl ToTokens for Nanos {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let nanos = self.0;
        tokens.extend(quote!(#nanos));
    }
}

/// Parses `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"100us"`, `"10ns"`: the grammar configuration
/// files use too (`reliable_rules::duration`).
pub(crate) fn parse(text: &str) -> Result<Nanos, String> {
    let duration = reliable_rules::duration::parse(text)?;
    // `parse` refuses what does not fit in u64 nanoseconds.
    Ok(Nanos(duration.as_nanos() as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_units() {
        assert_eq!(parse("250ms"), Ok(Nanos(250_000_000)));
        assert_eq!(parse("5s"), Ok(Nanos(5_000_000_000)));
        assert_eq!(parse("2m"), Ok(Nanos(120_000_000_000)));
        assert_eq!(parse("1.5s"), Ok(Nanos(1_500_000_000)));
        assert_eq!(parse("1h"), Ok(Nanos(3_600_000_000_000)));
        assert_eq!(parse("100us"), Ok(Nanos(100_000)));
        assert!(parse("5").is_err());
        assert!(parse("5 parsecs").is_err());
        assert!(parse("ms").is_err());
    }
}
