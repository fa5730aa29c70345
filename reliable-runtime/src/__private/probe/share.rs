//! How `#[cached]` shares a failed load: autoref specialization on the fn's error type.

use crate::cache::{ByClone, SharedError};
use std::marker::PhantomData;

/// How `#[cached]` on a fn returning `$output` shares a failed load with the callers that
/// waited for it, `$otherwise` when its error cannot be cloned (see [`ShareProbe`]).
#[doc(hidden)]
#[macro_export]
macro_rules! __reliable_share_failure {
    ($output:ty) => {
        $crate::__private::probe::share_failure!($output, $crate::cache::LoadAlone)
    };
    ($output:ty, rejected) => {
        $crate::__private::probe::share_failure!($output, $crate::cache::AsRejected)
    };
    ($output:ty, $otherwise:ty) => {{
        #[allow(unused_imports)]
        use $crate::__private::probe::{ShareByClone as _, ShareOtherwise as _};
        (&$crate::__private::probe::ShareProbe::<$output, $otherwise>::NEW).__reliable_share()
    }};
}
pub use crate::__reliable_share_failure as share_failure;

/// Picks how `#[cached]` shares a failed load with the callers that waited for it, by
/// autoref specialization on the fn's return type `R`: `(&ShareProbe::<R, Otherwise>::NEW)
/// .__reliable_share()` is [`ByClone`] when `R` is a `Result` whose error is `Clone + Send +
/// Sync + 'static`, or an `Option` ([`ShareByClone`]), and `Otherwise` (`AsRejected` or
/// `LoadAlone`) for any other type ([`ShareOtherwise`]), which never fails to resolve: a return
/// type that cannot be cached is reported once, by the cache's own bounds.
pub struct ShareProbe<R, Otherwise>(PhantomData<(fn() -> R, Otherwise)>);

impl<R, Otherwise> ShareProbe<R, Otherwise> {
    /// The probe.
    pub const NEW: Self = ShareProbe(PhantomData);
}

/// The preferred case of [`ShareProbe`]: followers get a clone of the leader's error.
pub trait ShareByClone {
    /// [`ByClone`].
    fn __reliable_share(&self) -> ByClone;
}

impl<T, E: SharedError, Otherwise> ShareByClone for ShareProbe<Result<T, E>, Otherwise> {
    #[inline]
    fn __reliable_share(&self) -> ByClone {
        ByClone
    }
}

impl<T, Otherwise> ShareByClone for ShareProbe<Option<T>, Otherwise> {
    #[inline]
    fn __reliable_share(&self) -> ByClone {
        ByClone
    }
}

/// The fallback of [`ShareProbe`] for error types that cannot be cloned.
pub trait ShareOtherwise<Otherwise> {
    /// `Otherwise`.
    fn __reliable_share(&self) -> Otherwise;
}

impl<R, Otherwise: Default> ShareOtherwise<Otherwise> for &ShareProbe<R, Otherwise> {
    #[inline]
    fn __reliable_share(&self) -> Otherwise {
        Otherwise::default()
    }
}
