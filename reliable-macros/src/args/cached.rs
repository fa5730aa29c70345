//! `#[cached(...)]` arguments.

use super::{
    known_args, read_duration, read_f64, read_path, read_positive_duration, read_str, read_u32,
    Nanos, RawArgs,
};
use crate::errors::Errors;

/// Parsed and checked `#[cached]` arguments; `None` means "the default".
#[derive(Default)]
pub(crate) struct CachedArgs {
    pub(crate) name: Option<syn::LitStr>,
    pub(crate) key: Option<syn::Expr>,
    pub(crate) ttl: Option<Nanos>,
    pub(crate) min_ttl: Option<Nanos>,
    pub(crate) max_ttl: Option<Nanos>,
    pub(crate) stale: Option<Nanos>,
    /// The runtime `CachePolicy` variant's name.
    pub(crate) policy: Option<&'static str>,
    pub(crate) max_entries: Option<u32>,
    pub(crate) eviction_ratio: Option<f64>,
    pub(crate) ttl_jitter: Option<f64>,
    pub(crate) crate_path: Option<syn::Path>,
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
    pub(crate) fn parse(raw: RawArgs, errors: &mut Errors) -> Self {
        let mut args = CachedArgs::default();
        for arg in known_args(raw, "cached", KEYS, errors) {
            match arg.key.to_string().as_str() {
                "name" => args.name = errors.keep(read_str(&arg, "\"orderbook\"")),
                "key" => args.key = Some(arg.value.clone()),
                "ttl" => args.ttl = errors.keep(read_positive_duration(&arg, "\"5s\"")),
                "min_ttl" => args.min_ttl = errors.keep(read_positive_duration(&arg, "\"2s\"")),
                "max_ttl" => args.max_ttl = errors.keep(read_positive_duration(&arg, "\"15s\"")),
                "stale" => args.stale = errors.keep(read_duration(&arg, "\"10s\"")),
                "policy" => {
                    if let Some(name) = errors.keep(read_str(&arg, "\"adaptive\"")) {
                        args.policy = match name.value().as_str() {
                            "ttl" => Some("Ttl"),
                            "lru" => Some("Lru"),
                            "lfu" => Some("Lfu"),
                            "adaptive" => Some("Adaptive"),
                            other => {
                                errors.spanned(&name, format!("unknown policy `{other}`; expected one of `\"ttl\"`, `\"lru\"`, `\"lfu\"`, `\"adaptive\"`"));
                                None
                            }
                        };
                    }
                }
                "max_entries" => args.max_entries = errors.keep(read_u32(&arg, 1, "10_000")),
                "eviction_ratio" => {
                    let value = errors.keep(read_f64(&arg, "0.1"));
                    if value.is_some_and(|r| !(r > 0.0 && r <= 1.0)) {
                        errors.spanned(&arg.value, "`eviction_ratio` is the fraction evicted at once when full: above 0.0 and at most 1.0");
                    } else {
                        args.eviction_ratio = value;
                    }
                }
                "ttl_jitter" => {
                    let value = errors.keep(read_f64(&arg, "0.1"));
                    if value.is_some_and(|j| !(0.0..0.5).contains(&j)) {
                        errors.spanned(
                            &arg.value,
                            "`ttl_jitter` is a fraction within 0.0..0.5 (0.1 spreads TTLs by ±10%)",
                        );
                    } else {
                        args.ttl_jitter = value;
                    }
                }
                "crate" => args.crate_path = errors.keep(read_path(&arg, "my_reliable")),
                _ => unreachable!("known_args only returns known keys"),
            }
        }
        args
    }
}
