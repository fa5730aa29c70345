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
    let inferred = match function.to_string().as_str() {
        "try_once" | "try_call" | "body" | "fall_back" => 1,
        "try_once_delivered" | "try_call_delivered" => 2,
        _ => 0,
    };
    let inferred = (0..inferred).map(|_| quote_spanned!(span=> , _));
    // The type respanned too: every report about it is then at one span, which rustc
    // reports once (`span()` of a type of several tokens is its first token on stable).
    let return_type = respan(return_type.to_token_stream(), span);
    quote_spanned!(span=> #private::Run::#function::<#return_type #(#inferred)*>)
}

/// `function(args)`, its parentheses spanned at `at` as `function`'s path is, so the call's
/// span is `at` (the user's return type): an unmet bound of the helper is reported there.
pub(crate) fn call_at(at: Span, function: TokenStream, args: TokenStream) -> TokenStream {
    let mut args = proc_macro2::Group::new(proc_macro2::Delimiter::Parenthesis, args);
    args.set_span(at);
    quote!(#function #args)
}

/// `tokens`, every one of them spanned at `span`.
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            if let proc_macro2::TokenTree::Group(group) = &token {
                let mut respanned =
                    proc_macro2::Group::new(group.delimiter(), respan(group.stream(), span));
                respanned.set_span(span);
                token = respanned.into();
            } else {
                token.set_span(span);
            }
            token
        })
        .collect()
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
    let calls = plan.needs_result().is_some();
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
            builder::unwritten_hooks(&site)
        } else {
            setup.extend(quote!(let __reliable_hooks = #hooks;));
            quote!(&__reliable_hooks)
        };
        // Retried bodies borrow the arguments afresh for each attempt, and a fallback needs
        // them after the call; otherwise the one attempt may move them.
        let movable = !retrying && !degrading;
        let body = body(&item, movable);
        let capture = if movable {
            quote!(move)
        } else {
            TokenStream::new()
        };
        let is_async = item.is_async();
        // One error per mistake, at the user's return type: the helpers' paths (their
        // turbofish's type included), arguments, parentheses and `.await` are spanned there.
        // rustc checks a helper's bounds for the call and again for the `.await` of its
        // future, and drops the second report of a bound at the same span.
        let at = nameable.map_or_else(Span::call_site, |return_type| return_type.span());
        let attempt_with = |function: &str, deliver: Option<&TokenStream>| {
            // Async with a nameable return type: `Run::function::<R, ..>`, the body a plain
            // `async` block whose output the turbofish gives. Otherwise the body pins its own
            // type (a blocking closure's `-> R`, or inferred from an `impl Trait`).
            let (called, body) = match nameable {
                Some(return_type) if is_async => (
                    returns_fn(return_type, function),
                    async_block(&item, movable),
                ),
                _ => {
                    let function = syn::Ident::new(function, at);
                    (respan(quote!(#private::Run::#function), at), body.clone())
                }
            };
            let hooks = respan(hooks.clone(), at);
            let mut args = quote_spanned!(at=> __reliable_policy, #hooks,);
            if is_async {
                // rustc blames an unmet bound on `R` on the argument whose type holds `R`.
                args.extend(quote_spanned!(at=> #capture ||));
            }
            args.extend(body);
            if let Some(deliver) = deliver {
                args.extend(quote_spanned!(at=> , #deliver));
            }
            let call = call_at(at, called, args);
            if is_async {
                Call::Future(call, at)
            } else {
                Call::Expr(call)
            }
        };
        let attempt = |function: &str| attempt_with(function, None);
        // Without a fallback, the outcome becomes the fn's output through `Run::delivered`
        // (a refusal converted into the fn's error), named once here so "cannot hold a
        // `Rejected`" is checked once: applied where the outcome is made (async, the helper's
        // `_delivered` form), or to the finished outcome (blocking).
        let deliver = respan(quote!(#private::Run::delivered), at);
        // A cache delivers the outcome itself (its followers share the `Failure`): it gets the
        // plain future; otherwise the helper's `_delivered` form. Only the one used is built.
        let cached = plan.get::<CachedArgs>().is_some();
        let delivered = |function: &str| {
            if !is_async {
                return Call::Expr(call_at(at, deliver.clone(), attempt(function).expr()));
            }
            if cached {
                let Call::Future(plain, at) = attempt(function) else {
                    unreachable!("an async helper gives a future")
                };
                return Call::Undelivered(plain, at);
            }
            attempt_with(&format!("{function}_delivered"), Some(&deliver))
        };
        let (try_once, try_call) = if is_async {
            ("try_once", "try_call")
        } else {
            ("try_once_blocking", "try_call_blocking")
        };
        if !retrying {
            if degrading {
                attempt(try_once)
            } else {
                delivered(try_once)
            }
        } else if !item.borrows_mutably() {
            // The runtime retries: the body borrows the arguments afresh for each attempt.
            if degrading {
                attempt(try_call)
            } else {
                delivered(try_call)
            }
        } else {
            // A body that borrows `&mut` cannot be made again by a closure the runtime keeps
            // (its future would outlive the borrow): the retry loop is written out here.
            let attempt = attempt(try_once).expr();
            let wait = if is_async {
                quote!(#private::Retries::sleep(__reliable_delay).await)
            } else {
                quote!(::std::thread::sleep(__reliable_delay))
            };
            // The last outcome as it is: a fallback sees a refusal as a refusal.
            let retried = quote! {{
                let mut __reliable_retry = #private::Retries::start(__reliable_policy);
                loop {
                    let __reliable_outcome = #attempt;
                    match __reliable_retry.after_attempt(#hooks, __reliable_outcome) {
                        ::core::ops::ControlFlow::Break(__reliable_outcome) => break __reliable_outcome,
                        ::core::ops::ControlFlow::Continue(__reliable_delay) => #wait,
                    }
                }
            }};
            if degrading {
                Call::Expr(retried)
            } else {
                Call::Expr(call_at(at, deliver.clone(), retried))
            }
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
                    Call::Future(
                        quote!(__reliable_policy.measure(#body, #classify)),
                        Span::call_site(),
                    )
                } else {
                    Call::Expr(quote!(__reliable_policy.measure_blocking(#body, #classify)))
                }
            }
            (false, true) => Call::Future(body, Span::call_site()),
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
    // The scaffolding is spanned at the return type (as `returns_fn` is), so a return type
    // that is not a `Result` is one error there; the fallback's own call is spanned at the
    // fallback, so a fallback of the wrong type is an error there.
    let at = return_type.span();
    let answer = if item.is_async() {
        let answer = quote_spanned! {fallback.span()=>
            #private::AsyncFallback::<_, _, #return_type, _>::answer(#fallback, (#(#arguments,)*), __reliable_cause)
        };
        // An async closure: the fallback's future may borrow the cause.
        let mut args =
            quote_spanned!(at=> __reliable_policy, __reliable_failure, async |__reliable_cause|);
        args.extend(answer);
        args.extend(quote_spanned!(at=> .await));
        let fall_back = call_at(at, fall_back, args);
        quote_spanned!(at=> #fall_back.await)
    } else {
        let answer = quote_spanned! {fallback.span()=>
            #private::Fallback::<_, _, #return_type, _>::answer(#fallback, (#(#arguments,)*), __reliable_cause)
        };
        let mut args =
            quote_spanned!(at=> __reliable_policy, __reliable_failure, |__reliable_cause|);
        args.extend(answer);
        call_at(at, fall_back_blocking, args)
    };
    let split = call_at(at, split, quote_spanned!(at=> { #call }));
    let answered = call_at(at, answered, answer);
    quote_spanned! {at=>
        match #split {
            ::core::result::Result::Ok(__reliable_output) => __reliable_output,
            ::core::result::Result::Err(__reliable_failure) => #answered,
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
    /// A future of the fn's output, and the span its `.await` takes.
    Future(TokenStream, Span),
    /// A future whose outcome is a `Result<_, Failure<_>>`, for the cache to make the fn's
    /// output with `Run::delivered` (built only under a cache, which needs the `Failure`).
    Undelivered(TokenStream, Span),
    Expr(TokenStream),
}

impl Call {
    /// The call's output, awaited if it is a future.
    pub(crate) fn expr(self) -> TokenStream {
        match self {
            Call::Future(future, at) | Call::Undelivered(future, at) => {
                quote_spanned!(at=> #future.await)
            }
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
/// The user's body as an `async` block, its output given by the helper it is passed to.
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
