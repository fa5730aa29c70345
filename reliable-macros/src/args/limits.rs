//! `#[rate_limited(...)]` and `#[bulkhead(...)]` arguments.

use super::{
    arg_span, known_args, read_bool, read_duration, read_path, read_str, read_u32, Nanos, RawArgs,
};
use crate::errors::Errors;
use proc_macro2::Span;

/// Parsed and checked `#[rate_limited]` arguments.
pub(crate) struct RateLimitedArgs {
    pub(crate) name: Option<syn::LitStr>,
    /// Calls and the window in nanoseconds.
    pub(crate) limit: u32,
    pub(crate) window: Nanos,
    pub(crate) burst: Option<u32>,
    pub(crate) wait: bool,
    pub(crate) crate_path: Option<syn::Path>,
}

const RATE_KEYS: &[&str] = &["name", "per_second", "per_minute", "burst", "wait", "crate"];

impl RateLimitedArgs {
    pub(crate) fn parse(raw: RawArgs, span: Span, errors: &mut Errors) -> Option<Self> {
        let mut name = None;
        let mut rate: Option<(u32, Nanos, Span)> = None;
        let mut burst = None;
        let mut wait = false;
        let mut crate_path = None;
        for arg in known_args(raw, "rate_limited", RATE_KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => name = errors.keep(read_str(&arg, "\"binance\"")),
                key @ ("per_second" | "per_minute") => {
                    let window = if key == "per_second" {
                        Nanos(1_000_000_000)
                    } else {
                        Nanos(60_000_000_000)
                    };
                    if let Some((_, _, _)) = rate {
                        errors.push(syn::Error::new(
                            arg.key.span(),
                            "conflicting limits: give one of `per_second` and `per_minute`",
                        ));
                    } else if let Some(limit) = errors.keep(read_u32(&arg, 1, "60")) {
                        // The runtime's `MAX_RATE_LIMIT`: the limiter keeps 8 bytes per permit.
                        if limit > 1_000_000 {
                            errors.push(syn::Error::new_spanned(
                                &arg.value,
                                format!("`{key}` is at most 1000000 (the limiter keeps the time of each of the last `{key}` calls, 8 bytes each)"),
                            ));
                        }
                        rate = Some((limit, window, arg_span(&arg)));
                    }
                }
                "burst" => {
                    burst = errors
                        .keep(read_u32(&arg, 1, "10"))
                        .map(|b| (b, arg.value.clone()))
                }
                "wait" => wait = errors.keep(read_bool(&arg, "true")).unwrap_or(false),
                "crate" => crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        let Some((limit, window, _)) = rate else {
            errors.push(syn::Error::new(
                span,
                "`#[rate_limited]` needs a limit: `per_minute = 60` or `per_second = 10`",
            ));
            return None;
        };
        if let Some((value, tokens)) = &burst {
            if *value > limit {
                errors.spanned(tokens, format!("`burst` cannot exceed the limit ({limit})"));
            }
        }
        Some(RateLimitedArgs {
            name,
            limit,
            window,
            burst: burst.map(|(value, _)| value),
            wait,
            crate_path,
        })
    }
}

/// Parsed and checked `#[bulkhead]` arguments.
pub(crate) struct BulkheadArgs {
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) max_concurrent: u32,
    pub(crate) max_wait: Option<(Nanos, Span)>,
    pub(crate) crate_path: Option<syn::Path>,
}

const BULKHEAD_KEYS: &[&str] = &["name", "max_concurrent", "max_wait", "crate"];

impl BulkheadArgs {
    pub(crate) fn parse(raw: RawArgs, span: Span, errors: &mut Errors) -> Option<Self> {
        let mut name = None;
        let mut max_concurrent = None;
        let mut max_wait = None;
        let mut crate_path = None;
        for arg in known_args(raw, "bulkhead", BULKHEAD_KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => name = errors.keep(read_str(&arg, "\"binance\"")),
                "max_concurrent" => max_concurrent = errors.keep(read_u32(&arg, 1, "25")),
                "max_wait" => {
                    max_wait = errors
                        .keep(read_duration(&arg, "\"100ms\""))
                        .map(|wait| (wait, arg_span(&arg)));
                }
                "crate" => crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        let Some(max_concurrent) = max_concurrent else {
            errors.push(syn::Error::new(
                span,
                "`#[bulkhead]` needs `max_concurrent = N`: how many calls may be in flight at once",
            ));
            return None;
        };
        Some(BulkheadArgs {
            name,
            max_concurrent,
            max_wait,
            crate_path,
        })
    }
}
