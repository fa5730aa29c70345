//! `#[circuit_breaker]`: the call site's breaker and the check of the return type.

use crate::args::{BreakerArgs, WindowArg};
use crate::expand::option_str;
use crate::item::FnItem;
use proc_macro2::{Literal, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

pub(crate) struct BreakerTokens {
    /// The expression looking the breaker up (evaluated once, when the site's layers are built).
    pub(crate) handle: TokenStream,
    /// The `FnOnce(&E) -> bool` deciding which errors count.
    pub(crate) classify: TokenStream,
}

/// Adds the breaker's `static` to `setup`; the handle is the (once-per-site) lookup.
pub(crate) fn setup(
    args: &BreakerArgs,
    private: &TokenStream,
    marker: &TokenStream,
    item: &FnItem,
    preset: Option<&TokenStream>,
    setup: &mut TokenStream,
) -> BreakerTokens {
    let name = option_str(args.name.as_ref());
    let group = option_str(args.group.as_ref());
    let mut fields = TokenStream::new();
    let duration = |nanos: crate::args::Nanos| quote!(#private::Duration::from_nanos(#nanos));
    if let Some(threshold) = args.failure_threshold {
        fields.extend(quote!(failure_threshold: #threshold,));
    }
    if let Some(rate) = args.failure_rate {
        let rate = Literal::f64_suffixed(rate);
        fields.extend(quote!(failure_rate_threshold: ::core::option::Option::Some(#rate),));
    }
    if let Some(rate) = args.slow_call_rate {
        let rate = Literal::f64_suffixed(rate);
        fields.extend(quote!(slow_call_rate_threshold: ::core::option::Option::Some(#rate),));
    }
    if let Some(slow) = args.slow_call_duration {
        let slow = duration(slow);
        fields.extend(quote!(slow_call_duration: #slow,));
    }
    match args.window {
        Some(WindowArg::Calls(calls)) => {
            fields.extend(quote!(window: #private::BreakerWindow::Calls(#calls),))
        }
        Some(WindowArg::Time(span)) => {
            let span = duration(span);
            fields.extend(quote!(window: #private::BreakerWindow::Time(#span),))
        }
        None => {}
    }
    if let Some(minimum) = args.minimum_calls {
        fields.extend(quote!(minimum_calls: #minimum,));
    }
    if let Some(timeout) = args.timeout {
        let timeout = duration(timeout);
        fields.extend(quote!(timeout: #timeout,));
    }
    if let Some(multiplier) = args.timeout_multiplier {
        let multiplier = Literal::f64_suffixed(multiplier);
        fields.extend(quote!(timeout_multiplier: #multiplier,));
    }
    if let Some(max) = args.max_timeout {
        let max = duration(max);
        fields.extend(quote!(max_timeout: #max,));
    }
    if let Some(threshold) = args.success_threshold {
        fields.extend(quote!(success_threshold: #threshold,));
    }
    if let Some(calls) = args.half_open_max_calls {
        fields.extend(quote!(half_open_max_calls: #calls,));
    }

    let defaults = match preset {
        Some(preset) => quote!((#preset.breaker)()),
        None => quote!(#private::BreakerConfig::default()),
    };
    setup.extend(quote! {
        static __RELIABLE_BREAKER: #private::Site<#private::CircuitBreaker> = #private::Site::new();
    });
    let lookup = quote! {
        __RELIABLE_BREAKER.breaker(
            #private::SiteName::new(#name, #marker),
            || #private::BreakerConfig { #fields ..#defaults },
            #group,
        )
    };
    let classify = match (&args.failure_if, item.return_type()) {
        (Some(path), Some(return_type)) if !item.returns_impl_trait() => {
            quote_spanned!(path.span()=> #private::failure_predicate::<#return_type>(#path))
        }
        (Some(path), _) => quote_spanned!(path.span()=> #path),
        (None, _) => quote!(|_| true),
    };
    BreakerTokens {
        handle: lookup,
        classify,
    }
}
