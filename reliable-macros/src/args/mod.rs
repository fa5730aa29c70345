//! Argument parsing shared by every attribute: `key = value, ...`, with precise spans,
//! did-you-mean for unknown keys, and typed value readers (integers, rates, durations, paths).

pub(crate) mod backoff;
pub(crate) mod breaker;
pub(crate) mod bulkhead;
pub(crate) mod cached;
pub(crate) mod degradation;
mod duration;
pub(crate) mod layer;
pub(crate) mod monitored;
pub(crate) mod preset;
pub(crate) mod rate_limited;
pub(crate) mod timeout;

pub(crate) use duration::Nanos;
pub(crate) use layer::{Descriptor, Input, LayerArgs, Site};

use crate::errors::Errors;
use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::{Parse, ParseStream};
use syn::punctuated::Punctuated;
use syn::{Expr, ExprLit, Ident, Lit, Token};

/// `window = 100` (the last 100 calls) or `window = "60s"` (the calls of the last minute).
#[derive(Clone, Copy)]
pub(crate) enum WindowArg {
    Calls(u32),
    Time(Nanos),
}

impl WindowArg {
    /// `<runtime>::<window_type>::Calls(n)` or `::Time(duration)`.
    pub(crate) fn tokens(
        self,
        site: &Site<'_>,
        window_type: proc_macro2::TokenStream,
    ) -> proc_macro2::TokenStream {
        let runtime = site.runtime;
        match self {
            WindowArg::Calls(calls) => quote::quote!(#runtime::#window_type::Calls(#calls)),
            WindowArg::Time(span) => {
                let span = site.duration(span);
                quote::quote!(#runtime::#window_type::Time(#span))
            }
        }
    }
}

/// `check`'s refusal as an error at `arg`'s value: "`key` <reason>, like `key = example`".
pub(crate) fn ruled(arg: &RawArg, check: reliable_rules::Check, example: &str) -> syn::Result<()> {
    let key = &arg.key;
    check.map_err(|reason| {
        syn::Error::new_spanned(
            &arg.value,
            format!("`{key}` {reason}, like `{key} = {example}`"),
        )
    })
}

/// One `key = value`.
pub(crate) struct RawArg {
    pub(crate) key: Ident,
    pub(crate) value: Expr,
}

impl Parse for RawArg {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        // `parse_any` so that `crate = path` parses although `crate` is a keyword.
        let key = Ident::parse_any(input)?;
        if !input.peek(Token![=]) {
            return Err(syn::Error::new(
                key.span(),
                format!("expected `{key} = value`"),
            ));
        }
        input.parse::<Token![=]>()?;
        let value = input.parse()?;
        Ok(RawArg { key, value })
    }
}

/// Every `key = value` of one attribute.
pub(crate) struct RawArgs(pub(crate) Vec<RawArg>);

impl Parse for RawArgs {
    fn parse(input: ParseStream<'_>) -> syn::Result<Self> {
        let args = Punctuated::<RawArg, Token![,]>::parse_terminated(input)?;
        Ok(RawArgs(args.into_iter().collect()))
    }
}

/// Checks keys against the attribute's known keys (unknown: did-you-mean; repeated: error) and
/// hands back the valid ones.
pub(crate) fn known_args(
    raw: RawArgs,
    attribute: &str,
    known: &[&str],
    errors: &mut Errors,
) -> Vec<RawArg> {
    let mut seen: Vec<String> = Vec::new();
    let mut valid = Vec::new();
    for arg in raw.0 {
        let key = arg.key.unraw().to_string();
        if !known.contains(&key.as_str()) {
            let expected = known
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ");
            let message = match did_you_mean(&key, known) {
                Some(suggestion) => format!(
                    "unknown argument `{key}` for `#[{attribute}]`; did you mean `{suggestion}`?\nexpected one of: {expected}"
                ),
                None => format!(
                    "unknown argument `{key}` for `#[{attribute}]`\nexpected one of: {expected}"
                ),
            };
            errors.push(syn::Error::new(arg.key.span(), message));
            continue;
        }
        if seen.contains(&key) {
            errors.push(syn::Error::new(
                arg.key.span(),
                format!("duplicate argument `{key}`: give it once"),
            ));
            continue;
        }
        seen.push(key);
        valid.push(arg);
    }
    valid
}

/// The known key closest to `key`, if close enough to be a typo.
fn did_you_mean<'a>(key: &str, known: &[&'a str]) -> Option<&'a str> {
    known
        .iter()
        .map(|candidate| (edit_distance(key, candidate), *candidate))
        .filter(|(distance, candidate)| {
            *distance <= 2.max(candidate.len() / 4)
                || candidate.contains(key)
                || key.contains(candidate)
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, candidate)| candidate)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut current = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current.push(substitution.min(previous[j + 1] + 1).min(current[j] + 1));
        }
        previous = current;
    }
    previous[b.len()]
}

/// The literal of `value`, if it is one.
fn literal(value: &Expr) -> Option<&Lit> {
    match value {
        Expr::Lit(ExprLit { lit, .. }) => Some(lit),
        Expr::Group(group) => literal(&group.expr),
        _ => None,
    }
}

fn lit_name(value: &Expr) -> &'static str {
    match literal(value) {
        Some(Lit::Str(_)) => "a string",
        Some(Lit::Int(_)) => "an integer",
        Some(Lit::Float(_)) => "a float",
        Some(Lit::Bool(_)) => "a bool",
        Some(_) => "a literal of another type",
        None => match value {
            Expr::Unary(_) => "a negative number",
            Expr::Path(_) => "a path",
            _ => "an expression",
        },
    }
}

/// A non-negative integer that fits in `u32`, and at least `min`.
pub(crate) fn read_u32(arg: &RawArg, min: u32, example: &str) -> syn::Result<u32> {
    let key = &arg.key;
    match literal(&arg.value) {
        Some(Lit::Int(int)) => {
            let value: u64 = int.base10_parse().map_err(|_| {
                syn::Error::new_spanned(&arg.value, format!("`{key}` must be a whole number"))
            })?;
            let value = u32::try_from(value).map_err(|_| {
                syn::Error::new_spanned(
                    &arg.value,
                    format!("`{key}` is too large (at most {})", u32::MAX),
                )
            })?;
            if value < min {
                return Err(syn::Error::new_spanned(
                    &arg.value,
                    format!("`{key}` must be at least {min}, like `{key} = {example}`"),
                ));
            }
            Ok(value)
        }
        _ => Err(syn::Error::new_spanned(
            &arg.value,
            format!(
                "`{key}` expects a whole number, like `{key} = {example}`, found {}",
                lit_name(&arg.value)
            ),
        )),
    }
}

/// A number (integer or float literal).
pub(crate) fn read_f64(arg: &RawArg, example: &str) -> syn::Result<f64> {
    let key = &arg.key;
    let value = match literal(&arg.value) {
        Some(Lit::Int(int)) => int.base10_parse::<f64>(),
        Some(Lit::Float(float)) => float.base10_parse::<f64>(),
        _ => {
            return Err(syn::Error::new_spanned(
                &arg.value,
                format!(
                    "`{key}` expects a number, like `{key} = {example}`, found {}",
                    lit_name(&arg.value)
                ),
            ))
        }
    };
    value.map_err(|_| syn::Error::new_spanned(&arg.value, format!("`{key}` is not a valid number")))
}

/// A name from a fixed list (`jitter = "full"`), checked by `check`.
pub(crate) fn read_name(
    arg: &RawArg,
    check: fn(&str) -> reliable_rules::Check,
    example: &str,
) -> syn::Result<syn::LitStr> {
    let name = read_str(arg, example)?;
    let key = &arg.key;
    check(&name.value()).map_err(|reason| {
        syn::Error::new_spanned(
            &name,
            format!(
                "unknown {key} `{}`; `{key}` {reason}, like `{key} = {example}`",
                name.value()
            ),
        )
    })?;
    Ok(name)
}

/// A string literal.
pub(crate) fn read_str(arg: &RawArg, example: &str) -> syn::Result<syn::LitStr> {
    let key = &arg.key;
    match literal(&arg.value) {
        Some(Lit::Str(string)) if !string.value().is_empty() => Ok(string.clone()),
        Some(Lit::Str(string)) => Err(syn::Error::new_spanned(
            string,
            format!("`{key}` must not be empty"),
        )),
        _ => Err(syn::Error::new_spanned(
            &arg.value,
            format!(
                "`{key}` expects a string, like `{key} = {example}`, found {}",
                lit_name(&arg.value)
            ),
        )),
    }
}

/// A `true` / `false` literal.
pub(crate) fn read_bool(arg: &RawArg, example: &str) -> syn::Result<bool> {
    let key = &arg.key;
    match literal(&arg.value) {
        Some(Lit::Bool(value)) => Ok(value.value),
        _ => Err(syn::Error::new_spanned(
            &arg.value,
            format!(
                "`{key}` expects `true` or `false`, like `{key} = {example}`, found {}",
                lit_name(&arg.value)
            ),
        )),
    }
}

/// A path (to a fn, or a crate).
pub(crate) fn read_path(arg: &RawArg, example: &str) -> syn::Result<syn::Path> {
    let key = &arg.key;
    match &arg.value {
        Expr::Path(path) if path.qself.is_none() => Ok(path.path.clone()),
        _ => Err(syn::Error::new_spanned(
            &arg.value,
            format!(
                "`{key}` expects a path, like `{key} = {example}`, found {}",
                lit_name(&arg.value)
            ),
        )),
    }
}

/// A duration: seconds as a number (`30`, `0.25`) or a string with a unit (`"250ms"`).
pub(crate) fn read_duration(arg: &RawArg, example: &str) -> syn::Result<Nanos> {
    let key = &arg.key;
    let parsed = match literal(&arg.value) {
        Some(Lit::Int(int)) => int
            .base10_parse::<u64>()
            .map_err(|e| e.to_string())
            .and_then(|secs| secs.checked_mul(1_000_000_000).ok_or_else(|| "too large".to_owned()))
            .map(Nanos),
        Some(Lit::Float(float)) => float
            .base10_parse::<f64>()
            .map_err(|e| e.to_string())
            .and_then(Nanos::from_secs_f64),
        Some(Lit::Str(string)) => duration::parse(&string.value()),
        _ => {
            return Err(syn::Error::new_spanned(
                &arg.value,
                format!(
                    "`{key}` expects a duration: seconds (`{key} = 30`, `{key} = 0.25`) or a string with a unit (`{key} = {example}`), found {}",
                    lit_name(&arg.value)
                ),
            ))
        }
    };
    parsed.map_err(|reason| {
        syn::Error::new_spanned(
            &arg.value,
            format!("invalid duration for `{key}`: {reason}; write seconds (`30`, `0.25`) or a string with a unit: `\"250ms\"`, `\"5s\"`, `\"2m\"`, `\"1h\"`"),
        )
    })
}

/// A duration that must be above zero.
pub(crate) fn read_positive_duration(arg: &RawArg, example: &str) -> syn::Result<Nanos> {
    let nanos = read_duration(arg, example)?;
    if nanos.0 == 0 {
        return Err(syn::Error::new_spanned(
            &arg.value,
            format!("`{}` must be above zero", arg.key),
        ));
    }
    Ok(nanos)
}

/// `window = 100` (calls) or `window = "60s"` (time).
pub(crate) fn read_window(arg: &RawArg) -> syn::Result<WindowArg> {
    match literal(&arg.value) {
        Some(Lit::Int(_)) => {
            let calls = read_u32(arg, 0, "100")?;
            ruled(arg, reliable_rules::window::calls(calls), "100")?;
            Ok(WindowArg::Calls(calls))
        }
        Some(Lit::Str(_)) => {
            let span = read_duration(arg, "\"60s\"")?;
            let check = reliable_rules::window::span(core::time::Duration::from_nanos(span.0));
            ruled(arg, check, "\"60s\"")?;
            Ok(WindowArg::Time(span))
        }
        _ => Err(syn::Error::new_spanned(
            &arg.value,
            format!(
                "`window` is a number of calls (`window = 100`) or a time span with a unit (`window = \"60s\"`), found {}",
                lit_name(&arg.value)
            ),
        )),
    }
}

/// Span of the whole `key = value`.
pub(crate) fn arg_span(arg: &RawArg) -> Span {
    let key = arg.key.span();
    key.join(syn::spanned::Spanned::span(&arg.value))
        .unwrap_or(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_close_keys_only() {
        let known = ["name", "failure_threshold", "timeout", "success_threshold"];
        assert_eq!(did_you_mean("timout", &known), Some("timeout"));
        assert_eq!(
            did_you_mean("failure_treshold", &known),
            Some("failure_threshold")
        );
        assert_eq!(did_you_mean("threshold", &known), Some("failure_threshold"));
        assert_eq!(did_you_mean("zzz", &known), None);
    }
}
