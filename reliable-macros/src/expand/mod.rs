//! Code generation: the fn shell (async or blocking, any receiver, generics) and one module per
//! layer. The body is kept token for token inside an `async move` block (or a `move` closure),
//! so `self`, `Self`, generics and error spans stay on the user's code.

mod breaker;
mod cached;
mod limits;
mod monitored;
mod retry;

use crate::args::DegradationArgs;
use crate::errors::{item_with_errors, Errors};
use crate::item::FnItem;
use crate::plan::{plan, Layer, Plan, PresetSource};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

/// Expands one of our attributes (and the others on the same fn).
pub(crate) fn attribute(layer: Layer, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut func = match parse_fn(layer, item.clone()) {
        Ok(func) => func,
        Err(error) => return item_with_errors(item, &error),
    };
    let mut errors = Errors::default();
    let plan = plan(layer, args, &mut func.attrs, &mut errors);
    let item = FnItem { func };
    check_shape(&plan, &item, &mut errors);
    match errors.finish() {
        // Emit the fn without our attributes, so the rest of the crate still sees it.
        Err(error) => item_with_errors(item.func.into_token_stream(), &error),
        Ok(()) => generate(&plan, item),
    }
}

fn parse_fn(layer: Layer, item: TokenStream) -> syn::Result<syn::ItemFn> {
    let attribute = layer.name();
    match syn::parse2::<syn::Item>(item.clone()) {
        Ok(syn::Item::Fn(func)) => Ok(func),
        Ok(other) => {
            if let Ok(signature) = syn::parse2::<syn::TraitItemFn>(item) {
                return Err(syn::Error::new_spanned(
                    &signature.sig,
                    format!("`#[{attribute}]` needs a function body; put it on the implementation, not on the trait's declaration"),
                ));
            }
            Err(syn::Error::new(
                item_span(&other),
                format!(
                    "`#[{attribute}]` applies to functions and methods, not to {}",
                    item_kind(&other)
                ),
            ))
        }
        Err(_) => {
            if let Ok(signature) = syn::parse2::<syn::TraitItemFn>(item.clone()) {
                return Err(syn::Error::new_spanned(
                    &signature.sig,
                    format!("`#[{attribute}]` needs a function body; put it on the implementation, not on the trait's declaration"),
                ));
            }
            Err(syn::Error::new(
                item.span(),
                format!("`#[{attribute}]` applies to functions and methods"),
            ))
        }
    }
}

fn item_kind(item: &syn::Item) -> &'static str {
    match item {
        syn::Item::Struct(_) => "a struct",
        syn::Item::Enum(_) => "an enum",
        syn::Item::Impl(_) => "an impl block (put it on each method)",
        syn::Item::Trait(_) => "a trait",
        syn::Item::Mod(_) => "a module",
        syn::Item::Const(_) => "a const",
        syn::Item::Static(_) => "a static",
        syn::Item::Type(_) => "a type alias",
        syn::Item::Use(_) => "a use declaration",
        _ => "this item",
    }
}

fn item_span(item: &syn::Item) -> Span {
    let ident = match item {
        syn::Item::Struct(item) => Some(&item.ident),
        syn::Item::Enum(item) => Some(&item.ident),
        syn::Item::Trait(item) => Some(&item.ident),
        syn::Item::Mod(item) => Some(&item.ident),
        syn::Item::Const(item) => Some(&item.ident),
        syn::Item::Static(item) => Some(&item.ident),
        syn::Item::Type(item) => Some(&item.ident),
        _ => None,
    };
    ident.map_or_else(|| item.span(), syn::Ident::span)
}

fn check_shape(plan: &Plan, item: &FnItem, errors: &mut Errors) {
    let sig = &item.func.sig;
    if let Some(constness) = &sig.constness {
        errors.spanned(constness, "reliability attributes cannot apply to a `const fn`: it cannot read clocks or shared state");
    }
    let needs_result = [
        (plan.breaker.is_some(), "circuit_breaker", "an open breaker"),
        (
            plan.backoff.is_some(),
            "with_backoff",
            "a call that fails after its retries",
        ),
        (plan.timeout.is_some(), "timeout", "a call that times out"),
        (
            plan.rate_limited.is_some(),
            "rate_limited",
            "a call over the limit",
        ),
        (
            plan.bulkhead.is_some(),
            "bulkhead",
            "a call refused by a full bulkhead",
        ),
        (
            plan.degradation.is_some(),
            "graceful_degradation",
            "a failed call",
        ),
    ];
    if item.return_type().is_none() {
        if let Some((_, attribute, who)) = needs_result.iter().find(|(used, _, _)| *used) {
            errors.push(syn::Error::new(
                sig.paren_token.span.close(),
                format!(
                    "`#[{attribute}]` needs the function to return `Result<T, E>`, but `{}` returns `()`; {who} must be able to return an error",
                    sig.ident
                ),
            ));
        }
    }
    if let Some((_, span)) = &plan.degradation {
        if item.returns_impl_trait() {
            errors.push(syn::Error::new(
                *span,
                "`#[graceful_degradation]` needs a nameable return type `Result<T, E>`, not `impl Trait`",
            ));
        }
        for input in &sig.inputs {
            if let syn::FnArg::Typed(typed) = input {
                if !matches!(&*typed.pat, syn::Pat::Ident(_)) {
                    errors.spanned(
                        &typed.pat,
                        "`#[graceful_degradation]` passes the arguments to the fallback by name; bind this argument to a name and destructure it in the body",
                    );
                }
            }
        }
    }
    let bulkhead_wait = plan.bulkhead.as_ref().and_then(|b| b.max_wait);
    if let (Some((wait, span)), false) = (bulkhead_wait, item.is_async()) {
        if wait.0 > 0 {
            errors.push(syn::Error::new(
                span,
                "`max_wait` needs an `async fn`: a blocking fn refuses at once when the bulkhead is full; remove `max_wait` or make the fn async",
            ));
        }
    }
    if let (Some((_, span)), false) = (&plan.timeout, item.is_async()) {
        errors.push(syn::Error::new(
            *span,
            "`#[timeout]` needs an `async fn`: a blocking call cannot be stopped midway; make the fn async (run blocking work with `tokio::task::spawn_blocking`) or drop `#[timeout]`",
        ));
    }
}

fn generate(plan: &Plan, item: FnItem) -> TokenStream {
    let private = plan.runtime.private();
    let needs_marker = plan.has_unnamed_layer();
    let marker = if needs_marker {
        quote!(#private::type_name_of_val(&__reliable_site))
    } else {
        quote!("")
    };
    let mut setup = TokenStream::new();
    for path in &plan.absorbed {
        setup.extend(quote! {
            #[allow(unused_imports, clippy::single_component_path_imports)]
            use #path as _;
        });
    }
    if needs_marker {
        setup.extend(quote! {
            // Names the instance after this fn's path (module, type, fn) when no `name` is given.
            fn __reliable_site() {}
        });
    }
    let preset = preset_tokens(plan, &private);
    let preset = preset.as_ref();
    let monitor = plan
        .monitored
        .as_ref()
        .map(|args| monitored::setup(args, &private, &marker, preset, &mut setup));
    let breaker = plan
        .breaker
        .as_ref()
        .map(|args| breaker::setup(args, &private, &marker, &item, preset, &mut setup));
    let degrading = plan.degradation.is_some();

    let nameable = item.return_type().filter(|_| !item.returns_impl_trait());
    if let (true, Some(return_type)) = (plan.needs_result(), nameable) {
        // Point type errors at the user's return type: "needs `Result<T, E>`" or
        // "`E` cannot hold a `Rejected`".
        setup.extend(quote_spanned! {return_type.span()=>
            #private::assert_breaker_output::<#return_type>();
        });
    }
    if let (true, Some(return_type)) = (degrading, nameable) {
        setup.extend(quote_spanned! {return_type.span()=>
            #private::assert_result::<#return_type>();
        });
    }
    let site = SiteTokens {
        private: &private,
        marker: &marker,
        preset,
    };
    let call = if plan.needs_result() {
        pipeline(plan, &item, &site, breaker, monitor, &mut setup)
    } else {
        // `#[monitored]` and/or `#[cached]` alone: any return type (a `Result`'s `Err` fails).
        let body = body(&item, !degrading);
        match (monitor, item.is_async()) {
            (Some(monitor), is_async) => {
                let classify = quote! {
                    |__reliable_output| {
                        #[allow(unused_imports)]
                        use #private::{FailedIfErr as _, NeverFailed as _};
                        __reliable_output.__reliable_failed()
                    }
                };
                let layers = layers_site(
                    &private,
                    quote!(#private::Layers { monitor: ::core::option::Option::Some(#monitor), ..#private::Layers::NONE }),
                    &mut setup,
                );
                if is_async {
                    quote!(#private::monitored(#layers, #body, #classify).await)
                } else {
                    quote!(#private::monitored_sync(#layers, #body, #classify))
                }
            }
            (None, true) => quote!(#body.await),
            (None, false) => quote!((#body)()),
        }
    };
    // With a fallback, the layers inside it hand over the outcome (the failure keeps its cause).
    let call = match (degrading, plan.needs_result()) {
        (true, false) => {
            // `check_shape` refused a fn without a return type.
            let return_type = item.return_type().expect("a fallback needs a return type");
            let into =
                quote_spanned!(return_type.span()=> #private::attempt_result::<#return_type>);
            quote!(#into(#call))
        }
        _ => call,
    };
    let call = cache_around(plan, &item, &site, call, &mut setup);
    let call = match &plan.degradation {
        Some((args, _)) => degrade_around(plan, args, &item, &private, &marker, call, &mut setup),
        None => call,
    };
    shell(item, &setup, &call)
}

/// The preset the layers start from: `None` for the single attributes (their own defaults).
fn preset_tokens(plan: &Plan, private: &TokenStream) -> Option<TokenStream> {
    let runtime = &plan.runtime;
    match plan.preset.as_ref()? {
        PresetSource::Expr(expr) => Some(quote_spanned!(expr.span()=> #private::preset(#expr))),
        PresetSource::Builtin(name) => {
            let name = syn::Ident::new(name, Span::call_site());
            Some(quote!(#private::preset(#runtime::preset::#name)))
        }
    }
}

/// The outermost layer: the outcome of the layers inside, or the fallback's answer.
fn degrade_around(
    plan: &Plan,
    args: &DegradationArgs,
    item: &FnItem,
    private: &TokenStream,
    marker: &TokenStream,
    call: TokenStream,
    setup: &mut TokenStream,
) -> TokenStream {
    let name = option_str(args.name.as_ref());
    let return_type = item
        .return_type()
        .expect("`check_shape` refused a fallback on a fn without a return type");
    let fallback = &args.fallback;
    let arguments = fallback_arguments(item);
    let into_error = if plan.rejects() {
        quote!(#private::into_error)
    } else {
        quote!(#private::inner_error)
    };
    setup.extend(quote! {
        static __RELIABLE_DEGRADATION: #private::Site<#private::Degradation> = #private::Site::new();
    });
    let site = quote! {
        __RELIABLE_DEGRADATION.degradation(#private::SiteName::new(#name, #marker))
    };
    let finish = quote_spanned!(return_type.span()=> #private::finish_fallback::<#return_type>);
    let degrade = quote_spanned!(return_type.span()=> #private::degrade::<#return_type>);
    // Spanned at the fallback, so a fallback of the wrong type is an error there.
    let failed = if item.is_async() {
        let answer = quote_spanned! {fallback.span()=>
            #private::AsyncFallback::<_, _, #return_type, _>::answer(#fallback, (#(#arguments,)*), &__reliable_failure)
        };
        quote! {
            let __reliable_answer = match #private::start_fallback(|| #answer) {
                ::core::option::Option::Some(__reliable_answer) => __reliable_answer.await,
                ::core::option::Option::None => ::core::option::Option::None,
            };
            #finish(#site, __reliable_answer, __reliable_failure, #into_error)
        }
    } else {
        let answer = quote_spanned! {fallback.span()=>
            #private::Fallback::<_, _, #return_type, _>::answer(#fallback, (#(#arguments,)*), __reliable_cause)
        };
        quote! {
            #degrade(#site, __reliable_failure, |__reliable_cause| #answer, #into_error)
        }
    };
    // Through a runtime fn typed by the return type: a return type that is not a `Result` is one
    // trait error at it, not a cascade of mismatched `Ok`/`Err` patterns.
    let split = quote_spanned!(return_type.span()=> #private::split_outcome::<#return_type>);
    quote! {
        match #split({ #call }) {
            ::core::result::Result::Ok(__reliable_output) => __reliable_output,
            ::core::result::Result::Err(__reliable_failure) => { #failed }
        }
    }
}

/// The fn's arguments as the fallback gets them: by shared reference (`&self` included).
fn fallback_arguments(item: &FnItem) -> Vec<TokenStream> {
    item.func
        .sig
        .inputs
        .iter()
        .filter_map(|input| match input {
            syn::FnArg::Receiver(receiver) => {
                Some(match (&receiver.reference, &receiver.colon_token) {
                    (Some(_), _) => quote!(&*self),
                    (None, _) => quote!(&self),
                })
            }
            syn::FnArg::Typed(typed) => {
                let syn::Pat::Ident(ident) = &*typed.pat else {
                    return None;
                };
                let name = &ident.ident;
                Some(match &*typed.ty {
                    syn::Type::Reference(_) => quote!(&*#name),
                    _ => quote!(&#name),
                })
            }
        })
        .collect()
}

/// What every layer's code generation needs to know of the call site.
pub(crate) struct SiteTokens<'a> {
    /// `<runtime>::__private`.
    pub(crate) private: &'a TokenStream,
    /// The fn's path marker (for default instance names).
    pub(crate) marker: &'a TokenStream,
    /// The preset the layers start from, if any.
    pub(crate) preset: Option<&'a TokenStream>,
}

/// Keeps the call site's layers in one `static`, built on the first call: each call then
/// checks one `OnceLock` instead of one per layer, and the call's future holds a reference to
/// them rather than a copy.
fn layers_site(private: &TokenStream, layers: TokenStream, setup: &mut TokenStream) -> TokenStream {
    setup.extend(quote! {
        static __RELIABLE_LAYERS: #private::LayersSite = #private::LayersSite::new();
        let __reliable_layers = __RELIABLE_LAYERS.get(|| #layers);
    });
    quote!(__reliable_layers)
}

/// `call` inside the cache, when the plan has one (the outermost layer but degradation).
fn cache_around(
    plan: &Plan,
    item: &FnItem,
    site: &SiteTokens<'_>,
    call: TokenStream,
    setup: &mut TokenStream,
) -> TokenStream {
    let Some((args, span)) = &plan.cached else {
        return call;
    };
    let mut errors = Errors::default();
    match cached::key(args, item, *span, &mut errors) {
        Some(key) => cached::wrap(args, key, site, item, plan, call, setup),
        None => errors
            .finish()
            .err()
            .map_or(call, |error| error.to_compile_error()),
    }
}

/// The fn as written, with `setup` and `call` as its body.
fn shell(item: FnItem, setup: &TokenStream, call: &TokenStream) -> TokenStream {
    let syn::ItemFn {
        attrs,
        vis,
        sig,
        block,
    } = item.func;
    quote_spanned! {block.span()=>
        #(#attrs)*
        #vis #sig {
            #setup
            #call
        }
    }
}

/// The pipeline of a `Result`-returning fn: each attempt goes through the breaker, the rate
/// limiter, the bulkhead, the monitor and the timeout (the runtime's `AttemptState`);
/// `settle` decides whether to retry.
fn pipeline(
    plan: &Plan,
    item: &FnItem,
    site: &SiteTokens<'_>,
    breaker: Option<breaker::BreakerTokens>,
    monitor: Option<TokenStream>,
    setup: &mut TokenStream,
) -> TokenStream {
    let (private, marker, preset) = (site.private, site.marker, site.preset);
    let nameable = item.return_type().filter(|_| !item.returns_impl_trait());
    let turbofish = |rest: TokenStream| match nameable {
        Some(return_type) => quote!(::<#return_type, #rest>),
        None => TokenStream::new(),
    };
    let some_or_none = |value: Option<TokenStream>| match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    };
    let classify = breaker
        .as_ref()
        .map_or_else(|| quote!(|_| true), |b| b.classify.clone());
    let breaker = some_or_none(breaker.map(|b| b.handle));
    let monitor = some_or_none(monitor);
    let limiter = some_or_none(
        plan.rate_limited
            .as_ref()
            .map(|args| limits::rate_limiter(args, private, marker, setup)),
    );
    let limiter_waits = plan.rate_limited.as_ref().is_some_and(|limit| limit.wait);
    let bulkhead = some_or_none(
        plan.bulkhead
            .as_ref()
            .map(|args| limits::bulkhead(args, private, marker, setup)),
    );
    let layers = layers_site(
        private,
        quote! {
            #private::Layers {
                breaker: #breaker,
                limiter: #limiter,
                limiter_waits: #limiter_waits,
                bulkhead: #bulkhead,
                monitor: #monitor,
                ..#private::Layers::NONE
            }
        },
        setup,
    );
    let retrying = plan.backoff.is_some();
    let degrading = plan.degradation.is_some();
    // Retried bodies borrow the arguments afresh for each attempt, and a fallback needs them
    // after the call; otherwise a single attempt may move them.
    let body = body(item, !retrying && !degrading);
    let types = turbofish(quote!(_, _));
    let attempt = if item.is_async() {
        let call = match plan.timeout {
            Some((timeout, _)) => {
                let nanos = timeout.duration;
                setup.extend(quote! {
                    static __RELIABLE_TIMEOUT: #private::Site<#private::TimeoutPolicy> = #private::Site::new();
                    let __reliable_timeout = __RELIABLE_TIMEOUT.timeout_policy(
                        #private::SiteName::new(::core::option::Option::None, #marker),
                        #private::Duration::from_nanos(#nanos),
                    );
                });
                quote!(#private::timed_outcome(__reliable_timeout, #body))
            }
            None => quote!(#private::outcome(#body)),
        };
        let waits = plan.rate_limited.as_ref().is_some_and(|limit| limit.wait)
            || plan
                .bulkhead
                .as_ref()
                .is_some_and(|bulkhead| bulkhead.max_wait.is_some_and(|(wait, _)| wait.0 > 0));
        let function = if waits {
            quote!(attempt)
        } else {
            quote!(attempt_now)
        };
        quote!(#private::#function(#layers, #classify, #call).await)
    } else {
        quote!(#private::attempt_sync #types (#layers, #classify, #body))
    };
    let Some(args) = &plan.backoff else {
        if degrading {
            // The outcome as it is: the fallback sees a refusal as a refusal.
            return attempt;
        }
        let types = nameable.map(|return_type| quote!(::<#return_type>));
        return quote!(#private::settle_once #types (#attempt));
    };
    let hooks = retry::setup(args, private, marker, nameable, preset, setup);
    let (retry_if, retry_after, on_retry) = (hooks.retry_if, hooks.retry_after, hooks.on_retry);
    let types = turbofish(quote!(_, _, _));
    let settle = if degrading {
        quote!(settle_outcome)
    } else {
        quote!(settle)
    };
    let wait = if item.is_async() {
        quote!(#private::sleep(__reliable_delay).await)
    } else {
        quote!(::std::thread::sleep(__reliable_delay))
    };
    quote! {
        let mut __reliable_retry = __reliable_policy.start();
        loop {
            let __reliable_outcome = #attempt;
            match #private::#settle #types (
                __reliable_outcome,
                &mut __reliable_retry,
                #retry_if,
                #retry_after,
                #on_retry,
            ) {
                #private::ControlFlow::Break(__reliable_output) => break __reliable_output,
                #private::ControlFlow::Continue(__reliable_delay) => #wait,
            }
        }
    }
}

/// The user's body as an `async move` block (async fns) or a `move` closure (blocking fns),
/// with its output type pinned to the declared return type so `?` and `return` keep working.
fn body(item: &FnItem, movable: bool) -> TokenStream {
    let capture = if movable {
        quote!(move)
    } else {
        TokenStream::new()
    };
    let block = &item.func.block;
    let stmts = &block.stmts;
    let return_type = match item.return_type() {
        Some(ty) => ty.to_token_stream(),
        None => quote!(()),
    };
    let pin_type = !item.returns_impl_trait();
    if item.is_async() {
        let fake_return = pin_type.then(|| {
            quote_spanned! {return_type.span()=>
                #[allow(
                    unreachable_code,
                    clippy::diverging_sub_expression,
                    clippy::empty_loop,
                    clippy::let_unit_value,
                    clippy::unreachable,
                    clippy::needless_return
                )]
                if false {
                    let __reliable_fake_return: #return_type = loop {};
                    return __reliable_fake_return;
                }
            }
        });
        quote_spanned! {block.span()=>
            async #capture {
                #fake_return
                #(#stmts)*
            }
        }
    } else if pin_type {
        quote_spanned! {block.span()=> #capture || -> #return_type { #(#stmts)* } }
    } else {
        quote_spanned! {block.span()=> #capture || { #(#stmts)* } }
    }
}

/// `Some("lit")` or `None`.
pub(crate) fn option_str(value: Option<&syn::LitStr>) -> TokenStream {
    match value {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    }
}
