//! `#[cached(...)]`: a cache in front of the call.

use super::layer::{common_accessors, variant_of, Descriptor, Input, LayerArgs, Setters, Site};
use super::{
    known_args, read_duration, read_f64, read_name, read_path, read_positive_duration, read_str,
    read_u32, ruled, Nanos,
};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use reliable_rules::cache;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "cached",
    errs_with: None,
    rejects: false,
    in_every_preset: true,
    preset_keys: &[
        ("key", "key"),
        ("cache_ttl", "ttl"),
        ("cache_stale", "stale"),
        ("cache_policy", "policy"),
        ("min_ttl", "min_ttl"),
        ("max_ttl", "max_ttl"),
        ("max_entries", "max_entries"),
        ("eviction_ratio", "eviction_ratio"),
        ("ttl_jitter", "ttl_jitter"),
    ],
    preset_name_key: Some("cache"),
    parse: |input, span, errors| Some(Box::new(CachedArgs::parse(input, span, errors)?)),
};

/// Parsed and checked `#[cached]` arguments; `None` means "the default".
pub(crate) struct CachedArgs {
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) key: Option<syn::Expr>,
    pub(crate) ttl: Option<Nanos>,
    pub(crate) min_ttl: Option<Nanos>,
    pub(crate) max_ttl: Option<Nanos>,
    pub(crate) stale: Option<Nanos>,
    /// The policy's name, as `CachePolicy::from_str` reads it.
    pub(crate) policy: Option<syn::LitStr>,
    pub(crate) max_entries: Option<u32>,
    pub(crate) eviction_ratio: Option<f64>,
    pub(crate) ttl_jitter: Option<f64>,
    pub(crate) crate_path: Option<syn::Path>,
    /// The attribute's span, for errors about the whole cache.
    pub(crate) span: Span,
}

const KEYS: &[&str] = &[
    "name",
    "key",
    "ttl",
    "min_ttl",
    "max_ttl",
    "stale",
    "policy",
    "max_entries",
    "eviction_ratio",
    "ttl_jitter",
    "crate",
];

impl CachedArgs {
    fn parse(input: Input, span: Span, errors: &mut Errors) -> Option<Self> {
        let raw = input.args(errors)?;
        let mut args = CachedArgs {
            name: None,
            key: None,
            ttl: None,
            min_ttl: None,
            max_ttl: None,
            stale: None,
            policy: None,
            max_entries: None,
            eviction_ratio: None,
            ttl_jitter: None,
            crate_path: None,
            span,
        };
        for arg in known_args(raw, DESCRIPTOR.attribute, KEYS, errors) {
            let fraction = |check: fn(f64) -> reliable_rules::Check| {
                read_f64(&arg, "0.1")
                    .and_then(|value| ruled(&arg, check(value), "0.1").map(|()| value))
            };
            match arg.key.to_string().as_str() {
                "name" => args.name = errors.keep(read_str(&arg, "\"orderbook\"")),
                "key" => args.key = Some(arg.value.clone()),
                "ttl" => args.ttl = errors.keep(read_positive_duration(&arg, "\"5s\"")),
                "min_ttl" => args.min_ttl = errors.keep(read_positive_duration(&arg, "\"2s\"")),
                "max_ttl" => args.max_ttl = errors.keep(read_positive_duration(&arg, "\"15s\"")),
                "stale" => args.stale = errors.keep(read_duration(&arg, "\"10s\"")),
                "policy" => {
                    args.policy = errors.keep(read_name(&arg, cache::policy, "\"adaptive\""))
                }
                "max_entries" => args.max_entries = errors.keep(read_u32(&arg, 1, "10_000")),
                "eviction_ratio" => {
                    args.eviction_ratio = errors.keep(fraction(cache::eviction_ratio))
                }
                "ttl_jitter" => args.ttl_jitter = errors.keep(fraction(cache::ttl_jitter)),
                "crate" => args.crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        Some(args)
    }
}

impl LayerArgs for CachedArgs {
    common_accessors!();

    fn emit(&self, site: &Site<'_>) -> TokenStream {
        let runtime = site.runtime;
        let policy = self.policy.as_ref().map(|policy| {
            let variant = variant_of(policy, cache::POLICIES);
            quote!(#runtime::cache::CachePolicy::#variant)
        });
        // `ttl` first: it also sets the adaptive range and the stale period, which the
        // arguments after it may set otherwise.
        let setters = Setters::default()
            .duration("ttl", self.ttl)
            .duration("stale", self.stale)
            .duration("min_ttl", self.min_ttl)
            .duration("max_ttl", self.max_ttl)
            .value("policy", policy)
            .value("max_entries", self.max_entries.map(|max| max as usize))
            .float("eviction_ratio", self.eviction_ratio)
            .float("ttl_jitter", self.ttl_jitter)
            .finish();
        // A cache is never left out: the builder has none until this call.
        let name = site.name(self.name.as_ref());
        quote!(.cache(#name, |cache| cache #setters))
    }
}
