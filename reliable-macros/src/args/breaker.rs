//! `#[circuit_breaker(...)]`.

use super::layer::{common_accessors, Descriptor, Input, LayerArgs, Setters, Site};
use super::{
    known_args, read_f64, read_path, read_positive_duration, read_str, read_u32, read_window,
    ruled, Nanos, WindowArg,
};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use reliable_rules::breaker;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "circuit_breaker",
    errs_with: Some("an open breaker"),
    rejects: true,
    in_every_preset: true,
    preset_keys: &[
        ("failure_threshold", "failure_threshold"),
        ("window_failures", "window_failures"),
        ("failure_rate", "failure_rate"),
        ("slow_call_rate", "slow_call_rate"),
        ("slow_call_duration", "slow_call_duration"),
        ("minimum_calls", "minimum_calls"),
        ("breaker_window", "window"),
        ("breaker_timeout", "timeout"),
        ("timeout_multiplier", "timeout_multiplier"),
        ("max_timeout", "max_timeout"),
        ("success_threshold", "success_threshold"),
        ("half_open_max_calls", "half_open_max_calls"),
        ("failure_if", "failure_if"),
        ("group", "group"),
    ],
    preset_name_key: Some("breaker"),
    parse: |input, _, errors| Some(Box::new(BreakerArgs::parse(input, errors)?)),
};

/// Parsed and checked `#[circuit_breaker]` arguments; `None` means "the default".
#[derive(Default)]
pub(crate) struct BreakerArgs {
    pub(crate) name: Option<syn::LitStr>,
    /// With the span of the `key = value`, for the cross-argument checks in `valid.rs`.
    pub(crate) failure_threshold: Option<(u32, Span)>,
    /// Failures in the window that trip it (`window_failures = 5, window = "1m"`).
    pub(crate) window_failures: Option<(u32, Span)>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow_call_rate: Option<f64>,
    pub(crate) slow_call_duration: Option<Nanos>,
    pub(crate) window: Option<WindowArg>,
    pub(crate) minimum_calls: Option<u32>,
    pub(crate) timeout: Option<Nanos>,
    pub(crate) timeout_multiplier: Option<f64>,
    pub(crate) max_timeout: Option<(Nanos, Span)>,
    pub(crate) success_threshold: Option<u32>,
    pub(crate) half_open_max_calls: Option<u32>,
    pub(crate) failure_if: Option<syn::Path>,
    pub(crate) group: Option<syn::LitStr>,
    pub(crate) crate_path: Option<syn::Path>,
}

const KEYS: &[&str] = &[
    "name",
    "failure_threshold",
    "window_failures",
    "failure_rate",
    "slow_call_rate",
    "slow_call_duration",
    "window",
    "minimum_calls",
    "timeout",
    "timeout_multiplier",
    "max_timeout",
    "success_threshold",
    "half_open_max_calls",
    "failure_if",
    "group",
    "crate",
];

impl BreakerArgs {
    fn parse(input: Input, errors: &mut Errors) -> Option<Self> {
        let raw = input.args(errors)?;
        let mut args = BreakerArgs::default();
        for arg in known_args(raw, DESCRIPTOR.attribute, KEYS, errors) {
            let rate = |example| {
                read_f64(&arg, example).and_then(|rate| {
                    ruled(&arg, breaker::failure_rate(rate), example).map(|()| rate)
                })
            };
            match arg.key.to_string().as_str() {
                "name" => args.name = errors.keep(read_str(&arg, "\"binance_api\"")),
                "failure_threshold" => {
                    args.failure_threshold = errors
                        .keep(read_u32(&arg, 0, "5"))
                        .map(|threshold| (threshold, super::arg_span(&arg)));
                }
                "window_failures" => {
                    args.window_failures = errors
                        .keep(read_u32(&arg, 1, "5"))
                        .map(|count| (count, super::arg_span(&arg)));
                }
                "failure_rate" => args.failure_rate = errors.keep(rate("0.5")),
                "slow_call_rate" => args.slow_call_rate = errors.keep(rate("0.8")),
                "slow_call_duration" => {
                    args.slow_call_duration = errors.keep(read_positive_duration(&arg, "\"2s\""))
                }
                "window" => args.window = errors.keep(read_window(&arg)),
                "minimum_calls" => args.minimum_calls = errors.keep(read_u32(&arg, 1, "10")),
                "timeout" => args.timeout = errors.keep(read_positive_duration(&arg, "\"30s\"")),
                "timeout_multiplier" => {
                    args.timeout_multiplier = errors.keep(read_f64(&arg, "2.0").and_then(|m| {
                        ruled(&arg, breaker::timeout_multiplier(m), "2.0").map(|()| m)
                    }))
                }
                "max_timeout" => {
                    let span = syn::spanned::Spanned::span(&arg.value);
                    args.max_timeout = errors
                        .keep(read_positive_duration(&arg, "\"10m\""))
                        .map(|max| (max, span));
                }
                "success_threshold" => args.success_threshold = errors.keep(read_u32(&arg, 1, "2")),
                "half_open_max_calls" => {
                    args.half_open_max_calls = errors.keep(read_u32(&arg, 1, "1").and_then(|n| {
                        ruled(&arg, breaker::half_open_max_calls(n), "1").map(|()| n)
                    }))
                }
                "failure_if" => args.failure_if = errors.keep(read_path(&arg, "is_server_error")),
                "group" => args.group = errors.keep(read_str(&arg, "\"binance\"")),
                "crate" => args.crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        Some(args)
    }
}

impl LayerArgs for BreakerArgs {
    common_accessors!();

    fn group(&self) -> Option<&syn::LitStr> {
        self.group.as_ref()
    }

    fn hooks(&self) -> Vec<(&'static str, &syn::Path)> {
        let failure_if = self.failure_if.as_ref();
        failure_if
            .map(|path| ("failure_if", path))
            .into_iter()
            .collect()
    }

    fn emit(&self, site: &Site<'_>) -> TokenStream {
        let window = self
            .window
            .map(|window| window.tokens(site, quote!(breaker::BreakerWindow)));
        let setters = Setters::default()
            .value("failure_threshold", self.failure_threshold.map(|(n, _)| n))
            .value(
                "window_failure_threshold",
                self.window_failures.map(|(n, _)| n),
            )
            .float("failure_rate_threshold", self.failure_rate)
            .float("slow_call_rate_threshold", self.slow_call_rate)
            .duration("slow_call_duration", self.slow_call_duration)
            .value("window", window)
            .value("minimum_calls", self.minimum_calls)
            // `max_timeout` after `timeout`: `timeout` raises a lower cap to itself.
            .duration("timeout", self.timeout)
            .float("timeout_multiplier", self.timeout_multiplier)
            .duration("max_timeout", self.max_timeout.map(|(max, _)| max))
            .value("success_threshold", self.success_threshold)
            .value("half_open_max_calls", self.half_open_max_calls);
        site.configure("breaker", self.name.as_ref(), setters.finish())
    }
}
