//! The path generated code uses to reach the runtime: `::reliable_runtime`, or `crate = path`.

use proc_macro2::TokenStream;
use quote::{quote, ToTokens};

#[derive(Clone)]
pub(crate) struct RuntimePath(Option<syn::Path>);

impl RuntimePath {
    pub(crate) fn new(custom: Option<syn::Path>) -> Self {
        RuntimePath(custom)
    }

    /// `<runtime>::__private`.
    pub(crate) fn private(&self) -> TokenStream {
        quote!(#self::__private)
    }
}

impl ToTokens for RuntimePath {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        match &self.0 {
            Some(path) => path.to_tokens(tokens),
            None => tokens.extend(quote!(::reliable_runtime)),
        }
    }
}
