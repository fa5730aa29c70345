//! A fallback's future, with any panic while it is built or polled caught: a fallback never
//! takes down its caller.

use core::future::Future;

/// Builds a fallback's future, catching a panic while it is built.
#[inline]
pub(super) fn start_fallback<Fut>(build: impl FnOnce() -> Fut) -> Option<CatchUnwind<Fut>> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(build))
        .ok()
        .map(|future| CatchUnwind { future })
}

pin_project_lite::pin_project! {
    /// A future that turns a panic while polling into `None` (the fallback's future: a panic in
    /// it must not reach the caller).
    pub struct CatchUnwind<F> {
        #[pin]
        future: F,
    }
}

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Option<F::Output>;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        let future = self.project().future;
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| future.poll(context))) {
            Ok(std::task::Poll::Ready(output)) => std::task::Poll::Ready(Some(output)),
            Ok(std::task::Poll::Pending) => std::task::Poll::Pending,
            Err(_) => std::task::Poll::Ready(None),
        }
    }
}
