//! Every reliability attribute on one fn becomes one [`Plan`]: the first of ours to expand takes
//! the others off the fn, so the pipeline order is fixed whatever order they were written in.

use crate::args::preset::PresetSplit;
use crate::args::{Descriptor, Input, LayerArgs, RawArgs};
use crate::errors::Errors;
use crate::path::RuntimePath;
use crate::{LAYERS, PRESETS};
use proc_macro2::{Span, TokenStream};
use syn::spanned::Spanned;

/// One of our attributes.
#[derive(Clone, Copy)]
pub(crate) enum Attribute {
    /// A layer attribute: `#[circuit_breaker]` and the like.
    Layer(&'static Descriptor),
    /// A preset attribute and the runtime's preset const it applies (`None`: `#[reliable]`,
    /// which takes `preset = ...`).
    Preset(&'static str, Option<&'static str>),
}

impl Attribute {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Attribute::Layer(descriptor) => descriptor.attribute,
            Attribute::Preset(attribute, _) => attribute,
        }
    }

    fn named(name: &str) -> Option<Attribute> {
        if let Some(descriptor) = LAYERS.iter().find(|d| d.attribute == name) {
            return Some(Attribute::Layer(descriptor));
        }
        let (attribute, preset) = PRESETS.iter().find(|(a, _)| *a == name)?;
        Some(Attribute::Preset(attribute, *preset))
    }

    fn same(self, other: Attribute) -> bool {
        self.name() == other.name()
    }

    /// The attribute `path` names, if it is one of ours. A path is ours when it is a bare
    /// name (`#[monitored]`: in one scope a name means one macro, and ours are imported
    /// under theirs), or when what comes before the name is our crate: `reliable_runtime`,
    /// `reliable_macros`, or a path given as `crate = ...` (a renamed dependency). So
    /// `#[cached::cached]` or `#[other::timeout]` on the same fn are left alone.
    fn of(path: &syn::Path, crate_paths: &[syn::Path]) -> Option<Attribute> {
        let last = path.segments.last()?;
        let attribute = Attribute::named(&last.ident.to_string())?;
        let prefix: Vec<String> = path
            .segments
            .iter()
            .take(path.segments.len() - 1)
            .map(|segment| segment.ident.to_string())
            .collect();
        let ours = match prefix.as_slice() {
            [] => true,
            [only] if only == "reliable_runtime" || only == "reliable_macros" => true,
            _ => crate_paths.iter().any(|crate_path| {
                crate_path
                    .segments
                    .iter()
                    .map(|segment| segment.ident.to_string())
                    .eq(prefix.iter().cloned())
            }),
        };
        ours.then_some(attribute)
    }
}

/// One layer of the plan.
pub(crate) struct Planned {
    pub(crate) descriptor: &'static Descriptor,
    pub(crate) args: Box<dyn LayerArgs>,
}

/// The layers of one fn, in the runtime's order (`Policy`: fallback, cache, retries, breaker,
/// rate limit, bulkhead, monitor, timeout), whatever order the attributes are written in.
pub(crate) struct Plan {
    pub(crate) layers: Vec<Planned>,
    /// Paths of the sibling attributes taken off the fn: the expansion mentions them so their
    /// imports count as used (rustc never resolves an attribute that was removed).
    pub(crate) absorbed: Vec<syn::Path>,
    /// The preset whose configurations are the layers' defaults.
    pub(crate) preset: Option<PresetSource>,
    /// `cache = false` given with a cache argument, which has no effect (see `valid.rs`).
    pub(crate) cache_off_with: Option<syn::Ident>,
    pub(crate) runtime: RuntimePath,
}

/// Where a preset comes from.
pub(crate) enum PresetSource {
    /// `preset = <expr>`: a `Preset` value or a registered name.
    Expr(syn::Expr),
    /// A built-in attribute: the runtime's `preset::<NAME>` const.
    Builtin(&'static str),
}

/// `crate = path` written in `tokens`, if it parses as arguments.
fn crate_path_in(tokens: &TokenStream) -> Option<syn::Path> {
    let raw = syn::parse2::<RawArgs>(tokens.clone()).ok()?;
    raw.0
        .into_iter()
        .find_map(|arg| match (arg.key == "crate", arg.value) {
            (true, syn::Expr::Path(path)) => Some(path.path),
            _ => None,
        })
}

/// Builds the plan from the expanding attribute (`first`) and the fn's other attributes of
/// ours, which it removes from `attrs`. Each layer's own arguments are checked here; checks
/// across arguments and attributes are `valid.rs`'s.
pub(crate) fn plan(
    first: Attribute,
    first_args: TokenStream,
    attrs: &mut Vec<syn::Attribute>,
    errors: &mut Errors,
) -> Plan {
    // Paths a renamed dependency may be written with: the `crate = ...` of any attribute.
    let mut crate_paths: Vec<syn::Path> = crate_path_in(&first_args).into_iter().collect();
    for attr in attrs.iter() {
        // Only an attribute named like one of ours says where our crate is.
        let named_like_ours = attr
            .path()
            .segments
            .last()
            .is_some_and(|last| Attribute::named(&last.ident.to_string()).is_some());
        if let (true, syn::Meta::List(list)) = (named_like_ours, &attr.meta) {
            crate_paths.extend(crate_path_in(&list.tokens));
        }
    }
    let mut written = vec![(first, Span::call_site(), Some(first_args))];
    let mut kept = Vec::with_capacity(attrs.len());
    let mut absorbed = Vec::new();
    for attr in attrs.drain(..) {
        let Some(attribute) = Attribute::of(attr.path(), &crate_paths) else {
            kept.push(attr);
            continue;
        };
        if written.iter().any(|(seen, _, _)| seen.same(attribute)) {
            errors.spanned(
                attr.path(),
                format!(
                    "`#[{}]` is given twice on this function; merge the arguments into one attribute",
                    attribute.name()
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
                    format!("write `#[{}(...)]`", attribute.name()),
                );
                None
            }
        };
        written.push((attribute, attr.path().span(), tokens));
        absorbed.push(attr.path().clone());
    }
    *attrs = kept;

    let mut preset = None;
    let mut cache_off_with = None;
    // A preset attribute stands for several layers: share its arguments out first.
    let mut inputs: Vec<(&'static Descriptor, Span, Input)> = Vec::new();
    for (attribute, span, tokens) in written {
        let Some(tokens) = tokens else { continue };
        let builtin = match attribute {
            Attribute::Layer(descriptor) => {
                inputs.push((descriptor, span, Input::Tokens(tokens)));
                continue;
            }
            Attribute::Preset(_, builtin) => builtin,
        };
        let Some(raw) = errors.keep(syn::parse2::<RawArgs>(tokens)) else {
            continue;
        };
        if preset.is_some() {
            errors.push(syn::Error::new(
                span,
                "only one preset attribute per function; merge their arguments",
            ));
            continue;
        }
        let split = PresetSplit::parse(
            raw,
            LAYERS,
            attribute.name(),
            builtin.is_none(),
            span,
            errors,
        );
        preset = Some(match builtin {
            Some(name) => PresetSource::Builtin(name),
            None => match split.preset {
                Some(expr) => PresetSource::Expr(expr),
                None => continue,
            },
        });
        cache_off_with = split.cache_off_with;
        for (descriptor, args) in split.layers {
            inputs.push((descriptor, span, Input::Args(args)));
        }
    }
    let mut layers: Vec<Planned> = Vec::new();
    for (descriptor, span, input) in inputs {
        if layers
            .iter()
            .any(|layer| std::ptr::eq(layer.descriptor, descriptor))
        {
            errors.push(syn::Error::new(
                span,
                format!(
                    "`#[{}]` is given twice on this function (a preset attribute includes it); give its arguments in the preset attribute",
                    descriptor.attribute
                ),
            ));
            continue;
        }
        if let Some(args) = (descriptor.parse)(input, span, errors) {
            layers.push(Planned { descriptor, args });
        }
    }
    let order = |descriptor: &Descriptor| {
        LAYERS
            .iter()
            .position(|d| std::ptr::eq(*d, descriptor))
            .unwrap_or(usize::MAX)
    };
    layers.sort_by_key(|layer| order(layer.descriptor));
    let runtime = RuntimePath::new(
        layers
            .iter()
            .find_map(|layer| layer.args.crate_path().cloned()),
    );
    Plan {
        layers,
        absorbed,
        preset,
        cache_off_with,
        runtime,
    }
}

impl Plan {
    /// The layer whose arguments are `T`, if the plan has it.
    pub(crate) fn get<T: LayerArgs>(&self) -> Option<&T> {
        self.layers
            .iter()
            .find_map(|layer| layer.args.as_any().downcast_ref::<T>())
    }

    /// Whether a layer can refuse a call (its error type must then hold a `Rejected`).
    pub(crate) fn rejects(&self) -> bool {
        self.layers.iter().any(|layer| layer.descriptor.rejects)
    }

    /// The first layer that needs the fn to return a `Result` (all but `#[monitored]` and
    /// `#[cached]`, which also take `Option`), and what it returns as an error.
    pub(crate) fn needs_result(&self) -> Option<(&'static str, &'static str)> {
        self.layers.iter().find_map(|layer| {
            let errs_with = layer.descriptor.errs_with?;
            Some((layer.descriptor.attribute, errs_with))
        })
    }

    /// The first `name = ...` written on a layer, if any.
    pub(crate) fn explicit_name(&self) -> Option<&syn::LitStr> {
        self.layers.iter().find_map(|layer| layer.args.name())
    }

    /// Whether a layer takes its instance name from the fn's path (no `name = ...`).
    pub(crate) fn has_unnamed_layer(&self) -> bool {
        self.layers.iter().any(|layer| layer.args.name().is_none())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    /// The attributes `plan` leaves on a fn written with `attrs`, when `first` expands.
    fn kept(first: TokenStream, attrs: TokenStream) -> Vec<String> {
        let func: syn::ItemFn =
            syn::parse2(quote!(#attrs fn f() -> Result<(), E> { Ok(()) })).expect("a fn");
        let mut attrs = func.attrs;
        let mut errors = Errors::default();
        let layer = Attribute::named("monitored").expect("ours");
        let plan = plan(layer, first, &mut attrs, &mut errors);
        assert!(errors.finish().is_ok());
        assert!(!plan.layers.is_empty());
        attrs
            .iter()
            .map(|attr| quote!(#attr).to_string().replace(' ', ""))
            .collect()
    }

    #[test]
    fn siblings_of_other_crates_are_left_alone() {
        let kept = kept(
            TokenStream::new(),
            quote! {
                #[cached::proc_macro::cached]
                #[other::timeout(5)]
                #[tokio::test]
            },
        );
        assert_eq!(
            kept,
            [
                "#[cached::proc_macro::cached]",
                "#[other::timeout(5)]",
                "#[tokio::test]"
            ]
        );
    }

    #[test]
    fn siblings_of_ours_join_by_name_by_crate_or_by_the_renamed_crate() {
        let kept = kept(
            quote!(crate = my_alias),
            quote! {
                #[circuit_breaker]
                #[reliable_runtime::with_backoff]
                #[my_alias::timeout(5)]
                #[not_my_alias::cached]
                #[other::instrument(crate = other)]
                #[other::bulkhead(max_concurrent = 2)]
            },
        );
        assert_eq!(
            kept,
            [
                "#[not_my_alias::cached]",
                "#[other::instrument(crate=other)]",
                "#[other::bulkhead(max_concurrent=2)]"
            ]
        );
    }
}
