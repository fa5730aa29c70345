//! `#[timeout(...)]`: one duration.

use super::{read_positive_duration, Nanos, RawArg};
use proc_macro2::{Span, TokenStream};

/// The per-attempt timeout.
#[derive(Clone, Copy)]
pub(crate) struct TimeoutArg {
    pub(crate) duration: Nanos,
}

impl TimeoutArg {
    /// Parses `5`, `0.25` or `"250ms"`.
    pub(crate) fn parse(tokens: TokenStream, attribute_span: Span) -> syn::Result<Self> {
        if tokens.is_empty() {
            return Err(syn::Error::new(
                attribute_span,
                "`#[timeout]` needs a duration: `#[timeout(5)]` (seconds) or `#[timeout(\"250ms\")]`",
            ));
        }
        let value: syn::Expr = syn::parse2(tokens)?;
        let arg = RawArg {
            key: syn::Ident::new("timeout", attribute_span),
            value,
        };
        Self::from_arg(&arg)
    }

    /// Reads `timeout = ...` given in a preset attribute.
    pub(crate) fn from_arg(arg: &RawArg) -> syn::Result<Self> {
        let duration = read_positive_duration(arg, "\"250ms\"")?;
        Ok(TimeoutArg { duration })
    }
}
