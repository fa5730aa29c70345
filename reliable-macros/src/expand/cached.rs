//! `#[cached]`: the key, the call site's cache and the wrapping of the rest of the pipeline.

use crate::args::{CachedArgs, Nanos};
use crate::errors::Errors;
use crate::expand::option_str;
use crate::item::FnItem;
use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The key expression: the one written, or the tuple of the arguments (borrowed ones owned).
pub(crate) fn key(
    args: &CachedArgs,
    item: &FnItem,
    span: Span,
    errors: &mut Errors,
) -> Option<TokenStream> {
    if let Some(key) = &args.key {
        return Some(quote_spanned!(key.span()=> #key));
    }
    let mut parts = Vec::new();
    for input in &item.func.sig.inputs {
        match input {
            syn::FnArg::Receiver(receiver) => {
                errors.push(syn::Error::new(
                    span,
                    "`#[cached]` on a method needs `key = ...`: one cache serves every instance, so say what the key is, e.g. `key = (self.exchange.clone(), symbol.to_owned())` to key per instance, or `key = symbol.to_owned()` to share across instances",
                ));
                let _ = receiver;
                return None;
            }
            syn::FnArg::Typed(typed) => {
                let syn::Pat::Ident(ident) = &*typed.pat else {
                    errors.spanned(&typed.pat, "`#[cached]` builds its default key from named arguments; give `key = ...` for a destructured argument");
                    return None;
                };
                let name = &ident.ident;
                match &*typed.ty {
                    syn::Type::Reference(_) => parts.push(
                        quote_spanned!(typed.span()=> ::std::borrow::ToOwned::to_owned(#name)),
                    ),
                    syn::Type::ImplTrait(_) => {
                        errors.spanned(
                            &typed.ty,
                            "`#[cached]` cannot key on an `impl Trait` argument; give `key = ...`",
                        );
                        return None;
                    }
                    _ => parts
                        .push(quote_spanned!(typed.span()=> ::core::clone::Clone::clone(&#name))),
                }
            }
        }
    }
    Some(quote!((#(#parts,)*)))
}

fn duration(private: &TokenStream, nanos: Nanos) -> TokenStream {
    quote!(#private::Duration::from_nanos(#nanos))
}

/// Wraps `call` (an expression or statements producing the fn's output) in the cache.
pub(crate) fn wrap(
    args: &CachedArgs,
    key: TokenStream,
    site: &crate::expand::SiteTokens<'_>,
    item: &FnItem,
    degrading: bool,
    call: TokenStream,
    setup: &mut TokenStream,
) -> TokenStream {
    let (private, marker, preset) = (site.private, site.marker, site.preset);
    let name = option_str(args.name.as_ref());
    let mut fields = TokenStream::new();
    if let Some(ttl) = args.ttl {
        let value = duration(private, ttl);
        fields.extend(quote!(ttl: #value,));
        // The reference serves stale values up to 2× the TTL, and adapts within 0.4×..3×.
        let stale = duration(private, args.stale.unwrap_or(ttl));
        fields.extend(quote!(stale: #stale,));
        let min = duration(private, args.min_ttl.unwrap_or(Nanos(ttl.0 * 2 / 5)));
        let max = duration(
            private,
            args.max_ttl.unwrap_or(Nanos(ttl.0.saturating_mul(3))),
        );
        fields.extend(quote!(min_ttl: #min, max_ttl: #max,));
    } else {
        if let Some(stale) = args.stale {
            let stale = duration(private, stale);
            fields.extend(quote!(stale: #stale,));
        }
        if let Some(min) = args.min_ttl {
            let min = duration(private, min);
            fields.extend(quote!(min_ttl: #min,));
        }
        if let Some(max) = args.max_ttl {
            let max = duration(private, max);
            fields.extend(quote!(max_ttl: #max,));
        }
    }
    if let Some(policy) = args.policy {
        let variant = syn::Ident::new(policy, Span::call_site());
        fields.extend(quote!(policy: #private::CachePolicy::#variant,));
    }
    if let Some(max) = args.max_entries {
        let max = max as usize;
        fields.extend(quote!(max_entries: #max,));
    }
    if let Some(ratio) = args.eviction_ratio {
        let ratio = Literal::f64_suffixed(ratio);
        fields.extend(quote!(eviction_ratio: #ratio,));
    }
    if let Some(jitter) = args.ttl_jitter {
        let jitter = Literal::f64_suffixed(jitter);
        fields.extend(quote!(ttl_jitter: #jitter,));
    }
    let key_span = args
        .key
        .as_ref()
        .map_or_else(Span::call_site, Spanned::span);
    let key = quote_spanned! {key_span=>
        let __reliable_key = #key;
        #private::assert_cache_key(&__reliable_key);
    };
    if let (Some(return_type), false) = (item.return_type(), item.returns_impl_trait()) {
        setup.extend(quote_spanned! {return_type.span()=>
            #private::assert_cache_output::<#return_type>();
        });
    }
    setup.extend(quote! {
        static __RELIABLE_CACHE: #private::CacheSite = #private::CacheSite::new();
    });
    let defaults = match preset {
        Some(preset) => quote!((#preset.cache)()),
        None => quote!(#private::CacheConfig::default()),
    };
    let config = quote!(|| #private::CacheConfig { #fields ..#defaults });
    let site_name = quote!(#private::SiteName::new(#name, #marker));
    // The hit path returns before any future is built (when the return type can be named).
    let hit = match (item.return_type(), item.returns_impl_trait()) {
        (Some(return_type), false) => quote! {
            if let ::core::option::Option::Some(__reliable_hit) = #private::cache_hit::<#return_type, _>(
                &__RELIABLE_CACHE, #site_name, #config, &__reliable_key,
            ) {
                return __reliable_hit;
            }
        },
        _ => TokenStream::new(),
    };
    if !item.is_async() {
        let call = if degrading {
            // `call` is the outcome (success, or failure with its cause) and borrows the
            // arguments, which the fallback needs after it.
            let return_type = item.return_type();
            quote!(#private::cached_outcome_sync::<#return_type, _>(&__RELIABLE_CACHE, #site_name, #config, __reliable_key, || { #call }))
        } else {
            quote!(#private::cached_sync(&__RELIABLE_CACHE, #site_name, #config, __reliable_key, move || { #call }))
        };
        setup.extend(key);
        setup.extend(hit);
        return call;
    }
    // The miss path is boxed and polled out of line: it is the large part of the fn's future,
    // and keeping it out keeps the hit path's future small. The key lives in a block that ends
    // before the `.await`, so the future does not keep a slot for it either.
    let miss = if degrading {
        let return_type = item.return_type();
        quote!(#private::cached_outcome::<#return_type, _, _>(&__RELIABLE_CACHE, #site_name, #config, __reliable_key, async { #call }))
    } else {
        quote!(#private::cached(&__RELIABLE_CACHE, #site_name, #config, __reliable_key, async move { #call }))
    };
    quote! {{
        let __reliable_miss = {
            #key
            #hit
            #private::out_of_line(#miss)
        };
        __reliable_miss.await
    }}
}
