//! `#[derive(Classify)]`: an error enum's `ErrorClass`, one `#[classify(..)]` per variant.
//!
//! Each variant takes one of `transient`, `permanent`, `unknown`, `rate_limited` (with
//! `retry_after = field`, a `Duration` or `Option<Duration>` field), `status = field` (an HTTP
//! status, a `u16` or anything `Into<u16>`-convertible by copy) or `delegate` (its one field's
//! own `Classify`). A variant without one is `Unknown`, as an unclassified error always was.

use proc_macro2::{Span, TokenStream};
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

/// The expansion of `#[derive(Classify)]` on `input`, or the errors, each at its token.
pub(crate) fn derive(input: TokenStream) -> TokenStream {
    match expand(input) {
        Ok(tokens) => tokens,
        Err(error) => error.to_compile_error(),
    }
}

/// What one variant is.
enum Class {
    Fixed(&'static str),
    RateLimited(Option<syn::Member>),
    Status(syn::Member),
    Delegate,
}

fn expand(input: TokenStream) -> syn::Result<TokenStream> {
    let input: syn::DeriveInput = syn::parse2(input)?;
    let mut runtime: Option<syn::Path> = None;
    for attribute in input.attrs.iter().filter(|a| a.path().is_ident("classify")) {
        attribute.parse_nested_meta(|meta| {
            if meta.path.is_ident("crate") {
                runtime = Some(meta.value()?.parse()?);
                Ok(())
            } else {
                Err(meta.error("expected `crate = path` on the enum; each variant takes its own `#[classify(..)]`"))
            }
        })?;
    }
    let runtime = runtime.map_or_else(|| quote!(::reliable_runtime), |path| quote!(#path));
    let syn::Data::Enum(data) = &input.data else {
        return Err(syn::Error::new(
            input.ident.span(),
            "`#[derive(Classify)]` is for enums, one class per variant; for a struct, implement `Classify` by hand",
        ));
    };
    let class = quote!(#runtime::classify::ErrorClass);
    let mut errors: Option<syn::Error> = None;
    let mut arms = TokenStream::new();
    for variant in &data.variants {
        match variant_class(variant) {
            Ok(kind) => arms.extend(arm(variant, kind, &runtime, &class)),
            Err(error) => match &mut errors {
                Some(errors) => errors.combine(error),
                None => errors = Some(error),
            },
        }
    }
    if let Some(errors) = errors {
        return Err(errors);
    }
    let name = &input.ident;
    let (impl_generics, type_generics, where_clause) = input.generics.split_for_impl();
    // An enum without variants has no value to classify.
    let body = if data.variants.is_empty() {
        quote!(match *self {})
    } else {
        quote!(match self { #arms })
    };
    Ok(quote! {
        #[automatically_derived]
        impl #impl_generics #runtime::classify::Classify for #name #type_generics #where_clause {
            fn class(&self) -> #class {
                #[allow(unused_variables)]
                #body
            }
        }
    })
}

/// The class `variant`'s `#[classify(..)]` gives it.
fn variant_class(variant: &syn::Variant) -> syn::Result<Class> {
    let mut found: Option<(Class, Span)> = None;
    for attribute in variant
        .attrs
        .iter()
        .filter(|a| a.path().is_ident("classify"))
    {
        let mut retry_after = None;
        let mut class = None;
        attribute.parse_nested_meta(|meta| {
            let key = meta.path.get_ident().map(ToString::to_string).unwrap_or_default();
            let span = meta.path.span();
            let new = match key.as_str() {
                "transient" => Class::Fixed("Transient"),
                "permanent" => Class::Fixed("Permanent"),
                "unknown" => Class::Fixed("Unknown"),
                "rate_limited" => Class::RateLimited(None),
                "delegate" => {
                    single_field(variant, span)?;
                    Class::Delegate
                }
                "status" => Class::Status(field(variant, &meta.value()?.parse()?)?),
                "retry_after" => {
                    retry_after = Some((field(variant, &meta.value()?.parse()?)?, span));
                    return Ok(());
                }
                _ => {
                    return Err(meta.error(
                        "expected `transient`, `permanent`, `unknown`, `rate_limited` (with `retry_after = field`), `status = field` or `delegate`",
                    ))
                }
            };
            if class.is_some() || found.is_some() {
                return Err(syn::Error::new(span, "a variant has one class"));
            }
            class = Some((new, span));
            Ok(())
        })?;
        match (class, retry_after) {
            (Some((Class::RateLimited(None), span)), hint) => {
                found = Some((Class::RateLimited(hint.map(|(member, _)| member)), span));
            }
            (_, Some((_, span))) => {
                return Err(syn::Error::new(
                    span,
                    "`retry_after = field` goes with `rate_limited`",
                ))
            }
            (class, None) => {
                if class.is_some() {
                    found = class;
                }
            }
        }
    }
    Ok(found.map_or(Class::Fixed("Unknown"), |(class, _)| class))
}

/// The one field of `variant`, for `delegate`.
fn single_field(variant: &syn::Variant, span: Span) -> syn::Result<()> {
    if variant.fields.len() == 1 {
        Ok(())
    } else {
        Err(syn::Error::new(
            span,
            format!(
                "`delegate` takes the class of the variant's one field; `{}` has {}",
                variant.ident,
                variant.fields.len()
            ),
        ))
    }
}

/// The field `written` (a name, or an index of a tuple variant) of `variant`.
fn field(variant: &syn::Variant, written: &syn::Member) -> syn::Result<syn::Member> {
    let exists =
        variant
            .fields
            .iter()
            .enumerate()
            .any(|(index, field)| match (written, &field.ident) {
                (syn::Member::Named(name), Some(ident)) => name == ident,
                (syn::Member::Unnamed(at), None) => at.index as usize == index,
                _ => false,
            });
    if exists {
        Ok(written.clone())
    } else {
        Err(syn::Error::new(
            written.span(),
            format!("`{}` has no field `{}`", variant.ident, quote!(#written)),
        ))
    }
}

/// The match arm of one variant: its pattern binds the field the class reads.
fn arm(
    variant: &syn::Variant,
    class: Class,
    runtime: &TokenStream,
    class_type: &TokenStream,
) -> TokenStream {
    let ident = &variant.ident;
    // Spanned at the field's name in the attribute, so a field of the wrong type is an error
    // there.
    let binding_at = |member: Option<&syn::Member>| {
        syn::Ident::new(
            "__reliable_field",
            member.map_or_else(Span::call_site, Spanned::span),
        )
    };
    let pattern = |member: Option<&syn::Member>| -> TokenStream {
        let binding = binding_at(member);
        match (&variant.fields, member) {
            (syn::Fields::Unit, _) => quote!(Self::#ident),
            (syn::Fields::Named(_), Some(member)) => quote!(Self::#ident { #member: #binding, .. }),
            (syn::Fields::Named(_), None) => quote!(Self::#ident { .. }),
            (syn::Fields::Unnamed(fields), member) => {
                let slots = (0..fields.unnamed.len()).map(|index| match member {
                    Some(syn::Member::Unnamed(at)) if at.index as usize == index => {
                        quote!(#binding)
                    }
                    _ => quote!(_),
                });
                quote!(Self::#ident(#(#slots),*))
            }
        }
    };
    let first = syn::Member::Unnamed(syn::Index::from(0));
    let only = |fields: &syn::Fields| match fields.iter().next().and_then(|f| f.ident.clone()) {
        Some(name) => syn::Member::Named(name),
        None => first.clone(),
    };
    match class {
        Class::Fixed(name) => {
            let name = syn::Ident::new(name, Span::call_site());
            let pattern = pattern(None);
            quote!(#pattern => #class_type::#name,)
        }
        Class::RateLimited(None) => {
            let pattern = pattern(None);
            quote!(#pattern => #class_type::RateLimited { retry_after: ::core::option::Option::None },)
        }
        Class::RateLimited(Some(member)) => {
            let pattern = pattern(Some(&member));
            let span = member.span();
            let binding = binding_at(Some(&member));
            let hint = quote_spanned!(span=> ::core::convert::Into::<::core::option::Option<::core::time::Duration>>::into(*#binding));
            quote!(#pattern => #class_type::RateLimited { retry_after: #hint },)
        }
        Class::Status(member) => {
            let pattern = pattern(Some(&member));
            let span = member.span();
            let binding = binding_at(Some(&member));
            let status = quote_spanned!(span=> ::core::convert::Into::<u16>::into(*#binding));
            quote!(#pattern => #class_type::of_status(#status, ::core::option::Option::None),)
        }
        Class::Delegate => {
            let member = only(&variant.fields);
            let pattern = pattern(Some(&member));
            let span = variant.fields.span();
            let binding = binding_at(Some(&member));
            quote_spanned!(span=> #pattern => #runtime::classify::Classify::class(#binding),)
        }
    }
}
