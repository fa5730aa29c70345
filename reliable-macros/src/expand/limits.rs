//! `#[rate_limited]` and `#[bulkhead]`: the call site's limiter and bulkhead.

use crate::args::{BulkheadArgs, RateLimitedArgs};
use crate::expand::option_str;
use proc_macro2::TokenStream;
use quote::quote;

/// Adds the limiter's `static` to `setup`; returns its lookup.
pub(crate) fn rate_limiter(
    args: &RateLimitedArgs,
    private: &TokenStream,
    marker: &TokenStream,
    setup: &mut TokenStream,
) -> TokenStream {
    let name = option_str(args.name.as_ref());
    let (limit, window) = (args.limit, args.window);
    let burst = match args.burst {
        Some(burst) => quote!(::core::option::Option::Some(#burst)),
        None => quote!(::core::option::Option::None),
    };
    setup.extend(quote! {
        static __RELIABLE_LIMITER: #private::Site<#private::RateLimiter> = #private::Site::new();
    });
    let lookup = quote! {
        __RELIABLE_LIMITER.rate_limiter(
            #private::SiteName::new(#name, #marker),
            || #private::RateLimit {
                limit: #limit,
                window: #private::Duration::from_nanos(#window),
                burst: #burst,
            },
        )
    };
    lookup
}

/// Adds the bulkhead's `static` to `setup`; returns its lookup.
pub(crate) fn bulkhead(
    args: &BulkheadArgs,
    private: &TokenStream,
    marker: &TokenStream,
    setup: &mut TokenStream,
) -> TokenStream {
    let name = option_str(args.name.as_ref());
    let max_concurrent = args.max_concurrent;
    let max_wait = args.max_wait.map_or(0, |(wait, _)| wait.0);
    setup.extend(quote! {
        static __RELIABLE_BULKHEAD: #private::Site<#private::Bulkhead> = #private::Site::new();
    });
    let lookup = quote! {
        __RELIABLE_BULKHEAD.bulkhead(
            #private::SiteName::new(#name, #marker),
            || #private::BulkheadConfig {
                max_concurrent: #max_concurrent,
                max_wait: #private::Duration::from_nanos(#max_wait),
            },
        )
    };
    lookup
}
