//! `#[cached]`: the key, the call site's cache and the wrapping of the rest of the pipeline.

use crate::args::cached::CachedArgs;
use crate::args::degradation::DegradationArgs;
use crate::errors::Errors;
use crate::expand::{call_at, respan};
use crate::item::FnItem;
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

/// A call's cache key, as tokens.
pub(crate) struct Key {
    /// Builds the owned key the cache keeps.
    owned: TokenStream,
    /// For a key made of the fn's arguments, the same key borrowed from them, to look up with:
    /// a hit then builds no owned key (no `String` per call for a `&str` argument), and the
    /// owned key is built on a miss only.
    borrowed: Option<BorrowedKey>,
}

struct BorrowedKey {
    /// Evaluates the parts of the key that are not arguments, once.
    setup: TokenStream,
    /// What hashes and compares like the owned key.
    lookup: Lookup,
    /// Builds an owned key without consuming anything: never called, it names the owned key's
    /// type for the lookup.
    witness: TokenStream,
}

enum Lookup {
    /// A reference to one argument (or into it: `&*symbol`).
    One(TokenStream),
    /// A tuple of references, for `BorrowedKey`.
    Tuple(TokenStream),
}

/// One part of a key: borrowed for the lookup, owned for the cache, and owned without
/// consuming anything (for the witness).
struct KeyPart {
    setup: TokenStream,
    borrowed: TokenStream,
    owned: TokenStream,
    witness: TokenStream,
}

impl KeyPart {
    /// The argument `name: ty`, spanned at `span`: a reference is owned through `ToOwned`
    /// (`&str` → `String`), any other type is cloned.
    fn argument(name: &syn::Ident, ty: &syn::Type, span: Span) -> KeyPart {
        let (borrowed, owned) = match ty {
            syn::Type::Reference(_) => (
                quote_spanned!(span=> &*#name),
                quote_spanned!(span=> ::std::borrow::ToOwned::to_owned(#name)),
            ),
            _ => (
                quote_spanned!(span=> &#name),
                quote_spanned!(span=> ::core::clone::Clone::clone(&#name)),
            ),
        };
        KeyPart {
            setup: TokenStream::new(),
            borrowed,
            witness: owned.clone(),
            owned,
        }
    }

    /// Any other expression, the `index`th of the key: evaluated once, before the lookup.
    fn expression(expr: &syn::Expr, index: usize) -> KeyPart {
        let span = expr.span();
        let local = syn::Ident::new(&format!("__reliable_key_{index}"), Span::mixed_site());
        KeyPart {
            setup: quote_spanned!(span=> let #local = #expr;),
            borrowed: quote_spanned!(span=> &#local),
            owned: quote_spanned!(span=> #local),
            witness: quote_spanned!(span=> ::core::clone::Clone::clone(&#local)),
        }
    }
}

/// The key: the one written, or the tuple of the arguments (borrowed ones owned).
pub(crate) fn key(
    args: &CachedArgs,
    item: &FnItem,
    span: Span,
    errors: &mut Errors,
) -> Option<Key> {
    if let Some(key) = &args.key {
        return Some(written_key(key, item));
    }
    let mut parts = Vec::new();
    for input in &item.func.sig.inputs {
        match input {
            syn::FnArg::Receiver(_) => {
                errors.push(syn::Error::new(
                    span,
                    "`#[cached]` on a method needs `key = ...`: one cache serves every instance, so say what the key is, e.g. `key = (self.exchange_id, symbol)` to key per instance, or `key = symbol` to share across instances",
                ));
                return None;
            }
            syn::FnArg::Typed(typed) => {
                let syn::Pat::Ident(ident) = &*typed.pat else {
                    errors.spanned(&typed.pat, "`#[cached]` builds its default key from named arguments; give `key = ...` for a destructured argument");
                    return None;
                };
                if let syn::Type::ImplTrait(_) = &*typed.ty {
                    errors.spanned(
                        &typed.ty,
                        "`#[cached]` cannot key on an `impl Trait` argument; give `key = ...`",
                    );
                    return None;
                }
                parts.push(KeyPart::argument(&ident.ident, &typed.ty, typed.span()));
            }
        }
    }
    Some(tuple_key(parts))
}

/// A written key. An argument, or a tuple with arguments among its parts, is looked up
/// borrowed; anything else is evaluated as written.
fn written_key(key: &syn::Expr, item: &FnItem) -> Key {
    let argument = |expr: &syn::Expr| -> Option<KeyPart> {
        let syn::Expr::Path(path) = expr else {
            return None;
        };
        let name = path.path.get_ident().filter(|_| path.qself.is_none())?;
        item.func.sig.inputs.iter().find_map(|input| match input {
            syn::FnArg::Typed(typed) => match (&*typed.pat, &*typed.ty) {
                (_, syn::Type::ImplTrait(_)) => None,
                (syn::Pat::Ident(ident), ty) if ident.ident == *name => {
                    Some(KeyPart::argument(name, ty, expr.span()))
                }
                _ => None,
            },
            syn::FnArg::Receiver(_) => None,
        })
    };
    let mut inner = key;
    while let syn::Expr::Paren(paren) = inner {
        inner = &paren.expr;
    }
    if let Some(part) = argument(inner) {
        return Key {
            owned: part.owned,
            borrowed: Some(BorrowedKey {
                setup: part.setup,
                lookup: Lookup::One(part.borrowed),
                witness: part.witness,
            }),
        };
    }
    if let syn::Expr::Tuple(tuple) = inner {
        let parts: Vec<_> = tuple.elems.iter().map(argument).collect();
        if parts.iter().any(Option::is_some) {
            let parts = parts
                .into_iter()
                .zip(&tuple.elems)
                .enumerate()
                .map(|(index, (part, elem))| {
                    part.unwrap_or_else(|| KeyPart::expression(elem, index))
                })
                .collect();
            return tuple_key(parts);
        }
    }
    Key {
        owned: quote_spanned!(key.span()=> #key),
        borrowed: None,
    }
}

fn tuple_key(parts: Vec<KeyPart>) -> Key {
    let owned = parts.iter().map(|part| &part.owned);
    let owned = quote!((#(#owned,)*));
    // `BorrowedKey` is implemented for tuples of 1 to 12 parts, like std's tuple traits.
    if parts.is_empty() || parts.len() > 12 {
        return Key {
            owned,
            borrowed: None,
        };
    }
    let setup = parts.iter().map(|part| &part.setup);
    let borrowed = parts.iter().map(|part| &part.borrowed);
    let witness = parts.iter().map(|part| &part.witness);
    Key {
        owned,
        borrowed: Some(BorrowedKey {
            setup: quote!(#(#setup)*),
            lookup: Lookup::Tuple(quote!((#(#borrowed,)*))),
            witness: quote!((#(#witness,)*)),
        }),
    }
}

/// Wraps `call` (an expression or statements producing the fn's output) in the cache: the
/// hit path returns before any future is built; the miss path loads through `call`.
pub(crate) fn wrap(
    args: &CachedArgs,
    key: Key,
    private: &TokenStream,
    item: &FnItem,
    plan: &crate::plan::Plan,
    call: crate::expand::Call,
    setup: &mut TokenStream,
) -> TokenStream {
    let (degrading, rejects) = (plan.get::<DegradationArgs>().is_some(), plan.rejects());
    let key_span = args
        .key
        .as_ref()
        .map_or_else(Span::call_site, Spanned::span);
    let owned_key = key.owned;
    // Checked by the hit's lookup when there is one, else here (spanned at the key).
    let check = match (item.return_type(), item.returns_impl_trait(), &key.borrowed) {
        (Some(_), false, None) => TokenStream::new(),
        _ => quote_spanned!(key_span=> #private::Cached::key(&__reliable_key);),
    };
    let owned_key = quote_spanned! {key_span=>
        let __reliable_key = #owned_key;
        #check
    };
    // A return type whose values cannot be cached is reported once, at it: the check and
    // the hit (generic over it) are spanned there, and rustc reports a bound once per span.
    // The key's parts are spanned at the key, so a key that cannot be one is reported there.
    let at = match (item.return_type(), item.returns_impl_trait()) {
        (Some(return_type), false) => {
            let span = return_type.span();
            let return_type = respan(return_type.to_token_stream(), span);
            let output = respan(quote!(#private::Cached::output), span);
            setup.extend(quote_spanned! {span=> #output::<#return_type>(); });
            span
        }
        _ => key_span,
    };
    // The hit path returns before any future is built (when the return type can be named).
    let hit = |lookup: TokenStream| match (item.return_type(), item.returns_impl_trait()) {
        // The hit's type is the fn's, from the `return`.
        (Some(_), false) => quote! {
            if let ::core::option::Option::Some(__reliable_hit) = #lookup {
                return __reliable_hit;
            }
        },
        _ => TokenStream::new(),
    };
    // A key of arguments is looked up borrowed, before the owned key is built; any other key
    // is built first.
    let prelude = match key.borrowed {
        Some(BorrowedKey {
            setup,
            lookup,
            witness,
        }) => {
            let lookup = match lookup {
                Lookup::One(lookup) => lookup,
                Lookup::Tuple(parts) => quote!(&#private::Cached::borrowed(#parts)),
            };
            let mut prelude = setup;
            // Spanned at the key: an unfit key's errors point at it.
            let function = respan(quote!(#private::Cached::hit), at);
            let key_type = respan(quote!(#private::Cached::key_type), key_span);
            let args =
                quote_spanned!(key_span=> __reliable_policy, #lookup, #key_type(|| #witness));
            prelude.extend(hit(call_at(at, function, args)));
            prelude.extend(owned_key);
            prelude
        }
        None => {
            let mut prelude = owned_key;
            let function = respan(quote!(#private::Cached::hit_owned), at);
            let args = quote_spanned!(key_span=> __reliable_policy, &__reliable_key);
            prelude.extend(hit(call_at(at, function, args)));
            prelude
        }
    };
    if !item.is_async() {
        // With a fallback, `call` borrows the arguments, which the fallback needs after it.
        let capture = if degrading {
            TokenStream::new()
        } else {
            quote!(move)
        };
        setup.extend(prelude);
        let call = call.expr();
        // Through the key probe, as an async fn's: a key that cannot be one is reported by the
        // check above only.
        let owned = respan(quote!(#private::Cached::owned_key), key_span);
        let key =
            quote_spanned!(key_span=> #private::probe::key!(#owned(__reliable_key)).into_inner(),);
        let load = call_at(
            at,
            quote_spanned!(at=> load_cached_blocking),
            quote!(#key #capture || { #call }),
        );
        return quote_spanned!(at=> __reliable_policy.#load);
    }
    // How the callers that waited for a failed load get their error: a clone of it if the
    // error type can be cloned (picked by autoref specialization on the type), else
    // `Rejected::LoadFailed` if a layer already makes the error hold a `Rejected`, else each
    // loads on its own.
    let otherwise = if rejects {
        quote!(#private::Cached::as_rejected())
    } else {
        quote!(#private::Cached::load_alone())
    };
    let share = match (item.return_type(), item.returns_impl_trait()) {
        (Some(return_type), false) if rejects => {
            quote!(#private::probe::share_failure!(#return_type, rejected))
        }
        (Some(return_type), false) => quote!(#private::probe::share_failure!(#return_type)),
        _ => otherwise,
    };
    let capture = if degrading {
        TokenStream::new()
    } else {
        quote!(move)
    };
    // The key lives in a block that ends before the `.await`, so the future keeps no slot
    // for it.
    // A future is polled by the cache itself; anything else runs in an `async` block.
    // With a fn that delivers its outcome (`Run::delivered`, passed by name: it alone checks
    // that the error holds a `Rejected`).
    let (load, deliver) = match call {
        crate::expand::Call::Future(future, _) => (future, quote!(::core::convert::identity)),
        crate::expand::Call::Undelivered(plain, _) => {
            (plain, respan(quote!(#private::Run::delivered), at))
        }
        crate::expand::Call::Expr(call) => (
            quote!(async #capture { #call }),
            quote!(::core::convert::identity),
        ),
    };
    // Through the key probe: a key that cannot be one is reported by the lookup (or the
    // check) at the user's key only, not again by the load.
    let owned = respan(quote!(#private::Cached::owned_key), key_span);
    let key = quote_spanned!(key_span=> #private::probe::key!(#owned(__reliable_key)),);
    let load_cached = call_at(
        at,
        respan(quote!(#private::Cached::load), at),
        quote!(__reliable_policy, #key #load, #deliver, #share),
    );
    setup.extend(quote! {
        let __reliable_miss = {
            #prelude
            #load_cached
        };
    });
    quote_spanned!(at=> __reliable_miss.await)
}
