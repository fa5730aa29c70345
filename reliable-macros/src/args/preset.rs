//! `#[reliable(preset = ..., ...)]` and the built-in preset attributes: one attribute whose
//! arguments are shared out to the monitor, breaker, retries, cache, timeout and fallback.

use super::{known_args, RawArg, RawArgs};
use crate::errors::Errors;

/// The arguments of a preset attribute, shared out per layer (keys renamed to the layer's own).
#[derive(Default)]
pub(crate) struct PresetSplit {
    /// `preset = CONST` or `preset = "registered name"`.
    pub(crate) preset: Option<syn::Expr>,
    pub(crate) monitored: Vec<RawArg>,
    pub(crate) breaker: Vec<RawArg>,
    pub(crate) backoff: Vec<RawArg>,
    /// `None` after `cache = false`.
    pub(crate) cached: Option<Vec<RawArg>>,
    /// `timeout = "2s"`: adds a per-attempt timeout.
    pub(crate) timeout: Option<RawArg>,
    /// `fallback = ...`: adds graceful degradation.
    pub(crate) degradation: Vec<RawArg>,
}

/// (key in the preset attribute, layer, key in the layer's own attribute)
const ROUTES: &[(&str, Route, &str)] = &[
    ("p95", Route::Monitored, "p95"),
    ("p99", Route::Monitored, "p99"),
    ("min_success_rate", Route::Monitored, "min_success_rate"),
    (
        "max_consecutive_failures",
        Route::Monitored,
        "max_consecutive_failures",
    ),
    ("min_calls", Route::Monitored, "min_calls"),
    ("sla_window", Route::Monitored, "window"),
    ("failure_threshold", Route::Breaker, "failure_threshold"),
    ("failure_rate", Route::Breaker, "failure_rate"),
    ("slow_call_rate", Route::Breaker, "slow_call_rate"),
    ("slow_call_duration", Route::Breaker, "slow_call_duration"),
    ("minimum_calls", Route::Breaker, "minimum_calls"),
    ("breaker_window", Route::Breaker, "window"),
    ("breaker_timeout", Route::Breaker, "timeout"),
    ("timeout_multiplier", Route::Breaker, "timeout_multiplier"),
    ("max_timeout", Route::Breaker, "max_timeout"),
    ("success_threshold", Route::Breaker, "success_threshold"),
    ("half_open_max_calls", Route::Breaker, "half_open_max_calls"),
    ("failure_if", Route::Breaker, "failure_if"),
    ("max_attempts", Route::Backoff, "max_attempts"),
    ("initial_delay", Route::Backoff, "initial_delay"),
    ("max_delay", Route::Backoff, "max_delay"),
    ("multiplier", Route::Backoff, "multiplier"),
    ("jitter", Route::Backoff, "jitter"),
    ("retry_if", Route::Backoff, "retry_if"),
    ("retry_after", Route::Backoff, "retry_after"),
    ("on_retry", Route::Backoff, "on_retry"),
    ("budget", Route::Backoff, "budget"),
    ("budget_ratio", Route::Backoff, "budget_ratio"),
    ("retry_timeouts", Route::Backoff, "retry_timeouts"),
    ("key", Route::Cached, "key"),
    ("cache_ttl", Route::Cached, "ttl"),
    ("cache_stale", Route::Cached, "stale"),
    ("cache_policy", Route::Cached, "policy"),
    ("min_ttl", Route::Cached, "min_ttl"),
    ("max_ttl", Route::Cached, "max_ttl"),
    ("max_entries", Route::Cached, "max_entries"),
    ("eviction_ratio", Route::Cached, "eviction_ratio"),
    ("ttl_jitter", Route::Cached, "ttl_jitter"),
    ("fallback", Route::Degradation, "fallback"),
];

#[derive(Clone, Copy, PartialEq, Eq)]
enum Route {
    Monitored,
    Breaker,
    Backoff,
    Cached,
    Degradation,
}

impl PresetSplit {
    /// Shares `raw` out; `attribute` names the attribute in messages, `needs_preset` says
    /// whether `preset = ...` must be given (`#[reliable]`) or is implied (the built-ins).
    pub(crate) fn parse(
        raw: RawArgs,
        attribute: &str,
        needs_preset: bool,
        span: proc_macro2::Span,
        errors: &mut Errors,
    ) -> Self {
        let mut known: Vec<&str> = ROUTES.iter().map(|(key, _, _)| *key).collect();
        known.extend([
            "name", "group", "cache", "timeout", "crate", "breaker", "monitor", "retry",
        ]);
        if needs_preset {
            known.push("preset");
        }
        let mut split = PresetSplit {
            cached: Some(Vec::new()),
            ..PresetSplit::default()
        };
        let renamed = |arg: &RawArg, key: &str| RawArg {
            key: syn::Ident::new(key, arg.key.span()),
            value: arg.value.clone(),
        };
        let mut cache_on = true;
        // `breaker = "binance_api"` and the like: one layer's own name, over `name`.
        let mut layer_names: Vec<(Route, RawArg)> = Vec::new();
        for arg in known_args(raw, attribute, &known, errors) {
            let key = arg.key.to_string();
            match key.as_str() {
                "preset" => split.preset = Some(arg.value.clone()),
                "name" => {
                    for layer in [
                        &mut split.monitored,
                        &mut split.breaker,
                        &mut split.backoff,
                        &mut split.degradation,
                    ] {
                        layer.push(renamed(&arg, "name"));
                    }
                    if let Some(cached) = &mut split.cached {
                        cached.push(renamed(&arg, "name"));
                    }
                }
                "group" => {
                    split.monitored.push(renamed(&arg, "group"));
                    split.breaker.push(renamed(&arg, "group"));
                }
                "crate" => {
                    // Any one layer carries it; the plan checks they agree.
                    split.monitored.push(renamed(&arg, "crate"));
                }
                "timeout" => split.timeout = Some(renamed(&arg, "timeout")),
                "breaker" | "monitor" | "retry" => {
                    let route = match key.as_str() {
                        "breaker" => Route::Breaker,
                        "monitor" => Route::Monitored,
                        _ => Route::Backoff,
                    };
                    match &arg.value {
                        syn::Expr::Lit(syn::ExprLit {
                            lit: syn::Lit::Str(_),
                            ..
                        }) => layer_names.push((route, renamed(&arg, "name"))),
                        other => errors.spanned(
                            other,
                            format!("`{key}` names this layer's instance: `{key} = \"binance_api\"`"),
                        ),
                    }
                }
                "cache" => match &arg.value {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Bool(on),
                        ..
                    }) => cache_on = on.value,
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(_),
                        ..
                    }) => layer_names.push((Route::Cached, renamed(&arg, "name"))),
                    other => errors.spanned(
                        other,
                        "`cache` is the cache's name (`cache = \"binance_books\"`), or `true` or `false` (`cache = false` leaves the cache out)",
                    ),
                },
                _ => {
                    let (_, route, layer_key) = ROUTES
                        .iter()
                        .find(|(preset_key, _, _)| *preset_key == key)
                        .expect("known_args only returns known keys");
                    let arg = renamed(&arg, layer_key);
                    match route {
                        Route::Monitored => split.monitored.push(arg),
                        Route::Breaker => split.breaker.push(arg),
                        Route::Backoff => split.backoff.push(arg),
                        Route::Cached => split.cached.get_or_insert_with(Vec::new).push(arg),
                        Route::Degradation => split.degradation.push(arg),
                    }
                }
            }
        }
        for (route, name) in layer_names {
            let layer = match route {
                Route::Monitored => &mut split.monitored,
                Route::Breaker => &mut split.breaker,
                Route::Backoff => &mut split.backoff,
                Route::Cached => match &mut split.cached {
                    Some(cached) => cached,
                    None => continue,
                },
                Route::Degradation => &mut split.degradation,
            };
            layer.retain(|arg| arg.key != "name");
            layer.push(name);
        }
        if !cache_on {
            if let Some(cached) = &split.cached {
                if let Some(arg) = cached.iter().find(|arg| arg.key != "name") {
                    errors.spanned(
                        &arg.key,
                        "this cache argument has no effect with `cache = false`; remove one of them",
                    );
                }
            }
            split.cached = None;
        }
        if needs_preset && split.preset.is_none() {
            errors.push(syn::Error::new(
                span,
                format!("`#[{attribute}]` needs `preset = ...`: a `reliable_runtime::preset::Preset` (e.g. `reliable_runtime::preset::CEX`, or your own const) or the name it was registered under (`preset = \"my_preset\"`)"),
            ));
        }
        split
    }
}
