//! `#[timeout(...)]`: a per-attempt timeout. One duration, then optionally `multiplier` and
//! `max` (the timeout growing with each retry), `deadline` (the whole call's), `name = "..."`
//! and `crate = path`. A preset attribute writes them as `timeout`, `timeout_growth`,
//! `timeout_cap` and `deadline` (the breaker has `timeout_multiplier` and `max_timeout`), over
//! the preset's.

use super::layer::{common_accessors, Descriptor, Input, LayerArgs, Setters, Site};
use super::{
    known_args, read_f64, read_path, read_positive_duration, read_str, ruled, Nanos, RawArg,
};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use reliable_rules::limit;
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::Token;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "timeout",
    errs_with: Some("a call that times out"),
    rejects: true,
    in_every_preset: false,
    preset_keys: &[
        ("timeout", "timeout"),
        ("timeout_growth", "multiplier"),
        ("timeout_cap", "max"),
        ("deadline", "deadline"),
    ],
    preset_name_key: None,
    parse: TimeoutArgs::parse,
};

/// The per-attempt timeout.
pub(crate) struct TimeoutArgs {
    /// The first attempt's timeout; a preset attribute may leave it to the preset.
    pub(crate) duration: Option<Nanos>,
    pub(crate) multiplier: Option<f64>,
    pub(crate) max: Option<Nanos>,
    pub(crate) deadline: Option<Nanos>,
    /// The timeout policy's registry name (default: the policy's).
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) crate_path: Option<syn::Path>,
    /// The attribute's span, for errors about the timeout as a whole.
    pub(crate) span: Span,
}

/// The keys besides the duration (which a preset attribute writes as `timeout = ...`).
const KEYS: &[&str] = &["multiplier", "max", "deadline", "name", "crate"];

impl TimeoutArgs {
    /// `#[timeout(5)]`, `#[timeout("250ms", name = "...")]`, or a preset's `timeout = ...`.
    fn parse(input: Input, span: Span, errors: &mut Errors) -> Option<Box<dyn LayerArgs>> {
        let preset_args = matches!(input, Input::Args(_));
        let args = match input {
            Input::Args(args) => args,
            Input::Tokens(tokens) => errors.keep(positional(tokens, span))?,
        };
        let mut duration = None;
        let (mut multiplier, mut max, mut deadline) = (None, None, None);
        let mut name = None;
        let mut crate_path = None;
        let (durations, args): (Vec<RawArg>, Vec<RawArg>) =
            args.into_iter().partition(|arg| arg.key == "timeout");
        for arg in durations {
            duration = errors.keep(read_positive_duration(&arg, "\"250ms\""));
        }
        for arg in known_args(super::RawArgs(args), DESCRIPTOR.attribute, KEYS, errors) {
            match arg.key.to_string().as_str() {
                "multiplier" => {
                    multiplier =
                        errors.keep(read_f64(&arg, "1.5").and_then(|m| {
                            ruled(&arg, limit::timeout_multiplier(m), "1.5").map(|()| m)
                        }))
                }
                "max" => {
                    max = errors
                        .keep(read_positive_duration(&arg, "\"30s\""))
                        .map(|n| (n, syn::spanned::Spanned::span(&arg.value)))
                }
                "deadline" => {
                    deadline = errors
                        .keep(read_positive_duration(&arg, "\"1m\""))
                        .map(|n| (n, syn::spanned::Spanned::span(&arg.value)))
                }
                "name" => name = errors.keep(read_str(&arg, "\"binance_timeout\"")),
                "crate" => crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("checked by known_args"),
            }
        }
        // The limits against the first timeout, when both are written here.
        let at_least_after = |limit: Option<(Nanos, Span)>, key: &str, errors: &mut Errors| {
            let (Some(after), Some((limit, span))) = (duration, limit) else {
                return limit.map(|(limit, _)| limit);
            };
            let check = limit::deadline(
                std::time::Duration::from_nanos(after.0),
                std::time::Duration::from_nanos(limit.0),
            );
            match check {
                Ok(()) => Some(limit),
                Err(reason) => {
                    errors.push(syn::Error::new(span, format!("`{key}` {reason}")));
                    None
                }
            }
        };
        let max = at_least_after(max, if preset_args { "timeout_cap" } else { "max" }, errors);
        let deadline = at_least_after(deadline, "deadline", errors);
        if duration.is_none() && !preset_args {
            return None;
        }
        Some(Box::new(TimeoutArgs {
            duration,
            multiplier,
            max,
            deadline,
            name,
            crate_path,
            span,
        }))
    }
}

/// The duration first, without a key, then `key = value`s.
fn positional(tokens: TokenStream, span: Span) -> syn::Result<Vec<RawArg>> {
    let parser = |input: ParseStream<'_>| -> syn::Result<Vec<RawArg>> {
        if input.is_empty() {
            return Err(syn::Error::new(
                span,
                "`#[timeout]` needs a duration: `#[timeout(5)]` (seconds) or `#[timeout(\"250ms\")]`",
            ));
        }
        if input.peek(syn::Ident::peek_any) && input.peek2(Token![=]) && !input.peek2(Token![==]) {
            return Err(input.error(
                "`#[timeout]` takes the duration first, without a key: `#[timeout(\"2s\", name = \"binance_timeout\")]`",
            ));
        }
        let value = input.parse()?;
        let mut args = vec![RawArg {
            key: syn::Ident::new("timeout", span),
            value,
        }];
        if !input.is_empty() {
            input.parse::<Token![,]>()?;
            args.extend(Punctuated::<RawArg, Token![,]>::parse_terminated(input)?);
        }
        Ok(args)
    };
    syn::parse::Parser::parse2(parser, tokens)
}

impl LayerArgs for TimeoutArgs {
    common_accessors!();

    fn emit(&self, site: &Site<'_>) -> TokenStream {
        let fixed = self.multiplier.is_none() && self.max.is_none() && self.deadline.is_none();
        match self.duration {
            // A fixed timeout of its own: the preset's growth and deadline do not apply.
            Some(duration) if fixed && !site.preset => {
                let after = site.duration(duration);
                match &self.name {
                    Some(name) => quote!(.named_timeout(#name, #after)),
                    None => quote!(.timeout(#after)),
                }
            }
            _ => {
                let deadline = self.deadline.map(|deadline| {
                    let deadline = site.duration(deadline);
                    quote!(::core::option::Option::Some(#deadline))
                });
                let setters = Setters::default()
                    .duration("after", self.duration)
                    .float("multiplier", self.multiplier)
                    .duration("max", self.max)
                    .value("deadline", deadline)
                    .finish();
                site.configure("time_limits", self.name.as_ref(), setters)
            }
        }
    }
}
