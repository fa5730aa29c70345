//! Attribute macros of `reliable`. Use them through `reliable-runtime`, which re-exports them
//! and documents each one.
//!
//! Each entry point only hands off: arguments are parsed in `args/`, every reliability attribute
//! on the fn is gathered into one ordered plan in `plan.rs`, and `expand/` generates the code.

mod args;
mod errors;
mod expand;
mod item;
mod path;
mod plan;

use plan::Layer;
use proc_macro::TokenStream;

/// SLA monitoring of a function; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn monitored(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::Monitored, args.into(), item.into()).into()
}

/// A circuit breaker around a function; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn circuit_breaker(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::CircuitBreaker, args.into(), item.into()).into()
}

/// Retries with exponential backoff and jitter; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn with_backoff(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::WithBackoff, args.into(), item.into()).into()
}

/// A per-attempt timeout; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn timeout(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::Timeout, args.into(), item.into()).into()
}

/// A sliding-window rate limit; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn rate_limited(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::RateLimited, args.into(), item.into()).into()
}

/// A cap on calls in flight; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn bulkhead(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::Bulkhead, args.into(), item.into()).into()
}

/// Caches a function's results; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn cached(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::Cached, args.into(), item.into()).into()
}

/// A fallback when a call fails; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn graceful_degradation(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::GracefulDegradation, args.into(), item.into()).into()
}

/// Monitoring, breaker, retries and cache from a preset; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn reliable(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(Layer::Reliable, args.into(), item.into()).into()
}

/// `#[reliable(preset = reliable_runtime::preset::CEX, ...)]`; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn reliable_cex_call(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(preset_layer("reliable_cex_call"), args.into(), item.into()).into()
}

/// `#[reliable(preset = reliable_runtime::preset::DEX, ...)]`; documented in `reliable_runtime`.
#[proc_macro_attribute]
pub fn reliable_dex_call(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(preset_layer("reliable_dex_call"), args.into(), item.into()).into()
}

/// `#[reliable(preset = reliable_runtime::preset::TWITTER, ...)]`; documented in
/// `reliable_runtime`.
#[proc_macro_attribute]
pub fn reliable_twitter_call(args: TokenStream, item: TokenStream) -> TokenStream {
    expand::attribute(
        preset_layer("reliable_twitter_call"),
        args.into(),
        item.into(),
    )
    .into()
}

fn preset_layer(attribute: &str) -> Layer {
    Layer::builtin_preset(attribute).expect("every preset attribute is in `plan::BUILTIN_PRESETS`")
}
