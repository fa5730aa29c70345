//! `#[monitored(...)]` arguments.

use super::{
    known_args, read_path, read_positive_duration, read_rate, read_str, read_u32, read_window,
    Nanos, RawArgs,
};
use crate::errors::Errors;

/// `window = 100` (the last 100 calls) or `window = "60s"` (the calls of the last minute).
#[derive(Clone, Copy)]
pub(crate) enum WindowArg {
    Calls(u32),
    Time(Nanos),
}

/// Parsed and checked `#[monitored]` arguments; `None` means "the default".
#[derive(Default)]
pub(crate) struct MonitoredArgs {
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) p95: Option<Nanos>,
    pub(crate) p99: Option<Nanos>,
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
    pub(crate) fn parse(raw: RawArgs, errors: &mut Errors) -> Self {
        let mut args = MonitoredArgs::default();
        for arg in known_args(raw, "monitored", KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => args.name = errors.keep(read_str(&arg, "\"binance_orderbook\"")),
                "p95" => args.p95 = errors.keep(read_positive_duration(&arg, "\"1s\"")),
                "p99" => {
                    args.p99 = errors.keep(read_positive_duration(&arg, "\"2s\""));
                    if let (Some(p95), Some(p99)) = (args.p95, args.p99) {
                        if p99 < p95 {
                            errors.spanned(&arg.value, "`p99` cannot be below `p95`");
                        }
                    }
                }
                "min_success_rate" => {
                    args.min_success_rate = errors.keep(read_rate(&arg, false, "0.95"))
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
        args
    }
}
