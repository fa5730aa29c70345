//! `#[monitored(...)]`: SLA monitoring.

use super::layer::{common_accessors, Descriptor, Input, LayerArgs, Setters, Site};
use super::{
    known_args, read_f64, read_path, read_positive_duration, read_str, read_u32, read_window,
    ruled, Nanos, WindowArg,
};
use crate::errors::Errors;
use proc_macro2::{Span, TokenStream};
use quote::quote;
use reliable_rules::sla;

pub(crate) const DESCRIPTOR: Descriptor = Descriptor {
    attribute: "monitored",
    errs_with: None,
    rejects: false,
    in_every_preset: true,
    preset_keys: &[
        ("p95", "p95"),
        ("p99", "p99"),
        ("min_success_rate", "min_success_rate"),
        ("max_consecutive_failures", "max_consecutive_failures"),
        ("min_calls", "min_calls"),
        ("sla_window", "window"),
        ("group", "group"),
    ],
    preset_name_key: Some("monitor"),
    parse: |input, _, errors| Some(Box::new(MonitoredArgs::parse(input, errors)?)),
};

/// Parsed and checked `#[monitored]` arguments; `None` means "the default".
#[derive(Default)]
pub(crate) struct MonitoredArgs {
    pub(crate) name: Option<syn::LitStr>,
    /// With the span of the value, for the cross-argument check in `valid.rs`.
    pub(crate) p95: Option<(Nanos, Span)>,
    pub(crate) p99: Option<(Nanos, Span)>,
    pub(crate) min_success_rate: Option<f64>,
    pub(crate) max_consecutive_failures: Option<u32>,
    pub(crate) min_calls: Option<u32>,
    pub(crate) window: Option<WindowArg>,
    pub(crate) group: Option<syn::LitStr>,
    pub(crate) crate_path: Option<syn::Path>,
}

const KEYS: &[&str] = &[
    "name",
    "p95",
    "p99",
    "min_success_rate",
    "max_consecutive_failures",
    "min_calls",
    "window",
    "group",
    "crate",
];

impl MonitoredArgs {
    fn parse(input: Input, errors: &mut Errors) -> Option<Self> {
        let raw = input.args(errors)?;
        let mut args = MonitoredArgs::default();
        for arg in known_args(raw, DESCRIPTOR.attribute, KEYS, errors) {
            let span = syn::spanned::Spanned::span(&arg.value);
            match arg.key.to_string().as_str() {
                "name" => args.name = errors.keep(read_str(&arg, "\"binance_orderbook\"")),
                "p95" => {
                    args.p95 = errors
                        .keep(read_positive_duration(&arg, "\"1s\""))
                        .map(|p95| (p95, span))
                }
                "p99" => {
                    args.p99 = errors
                        .keep(read_positive_duration(&arg, "\"2s\""))
                        .map(|p99| (p99, span))
                }
                "min_success_rate" => {
                    args.min_success_rate = errors.keep(read_f64(&arg, "0.95").and_then(|rate| {
                        ruled(&arg, sla::min_success_rate(rate), "0.95").map(|()| rate)
                    }))
                }
                "max_consecutive_failures" => {
                    args.max_consecutive_failures = errors.keep(read_u32(&arg, 1, "3"))
                }
                "min_calls" => args.min_calls = errors.keep(read_u32(&arg, 1, "10")),
                "window" => args.window = errors.keep(read_window(&arg)),
                "group" => args.group = errors.keep(read_str(&arg, "\"binance\"")),
                "crate" => args.crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        Some(args)
    }
}

impl LayerArgs for MonitoredArgs {
    common_accessors!();

    fn group(&self) -> Option<&syn::LitStr> {
        self.group.as_ref()
    }

    fn emit(&self, site: &Site<'_>) -> TokenStream {
        let setters = Setters::default()
            .duration("max_latency_p95", self.p95.map(|(p95, _)| p95))
            .duration("max_latency_p99", self.p99.map(|(p99, _)| p99))
            .float("min_success_rate", self.min_success_rate)
            .value("max_consecutive_failures", self.max_consecutive_failures)
            .value("min_calls", self.min_calls);
        let mut chain = site.configure("monitor", self.name.as_ref(), setters.finish());
        if let Some(window) = self.window {
            let window = window.tokens(site, quote!(sla::SlaWindow));
            chain.extend(quote!(.monitor_window(#window)));
        }
        chain
    }
}
