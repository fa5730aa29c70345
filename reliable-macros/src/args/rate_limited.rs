//! `#[rate_limited(...)]`: a sliding-window rate limit.

use super::layer::{common_accessors, Descriptor, Input, LayerArgs, Site};
use super::{arg_span, known_args, read_bool, read_path, read_str, read_u32, ruled, Nanos};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "rate_limited",
    errs_with: Some("a call over the limit"),
    rejects: true,
    in_every_preset: false,
    preset_keys: &[],
    preset_name_key: None,
    parse: RateLimitedArgs::parse,
};

/// Parsed and checked `#[rate_limited]` arguments.
pub(crate) struct RateLimitedArgs {
    pub(crate) name: Option<syn::LitStr>,
    /// Calls per window.
    pub(crate) limit: u32,
    pub(crate) window: Nanos,
    /// With the span of its value, for the cross-argument check in `valid.rs`.
    pub(crate) burst: Option<(u32, Span)>,
    pub(crate) wait: bool,
    pub(crate) crate_path: Option<syn::Path>,
}

const KEYS: &[&str] = &["name", "per_second", "per_minute", "burst", "wait", "crate"];

impl RateLimitedArgs {
    fn parse(input: Input, span: Span, errors: &mut Errors) -> Option<Box<dyn LayerArgs>> {
        let raw = input.args(errors)?;
        let mut name = None;
        let mut rate: Option<(u32, Nanos, Span)> = None;
        let mut burst = None;
        let mut wait = false;
        let mut crate_path = None;
        for arg in known_args(raw, DESCRIPTOR.attribute, KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => name = errors.keep(read_str(&arg, "\"binance\"")),
                key @ ("per_second" | "per_minute") => {
                    let window = if key == "per_second" {
                        Nanos(1_000_000_000)
                    } else {
                        Nanos(60_000_000_000)
                    };
                    if rate.is_some() {
                        errors.push(syn::Error::new(
                            arg.key.span(),
                            "conflicting limits: give one of `per_second` and `per_minute`",
                        ));
                    } else if let Some(limit) = errors.keep(read_u32(&arg, 0, "60")) {
                        // Kept even when out of range, so the one mistake is one error.
                        let _ = errors.keep(ruled(
                            &arg,
                            reliable_rules::limit::rate_limit(limit),
                            "60",
                        ));
                        rate = Some((limit, window, arg_span(&arg)));
                    }
                }
                "burst" => {
                    let span = syn::spanned::Spanned::span(&arg.value);
                    burst = errors.keep(read_u32(&arg, 1, "10")).map(|b| (b, span));
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
        Some(Box::new(RateLimitedArgs {
            name,
            limit,
            window,
            burst,
            wait,
            crate_path,
        }))
    }
}

impl LayerArgs for RateLimitedArgs {
    common_accessors!();

    fn emit(&self, site: &Site<'_>) -> TokenStream {
        let runtime = site.runtime;
        let name = site.name(self.name.as_ref());
        let (limit, window) = (self.limit, site.duration(self.window));
        let burst = match self.burst {
            Some((burst, _)) => quote!(::core::option::Option::Some(#burst)),
            None => quote!(::core::option::Option::None),
        };
        let mut chain = quote! {
            .rate_limit(#name, #runtime::limit::RateLimit::per_second(#limit).window(#window).burst(#burst))
        };
        if self.wait {
            chain.extend(quote!(.wait_for_rate_limit()));
        }
        chain
    }
}
