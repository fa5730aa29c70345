//! The `Policy::builder(..)` chain of a plan: the preset, then each layer's own builder calls
//! (its descriptor writes them), then the group. Defaults and validation live in the runtime,
//! so this only says what the attributes wrote.

use crate::args::Site;
use crate::plan::{Plan, PresetSource};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The callbacks written on the attributes (`failure_if`, `retry_if`, ...), typed by the fn's
/// error type: `FnHooks { .. }` (the rest from the error's `Classify`, if it has one), or
/// nothing (the call then takes [`unwritten_hooks`]).
pub(crate) fn hooks(plan: &Plan, site: &Site<'_>) -> TokenStream {
    let private = site.private;
    let mut fields = TokenStream::new();
    for layer in &plan.layers {
        for (field, path) in layer.args.hooks() {
            let hook = hook(path, field, site);
            let field = syn::Ident::new(field, Span::call_site());
            fields.extend(quote!(#field: ::core::option::Option::Some(#hook),));
        }
    }
    if fields.is_empty() {
        return TokenStream::new();
    }
    let rest = match site.return_type {
        Some(return_type) => quote!(#private::probe::classify!(#return_type, written)),
        None => quote!(#private::FnHooks::NONE),
    };
    quote!(#private::FnHooks { #fields ..#rest })
}

/// The callbacks of a call whose attributes wrote none: its error type's `Classify` when it
/// has one (picked in the fn's body, per instantiation), else the zero-sized `NoHooks`.
pub(crate) fn unwritten_hooks(site: &Site<'_>) -> TokenStream {
    let private = site.private;
    match site.return_type {
        Some(return_type) => quote!(#private::probe::classify!(#return_type)),
        None => quote!(#private::NoHooks),
    }
}

/// A hook pinned to the fn's error type by `Run::<field>::<R>`, so a hook of the wrong
/// type is an error at its path.
fn hook(path: &syn::Path, field: &str, site: &Site<'_>) -> TokenStream {
    match site.return_type {
        Some(return_type) => {
            let pin = crate::expand::returns_fn(return_type, field);
            quote_spanned!(path.span()=> #pin(#path))
        }
        None => quote_spanned!(path.span()=> #path),
    }
}

/// The builder calls of every layer in `plan`, after `Policy::builder(name)`.
pub(crate) fn chain(plan: &Plan, site: &Site<'_>) -> TokenStream {
    let runtime = site.runtime;
    let mut chain = TokenStream::new();
    match &plan.preset {
        Some(PresetSource::Expr(expr)) => {
            chain.extend(quote_spanned!(expr.span()=> .preset(#expr)));
        }
        Some(PresetSource::Builtin(name)) => {
            let name = syn::Ident::new(name, Span::call_site());
            chain.extend(quote!(.preset(#runtime::preset::#name)));
        }
        None => {}
    }
    for layer in &plan.layers {
        chain.extend(layer.args.emit(site));
    }
    if let Some(group) = plan.layers.iter().find_map(|layer| layer.args.group()) {
        chain.extend(quote!(.group(#group)));
    }
    chain
}
