//! What every attribute of ours is made of: a [`Descriptor`] (its place in the pipeline and how
//! to parse it) and, once parsed, its [`LayerArgs`] (what it emits into the `Policy` builder).
//! The table in `lib.rs` lists the descriptors; nothing else enumerates the attributes.

use super::{RawArg, RawArgs};
use crate::errors::Errors;
use crate::path::RuntimePath;
use proc_macro2::{Literal, Span, TokenStream};
use quote::{quote, ToTokens};
use std::any::Any;

/// One layer attribute, described once.
pub(crate) struct Descriptor {
    /// `#[attribute]`; also the name of its entry point in `lib.rs`.
    pub(crate) attribute: &'static str,
    /// What it turns into an error when it refuses or fails a call (it then needs a `Result`):
    /// "an open breaker".
    pub(crate) errs_with: Option<&'static str>,
    /// Whether it refuses calls itself (the error type must then hold a `Rejected`).
    pub(crate) rejects: bool,
    /// Whether every preset attribute includes it (otherwise only when given one of its keys).
    pub(crate) in_every_preset: bool,
    /// The keys a preset attribute hands to it: (key in the preset attribute, key here).
    pub(crate) preset_keys: &'static [(&'static str, &'static str)],
    /// The preset attribute's key that names its instance (`breaker = "binance_api"`).
    pub(crate) preset_name_key: Option<&'static str>,
    /// Parses its arguments; `None` after an error (pushed to `errors`).
    pub(crate) parse: fn(Input, Span, &mut Errors) -> Option<Box<dyn LayerArgs>>,
}

impl Descriptor {
    /// Whether it accepts `key` (as `name`, `group` or `crate`).
    pub(crate) fn takes_shared_key(&self, key: &str) -> bool {
        self.preset_keys.iter().any(|(_, own)| *own == key) || key == "name" || key == "crate"
    }
}

/// An attribute's arguments: its own tokens, or its share of a preset attribute's.
pub(crate) enum Input {
    Tokens(TokenStream),
    Args(Vec<RawArg>),
}

impl Input {
    /// The `key = value` list.
    pub(crate) fn args(self, errors: &mut Errors) -> Option<RawArgs> {
        match self {
            Input::Tokens(tokens) => errors.keep(syn::parse2::<RawArgs>(tokens)),
            Input::Args(args) => Some(RawArgs(args)),
        }
    }
}

/// The accessors every layer's arguments have alike: `name`, `crate` and the downcast.
macro_rules! common_accessors {
    () => {
        fn name(&self) -> Option<&syn::LitStr> {
            self.name.as_ref()
        }

        fn crate_path(&self) -> Option<&syn::Path> {
            self.crate_path.as_ref()
        }

        fn as_any(&self) -> &dyn std::any::Any {
            self
        }
    };
}
pub(crate) use common_accessors;

/// A parsed attribute.
pub(crate) trait LayerArgs: Any {
    /// `name = "..."`, when written.
    fn name(&self) -> Option<&syn::LitStr>;
    /// `crate = path`, when written.
    fn crate_path(&self) -> Option<&syn::Path>;
    /// `group = "..."`, when written.
    fn group(&self) -> Option<&syn::LitStr> {
        None
    }
    /// The callbacks it was given: (field of `FnHooks`, which is also the `Run` fn that
    /// pins its type, the user's path).
    fn hooks(&self) -> Vec<(&'static str, &syn::Path)> {
        Vec::new()
    }
    /// Its calls on the `Policy` builder.
    fn emit(&self, site: &Site<'_>) -> TokenStream;
    fn as_any(&self) -> &dyn Any;
}

/// What a layer's builder calls need of the call site.
pub(crate) struct Site<'a> {
    /// `<runtime>::__private`, as the expansion names it.
    pub(crate) private: &'a TokenStream,
    /// The runtime crate's path.
    pub(crate) runtime: &'a RuntimePath,
    /// The fn's declared return type, when it can be named (pins the hooks' error type).
    pub(crate) return_type: Option<&'a syn::Type>,
    /// The policy's name, a `&str` in scope (a layer without `name` takes it).
    pub(crate) policy_name: &'a TokenStream,
    /// The policy's name when it is the one written on the attributes.
    pub(crate) written_policy_name: Option<String>,
    /// Whether a preset already turned the monitor, breaker and retries on.
    pub(crate) preset: bool,
}

impl Site<'_> {
    /// The layer's name: the one written, or the policy's.
    pub(crate) fn name(&self, name: Option<&syn::LitStr>) -> TokenStream {
        match name {
            Some(name) => quote!(#name),
            None => self.policy_name.clone(),
        }
    }

    /// `.method(name, |config| config .setters)`; `.shared_method(name)` when the attribute
    /// gives only the name; nothing when a preset already turned the layer on as it is (named
    /// after the policy, with the preset's configuration).
    pub(crate) fn configure(
        &self,
        method: &str,
        name: Option<&syn::LitStr>,
        setters: TokenStream,
    ) -> TokenStream {
        let policy_named = match (name, &self.written_policy_name) {
            (None, _) => true,
            (Some(name), Some(policy)) => name.value() == *policy,
            (Some(_), None) => false,
        };
        if self.preset && setters.is_empty() && policy_named {
            return TokenStream::new();
        }
        let name = self.name(name);
        if setters.is_empty() {
            // Only a name: the instance as registered (configured once, elsewhere), so that a
            // fn naming a shared layer never asks for settings of its own.
            let shared = syn::Ident::new(&format!("shared_{method}"), Span::call_site());
            return quote!(.#shared(#name));
        }
        let method = syn::Ident::new(method, Span::call_site());
        quote!(.#method(#name, |#method| #method #setters))
    }

    /// A `Duration` in the unit that writes it shortest.
    pub(crate) fn duration(&self, nanos: super::Nanos) -> TokenStream {
        duration(nanos)
    }
}

/// A `Duration` in the unit that writes it shortest.
fn duration(nanos: super::Nanos) -> TokenStream {
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
    quote!(::core::time::Duration::#unit(#count))
}

/// A layer's setter calls (`.failure_threshold(3).timeout(..)`), each written only when its
/// argument was.
#[derive(Default)]
pub(crate) struct Setters(TokenStream);

impl Setters {
    /// `.setter(value)` if `value` was written.
    pub(crate) fn value(mut self, setter: &str, value: Option<impl ToTokens>) -> Self {
        if let Some(value) = value {
            let setter = syn::Ident::new(setter, Span::call_site());
            self.0.extend(quote!(.#setter(#value)));
        }
        self
    }

    /// `.setter(value)` for a number that must read as a float (`1.0`, not `1`).
    pub(crate) fn float(self, setter: &str, value: Option<f64>) -> Self {
        self.value(setter, value.map(float))
    }

    /// `.setter(duration)` for a duration.
    pub(crate) fn duration(self, setter: &str, value: Option<super::Nanos>) -> Self {
        self.value(setter, value.map(duration))
    }

    /// Any other call, already written.
    pub(crate) fn raw(mut self, call: TokenStream) -> Self {
        self.0.extend(call);
        self
    }

    pub(crate) fn finish(self) -> TokenStream {
        self.0
    }
}

/// The runtime's variant for a name the rules list (`"full"` -> `Full`); the name was checked
/// against the same list when it was parsed.
pub(crate) fn variant_of(name: &syn::LitStr, names: &[(&str, &str)]) -> syn::Ident {
    let name = name.value();
    let (_, variant) = names
        .iter()
        .find(|(known, _)| *known == name)
        .expect("checked against the same list when parsed");
    syn::Ident::new(variant, Span::call_site())
}

/// A float literal.
fn float(value: f64) -> Literal {
    Literal::f64_suffixed(value)
}
