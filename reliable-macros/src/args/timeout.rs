//! `#[timeout(...)]`: one duration, and optionally `name = "..."`.

use super::{read_positive_duration, Nanos, RawArg};
use proc_macro2::{Span, TokenStream};

/// The per-attempt timeout.
#[derive(Clone)]
pub(crate) struct TimeoutArg {
    pub(crate) duration: Nanos,
    /// The timeout policy's registry name (default: the fn's path).
    pub(crate) name: Option<syn::LitStr>,
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
        let parts = syn::parse::Parser::parse2(
            syn::punctuated::Punctuated::<syn::Expr, syn::Token![,]>::parse_terminated,
            tokens,
        )?;
        let mut parts = parts.into_iter();
        let value = parts.next().ok_or_else(|| {
            syn::Error::new(attribute_span, "`#[timeout]` needs a duration first")
        })?;
        let arg = RawArg {
            key: syn::Ident::new("timeout", attribute_span),
            value,
        };
        let mut timeout = Self::from_arg(&arg)?;
        for part in parts {
            match &part {
                syn::Expr::Assign(assign) if is_key(&assign.left, "name") => {
                    if timeout.name.is_some() {
                        return Err(syn::Error::new_spanned(&assign.left, "`name` is given twice"));
                    }
                    match &*assign.right {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(name),
                            ..
                        }) if !name.value().is_empty() => timeout.name = Some(name.clone()),
                        other => {
                            return Err(syn::Error::new_spanned(
                                other,
                                "`name` is a non-empty string: `name = \"binance_timeout\"`",
                            ))
                        }
                    }
                }
                other => {
                    return Err(syn::Error::new_spanned(
                        other,
                        "`#[timeout]` takes a duration, then optionally `name = \"...\"`: `#[timeout(\"2s\", name = \"binance_timeout\")]`",
                    ))
                }
            }
        }
        Ok(timeout)
    }

    /// Reads `timeout = ...` given in a preset attribute.
    pub(crate) fn from_arg(arg: &RawArg) -> syn::Result<Self> {
        let duration = read_positive_duration(arg, "\"250ms\"")?;
        Ok(TimeoutArg {
            duration,
            name: None,
        })
    }
}

fn is_key(expr: &syn::Expr, key: &str) -> bool {
    matches!(expr, syn::Expr::Path(path) if path.path.is_ident(key))
}
