//! Attribute macros of `reliable`. Use them through `reliable-runtime`, which re-exports them
//! and documents each one.
//!
//! Each entry point only hands off. An attribute is described once, in its `args/` file (its
//! keys, parsing, and the `Policy` builder calls it emits); the tables below list them. Every
//! attribute of ours on one fn is gathered into one plan (`plan.rs`), checked as a whole
//! (`valid.rs`), and `expand/` writes the fn around one call on its `Policy`.

mod args;
mod classify;
mod errors;
mod expand;
mod feature_off;
mod item;
mod path;
mod plan;
mod valid;

use proc_macro::TokenStream;

/// The layer attributes, in pipeline order (outermost first): each line is an entry point and
/// its descriptor.
macro_rules! layer_attributes {
    ($($(#[$doc:meta])* $attribute:ident => $descriptor:path;)*) => {
        $(
            $(#[$doc])*
            #[proc_macro_attribute]
            pub fn $attribute(args: TokenStream, item: TokenStream) -> TokenStream {
                let attribute = plan::Attribute::Layer(&$descriptor);
                expand::attribute(attribute, args.into(), item.into()).into()
            }
        )*

        /// Every layer attribute, in pipeline order.
        const LAYERS: &[&args::Descriptor] = &[$(&$descriptor),*];
    };
}

layer_attributes! {
    /// A fallback when a call fails; documented in `reliable_runtime`.
    graceful_degradation => args::degradation::DESCRIPTOR;
    /// Caches a function's results; documented in `reliable_runtime`.
    cached => args::cached::DESCRIPTOR;
    /// Retries with exponential backoff and jitter; documented in `reliable_runtime`.
    with_backoff => args::backoff::DESCRIPTOR;
    /// A circuit breaker around a function; documented in `reliable_runtime`.
    circuit_breaker => args::breaker::DESCRIPTOR;
    /// A sliding-window rate limit; documented in `reliable_runtime`.
    rate_limited => args::rate_limited::DESCRIPTOR;
    /// A cap on calls in flight; documented in `reliable_runtime`.
    bulkhead => args::bulkhead::DESCRIPTOR;
    /// SLA monitoring of a function; documented in `reliable_runtime`.
    monitored => args::monitored::DESCRIPTOR;
    /// A per-attempt timeout; documented in `reliable_runtime`.
    timeout => args::timeout::DESCRIPTOR;
}

/// The preset attributes: each line is an entry point and the runtime's preset const it
/// applies (`None`: `#[reliable]`, which takes `preset = ...`).
macro_rules! preset_attributes {
    ($($(#[$doc:meta])* $attribute:ident => $preset:expr;)*) => {
        $(
            $(#[$doc])*
            #[proc_macro_attribute]
            pub fn $attribute(args: TokenStream, item: TokenStream) -> TokenStream {
                let attribute = plan::Attribute::Preset(stringify!($attribute), $preset);
                expand::attribute(attribute, args.into(), item.into()).into()
            }
        )*

        /// Every preset attribute and its preset const.
        const PRESETS: &[(&str, Option<&str>)] = &[$((stringify!($attribute), $preset)),*];
    };
}

preset_attributes! {
    /// Monitoring, breaker, retries and cache from a preset; documented in `reliable_runtime`.
    reliable => None;
    /// `#[reliable(preset = reliable_runtime::preset::CEX, ...)]`; documented in
    /// `reliable_runtime`.
    reliable_cex_call => Some("CEX");
    /// `#[reliable(preset = reliable_runtime::preset::DEX, ...)]`; documented in
    /// `reliable_runtime`.
    reliable_dex_call => Some("DEX");
    /// `#[reliable(preset = reliable_runtime::preset::TWITTER, ...)]`; documented in
    /// `reliable_runtime`.
    reliable_twitter_call => Some("TWITTER");
}

/// The attributes `reliable-runtime` re-exports in place of one whose feature is off: each line
/// is an entry point, the attribute it stands for and the feature.
macro_rules! feature_off_attributes {
    ($($entry:ident => $attribute:literal, $feature:literal;)*) => {$(
        #[doc(hidden)]
        #[proc_macro_attribute]
        pub fn $entry(_args: TokenStream, item: TokenStream) -> TokenStream {
            feature_off::needs_feature($attribute, $feature, item.into()).into()
        }
    )*};
}

feature_off_attributes! {
    cached_needs_cache => "cached", "cache";
    with_backoff_needs_retry => "with_backoff", "retry";
    rate_limited_needs_limit => "rate_limited", "limit";
    bulkhead_needs_limit => "bulkhead", "limit";
}

/// `#[derive(Classify)]` for an error enum; documented in `reliable_runtime::classify`.
#[proc_macro_derive(Classify, attributes(classify))]
pub fn derive_classify(input: TokenStream) -> TokenStream {
    classify::derive(input.into()).into()
}
