//! Every reliability attribute on one fn becomes one [`Plan`]: the first of ours to expand takes
//! the others off the fn, so the pipeline order is fixed whatever order they were written in.

use crate::args::{
    BackoffArgs, BreakerArgs, BulkheadArgs, CachedArgs, DegradationArgs, MonitoredArgs,
    PresetSplit, RateLimitedArgs, RawArg, RawArgs, TimeoutArg,
};
use crate::errors::Errors;
use crate::path::RuntimePath;
use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;

/// One of our attributes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Layer {
    Monitored,
    CircuitBreaker,
    WithBackoff,
    Timeout,
    RateLimited,
    Bulkhead,
    Cached,
    GracefulDegradation,
    /// `#[reliable(preset = ...)]`.
    Reliable,
    /// A built-in preset attribute: `#[reliable_cex_call]` and the like, which name the
    /// runtime's preset const of that name.
    BuiltinPreset(&'static str, &'static str),
}

/// The built-in preset attributes and the runtime consts they apply.
pub(crate) const BUILTIN_PRESETS: &[(&str, &str)] = &[
    ("reliable_cex_call", "CEX"),
    ("reliable_dex_call", "DEX"),
    ("reliable_twitter_call", "TWITTER"),
];

impl Layer {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Layer::Monitored => "monitored",
            Layer::CircuitBreaker => "circuit_breaker",
            Layer::WithBackoff => "with_backoff",
            Layer::Timeout => "timeout",
            Layer::RateLimited => "rate_limited",
            Layer::Bulkhead => "bulkhead",
            Layer::Cached => "cached",
            Layer::GracefulDegradation => "graceful_degradation",
            Layer::Reliable => "reliable",
            Layer::BuiltinPreset(attribute, _) => attribute,
        }
    }

    /// The built-in preset attribute named `attribute`, if it is one.
    pub(crate) fn builtin_preset(attribute: &str) -> Option<Layer> {
        let (attribute, preset) = BUILTIN_PRESETS.iter().find(|(a, _)| *a == attribute)?;
        Some(Layer::BuiltinPreset(attribute, preset))
    }

    /// The layer an attribute path names, if it is one of ours: `monitored`,
    /// `reliable_runtime::monitored`, `::reliable_runtime::monitored`.
    fn of(path: &syn::Path) -> Option<Layer> {
        let last = path.segments.last()?.ident.to_string();
        let layer = match last.as_str() {
            "monitored" => Layer::Monitored,
            "circuit_breaker" => Layer::CircuitBreaker,
            "with_backoff" => Layer::WithBackoff,
            "timeout" => Layer::Timeout,
            "rate_limited" => Layer::RateLimited,
            "bulkhead" => Layer::Bulkhead,
            "cached" => Layer::Cached,
            "graceful_degradation" => Layer::GracefulDegradation,
            "reliable" => Layer::Reliable,
            other => Layer::builtin_preset(other)?,
        };
        let ours = path.segments.len() == 1
            || path.segments.len() == 2
                && matches!(
                    path.segments[0].ident.to_string().as_str(),
                    "reliable_runtime" | "reliable_macros"
                );
        ours.then_some(layer)
    }
}

/// The layers of one fn. Their order is the runtime's (`Policy`: fallback, cache, retries,
/// breaker, rate limit, bulkhead, monitor, timeout), whatever order the attributes are written
/// in.
pub(crate) struct Plan {
    pub(crate) backoff: Option<BackoffArgs>,
    /// The per-attempt timeout and the span of its attribute (for errors).
    pub(crate) timeout: Option<(TimeoutArg, Span)>,
    pub(crate) rate_limited: Option<RateLimitedArgs>,
    pub(crate) bulkhead: Option<BulkheadArgs>,
    /// The cache and the span of its attribute.
    pub(crate) cached: Option<(CachedArgs, Span)>,
    /// Paths of the sibling attributes taken off the fn: the expansion mentions them so their
    /// imports count as used (rustc never resolves an attribute that was removed).
    pub(crate) absorbed: Vec<syn::Path>,
    pub(crate) breaker: Option<BreakerArgs>,
    pub(crate) monitored: Option<MonitoredArgs>,
    /// The fallback and the span of its attribute.
    pub(crate) degradation: Option<(DegradationArgs, Span)>,
    /// The preset whose configurations are the layers' defaults.
    pub(crate) preset: Option<PresetSource>,
    pub(crate) runtime: RuntimePath,
}

/// Where a preset comes from.
pub(crate) enum PresetSource {
    /// `preset = <expr>`: a `Preset` value or a registered name.
    Expr(syn::Expr),
    /// A built-in attribute: the runtime's `preset::<NAME>` const.
    Builtin(&'static str),
}

/// Builds the plan from the expanding attribute (`first`) and the fn's other attributes of ours,
/// which it removes from `attrs`.
pub(crate) fn plan(
    first: Layer,
    first_args: TokenStream,
    attrs: &mut Vec<syn::Attribute>,
    errors: &mut Errors,
) -> Plan {
    let first_span = Span::call_site();
    let mut layers = vec![(first, first_span, Some(first_args))];
    let mut kept = Vec::with_capacity(attrs.len());
    let mut absorbed = Vec::new();
    for attr in attrs.drain(..) {
        let Some(layer) = Layer::of(attr.path()) else {
            kept.push(attr);
            continue;
        };
        if layers.iter().any(|(seen, _, _)| *seen == layer) {
            errors.spanned(
                attr.path(),
                format!(
                    "`#[{}]` is given twice on this function; merge the arguments into one attribute",
                    layer.name()
                ),
            );
            continue;
        }
        let tokens = match &attr.meta {
            syn::Meta::Path(_) => Some(TokenStream::new()),
            syn::Meta::List(list) => Some(list.tokens.clone()),
            syn::Meta::NameValue(name_value) => {
                errors.spanned(
                    name_value.eq_token,
                    format!("write `#[{}(...)]`", layer.name()),
                );
                None
            }
        };
        layers.push((layer, attr.path().span(), tokens));
        absorbed.push(attr.path().clone());
    }
    *attrs = kept;

    let mut plan = Plan {
        backoff: None,
        timeout: None,
        rate_limited: None,
        bulkhead: None,
        cached: None,
        absorbed,
        breaker: None,
        monitored: None,
        degradation: None,
        preset: None,
        runtime: RuntimePath::new(None),
    };
    let mut crate_path: Option<syn::Path> = None;
    // A preset attribute stands for several layers: share its arguments out first.
    let mut parsed: Vec<(Layer, Span, Parsed)> = Vec::new();
    for (layer, span, tokens) in layers {
        let Some(tokens) = tokens else { continue };
        let builtin = match layer {
            Layer::Reliable => None,
            Layer::BuiltinPreset(_, preset) => Some(preset),
            _ => {
                parsed.push((layer, span, Parsed::Tokens(tokens)));
                continue;
            }
        };
        let Some(raw) = errors.keep(syn::parse2::<RawArgs>(tokens)) else {
            continue;
        };
        if plan.preset.is_some() {
            errors.push(syn::Error::new(
                span,
                "only one preset attribute per function; merge their arguments",
            ));
            continue;
        }
        let split = PresetSplit::parse(raw, layer.name(), builtin.is_none(), span, errors);
        plan.preset = match builtin {
            Some(name) => Some(PresetSource::Builtin(name)),
            None => split.preset.map(PresetSource::Expr),
        };
        parsed.push((Layer::Monitored, span, Parsed::Args(split.monitored)));
        parsed.push((Layer::CircuitBreaker, span, Parsed::Args(split.breaker)));
        parsed.push((Layer::WithBackoff, span, Parsed::Args(split.backoff)));
        if let Some(cached) = split.cached {
            parsed.push((Layer::Cached, span, Parsed::Args(cached)));
        }
        if let Some(timeout) = split.timeout {
            parsed.push((Layer::Timeout, span, Parsed::Timeout(timeout)));
        }
        if split.degradation.iter().any(|arg| arg.key == "fallback") {
            parsed.push((
                Layer::GracefulDegradation,
                span,
                Parsed::Args(split.degradation),
            ));
        }
    }
    let mut seen: Vec<(Layer, Span)> = Vec::new();
    for (layer, span, parsed) in parsed {
        if seen.iter().any(|(seen, _)| *seen == layer) {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`#[{}]` is given twice on this function (a preset attribute includes it); give its arguments in the preset attribute",
                    layer.name()
                ),
            ));
            continue;
        }
        seen.push((layer, span));
        let tokens = match parsed {
            Parsed::Tokens(tokens) => tokens,
            Parsed::Timeout(arg) => {
                if let Some(timeout) = errors.keep(TimeoutArg::from_arg(&arg)) {
                    plan.timeout = Some((timeout, span));
                }
                continue;
            }
            Parsed::Args(args) => {
                let raw = RawArgs(args);
                let custom = plan.add(layer, raw, span, errors);
                merge_crate_path(&mut crate_path, custom, errors);
                continue;
            }
        };
        if layer == Layer::Timeout {
            if let Some(timeout) = errors.keep(TimeoutArg::parse(tokens, span)) {
                plan.timeout = Some((timeout, span));
            }
            continue;
        }
        let Some(raw) = errors.keep(syn::parse2::<RawArgs>(tokens)) else {
            continue;
        };
        let custom = plan.add(layer, raw, span, errors);
        merge_crate_path(&mut crate_path, custom, errors);
    }
    plan.runtime = RuntimePath::new(crate_path);
    plan
}

/// A layer's arguments: its attribute's tokens, or its share of a preset attribute's.
enum Parsed {
    Tokens(TokenStream),
    Args(Vec<RawArg>),
    Timeout(RawArg),
}

fn merge_crate_path(
    crate_path: &mut Option<syn::Path>,
    custom: Option<syn::Path>,
    errors: &mut Errors,
) {
    if let Some(custom) = custom {
        match crate_path {
            Some(existing) if *existing != custom => errors.spanned(
                &custom,
                "a different `crate = ...` was given on another attribute of this function",
            ),
            _ => *crate_path = Some(custom),
        }
    }
}

impl Plan {
    /// Parses one layer's arguments into the plan; returns its `crate = ...`, if any.
    fn add(
        &mut self,
        layer: Layer,
        raw: RawArgs,
        span: Span,
        errors: &mut Errors,
    ) -> Option<syn::Path> {
        match layer {
            Layer::Monitored => {
                let args = MonitoredArgs::parse(raw, errors);
                let custom = args.crate_path.clone();
                self.monitored = Some(args);
                custom
            }
            Layer::CircuitBreaker => {
                let args = BreakerArgs::parse(raw, errors);
                let custom = args.crate_path.clone();
                self.breaker = Some(args);
                custom
            }
            Layer::WithBackoff => {
                let args = BackoffArgs::parse(raw, errors);
                let custom = args.crate_path.clone();
                self.backoff = Some(args);
                custom
            }
            Layer::RateLimited => {
                let args = RateLimitedArgs::parse(raw, span, errors);
                let custom = args.as_ref().and_then(|a| a.crate_path.clone());
                self.rate_limited = args;
                custom
            }
            Layer::Bulkhead => {
                let args = BulkheadArgs::parse(raw, span, errors);
                let custom = args.as_ref().and_then(|a| a.crate_path.clone());
                self.bulkhead = args;
                custom
            }
            Layer::Cached => {
                let args = CachedArgs::parse(raw, errors);
                let custom = args.crate_path.clone();
                self.cached = Some((args, span));
                custom
            }
            Layer::GracefulDegradation => {
                let args = DegradationArgs::parse(raw, span, errors)?;
                let custom = args.crate_path.clone();
                self.degradation = Some((args, span));
                custom
            }
            Layer::Timeout | Layer::Reliable | Layer::BuiltinPreset(..) => {
                unreachable!("parsed before")
            }
        }
    }

    /// Whether a layer can refuse a call (its error type must then hold a `Rejected`).
    pub(crate) fn rejects(&self) -> bool {
        self.breaker.is_some()
            || self.timeout.is_some()
            || self.rate_limited.is_some()
            || self.bulkhead.is_some()
    }

    /// Whether a layer needs the fn to return a `Result` (all but `#[monitored]` and
    /// `#[cached]`, which also take `Option`).
    pub(crate) fn needs_result(&self) -> bool {
        self.breaker.is_some()
            || self.backoff.is_some()
            || self.timeout.is_some()
            || self.rate_limited.is_some()
            || self.bulkhead.is_some()
    }

    /// The first `name = ...` written on a layer, if any.
    pub(crate) fn explicit_name(&self) -> Option<&syn::LitStr> {
        [
            self.monitored.as_ref().and_then(|m| m.name.as_ref()),
            self.breaker.as_ref().and_then(|b| b.name.as_ref()),
            self.backoff.as_ref().and_then(|r| r.name.as_ref()),
            self.rate_limited.as_ref().and_then(|r| r.name.as_ref()),
            self.bulkhead.as_ref().and_then(|b| b.name.as_ref()),
            self.cached.as_ref().and_then(|(c, _)| c.name.as_ref()),
            self.degradation.as_ref().and_then(|(d, _)| d.name.as_ref()),
            self.timeout.as_ref().and_then(|(t, _)| t.name.as_ref()),
        ]
        .into_iter()
        .flatten()
        .next()
    }

    /// Whether a layer takes its instance name from the fn's path (no `name = ...`).
    pub(crate) fn has_unnamed_layer(&self) -> bool {
        self.breaker.as_ref().is_some_and(|b| b.name.is_none())
            || self.monitored.as_ref().is_some_and(|m| m.name.is_none())
            || self.backoff.as_ref().is_some_and(|r| r.name.is_none())
            || self.rate_limited.as_ref().is_some_and(|r| r.name.is_none())
            || self.bulkhead.as_ref().is_some_and(|b| b.name.is_none())
            || self.timeout.as_ref().is_some_and(|(t, _)| t.name.is_none())
            || self.cached.as_ref().is_some_and(|(c, _)| c.name.is_none())
            || self
                .degradation
                .as_ref()
                .is_some_and(|(d, _)| d.name.is_none())
    }
}
