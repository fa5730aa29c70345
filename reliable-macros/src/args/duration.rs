//! Durations written in attributes, checked at compile time.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

/// A duration in nanoseconds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Nanos(pub(crate) u64);

impl Nanos {
    pub(crate) fn from_secs_f64(secs: f64) -> Result<Nanos, String> {
        if !secs.is_finite() || secs < 0.0 {
            return Err("it must be a finite, non-negative number".to_owned());
        }
        let nanos = secs * 1e9;
        if nanos >= u64::MAX as f64 {
            return Err("it is too large".to_owned());
        }
        Ok(Nanos(nanos.round() as u64))
    }
}

impl ToTokens for Nanos {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        let nanos = self.0;
        tokens.extend(quote!(#nanos));
    }
}

/// Parses `"250ms"`, `"1.5s"`, `"2m"`, `"1h"`, `"100us"`, `"10ns"`.
pub(crate) fn parse(text: &str) -> Result<Nanos, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '_'))
        .ok_or_else(|| format!("`{text}` has no unit"))?;
    let (number, unit) = text.split_at(split);
    let number = number.replace('_', "");
    if number.is_empty() {
        return Err(format!("`{text}` has no number"));
    }
    let value: f64 = number
        .parse()
        .map_err(|_| format!("`{number}` is not a number"))?;
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" | "secs" => 1.0,
        "m" | "min" | "mins" => 60.0,
        "h" | "hr" | "hrs" => 3600.0,
        other => return Err(format!("unknown unit `{other}`")),
    };
    Nanos::from_secs_f64(value * scale)
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
