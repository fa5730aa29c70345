//! Attribute macros of `reliable`. Use them through `reliable-runtime`, which re-exports them.
use proc_macro::TokenStream;

#[proc_macro_attribute]
pub fn monitored(_args: TokenStream, item: TokenStream) -> TokenStream { item }
#[proc_macro_attribute]
pub fn circuit_breaker(_args: TokenStream, item: TokenStream) -> TokenStream { item }
