//! Every check that spans more than one argument, or an attribute and the fn it is on, run over
//! the whole plan. A layer's own arguments are checked when its `args/` file parses them; the
//! limits behind both are `reliable_rules`', which the runtime checks too.

use crate::args::backoff::BackoffArgs;
use crate::args::breaker::BreakerArgs;
use crate::args::bulkhead::BulkheadArgs;
use crate::args::degradation::DegradationArgs;
use crate::args::monitored::MonitoredArgs;
use crate::args::rate_limited::RateLimitedArgs;
use crate::args::timeout::TimeoutArgs;
use crate::errors::Errors;
use crate::item::FnItem;
use crate::plan::Plan;
use core::time::Duration;
use reliable_rules as rules;

/// Checks `plan` as a whole, and against the fn it is on.
pub(crate) fn check(plan: &Plan, item: &FnItem, errors: &mut Errors) {
    crate_paths(plan, errors);
    arguments(plan, errors);
    shape(plan, item, errors);
}

fn nanos(nanos: crate::args::Nanos) -> Duration {
    Duration::from_nanos(nanos.0)
}

/// Every layer names the same runtime.
fn crate_paths(plan: &Plan, errors: &mut Errors) {
    let mut first: Option<&syn::Path> = None;
    for layer in &plan.layers {
        let Some(path) = layer.args.crate_path() else {
            continue;
        };
        match first {
            Some(first) if first != path => errors.spanned(
                path,
                "a different `crate = ...` was given on another attribute of this function",
            ),
            Some(_) => {}
            None => first = Some(path),
        }
    }
}

/// Arguments of one layer that must agree with each other. Each is checked when both are
/// written, whichever comes first; a value left to its default (or a preset's) is checked by
/// the runtime when the policy is built.
fn arguments(plan: &Plan, errors: &mut Errors) {
    if let Some(args) = plan.get::<MonitoredArgs>() {
        if let (Some((p95, _)), Some((p99, span))) = (args.p95, args.p99) {
            if let Err(reason) = rules::sla::p99(nanos(p95), nanos(p99)) {
                errors.push(syn::Error::new(span, format!("`p99` {reason}")));
            }
        }
    }
    if let Some(args) = plan.get::<BreakerArgs>() {
        if let Some((threshold, span)) = args.failure_threshold {
            let rate_rule = args.window_failures.is_some()
                || args.failure_rate.is_some()
                || args.slow_call_rate.is_some();
            if let Err(reason) = rules::breaker::failure_threshold(threshold, rate_rule) {
                errors.push(syn::Error::new(
                    span,
                    format!("`failure_threshold` {reason}"),
                ));
            }
        }
        if let Some((count, span)) = args.window_failures {
            // Checked against a window written here; the runtime checks its default.
            let calls = match args.window {
                Some(crate::args::WindowArg::Calls(calls)) => Some(calls),
                _ => None,
            };
            if let Err(reason) = rules::breaker::window_failures(count, calls) {
                errors.push(syn::Error::new(span, format!("`window_failures` {reason}")));
            }
        }
        if let (Some(timeout), Some((max, span))) = (args.timeout, args.max_timeout) {
            if let Err(reason) = rules::breaker::max_timeout(nanos(timeout), nanos(max)) {
                errors.push(syn::Error::new(span, format!("`max_timeout` {reason}")));
            }
        }
    }
    if let Some(args) = plan.get::<BackoffArgs>() {
        if let (Some((initial, _)), Some((max, span))) = (args.initial_delay, args.max_delay) {
            if let Err(reason) = rules::retry::max_delay(nanos(initial), nanos(max)) {
                errors.push(syn::Error::new(span, format!("`max_delay` {reason}")));
            }
        }
        if let (Some(false), Some((_, span))) = (args.budget, args.budget_ratio) {
            errors.push(syn::Error::new(
                span,
                "`budget_ratio` sets the retry budget, but `budget = false` turns it off; remove one",
            ));
        }
    }
    if let Some(args) = plan.get::<RateLimitedArgs>() {
        if let Some((burst, span)) = args.burst {
            if let Err(reason) = rules::limit::burst(burst, args.limit) {
                let limit = args.limit;
                errors.push(syn::Error::new(span, format!("`burst` {reason} ({limit})")));
            }
        }
    }
    if let Some(key) = &plan.cache_off_with {
        errors.spanned(
            key,
            "this cache argument has no effect with `cache = false`; remove one of them",
        );
    }
}

/// Layers that need something of the fn: a `Result`, an `async fn`, named arguments.
fn shape(plan: &Plan, item: &FnItem, errors: &mut Errors) {
    let sig = &item.func.sig;
    if let Some(constness) = &sig.constness {
        errors.spanned(constness, "reliability attributes cannot apply to a `const fn`: it cannot read clocks or shared state");
    }
    if item.return_type().is_none() {
        if let Some((attribute, errs_with)) = plan.needs_result() {
            errors.push(syn::Error::new(
                sig.paren_token.span.close(),
                format!(
                    "`#[{attribute}]` needs the function to return `Result<T, E>`, but `{}` returns `()`; {errs_with} must be able to return an error",
                    sig.ident
                ),
            ));
        }
    }
    if let Some(args) = plan.get::<DegradationArgs>() {
        if item.returns_impl_trait() {
            errors.push(syn::Error::new(
                args.span,
                "`#[graceful_degradation]` needs a nameable return type `Result<T, E>`, not `impl Trait`",
            ));
        }
        for input in &sig.inputs {
            if let syn::FnArg::Typed(typed) = input {
                if !matches!(&*typed.pat, syn::Pat::Ident(_)) {
                    errors.spanned(
                        &typed.pat,
                        "`#[graceful_degradation]` passes the arguments to the fallback by name; bind this argument to a name and destructure it in the body",
                    );
                }
            }
        }
    }
    if item.is_async() {
        return;
    }
    if let Some((wait, span)) = plan.get::<BulkheadArgs>().and_then(|b| b.max_wait) {
        if wait.0 > 0 {
            errors.push(syn::Error::new(
                span,
                "`max_wait` needs an `async fn`: a blocking fn refuses at once when the bulkhead is full; remove `max_wait` or make the fn async",
            ));
        }
    }
    if let Some(timeout) = plan.get::<TimeoutArgs>() {
        errors.push(syn::Error::new(
            timeout.span,
            "`#[timeout]` needs an `async fn`: a blocking call cannot be stopped midway; make the fn async (run blocking work with `tokio::task::spawn_blocking`) or drop `#[timeout]`",
        ));
    }
}
