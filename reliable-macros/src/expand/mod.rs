//! Code generation: the fn shell (async or blocking, any receiver, generics) and one module per
//! layer. The body is kept token for token inside an `async move` block (or a `move` closure),
//! so `self`, `Self`, generics and error spans stay on the user's code.

mod breaker;
mod monitored;

use crate::errors::{item_with_errors, Errors};
use crate::item::FnItem;
use crate::plan::{plan, Layer, Plan};
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
    if plan.breaker.is_some() && item.return_type().is_none() {
        errors.push(syn::Error::new(
            sig.paren_token.span.close(),
            format!(
                "`#[circuit_breaker]` needs the function to return `Result<T, E>`, but `{}` returns `()`; an open breaker must be able to return an error",
                sig.ident
            ),
        ));
    }
}

fn generate(plan: &Plan, item: FnItem) -> TokenStream {
    let private = plan.runtime.private();
    let needs_marker = plan.breaker.as_ref().is_some_and(|b| b.name.is_none())
        || plan.monitored.as_ref().is_some_and(|m| m.name.is_none());
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
    let monitor = plan
        .monitored
        .as_ref()
        .map(|args| monitored::setup(args, &private, &marker, &mut setup));
    let breaker = plan
        .breaker
        .as_ref()
        .map(|args| breaker::setup(args, &private, &marker, &item, &mut setup));

    let body = body(&item);
    let is_async = item.is_async();
    let call = match (breaker, monitor) {
        (Some(breaker), monitor) => {
            let monitor = match monitor {
                Some(monitor) => quote!(::core::option::Option::Some(#monitor)),
                None => quote!(::core::option::Option::None),
            };
            let classify = breaker.classify;
            let handle = breaker.handle;
            if is_async {
                quote!(#private::guarded(#handle, #monitor, #classify, #body).await)
            } else {
                quote!(#private::guarded_sync(#handle, #monitor, #classify, #body))
            }
        }
        (None, Some(monitor)) => {
            let classify = quote! {
                |__reliable_output| {
                    #[allow(unused_imports)]
                    use #private::{FailedIfErr as _, NeverFailed as _};
                    __reliable_output.__reliable_failed()
                }
            };
            if is_async {
                quote!(#private::monitored(#monitor, #body, #classify).await)
            } else {
                quote!(#private::monitored_sync(#monitor, #body, #classify))
            }
        }
        (None, None) => unreachable!("a plan has at least the expanding attribute's layer"),
    };

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
fn body(item: &FnItem) -> TokenStream {
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
            async move {
                #fake_return
                #(#stmts)*
            }
        }
    } else if pin_type {
        quote_spanned! {block.span()=> move || -> #return_type { #(#stmts)* } }
    } else {
        quote_spanned! {block.span()=> move || { #(#stmts)* } }
    }
}

/// `Some("lit")` or `None`.
pub(crate) fn option_str(value: Option<&syn::LitStr>) -> TokenStream {
    match value {
        Some(lit) => quote!(::core::option::Option::Some(#lit)),
        None => quote!(::core::option::Option::None),
    }
}
