//! `#[with_backoff]`: the call site's retry policy and its hooks.

use crate::args::BackoffArgs;
use crate::expand::option_str;
use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

pub(crate) struct RetryTokens {
    /// `retry_if`, `retry_after` and `on_retry`, typed against the return type `R`.
    pub(crate) retry_if: TokenStream,
    pub(crate) retry_after: TokenStream,
    pub(crate) on_retry: TokenStream,
}

/// Adds the policy's `static` and lookup to `setup`; the policy is `__reliable_policy`.
pub(crate) fn setup(
    args: &BackoffArgs,
    private: &TokenStream,
    marker: &TokenStream,
    return_type: Option<&syn::Type>,
    preset: Option<&TokenStream>,
    setup: &mut TokenStream,
) -> RetryTokens {
    let name = option_str(args.name.as_ref());
    let duration = |nanos: crate::args::Nanos| quote!(#private::Duration::from_nanos(#nanos));
    let mut backoff = TokenStream::new();
    if let Some(initial) = args.initial_delay {
        let initial = duration(initial);
        backoff.extend(quote!(initial_delay: #initial,));
    }
    if let Some(max) = args.max_delay {
        let max = duration(max);
        backoff.extend(quote!(max_delay: #max,));
    }
    if let Some(multiplier) = args.multiplier {
        let multiplier = Literal::f64_suffixed(multiplier);
        backoff.extend(quote!(multiplier: #multiplier,));
    }
    if let Some(attempts) = args.max_attempts {
        backoff.extend(quote!(max_attempts: #attempts,));
    }
    if let Some(jitter) = args.jitter {
        let variant = syn::Ident::new(jitter, proc_macro2::Span::call_site());
        backoff.extend(quote!(jitter: #private::Jitter::#variant,));
    }
    let mut fields = TokenStream::new();
    match (args.budget, args.budget_ratio) {
        (Some(false), _) => fields.extend(quote!(budget: ::core::option::Option::None,)),
        (_, Some(ratio)) => {
            let ratio = Literal::f64_suffixed(ratio);
            fields.extend(
                quote!(budget: ::core::option::Option::Some(#private::RetryBudget {
                ratio: #ratio,
                ..#private::RetryBudget::default()
            }),),
            );
        }
        _ => {}
    }
    if let Some(retry_timeouts) = args.retry_timeouts {
        fields.extend(quote!(retry_timeouts: #retry_timeouts,));
    }
    let defaults = match preset {
        Some(preset) => quote!((#preset.backoff)()),
        None => quote!(#private::BackoffConfig::default()),
    };
    setup.extend(quote! {
        static __RELIABLE_RETRY: #private::Site<#private::RetryPolicy> = #private::Site::new();
        let __reliable_policy = __RELIABLE_RETRY.retry_policy(
            #private::SiteName::new(#name, #marker),
            || #private::RetryConfig {
                backoff: #private::BackoffConfig { #backoff ..#defaults },
                #fields
                ..#private::RetryConfig::default()
            },
        );
    });
    // A hook of the wrong type is an error at the hook's path: pin it to the fn's error type.
    let pinned =
        |path: &Option<syn::Path>, pin: &str, default: TokenStream| match (path, return_type) {
            (Some(path), Some(return_type)) => {
                let pin = syn::Ident::new(pin, path.span());
                quote_spanned!(path.span()=> #private::#pin::<#return_type>(#path))
            }
            (Some(path), None) => quote_spanned!(path.span()=> #path),
            (None, _) => default,
        };
    RetryTokens {
        retry_if: pinned(&args.retry_if, "retry_predicate", quote!(|_| true)),
        retry_after: pinned(
            &args.retry_after,
            "retry_hint",
            quote!(|_| ::core::option::Option::None),
        ),
        on_retry: pinned(&args.on_retry, "retry_callback", quote!(|_, _, _| {})),
    }
}
