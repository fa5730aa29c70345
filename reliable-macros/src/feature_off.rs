//! The attributes the runtime re-exports in place of one whose Cargo feature is off: one
//! error that names the feature, rather than rustc's notes on each gated item the expansion
//! would name.

use proc_macro2::{Span, TokenStream};
use quote::quote;

/// `item` as written (the rest of the crate still sees the fn), after one error at the
/// attribute saying which feature of `reliable-runtime` it needs.
pub(crate) fn needs_feature(attribute: &str, feature: &str, item: TokenStream) -> TokenStream {
    let message = format!(
        "`#[{attribute}]` needs the `{feature}` feature of `reliable-runtime`, which is off: \
         add it to the dependency's features (`features = [\"{feature}\"]`), or turn the \
         default features back on"
    );
    let error = syn::Error::new(Span::call_site(), message).to_compile_error();
    quote!(#error #item)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_error_names_the_attribute_and_the_feature_and_keeps_the_item() {
        let item = quote!(
            fn price() -> u32 {
                1
            }
        );
        let expanded = needs_feature("cached", "cache", item.clone()).to_string();
        assert!(
            expanded.starts_with(":: core :: compile_error !"),
            "{expanded}"
        );
        assert!(
            expanded.contains("`#[cached]` needs the `cache` feature of `reliable-runtime`"),
            "{expanded}"
        );
        assert!(expanded.ends_with(&item.to_string()), "{expanded}");
    }
}
