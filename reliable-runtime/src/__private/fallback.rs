//! `#[graceful_degradation]`: what `fallback = ...` may be ([`Fallback`], [`AsyncFallback`])
//! and the helpers around the fallback call.

use super::bounds::{into_error, HoldsRejected, ReturnsResult};
use super::Run;
use crate::error::Failure;
use crate::policy::Policy;
use core::future::Future;

impl Run {
    /// The output of a call that succeeded, or its failure for the fallback.
    #[inline]
    pub fn split<R>(outcome: Result<R::Ok, Failure<R::Error>>) -> Result<R, Failure<R::Error>>
    where
        R: ReturnsResult,
    {
        outcome.map(|value| R::from_result(Ok(value)))
    }

    /// The fallback's answer (see [`Policy::fall_back`]); `fallback` may borrow the cause.
    #[inline]
    pub async fn fall_back<R, Fallback>(
        policy: &Policy,
        failure: Failure<R::Error>,
        fallback: Fallback,
    ) -> Result<R::Ok, Failure<R::Error>>
    where
        R: ReturnsResult,
        Fallback: AsyncFnOnce(&Failure<R::Error>) -> R,
    {
        policy
            .fall_back_borrowing(failure, async move |cause: &Failure<R::Error>| {
                fallback(cause).await.into_result()
            })
            .await
    }

    /// [`fall_back`](Self::fall_back) for a blocking fn.
    #[inline]
    pub fn fall_back_blocking<R>(
        policy: &Policy,
        failure: Failure<R::Error>,
        fallback: impl FnOnce(&Failure<R::Error>) -> R,
    ) -> Result<R::Ok, Failure<R::Error>>
    where
        R: ReturnsResult,
    {
        policy.fall_back_blocking(failure, |cause| fallback(cause).into_result())
    }

    /// The fn's output from the fallback's outcome, a refusal converted into the fn's error.
    #[inline]
    pub fn answered<R>(outcome: Result<R::Ok, Failure<R::Error>>) -> R
    where
        R: ReturnsResult,
        R::Error: HoldsRejected,
    {
        R::from_result(outcome.map_err(into_error))
    }

    /// [`answered`](Self::answered) for a fn none of whose layers refuses calls.
    #[inline]
    pub fn answered_unrefused<R>(outcome: Result<R::Ok, Failure<R::Error>>) -> R
    where
        R: ReturnsResult,
    {
        R::from_result(outcome.map_err(|failure| match failure {
            Failure::Inner(error) => error,
            // Only generated for plans without breaker, limiter, bulkhead or timeout.
            Failure::Rejected(rejected) => {
                unreachable!("no layer of this fn refuses calls, yet it was refused: {rejected}")
            }
        }))
    }
}

/// Marks a fallback given as a value of the fn's return type.
pub struct FallbackValue;
/// Marks a fallback fn taking the fn's arguments.
pub struct FallbackFn;
/// Marks a fallback fn taking the fn's arguments and the cause.
pub struct FallbackFnWithCause;
/// Marks an async fallback fn taking the fn's arguments.
pub struct FallbackAsyncFn;
/// Marks an async fallback fn taking the fn's arguments and the cause (which its future may
/// borrow).
pub struct FallbackAsyncFnWithCause;

/// What `fallback = ...` may be for a blocking fn returning `R` with arguments `Args` (a tuple
/// of references to them) and failure `Cause`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be this function's fallback",
    label = "not a fallback for a function returning `{R}`",
    note = "give a value of the function's return type (`fallback = Ok(Vec::new())`), or a fn that takes the function's arguments by reference (`&self` included), optionally followed by `&reliable_runtime::Failure<E>`, and returns `{R}`"
)]
pub trait Fallback<Args, Cause, R, Marker> {
    /// Answers for a failed call.
    fn answer(self, args: Args, cause: &Cause) -> R;
}

impl<Args, Cause, R> Fallback<Args, Cause, R, FallbackValue> for R {
    #[inline]
    fn answer(self, _args: Args, _cause: &Cause) -> R {
        self
    }
}

/// What `fallback = ...` may be for an async fn: also a fn returning a future of `R`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot be this function's fallback",
    label = "not a fallback for a function returning `{R}`",
    note = "give a value of the function's return type (`fallback = Ok(Vec::new())`), or a fn (sync or async) that takes the function's arguments by reference (`&self` included), optionally followed by `&reliable_runtime::Failure<E>`, and returns `{R}`"
)]
pub trait AsyncFallback<Args, Cause, R, Marker> {
    /// Answers for a failed call (the future may borrow the arguments and the cause).
    fn answer(self, args: Args, cause: &Cause) -> impl Future<Output = R>;
}

impl<Args, Cause, R> AsyncFallback<Args, Cause, R, FallbackValue> for R {
    #[inline]
    fn answer(self, _args: Args, _cause: &Cause) -> impl Future<Output = R> {
        core::future::ready(self)
    }
}

macro_rules! fallback_fns {
    ($(($($arg:ident),*)),* $(,)?) => {$(
        impl<F, Cause, R, $($arg),*> Fallback<($($arg,)*), Cause, R, FallbackFn> for F
        where
            F: FnOnce($($arg),*) -> R,
        {
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), _cause: &Cause) -> R {
                self($($arg),*)
            }
        }

        impl<F, Cause, R, $($arg),*> Fallback<($($arg,)*), Cause, R, FallbackFnWithCause> for F
        where
            F: FnOnce($($arg,)* &Cause) -> R,
        {
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), cause: &Cause) -> R {
                self($($arg,)* cause)
            }
        }

        impl<F, Cause, R, $($arg),*> AsyncFallback<($($arg,)*), Cause, R, FallbackFn> for F
        where
            F: FnOnce($($arg),*) -> R,
        {
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), _cause: &Cause) -> impl Future<Output = R> {
                core::future::ready(self($($arg),*))
            }
        }

        impl<F, Cause, R, $($arg),*> AsyncFallback<($($arg,)*), Cause, R, FallbackFnWithCause> for F
        where
            F: FnOnce($($arg,)* &Cause) -> R,
        {
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), cause: &Cause) -> impl Future<Output = R> {
                core::future::ready(self($($arg,)* cause))
            }
        }

        impl<F, Fut, Cause, R, $($arg),*> AsyncFallback<($($arg,)*), Cause, R, FallbackAsyncFn> for F
        where
            F: FnOnce($($arg),*) -> Fut,
            Fut: Future<Output = R>,
        {
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), _cause: &Cause) -> impl Future<Output = R> {
                self($($arg),*)
            }
        }

        impl<F, Cause, R, $($arg),*> AsyncFallback<($($arg,)*), Cause, R, FallbackAsyncFnWithCause> for F
        where
            F: AsyncFnOnce($($arg,)* &Cause) -> R,
        {
            #[inline]
            #[allow(non_snake_case)]
            fn answer(self, ($($arg,)*): ($($arg,)*), cause: &Cause) -> impl Future<Output = R> {
                self($($arg,)* cause)
            }
        }
    )*};
}

fallback_fns! {
    (),
    (A1),
    (A1, A2),
    (A1, A2, A3),
    (A1, A2, A3, A4),
    (A1, A2, A3, A4, A5),
    (A1, A2, A3, A4, A5, A6),
    (A1, A2, A3, A4, A5, A6, A7),
    (A1, A2, A3, A4, A5, A6, A7, A8),
}
