//! `#[circuit_breaker(...)]` arguments.

use super::{
    arg_span, known_args, read_f64, read_path, read_positive_duration, read_rate, read_str,
    read_u32, read_window, Nanos, RawArgs, WindowArg,
};
use crate::errors::Errors;

/// Parsed and checked `#[circuit_breaker]` arguments; `None` means "the default".
#[derive(Default)]
pub(crate) struct BreakerArgs {
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) failure_threshold: Option<u32>,
    pub(crate) failure_rate: Option<f64>,
    pub(crate) slow_call_rate: Option<f64>,
    pub(crate) slow_call_duration: Option<Nanos>,
    pub(crate) window: Option<WindowArg>,
    pub(crate) minimum_calls: Option<u32>,
    pub(crate) timeout: Option<Nanos>,
    pub(crate) timeout_multiplier: Option<f64>,
    pub(crate) max_timeout: Option<Nanos>,
    pub(crate) success_threshold: Option<u32>,
    pub(crate) half_open_max_calls: Option<u32>,
    pub(crate) failure_if: Option<syn::Path>,
    pub(crate) group: Option<syn::LitStr>,
    pub(crate) crate_path: Option<syn::Path>,
}

const KEYS: &[&str] = &[
    "name",
    "failure_threshold",
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

/// The runtime's cap on concurrent half-open probes.
const MAX_HALF_OPEN_CALLS: u32 = (1 << 20) - 1;
/// The runtime's default open timeout (the CEX row) and its default cap.
const DEFAULT_TIMEOUT: Nanos = Nanos(30_000_000_000);
const DEFAULT_MAX_TIMEOUT: Nanos = Nanos(600_000_000_000);

impl BreakerArgs {
    pub(crate) fn parse(raw: RawArgs, errors: &mut Errors) -> Self {
        let mut args = BreakerArgs::default();
        let mut zero_threshold = None;
        let mut max_timeout_span = None;
        for arg in known_args(raw, "circuit_breaker", KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => args.name = errors.keep(read_str(&arg, "\"binance_api\"")),
                "failure_threshold" => {
                    args.failure_threshold = errors.keep(read_u32(&arg, 0, "5"));
                    if args.failure_threshold == Some(0) {
                        zero_threshold = Some(arg_span(&arg));
                    }
                }
                "failure_rate" => args.failure_rate = errors.keep(read_rate(&arg, true, "0.5")),
                "slow_call_rate" => args.slow_call_rate = errors.keep(read_rate(&arg, true, "0.8")),
                "slow_call_duration" => {
                    args.slow_call_duration = errors.keep(read_positive_duration(&arg, "\"2s\""))
                }
                "window" => args.window = errors.keep(read_window(&arg)),
                "minimum_calls" => args.minimum_calls = errors.keep(read_u32(&arg, 1, "10")),
                "timeout" => args.timeout = errors.keep(read_positive_duration(&arg, "\"30s\"")),
                "timeout_multiplier" => {
                    let value = errors.keep(read_f64(&arg, "2.0"));
                    if value.is_some_and(|m| !(m.is_finite() && m >= 1.0)) {
                        errors.spanned(
                            &arg.value,
                            "`timeout_multiplier` must be at least 1.0 (1.0 keeps the timeout constant)",
                        );
                    } else {
                        args.timeout_multiplier = value;
                    }
                }
                "max_timeout" => {
                    args.max_timeout = errors.keep(read_positive_duration(&arg, "\"10m\""));
                    max_timeout_span = Some(arg.value.clone());
                }
                "success_threshold" => args.success_threshold = errors.keep(read_u32(&arg, 1, "2")),
                "half_open_max_calls" => {
                    let value = errors.keep(read_u32(&arg, 1, "1"));
                    if value.is_some_and(|v| v > MAX_HALF_OPEN_CALLS) {
                        errors.spanned(
                            &arg.value,
                            format!("`half_open_max_calls` is at most {MAX_HALF_OPEN_CALLS}"),
                        );
                    } else {
                        args.half_open_max_calls = value;
                    }
                }
                "failure_if" => args.failure_if = errors.keep(read_path(&arg, "is_server_error")),
                "group" => args.group = errors.keep(read_str(&arg, "\"binance\"")),
                "crate" => args.crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        if let Some(span) = zero_threshold {
            if args.failure_rate.is_none() && args.slow_call_rate.is_none() {
                errors.push(syn::Error::new(
                    span,
                    "`failure_threshold = 0` turns off the consecutive-failure rule; add `failure_rate = ...` or `slow_call_rate = ...`, or the breaker can never open",
                ));
            }
        }
        if let Some(span) = max_timeout_span {
            let timeout = args.timeout.unwrap_or(DEFAULT_TIMEOUT);
            if args.max_timeout.is_some_and(|max| max < timeout) {
                errors.spanned(span, "`max_timeout` must be at least `timeout`");
            }
        } else if args
            .timeout
            .is_some_and(|timeout| timeout > DEFAULT_MAX_TIMEOUT)
        {
            args.max_timeout = args.timeout;
        }
        args
    }
}
