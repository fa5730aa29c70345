//! `#[with_backoff(...)]`: retries with exponential backoff and jitter.

use super::layer::{common_accessors, variant_of, Descriptor, Input, LayerArgs, Setters, Site};
use super::{
    known_args, read_bool, read_duration, read_f64, read_name, read_path, read_str, read_u32,
    ruled, Nanos,
};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use reliable_rules::retry;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "with_backoff",
    errs_with: Some("a call that fails after its retries"),
    rejects: false,
    in_every_preset: true,
    preset_keys: &[
        ("max_attempts", "max_attempts"),
        ("initial_delay", "initial_delay"),
        ("max_delay", "max_delay"),
        ("multiplier", "multiplier"),
        ("jitter", "jitter"),
        ("jitter_factor", "jitter_factor"),
        ("retry_if", "retry_if"),
        ("retry_after", "retry_after"),
        ("on_retry", "on_retry"),
        ("budget", "budget"),
        ("budget_ratio", "budget_ratio"),
        ("retry_timeouts", "retry_timeouts"),
    ],
    preset_name_key: Some("retry"),
    parse: |input, _, errors| Some(Box::new(BackoffArgs::parse(input, errors)?)),
};

/// Parsed and checked `#[with_backoff]` arguments; `None` means "the default".
#[derive(Default)]
pub(crate) struct BackoffArgs {
    pub(crate) name: Option<syn::LitStr>,
    /// With the span of the value, for the cross-argument checks in `valid.rs`.
    pub(crate) initial_delay: Option<(Nanos, Span)>,
    pub(crate) max_delay: Option<(Nanos, Span)>,
    pub(crate) multiplier: Option<f64>,
    pub(crate) max_attempts: Option<u32>,
    /// The jitter's name, as `Jitter::from_str` reads it.
    pub(crate) jitter: Option<syn::LitStr>,
    /// The share of a delay additive jitter adds.
    pub(crate) jitter_factor: Option<f64>,
    pub(crate) retry_if: Option<syn::Path>,
    pub(crate) retry_after: Option<syn::Path>,
    pub(crate) on_retry: Option<syn::Path>,
    pub(crate) budget: Option<bool>,
    pub(crate) budget_ratio: Option<(f64, Span)>,
    pub(crate) retry_timeouts: Option<bool>,
    pub(crate) crate_path: Option<syn::Path>,
}

const KEYS: &[&str] = &[
    "name",
    "initial_delay",
    "max_delay",
    "multiplier",
    "max_attempts",
    "jitter",
    "jitter_factor",
    "retry_if",
    "retry_after",
    "on_retry",
    "budget",
    "budget_ratio",
    "retry_timeouts",
    "crate",
];

impl BackoffArgs {
    fn parse(input: Input, errors: &mut Errors) -> Option<Self> {
        let raw = input.args(errors)?;
        let mut args = BackoffArgs::default();
        for arg in known_args(raw, DESCRIPTOR.attribute, KEYS, errors) {
            let span = syn::spanned::Spanned::span(&arg.value);
            match arg.key.to_string().as_str() {
                "name" => args.name = errors.keep(read_str(&arg, "\"binance_retries\"")),
                "initial_delay" => {
                    args.initial_delay = errors
                        .keep(read_duration(&arg, "\"500ms\""))
                        .map(|delay| (delay, span));
                }
                "max_delay" => {
                    args.max_delay = errors
                        .keep(read_duration(&arg, "\"10s\""))
                        .map(|delay| (delay, span));
                }
                "multiplier" => {
                    args.multiplier = errors.keep(
                        read_f64(&arg, "2.0")
                            .and_then(|m| ruled(&arg, retry::multiplier(m), "2.0").map(|()| m)),
                    )
                }
                "max_attempts" => {
                    args.max_attempts = errors.keep(
                        read_u32(&arg, 0, "3")
                            .and_then(|n| ruled(&arg, retry::max_attempts(n), "3").map(|()| n)),
                    )
                }
                "jitter" => args.jitter = errors.keep(read_name(&arg, retry::jitter, "\"full\"")),
                "jitter_factor" => {
                    args.jitter_factor = errors.keep(read_f64(&arg, "0.1").and_then(|factor| {
                        ruled(&arg, retry::jitter_factor(factor), "0.1").map(|()| factor)
                    }))
                }
                "retry_if" => args.retry_if = errors.keep(read_path(&arg, "is_transient")),
                "retry_after" => {
                    args.retry_after = errors.keep(read_path(&arg, "retry_after_header"))
                }
                "on_retry" => args.on_retry = errors.keep(read_path(&arg, "log_retry")),
                "budget" => args.budget = errors.keep(read_bool(&arg, "false")),
                "budget_ratio" => {
                    args.budget_ratio = errors.keep(read_f64(&arg, "0.1").and_then(|ratio| {
                        ruled(&arg, retry::budget_ratio(ratio), "0.1").map(|()| (ratio, span))
                    }))
                }
                "retry_timeouts" => args.retry_timeouts = errors.keep(read_bool(&arg, "false")),
                "crate" => args.crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        Some(args)
    }
}

impl LayerArgs for BackoffArgs {
    common_accessors!();

    fn hooks(&self) -> Vec<(&'static str, &syn::Path)> {
        [
            ("retry_if", self.retry_if.as_ref()),
            ("retry_after", self.retry_after.as_ref()),
            ("on_retry", self.on_retry.as_ref()),
        ]
        .into_iter()
        .filter_map(|(field, path)| Some((field, path?)))
        .collect()
    }

    fn emit(&self, site: &Site<'_>) -> TokenStream {
        let runtime = site.runtime;
        let jitter = self.jitter.as_ref().map(|jitter| {
            let variant = variant_of(jitter, retry::JITTERS);
            quote!(#runtime::retry::Jitter::#variant)
        });
        let budget = match (self.budget, self.budget_ratio) {
            (Some(false), _) => quote!(.budget(::core::option::Option::None)),
            (_, Some((ratio, _))) => Setters::default()
                .float("budget_ratio", Some(ratio))
                .finish(),
            _ => TokenStream::new(),
        };
        let setters = Setters::default()
            .duration("initial_delay", self.initial_delay.map(|(d, _)| d))
            .duration("max_delay", self.max_delay.map(|(d, _)| d))
            .float("multiplier", self.multiplier)
            .value("max_attempts", self.max_attempts)
            .value("jitter", jitter)
            .float("jitter_factor", self.jitter_factor)
            .raw(budget)
            .value("retry_timeouts", self.retry_timeouts);
        site.configure("retry", self.name.as_ref(), setters.finish())
    }
}
