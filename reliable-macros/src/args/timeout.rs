//! `#[timeout(...)]`: a per-attempt deadline. One duration, then optionally `name = "..."` and
//! `crate = path`.

use super::layer::{common_accessors, Descriptor, Input, LayerArgs, Site};
use super::{known_args, read_path, read_positive_duration, read_str, Nanos, RawArg};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::Token;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "timeout",
    errs_with: Some("a call that times out"),
    rejects: true,
    in_every_preset: false,
    preset_keys: &[("timeout", "timeout")],
    preset_name_key: None,
    parse: TimeoutArgs::parse,
};

/// The per-attempt timeout.
pub(crate) struct TimeoutArgs {
    pub(crate) duration: Nanos,
    /// The timeout policy's registry name (default: the policy's).
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) crate_path: Option<syn::Path>,
    /// The attribute's span, for errors about the timeout as a whole.
    pub(crate) span: Span,
}

/// The keys besides the duration (which a preset attribute writes as `timeout = ...`).
const KEYS: &[&str] = &["name", "crate"];

impl TimeoutArgs {
    /// `#[timeout(5)]`, `#[timeout("250ms", name = "...")]`, or a preset's `timeout = ...`.
    fn parse(input: Input, span: Span, errors: &mut Errors) -> Option<Box<dyn LayerArgs>> {
        let args = match input {
            Input::Args(args) => args,
            Input::Tokens(tokens) => errors.keep(positional(tokens, span))?,
        };
        let mut duration = None;
        let mut name = None;
        let mut crate_path = None;
        let (durations, args): (Vec<RawArg>, Vec<RawArg>) =
            args.into_iter().partition(|arg| arg.key == "timeout");
        for arg in durations {
            duration = errors.keep(read_positive_duration(&arg, "\"250ms\""));
        }
        for arg in known_args(super::RawArgs(args), DESCRIPTOR.attribute, KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => name = errors.keep(read_str(&arg, "\"binance_timeout\"")),
                "crate" => crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("checked by known_args"),
            }
        }
        Some(Box::new(TimeoutArgs {
            duration: duration?,
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
        let after = site.duration(self.duration);
        match &self.name {
            Some(name) => quote!(.named_timeout(#name, #after)),
            None => quote!(.timeout(#after)),
        }
    }
}
