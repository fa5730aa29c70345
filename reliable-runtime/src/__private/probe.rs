//! Autoref specialization: picks an impl by the fn's output type where Rust has no
//! specialization. `(&probe).method()` finds the impl for `Probe` when its bounds hold and
//! falls back to the impl for `&Probe` otherwise; the traits must be in scope, so generated
//! code imports them from here.

use super::bounds::ReturnsResult;
use super::hooks::{FnHooks, NoHooks};
use crate::classify::Classify;
use crate::error::{catch_callback, Failure};
use crate::policy::{ErrorHooks, Hooks};
use std::marker::PhantomData;

#[cfg(feature = "cache")]
mod key;
#[cfg(feature = "cache")]
mod share;

/// The callbacks an attribute's fn returning `$output` takes when none is written: its error
/// type's [`Classify`] when it has one ([`Classified`]), else [`NoHooks`]. With `written`, the
/// [`FnHooks`] that fill the callbacks not written (`FnHooks { retry_if: .., ..classify!(R,
/// written) }`). See [`ClassifyProbe`].
#[doc(hidden)]
#[macro_export]
macro_rules! __reliable_classify {
    ($output:ty) => {{
        #[allow(unused_imports)]
        use $crate::__private::probe::{ByClassify as _, Unclassified as _};
        (&$crate::__private::probe::ClassifyProbe::<$output>::NEW).__reliable_hooks()
    }};
    ($output:ty, written) => {{
        #[allow(unused_imports)]
        use $crate::__private::probe::{ByClassify as _, Unclassified as _};
        (&$crate::__private::probe::ClassifyProbe::<$output>::NEW).__reliable_fn_hooks()
    }};
}
pub use crate::__reliable_classify as classify;

/// Picks an attribute's default callbacks by autoref specialization on the fn's return type
/// `R`: [`ByClassify`] when `R` is a `Result` whose error implements [`Classify`],
/// [`Unclassified`] otherwise. Picked where the fn's body is type-checked: in a generic fn,
/// by its bounds (an error type `E: Classify` is classified in every instantiation, an `E`
/// without that bound in none), and the hooks are made per call, so no instantiation's choice
/// is another's.
pub struct ClassifyProbe<R>(PhantomData<fn() -> R>);

impl<R> ClassifyProbe<R> {
    /// The probe.
    pub const NEW: Self = ClassifyProbe(PhantomData);
}

/// The preferred case of [`ClassifyProbe`]: the error's [`Classify`].
pub trait ByClassify<E> {
    /// [`Classified`].
    fn __reliable_hooks(&self) -> Classified<E>;
    /// The [`FnHooks`] of the error's classification.
    fn __reliable_fn_hooks(&self) -> FnHooks<E>;
}

impl<T, E: Classify> ByClassify<E> for ClassifyProbe<Result<T, E>> {
    #[inline(always)]
    fn __reliable_hooks(&self) -> Classified<E> {
        Classified(PhantomData)
    }

    #[inline(always)]
    fn __reliable_fn_hooks(&self) -> FnHooks<E> {
        FnHooks {
            failure_if: Some(|error| error.class().counts_as_failure()),
            retry_if: Some(|error| error.class().is_retryable()),
            retry_after: Some(|error| error.class().retry_after()),
            on_retry: None,
        }
    }
}

/// The fallback of [`ClassifyProbe`]: every error fails and is retried, as without
/// classification.
pub trait Unclassified<R> {
    /// [`NoHooks`].
    fn __reliable_hooks(&self) -> NoHooks;
    /// [`FnHooks::NONE`].
    fn __reliable_fn_hooks(&self) -> FnHooks<R::Error>
    where
        R: ReturnsResult;
}

impl<R> Unclassified<R> for &ClassifyProbe<R> {
    #[inline(always)]
    fn __reliable_hooks(&self) -> NoHooks {
        NoHooks
    }

    #[inline(always)]
    fn __reliable_fn_hooks(&self) -> FnHooks<R::Error>
    where
        R: ReturnsResult,
    {
        FnHooks::NONE
    }
}

/// The callbacks of an error type that implements [`Classify`] (zero-sized): transient and
/// unknown errors count as failures, all but permanent ones are retried, a rate limit's
/// `retry_after` is the hint.
pub struct Classified<E>(PhantomData<fn(&E)>);

impl<E> Clone for Classified<E> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<E> Copy for Classified<E> {}

impl<E: Classify> Hooks<E> for Classified<E> {
    #[inline(always)]
    fn is_failure(&self, _: &ErrorHooks, error: &E) -> bool {
        catch_callback("failure_if", true, || error.class().counts_as_failure())
    }

    fn retry_if(&self, _: &ErrorHooks, error: &E) -> bool {
        error.class().is_retryable()
    }

    fn retry_after(&self, _: &ErrorHooks, error: &E) -> Option<std::time::Duration> {
        error.class().retry_after()
    }

    fn on_retry(&self, _: &ErrorHooks, _: u32, _: std::time::Duration, _: &Failure<E>) {}
}

#[cfg(feature = "cache")]
pub use key::*;
#[cfg(feature = "cache")]
pub use share::*;

/// Classifies any output as failed or not: `Err` fails, anything else succeeds.
///
/// Autoref specialization: for `output: &R`, `output.__reliable_failed()` finds
/// [`FailedIfErr`] when `R` is a `Result` and falls back to [`NeverFailed`] otherwise.
pub trait FailedIfErr {
    /// Whether the output is an `Err`.
    fn __reliable_failed(&self) -> bool;
}

impl<T, E> FailedIfErr for Result<T, E> {
    #[inline]
    fn __reliable_failed(&self) -> bool {
        self.is_err()
    }
}

/// The fallback of [`FailedIfErr`]: outputs that are not `Result`s never fail.
pub trait NeverFailed {
    /// Always `false`.
    fn __reliable_failed(&self) -> bool;
}

impl<T: ?Sized> NeverFailed for &T {
    #[inline]
    fn __reliable_failed(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_by_autoref() {
        let ok: Result<u8, u8> = Ok(1);
        let err: Result<u8, u8> = Err(1);
        let plain = 5u32;
        // Generated code sees the output as `&R`, as here.
        let (ok, err, plain) = (&ok, &err, &plain);
        assert!(!ok.__reliable_failed());
        assert!(err.__reliable_failed());
        assert!(!plain.__reliable_failed());
    }
}
