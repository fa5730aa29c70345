//! `#[monitored]`: the call site's monitor.

use crate::args::{MonitoredArgs, WindowArg};
use crate::expand::option_str;
use proc_macro2::{Literal, TokenStream};
use quote::quote;

/// Adds the monitor's `static` to `setup`; returns its lookup.
pub(crate) fn setup(
    args: &MonitoredArgs,
    private: &TokenStream,
    marker: &TokenStream,
    preset: Option<&TokenStream>,
    setup: &mut TokenStream,
) -> TokenStream {
    let name = option_str(args.name.as_ref());
    let group = option_str(args.group.as_ref());
    let mut fields = TokenStream::new();
    if let Some(p95) = args.p95 {
        fields.extend(quote!(max_latency_p95: #private::Duration::from_nanos(#p95),));
    }
    if let Some(p99) = args.p99 {
        fields.extend(quote!(max_latency_p99: #private::Duration::from_nanos(#p99),));
    }
    if let Some(rate) = args.min_success_rate {
        let rate = Literal::f64_suffixed(rate);
        fields.extend(quote!(min_success_rate: #rate,));
    }
    if let Some(max) = args.max_consecutive_failures {
        fields.extend(quote!(max_consecutive_failures: #max,));
    }
    if let Some(min) = args.min_calls {
        fields.extend(quote!(min_calls: #min,));
    }
    let window = match args.window {
        None => quote!(#private::SlaWindow::Calls(100)),
        Some(WindowArg::Calls(calls)) => quote!(#private::SlaWindow::Calls(#calls)),
        Some(WindowArg::Time(span)) => {
            quote!(#private::SlaWindow::Time(#private::Duration::from_nanos(#span)))
        }
    };
    let defaults = match preset {
        Some(preset) => quote!((#preset.sla)()),
        None => quote!(#private::SlaThresholds::default()),
    };
    setup.extend(quote! {
        static __RELIABLE_MONITOR: #private::Site<#private::SlaMonitor> = #private::Site::new();
    });
    let lookup = quote! {
        __RELIABLE_MONITOR.monitor(
            #private::SiteName::new(#name, #marker),
            || #private::SlaThresholds { #fields ..#defaults },
            #window,
            #group,
        )
    };
    lookup
}
