//! The `Policy::builder(..)` chain of a plan: one call per layer, its arguments as the
//! configuration's setters. Defaults and validation live in the runtime, so this only says
//! what the attributes wrote.

use crate::args::{Nanos, WindowArg};
use crate::plan::{Plan, PresetSource};
use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// What the chain needs of the call site.
pub(crate) struct Site<'a> {
    /// `<runtime>::__private`.
    pub(crate) private: &'a TokenStream,
    /// The runtime crate's path.
    pub(crate) runtime: &'a crate::path::RuntimePath,
    /// The fn's declared return type, when it can be named (pins the hooks' error type).
    pub(crate) return_type: Option<&'a syn::Type>,
    /// The policy's name, a `&str` in scope (a layer without `name` takes it).
    pub(crate) policy_name: &'a TokenStream,
}

fn duration(nanos: Nanos, private: &TokenStream) -> TokenStream {
    let nanos = nanos.0;
    let (unit, count) = if nanos % 1_000_000_000 == 0 {
        ("from_secs", nanos / 1_000_000_000)
    } else if nanos % 1_000_000 == 0 {
        ("from_millis", nanos / 1_000_000)
    } else {
        ("from_nanos", nanos)
    };
    let unit = syn::Ident::new(unit, Span::call_site());
    let count = Literal::u64_unsuffixed(count);
    quote!(#private::Duration::#unit(#count))
}

fn float(value: f64) -> Literal {
    Literal::f64_suffixed(value)
}

/// The layer's name: the one written, or the policy's.
fn layer_name(name: Option<&syn::LitStr>, site: &Site<'_>) -> TokenStream {
    match name {
        Some(name) => quote!(#name),
        None => site.policy_name.clone(),
    }
}

/// The callbacks written on the attributes (`failure_if`, `retry_if`, ...), typed by the fn's
/// error type: `FnHooks { .. }`, or nothing (the call then takes the zero-sized `NoHooks`).
pub(crate) fn hooks(plan: &Plan, site: &Site<'_>) -> TokenStream {
    let private = site.private;
    let mut fields = TokenStream::new();
    let mut add = |field: &str, path: Option<&syn::Path>, pin: &str| {
        if let Some(path) = path {
            let field = syn::Ident::new(field, Span::call_site());
            let hook = hook(path, pin, site);
            fields.extend(quote!(#field: ::core::option::Option::Some(#hook),));
        }
    };
    if let Some(args) = &plan.breaker {
        add("failure_if", args.failure_if.as_ref(), "failure_predicate");
    }
    if let Some(args) = &plan.backoff {
        add("retry_if", args.retry_if.as_ref(), "retry_predicate");
        add("retry_after", args.retry_after.as_ref(), "retry_hint");
        add("on_retry", args.on_retry.as_ref(), "retry_callback");
    }
    if fields.is_empty() {
        TokenStream::new()
    } else {
        quote!(#private::FnHooks { #fields ..#private::FnHooks::NONE })
    }
}

/// A hook pinned to the fn's error type, so a hook of the wrong type is an error at its path.
fn hook(path: &syn::Path, pin: &str, site: &Site<'_>) -> TokenStream {
    let private = site.private;
    match site.return_type {
        Some(return_type) => {
            let pin = syn::Ident::new(pin, path.span());
            quote_spanned!(path.span()=> #private::#pin::<#return_type>(#path))
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
    let mut group = None;
    if let Some(args) = &plan.monitored {
        let name = layer_name(args.name.as_ref(), site);
        let mut setters = TokenStream::new();
        if let Some(p95) = args.p95 {
            let p95 = duration(p95, site.private);
            setters.extend(quote!(.max_latency_p95(#p95)));
        }
        if let Some(p99) = args.p99 {
            let p99 = duration(p99, site.private);
            setters.extend(quote!(.max_latency_p99(#p99)));
        }
        if let Some(rate) = args.min_success_rate {
            let rate = float(rate);
            setters.extend(quote!(.min_success_rate(#rate)));
        }
        if let Some(max) = args.max_consecutive_failures {
            setters.extend(quote!(.max_consecutive_failures(#max)));
        }
        if let Some(min) = args.min_calls {
            setters.extend(quote!(.min_calls(#min)));
        }
        // A preset turns the monitor on under the policy's name already.
        if !(plan.preset.is_some() && setters.is_empty() && args.name.is_none()) {
            chain.extend(quote!(.monitor(#name, |sla| sla #setters)));
        }
        match args.window {
            Some(WindowArg::Calls(calls)) => {
                chain.extend(quote!(.monitor_window(#runtime::sla::SlaWindow::Calls(#calls))));
            }
            Some(WindowArg::Time(span)) => {
                let span = duration(span, site.private);
                chain.extend(quote!(.monitor_window(#runtime::sla::SlaWindow::Time(#span))));
            }
            None => {}
        }
        group = group.or(args.group.as_ref());
    }
    if let Some(args) = &plan.breaker {
        let name = layer_name(args.name.as_ref(), site);
        let mut setters = TokenStream::new();
        if let Some(threshold) = args.failure_threshold {
            setters.extend(quote!(.failure_threshold(#threshold)));
        }
        if let Some(rate) = args.failure_rate {
            let rate = float(rate);
            setters.extend(quote!(.failure_rate_threshold(#rate)));
        }
        if let Some(rate) = args.slow_call_rate {
            let rate = float(rate);
            setters.extend(quote!(.slow_call_rate_threshold(#rate)));
        }
        if let Some(slow) = args.slow_call_duration {
            let slow = duration(slow, site.private);
            setters.extend(quote!(.slow_call_duration(#slow)));
        }
        match args.window {
            Some(WindowArg::Calls(calls)) => {
                setters.extend(quote!(.window(#runtime::breaker::BreakerWindow::Calls(#calls))));
            }
            Some(WindowArg::Time(span)) => {
                let span = duration(span, site.private);
                setters.extend(quote!(.window(#runtime::breaker::BreakerWindow::Time(#span))));
            }
            None => {}
        }
        if let Some(minimum) = args.minimum_calls {
            setters.extend(quote!(.minimum_calls(#minimum)));
        }
        if let Some(timeout) = args.timeout {
            let timeout = duration(timeout, site.private);
            setters.extend(quote!(.timeout(#timeout)));
        }
        if let Some(multiplier) = args.timeout_multiplier {
            let multiplier = float(multiplier);
            setters.extend(quote!(.timeout_multiplier(#multiplier)));
        }
        if let Some(max) = args.max_timeout {
            let max = duration(max, site.private);
            setters.extend(quote!(.max_timeout(#max)));
        }
        if let Some(threshold) = args.success_threshold {
            setters.extend(quote!(.success_threshold(#threshold)));
        }
        if let Some(calls) = args.half_open_max_calls {
            setters.extend(quote!(.half_open_max_calls(#calls)));
        }
        if !(plan.preset.is_some() && setters.is_empty() && args.name.is_none()) {
            chain.extend(quote!(.breaker(#name, |breaker| breaker #setters)));
        }
        group = group.or(args.group.as_ref());
    }
    if let Some(group) = group {
        chain.extend(quote!(.group(#group)));
    }
    if let Some(args) = &plan.backoff {
        let name = layer_name(args.name.as_ref(), site);
        let mut setters = TokenStream::new();
        if let Some(initial) = args.initial_delay {
            let initial = duration(initial, site.private);
            setters.extend(quote!(.initial_delay(#initial)));
        }
        if let Some(max) = args.max_delay {
            let max = duration(max, site.private);
            setters.extend(quote!(.max_delay(#max)));
        }
        if let Some(multiplier) = args.multiplier {
            let multiplier = float(multiplier);
            setters.extend(quote!(.multiplier(#multiplier)));
        }
        if let Some(attempts) = args.max_attempts {
            setters.extend(quote!(.max_attempts(#attempts)));
        }
        if let Some(jitter) = args.jitter {
            let variant = syn::Ident::new(jitter, Span::call_site());
            setters.extend(quote!(.jitter(#runtime::retry::Jitter::#variant)));
        }
        match (args.budget, args.budget_ratio) {
            (Some(false), _) => setters.extend(quote!(.budget(::core::option::Option::None))),
            (_, Some(ratio)) => {
                let ratio = float(ratio);
                setters.extend(quote!(.budget(::core::option::Option::Some(
                    #runtime::retry::RetryBudget { ratio: #ratio, ..#runtime::retry::RetryBudget::default() }
                ))));
            }
            _ => {}
        }
        if let Some(retry_timeouts) = args.retry_timeouts {
            setters.extend(quote!(.retry_timeouts(#retry_timeouts)));
        }
        if !(plan.preset.is_some() && setters.is_empty() && args.name.is_none()) {
            chain.extend(quote!(.retry(#name, |retry| retry #setters)));
        }
    }
    if let Some(args) = &plan.rate_limited {
        let name = layer_name(args.name.as_ref(), site);
        let (limit, window) = (args.limit, duration(args.window, site.private));
        let burst = match args.burst {
            Some(burst) => quote!(::core::option::Option::Some(#burst)),
            None => quote!(::core::option::Option::None),
        };
        chain.extend(quote! {
            .rate_limit(#name, #runtime::limit::RateLimit { limit: #limit, window: #window, burst: #burst })
        });
        if args.wait {
            chain.extend(quote!(.wait_for_rate_limit()));
        }
    }
    if let Some(args) = &plan.bulkhead {
        let name = layer_name(args.name.as_ref(), site);
        let max_concurrent = args.max_concurrent;
        let mut setters = quote!(.max_concurrent(#max_concurrent));
        if let Some((wait, _)) = args.max_wait {
            let wait = duration(wait, site.private);
            setters.extend(quote!(.max_wait(#wait)));
        }
        chain.extend(quote!(.bulkhead(#name, |bulkhead| bulkhead #setters)));
    }
    if let Some((timeout, _)) = &plan.timeout {
        let after = duration(timeout.duration, site.private);
        match &timeout.name {
            Some(name) => chain.extend(quote!(.named_timeout(#name, #after))),
            None => chain.extend(quote!(.timeout(#after))),
        }
    }
    if let Some((args, _)) = &plan.cached {
        let name = layer_name(args.name.as_ref(), site);
        let mut setters = TokenStream::new();
        // `ttl` first: it also sets the adaptive range and the stale period, which the
        // arguments after it may set otherwise.
        if let Some(ttl) = args.ttl {
            let ttl = duration(ttl, site.private);
            setters.extend(quote!(.ttl(#ttl)));
        }
        if let Some(stale) = args.stale {
            let stale = duration(stale, site.private);
            setters.extend(quote!(.stale(#stale)));
        }
        if let Some(min) = args.min_ttl {
            let min = duration(min, site.private);
            setters.extend(quote!(.min_ttl(#min)));
        }
        if let Some(max) = args.max_ttl {
            let max = duration(max, site.private);
            setters.extend(quote!(.max_ttl(#max)));
        }
        if let Some(policy) = args.policy {
            let variant = syn::Ident::new(policy, Span::call_site());
            setters.extend(quote!(.policy(#runtime::cache::CachePolicy::#variant)));
        }
        if let Some(max) = args.max_entries {
            let max = max as usize;
            setters.extend(quote!(.max_entries(#max)));
        }
        if let Some(ratio) = args.eviction_ratio {
            let ratio = float(ratio);
            setters.extend(quote!(.eviction_ratio(#ratio)));
        }
        if let Some(jitter) = args.ttl_jitter {
            let jitter = float(jitter);
            setters.extend(quote!(.ttl_jitter(#jitter)));
        }
        chain.extend(quote!(.cache(#name, |c| c #setters)));
    }
    if let Some((args, _)) = &plan.degradation {
        if let Some(name) = &args.name {
            chain.extend(quote!(.fallback(#name)));
        }
    }
    chain
}
