//! Code generation: the fn shell (async or blocking, any receiver, generics) and one module per
//! layer. The body is kept token for token inside an `async move` block (or a `move` closure),
//! so `self`, `Self`, generics and error spans stay on the user's code.

mod builder;
mod cached;
#[cfg(test)]
mod snapshot_tests;

use crate::args::backoff::BackoffArgs;
use crate::args::cached::CachedArgs;
use crate::args::degradation::DegradationArgs;
use crate::args::monitored::MonitoredArgs;
use crate::args::Site;
use crate::errors::{item_with_errors, Errors};
use crate::item::FnItem;
use crate::plan::{plan, Attribute, Plan};
use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned, ToTokens};
use syn::spanned::Spanned;

/// `__reliable::Run::function::<R>` (`__reliable` is the expansion's name for the runtime's
/// `__private`), every token spanned at the user's return type `R`: rustc reports an unmet
/// bound of an explicit generic argument at the argument, so a return type that does not fit
/// is one error at it.
pub(crate) fn returns_fn(return_type: &syn::Type, function: &str) -> TokenStream {
    let span = return_type.span();
    let private = syn::Ident::new("__reliable", span);
    let function = syn::Ident::new(function, span);
    // The helpers generic over more than the return type take the rest inferred.
    let more = matches!(
        function.to_string().as_str(),
        "call_once" | "try_once" | "call" | "try_call" | "body" | "fall_back"
    );
    if more {
        quote_spanned!(span=> #private::Run::#function::<#return_type, _>)
    } else {
        quote_spanned!(span=> #private::Run::#function::<#return_type>)
    }
}

/// Expands one of our attributes (and the others on the same fn).
pub(crate) fn attribute(layer: Attribute, args: TokenStream, item: TokenStream) -> TokenStream {
    let mut func = match parse_fn(layer, item.clone()) {
        Ok(func) => func,
        Err(error) => return item_with_errors(item, &error),
    };
    let mut errors = Errors::default();
    let plan = plan(layer, args, &mut func.attrs, &mut errors);
    let item = FnItem { func };
    crate::valid::check(&plan, &item, &mut errors);
    match errors.finish() {
        // Emit the fn without our attributes, so the rest of the crate still sees it.
        Err(error) => item_with_errors(item.func.into_token_stream(), &error),
        Ok(()) => generate(&plan, item),
    }
}

fn parse_fn(layer: Attribute, item: TokenStream) -> syn::Result<syn::ItemFn> {
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

fn generate(plan: &Plan, item: FnItem) -> TokenStream {
    let runtime = &plan.runtime;
    let mut setup = TokenStream::new();
    // One short name for the runtime's helpers keeps the expansion readable.
    let full_private = plan.runtime.private();
    setup.extend(quote!(use #full_private as __reliable;));
    let private = quote!(__reliable);
    for path in &plan.absorbed {
        setup.extend(quote! {
            #[allow(unused_imports, clippy::single_component_path_imports)]
            use #path as _;
        });
    }
    // The policy is named after the fn's path (module, type, fn) when a layer has no `name`.
    let (get, site_name) = match plan.explicit_name().filter(|_| !plan.has_unnamed_layer()) {
        Some(name) => (quote!(get_or_init), quote!(#name,)),
        None => (quote!(get_or_init_here), TokenStream::new()),
    };
    let nameable = item.return_type().filter(|_| !item.returns_impl_trait());
    let degradation = plan.get::<DegradationArgs>();
    let (degrading, retrying) = (degradation.is_some(), plan.get::<BackoffArgs>().is_some());
    // Layers inside the fallback that turn outcomes into errors of their own.
    let inner_errors = plan.layers.iter().any(|layer| {
        layer.descriptor.errs_with.is_some() && !layer.args.as_any().is::<DegradationArgs>()
    });
    let calls = plan.needs_result().is_some();
    if let (true, Some(return_type), false) = (inner_errors, nameable, item.is_async()) {
        // Point type errors at the user's return type: "needs `Result<T, E>`" or
        // "`E` cannot hold a `Rejected`".
        let check = returns_fn(return_type, "must_hold_rejected");
        setup.extend(quote!(#check();));
    }
    if let (true, Some(return_type)) = (degrading, nameable) {
        let check = returns_fn(return_type, "must_be_result");
        setup.extend(quote!(#check();));
    }
    let policy_name = quote!(__reliable_name);
    let site = Site {
        private: &private,
        runtime,
        return_type: nameable,
        policy_name: &policy_name,
        written_policy_name: plan
            .explicit_name()
            .filter(|_| !plan.has_unnamed_layer())
            .map(syn::LitStr::value),
        preset: plan.preset.is_some(),
    };
    let chain = builder::chain(plan, &site);
    setup.extend(quote! {
        static __RELIABLE_POLICY: #private::PolicyCell = #private::PolicyCell::new();
        let __reliable_policy = __RELIABLE_POLICY.#get(#site_name |#policy_name| {
            #runtime::Policy::builder(#policy_name) #chain
        });
    });
    let call = if calls {
        let hooks = builder::hooks(plan, &site);
        let hooks = if hooks.is_empty() {
            quote!(#private::NoHooks)
        } else {
            setup.extend(quote!(let __reliable_hooks = #hooks;));
            quote!(&__reliable_hooks)
        };
        // Retried bodies borrow the arguments afresh for each attempt, and a fallback needs
        // them after the call; otherwise the one attempt may move them.
        let movable = !retrying && !degrading;
        let body = body(&item, movable);
        let plain_body = if nameable.is_some() {
            async_block(&item, movable)
        } else {
            body.clone()
        };
        let capture = if movable {
            quote!(move)
        } else {
            TokenStream::new()
        };
        let (is_async, once, try_once) = if item.is_async() {
            (true, quote!(call_once), quote!(try_once))
        } else {
            (false, quote!(call_once_blocking), quote!(try_once_blocking))
        };
        // `Run::function::<R, ..>`, spanned at the return type, so a type that does not fit
        // is one error there (or `Run::function`, inferred).
        let returns = |function: &TokenStream| match nameable {
            Some(return_type) => returns_fn(return_type, &function.to_string()),
            None => quote!(#private::Run::#function),
        };
        // Async: the helper's turbofish names the return type (spanned at it, so a type that
        // is not a `Result`, or whose error cannot hold a `Rejected`, is one error there), and
        // the body's output follows from it.
        // An attempt: the helper's future (async), or its result (blocking).
        let attempt = |function: &TokenStream| {
            if is_async {
                let function = returns(function);
                let args = quote!(__reliable_policy, #hooks, #capture || #plain_body);
                Call::Future(quote!(#function(#args)))
            } else {
                // Typed by the return type too, so an unfit one is reported once, at it.
                let function = match nameable {
                    Some(return_type) => returns_fn(return_type, &function.to_string()),
                    None => quote!(#private::Run::#function),
                };
                Call::Expr(quote! {
                    #function(__reliable_policy, #hooks, #body)
                })
            }
        };
        // Typed by the return type: one error at it when it is not a `Result` (async helpers
        // are typed by their turbofish).
        let output = |call: Call| match (call, nameable) {
            (Call::Expr(call), Some(return_type)) if !degrading => {
                let output = returns_fn(return_type, "output");
                Call::Expr(quote!(#output(#call)))
            }
            (call, _) => call,
        };
        if !retrying {
            output(attempt(if degrading { &try_once } else { &once }))
        } else if !item.borrows_mutably() {
            // The runtime retries: the body borrows the arguments afresh for each attempt.
            let function = match (is_async, degrading) {
                (true, false) => quote!(call),
                (true, true) => quote!(try_call),
                (false, false) => quote!(call_blocking),
                (false, true) => quote!(try_call_blocking),
            };
            output(attempt(&function))
        } else {
            // A body that borrows `&mut` cannot be made again by a closure the runtime keeps
            // (its future would outlive the borrow): the retry loop is written out here.
            let attempt = attempt(&try_once).expr();
            // With a fallback, the outcome as it is: the fallback sees a refusal as a refusal.
            let finish = if degrading {
                quote!(__reliable_outcome)
            } else {
                quote!(#private::Retries::deliver(__reliable_outcome))
            };
            let wait = if is_async {
                quote!(#private::Retries::sleep(__reliable_delay).await)
            } else {
                quote!(::std::thread::sleep(__reliable_delay))
            };
            output(Call::Expr(quote! {{
                let mut __reliable_retry = #private::Retries::start(__reliable_policy);
                loop {
                    let __reliable_outcome = #attempt;
                    match __reliable_retry.after_attempt(#hooks, __reliable_outcome) {
                        ::core::ops::ControlFlow::Break(__reliable_outcome) => break #finish,
                        ::core::ops::ControlFlow::Continue(__reliable_delay) => #wait,
                    }
                }
            }}))
        }
    } else {
        // `#[monitored]` and/or `#[cached]` alone: any return type (a `Result`'s `Err` fails).
        let body = body(&item, true);
        match (plan.get::<MonitoredArgs>().is_some(), item.is_async()) {
            (true, is_async) => {
                let classify = quote! {
                    |__reliable_output| {
                        #[allow(unused_imports)]
                        use #private::probe::{FailedIfErr as _, NeverFailed as _};
                        __reliable_output.__reliable_failed()
                    }
                };
                if is_async {
                    Call::Future(quote!(__reliable_policy.measure(#body, #classify)))
                } else {
                    Call::Expr(quote!(__reliable_policy.measure_blocking(#body, #classify)))
                }
            }
            (false, true) => Call::Future(body),
            (false, false) => Call::Expr(quote!((#body)())),
        }
    };
    let call = cache_around(plan, &item, &private, call, &mut setup);
    let call = match degradation {
        Some(args) => degrade_around(plan, args, &item, &private, call),
        None => call,
    };
    shell(item, &setup, &call)
}

/// The outermost layer: the outcome of the layers inside, or the fallback's answer.
fn degrade_around(
    plan: &Plan,
    args: &DegradationArgs,
    item: &FnItem,
    private: &TokenStream,
    call: TokenStream,
) -> TokenStream {
    let return_type = item
        .return_type()
        .expect("`check_shape` refused a fallback on a fn without a return type");
    let fallback = &args.fallback;
    let arguments = fallback_arguments(item);
    let answered = if plan.rejects() {
        "answered"
    } else {
        "answered_unrefused"
    };
    // `Run::function::<R>`, spanned at the return type: a return type that is not a
    // `Result` is one trait error at it, not a cascade of mismatched `Ok`/`Err` patterns.
    let returns = |function: &str| returns_fn(return_type, function);
    let (fall_back, fall_back_blocking) = (returns("fall_back"), returns("fall_back_blocking"));
    let (split, answered) = (returns("split"), returns(answered));
    // Spanned at the fallback, so a fallback of the wrong type is an error there.
    let answer = if item.is_async() {
        let answer = quote_spanned! {fallback.span()=>
            #private::AsyncFallback::<_, _, #return_type, _>::answer(#fallback, (#(#arguments,)*), __reliable_cause)
        };
        // An async closure: the fallback's future may borrow the cause.
        quote!(#fall_back(__reliable_policy, __reliable_failure, async |__reliable_cause| #answer.await).await)
    } else {
        let answer = quote_spanned! {fallback.span()=>
            #private::Fallback::<_, _, #return_type, _>::answer(#fallback, (#(#arguments,)*), __reliable_cause)
        };
        quote!(#fall_back_blocking(__reliable_policy, __reliable_failure, |__reliable_cause| #answer))
    };
    quote! {
        match #split({ #call }) {
            ::core::result::Result::Ok(__reliable_output) => __reliable_output,
            ::core::result::Result::Err(__reliable_failure) => #answered(#answer),
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

/// `call` inside the cache, when the plan has one (the outermost layer but degradation).
fn cache_around(
    plan: &Plan,
    item: &FnItem,
    private: &TokenStream,
    call: Call,
    setup: &mut TokenStream,
) -> TokenStream {
    let Some(args) = plan.get::<CachedArgs>() else {
        return call.expr();
    };
    let mut errors = Errors::default();
    match cached::key(args, item, args.span, &mut errors) {
        Some(key) => cached::wrap(args, key, private, item, plan, call, setup),
        None => errors
            .finish()
            .err()
            .map_or_else(|| call.expr(), |error| error.to_compile_error()),
    }
}

/// The layers inside the cache and the fallback, as generated: a future the caller awaits
/// (the cache polls it itself), or an expression (a blocking call, the written-out retry loop).
pub(crate) enum Call {
    Future(TokenStream),
    Expr(TokenStream),
}

impl Call {
    /// The call's output, awaited if it is a future.
    pub(crate) fn expr(self) -> TokenStream {
        match self {
            Call::Future(future) => quote!(#future.await),
            Call::Expr(expr) => expr,
        }
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

/// The user's body as an `async move` block (async fns) or a `move` closure (blocking fns),
/// with its output type pinned to the declared return type so `?` and `return` keep working.
/// The user's body as an `async` block, its output left to the helper it is passed to.
fn async_block(item: &FnItem, movable: bool) -> TokenStream {
    let capture = if movable {
        quote!(move)
    } else {
        TokenStream::new()
    };
    let block = &item.func.block;
    let stmts = &block.stmts;
    quote_spanned! {block.span()=> async #capture { #(#stmts)* } }
}

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
        let body = quote_spanned! {block.span()=> async #capture { #(#stmts)* } };
        if pin_type {
            // The block's output is the declared type, so `?` and `return` convert into it.
            let declared: syn::Type = syn::parse2(return_type.clone()).expect("a type");
            let pin = returns_fn(&declared, "body");
            quote!(#pin(#body))
        } else {
            body
        }
    } else if pin_type {
        quote_spanned! {block.span()=> #capture || -> #return_type { #(#stmts)* } }
    } else {
        quote_spanned! {block.span()=> #capture || { #(#stmts)* } }
    }
}
