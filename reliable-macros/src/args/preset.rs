//! `#[reliable(preset = ..., ...)]` and the built-in preset attributes: one attribute whose
//! arguments are shared out to the layers' own attributes, by the keys each layer's
//! [`Descriptor`] lists for presets.

use super::{known_args, Descriptor, RawArg, RawArgs};
use crate::errors::Errors;
use proc_macro2::Span;

/// A preset attribute's arguments, shared out per layer (keys renamed to the layer's own).
pub(crate) struct PresetSplit {
    /// `preset = CONST` or `preset = "registered name"`.
    pub(crate) preset: Option<syn::Expr>,
    /// The layers it turns on, in table order, with their share of the arguments.
    pub(crate) layers: Vec<(&'static Descriptor, Vec<RawArg>)>,
    /// `cache = false` and the first cache argument given beside it (refused in `valid.rs`).
    pub(crate) cache_off_with: Option<syn::Ident>,
}

/// Keys every preset attribute takes besides the layers' own.
const SHARED_KEYS: &[&str] = &["name", "crate", "cache"];

impl PresetSplit {
    /// Shares `raw` out to `layers` (the table); `attribute` names the attribute in messages,
    /// `needs_preset` says whether `preset = ...` must be given (`#[reliable]`) or is implied
    /// (the built-ins).
    pub(crate) fn parse(
        raw: RawArgs,
        layers: &[&'static Descriptor],
        attribute: &str,
        needs_preset: bool,
        span: Span,
        errors: &mut Errors,
    ) -> Self {
        let mut known: Vec<&str> = SHARED_KEYS.to_vec();
        for layer in layers {
            let keys = layer.preset_keys.iter().map(|(key, _)| *key);
            for key in keys.chain(layer.preset_name_key) {
                if !known.contains(&key) {
                    known.push(key);
                }
            }
        }
        if needs_preset {
            known.push("preset");
        }
        let renamed = |arg: &RawArg, key: &str| RawArg {
            key: syn::Ident::new(key, arg.key.span()),
            value: arg.value.clone(),
        };
        let mut preset = None;
        let mut shares: Vec<Vec<RawArg>> = layers.iter().map(|_| Vec::new()).collect();
        let mut given: Vec<bool> = layers.iter().map(|layer| layer.in_every_preset).collect();
        let mut shared: Vec<RawArg> = Vec::new();
        let mut own_names: Vec<(usize, RawArg)> = Vec::new();
        let mut cache_off = false;
        for arg in known_args(raw, attribute, &known, errors) {
            let key = arg.key.to_string();
            if key == "preset" {
                preset = Some(arg.value.clone());
                continue;
            }
            if key == "name" || key == "crate" {
                shared.push(arg);
                continue;
            }
            let is_bool = matches!(
                &arg.value,
                syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Bool(_),
                    ..
                })
            );
            if key == "cache" && is_bool {
                if let syn::Expr::Lit(syn::ExprLit {
                    lit: syn::Lit::Bool(on),
                    ..
                }) = &arg.value
                {
                    cache_off = !on.value;
                }
                continue;
            }
            if let Some(index) = layers
                .iter()
                .position(|layer| layer.preset_name_key == Some(key.as_str()))
            {
                match &arg.value {
                    syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(_),
                        ..
                    }) => own_names.push((index, renamed(&arg, "name"))),
                    other if key == "cache" => errors.spanned(
                        other,
                        "`cache` is the cache's name (`cache = \"binance_books\"`), or `true` or `false` (`cache = false` leaves the cache out)",
                    ),
                    other => errors.spanned(
                        other,
                        format!("`{key}` names this layer's instance: `{key} = \"binance_api\"`"),
                    ),
                }
                continue;
            }
            // A layer's own key (`group` goes to every layer that takes one).
            for (index, layer) in layers.iter().enumerate() {
                if let Some((_, own)) = layer.preset_keys.iter().find(|(k, _)| *k == key) {
                    shares[index].push(renamed(&arg, own));
                    given[index] |= *own != "group";
                }
            }
        }
        let mut cache_off_with = None;
        if cache_off {
            if let Some(index) = layers
                .iter()
                .position(|l| l.preset_name_key == Some("cache"))
            {
                cache_off_with = shares[index].first().map(|arg| arg.key.clone());
                given[index] = false;
            }
        }
        // `name` and `crate` go to every layer the preset turns on; a layer's own name wins.
        for (index, layer) in layers.iter().enumerate() {
            if !given[index] {
                continue;
            }
            let own_name = own_names.iter().find(|(i, _)| *i == index);
            for arg in &shared {
                let key = arg.key.to_string();
                if (key != "name" || own_name.is_none()) && layer.takes_shared_key(&key) {
                    shares[index].push(renamed(arg, &key));
                }
            }
            if let Some((_, name)) = own_name {
                shares[index].push(renamed(name, "name"));
            }
        }
        if needs_preset && preset.is_none() {
            errors.push(syn::Error::new(
                span,
                format!("`#[{attribute}]` needs `preset = ...`: a `reliable_runtime::preset::Preset` (e.g. `reliable_runtime::preset::CEX`, or your own const) or the name it was registered under (`preset = \"my_preset\"`)"),
            ));
        }
        let layers = layers
            .iter()
            .zip(shares)
            .zip(given)
            .filter(|(_, given)| *given)
            .map(|((layer, share), _)| (*layer, share))
            .collect();
        PresetSplit {
            preset,
            layers,
            cache_off_with,
        }
    }
}
