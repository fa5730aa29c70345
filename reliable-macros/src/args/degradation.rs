//! `#[graceful_degradation(...)]`: a fallback when the call fails.

use super::layer::{common_accessors, Descriptor, Input, LayerArgs, Site};
use super::{known_args, read_path, read_str};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "graceful_degradation",
    errs_with: Some("a failed call"),
    rejects: false,
    in_every_preset: false,
    preset_keys: &[("fallback", "fallback")],
    preset_name_key: None,
    parse: DegradationArgs::parse,
};

/// Parsed `#[graceful_degradation]` arguments.
pub(crate) struct DegradationArgs {
    pub(crate) name: Option<syn::LitStr>,
    /// A value of the fn's return type, or a fn taking its arguments (and maybe the cause).
    pub(crate) fallback: syn::Expr,
    pub(crate) crate_path: Option<syn::Path>,
    /// The attribute's span, for errors about the fallback as a whole.
    pub(crate) span: Span,
}

const KEYS: &[&str] = &["fallback", "name", "crate"];

impl DegradationArgs {
    /// `None` (with an error) when `fallback` is missing.
    fn parse(input: Input, span: Span, errors: &mut Errors) -> Option<Box<dyn LayerArgs>> {
        let raw = input.args(errors)?;
        let mut fallback = None;
        let mut name = None;
        let mut crate_path = None;
        for arg in known_args(raw, DESCRIPTOR.attribute, KEYS, errors) {
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
        Some(Box::new(DegradationArgs {
            name,
            fallback,
            crate_path,
            span,
        }))
    }
}

impl LayerArgs for DegradationArgs {
    common_accessors!();

    fn emit(&self, _: &Site<'_>) -> TokenStream {
        // The fallback itself is the expansion's outermost layer; the builder only names it.
        match &self.name {
            Some(name) => quote!(.fallback(#name)),
            None => TokenStream::new(),
        }
    }
}
