//! `#[with_backoff(...)]` arguments.

use super::{
    known_args, read_bool, read_duration, read_f64, read_path, read_str, read_u32, Nanos, RawArgs,
};
use crate::errors::Errors;

/// Parsed and checked `#[with_backoff]` arguments; `None` means "the default".
#[derive(Default)]
pub(crate) struct BackoffArgs {
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) initial_delay: Option<Nanos>,
    pub(crate) max_delay: Option<Nanos>,
    pub(crate) multiplier: Option<f64>,
    pub(crate) max_attempts: Option<u32>,
    /// The runtime `Jitter` variant's name.
    pub(crate) jitter: Option<&'static str>,
    pub(crate) retry_if: Option<syn::Path>,
    pub(crate) retry_after: Option<syn::Path>,
    pub(crate) on_retry: Option<syn::Path>,
    pub(crate) budget: Option<bool>,
    pub(crate) budget_ratio: Option<f64>,
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
    "retry_if",
    "retry_after",
    "on_retry",
    "budget",
    "budget_ratio",
    "retry_timeouts",
    "crate",
];

/// The runtime's defaults, to check `max_delay >= initial_delay` when only one is given.
const DEFAULT_INITIAL: Nanos = Nanos(1_000_000_000);
const DEFAULT_MAX: Nanos = Nanos(60_000_000_000);

impl BackoffArgs {
    pub(crate) fn parse(raw: RawArgs, errors: &mut Errors) -> Self {
        let mut args = BackoffArgs::default();
        let mut delay_tokens = None;
        let mut ratio_tokens = None;
        for arg in known_args(raw, "with_backoff", KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => args.name = errors.keep(read_str(&arg, "\"binance_retries\"")),
                "initial_delay" => {
                    args.initial_delay = errors.keep(read_duration(&arg, "\"500ms\""));
                    delay_tokens = Some(arg.value.clone());
                }
                "max_delay" => {
                    args.max_delay = errors.keep(read_duration(&arg, "\"10s\""));
                    delay_tokens = Some(arg.value.clone());
                }
                "multiplier" => {
                    let value = errors.keep(read_f64(&arg, "2.0"));
                    if value.is_some_and(|m| !(m.is_finite() && m >= 1.0)) {
                        errors.spanned(&arg.value, "`multiplier` must be at least 1.0 (1.0 keeps the delay constant)");
                    } else {
                        args.multiplier = value;
                    }
                }
                "max_attempts" => {
                    args.max_attempts = errors.keep(read_u32(&arg, 1, "3").map_err(|_| {
                        syn::Error::new_spanned(
                            &arg.value,
                            "`max_attempts` counts every attempt, the first included: a whole number of at least 1 (1 means no retries), like `max_attempts = 3`",
                        )
                    }))
                }
                "jitter" => {
                    if let Some(name) = errors.keep(read_str(&arg, "\"full\"")) {
                        args.jitter = match name.value().as_str() {
                            "none" => Some("None"),
                            "full" => Some("Full"),
                            "equal" => Some("Equal"),
                            "decorrelated" => Some("Decorrelated"),
                            other => {
                                errors.spanned(&name, format!("unknown jitter `{other}`; expected one of `\"none\"`, `\"full\"`, `\"equal\"`, `\"decorrelated\"`"));
                                None
                            }
                        };
                    }
                }
                "retry_if" => args.retry_if = errors.keep(read_path(&arg, "is_transient")),
                "retry_after" => args.retry_after = errors.keep(read_path(&arg, "retry_after_header")),
                "on_retry" => args.on_retry = errors.keep(read_path(&arg, "log_retry")),
                "budget" => args.budget = errors.keep(read_bool(&arg, "false")),
                "budget_ratio" => {
                    ratio_tokens = Some(arg.value.clone());
                    let value = errors.keep(read_f64(&arg, "0.1"));
                    if value.is_some_and(|r| !(r.is_finite() && r >= 0.0)) {
                        errors.spanned(&arg.value, "`budget_ratio` is retries per call: a number of at least 0.0, like `budget_ratio = 0.1`");
                    } else {
                        args.budget_ratio = value;
                    }
                }
                "retry_timeouts" => args.retry_timeouts = errors.keep(read_bool(&arg, "false")),
                "crate" => args.crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        let initial = args.initial_delay.unwrap_or(DEFAULT_INITIAL);
        let max = args.max_delay.unwrap_or(DEFAULT_MAX);
        if let (Some(tokens), true) = (delay_tokens, max < initial) {
            errors.spanned(tokens, "`max_delay` must be at least `initial_delay`");
        }
        if let (Some(false), Some(tokens)) = (args.budget, ratio_tokens) {
            errors.spanned(
                tokens,
                "`budget_ratio` sets the retry budget, but `budget = false` turns it off; remove one",
            );
        }
        args
    }
}
