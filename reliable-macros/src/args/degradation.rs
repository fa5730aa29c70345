//! `#[graceful_degradation(...)]` arguments.

use super::{known_args, read_path, read_str, RawArgs};
use crate::errors::Errors;
use proc_macro2::Span;

/// Parsed `#[graceful_degradation]` arguments.
pub(crate) struct DegradationArgs {
    pub(crate) name: Option<syn::LitStr>,
    /// A value of the fn's return type, or a fn taking its arguments (and maybe the cause).
    pub(crate) fallback: syn::Expr,
    pub(crate) crate_path: Option<syn::Path>,
}

const KEYS: &[&str] = &["fallback", "name", "crate"];

impl DegradationArgs {
    /// `None` (with an error) when `fallback` is missing.
    pub(crate) fn parse(raw: RawArgs, span: Span, errors: &mut Errors) -> Option<Self> {
        let mut fallback = None;
        let mut name = None;
        let mut crate_path = None;
        for arg in known_args(raw, "graceful_degradation", KEYS, errors) {
            match arg.key.to_string().as_str() {
                "fallback" => fallback = Some(arg.value.clone()),
                "name" => name = errors.keep(read_str(&arg, "\"orderbook\"")),
                "crate" => crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("checked by known_args"),
            }
        }
        let Some(fallback) = fallback else {
            errors.push(syn::Error::new(
                span,
                "`#[graceful_degradation]` needs `fallback = ...`: a value of the function's return type (`fallback = Ok(Vec::new())`) or a fn taking its arguments by reference (`fallback = Self::cached_orderbook`)",
            ));
            return None;
        };
        Some(DegradationArgs {
            name,
            fallback,
            crate_path,
        })
    }
}
