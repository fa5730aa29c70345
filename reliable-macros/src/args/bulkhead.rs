//! `#[bulkhead(...)]`: a cap on calls in flight.

use super::layer::{common_accessors, Descriptor, Input, LayerArgs, Setters, Site};
use super::{arg_span, known_args, read_duration, read_path, read_str, read_u32, ruled, Nanos};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "bulkhead",
    errs_with: Some("a call refused by a full bulkhead"),
    rejects: true,
    in_every_preset: false,
    preset_keys: &[],
    preset_name_key: None,
    parse: BulkheadArgs::parse,
};

/// Parsed and checked `#[bulkhead]` arguments.
pub(crate) struct BulkheadArgs {
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) max_concurrent: u32,
    /// With the span of the `key = value`, for the check in `valid.rs` that the fn is async.
    pub(crate) max_wait: Option<(Nanos, Span)>,
    pub(crate) crate_path: Option<syn::Path>,
}

const KEYS: &[&str] = &["name", "max_concurrent", "max_wait", "crate"];

impl BulkheadArgs {
    fn parse(input: Input, span: Span, errors: &mut Errors) -> Option<Box<dyn LayerArgs>> {
        let raw = input.args(errors)?;
        let mut name = None;
        let mut max_concurrent = None;
        let mut max_wait = None;
        let mut crate_path = None;
        for arg in known_args(raw, DESCRIPTOR.attribute, KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => name = errors.keep(read_str(&arg, "\"binance\"")),
                "max_concurrent" => {
                    max_concurrent = errors.keep(read_u32(&arg, 0, "25").and_then(|n| {
                        ruled(&arg, reliable_rules::limit::max_concurrent(n), "25").map(|()| n)
                    }))
                }
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
        Some(Box::new(BulkheadArgs {
            name,
            max_concurrent,
            max_wait,
            crate_path,
        }))
    }
}

impl LayerArgs for BulkheadArgs {
    common_accessors!();

    fn emit(&self, site: &Site<'_>) -> TokenStream {
        let setters = Setters::default()
            .value("max_concurrent", Some(self.max_concurrent))
            .duration("max_wait", self.max_wait.map(|(wait, _)| wait))
            .finish();
        let name = site.name(self.name.as_ref());
        quote!(.bulkhead(#name, |bulkhead| bulkhead #setters))
    }
}
