//! [`OutOfLine`]: a boxed future polled through calls that are never inlined.

use core::future::Future;

/// `#[cached]`'s miss path, boxed and polled out of line.
///
/// Boxing keeps the large miss-path state out of the fn's future. Awaiting a plain
/// `Pin<Box<F>>` is not enough: its `poll` and drop glue take the address of the field that
/// holds the box, and once that address escapes into a call the compiler keeps the whole future
/// in memory and copies it on every move, which stalls on the freshly written state byte. Here
/// `poll` and `drop` read the pointer into a register and pass it by value to functions that
/// are never inlined, so the hit path's future stays in registers.
///
/// Why it is built this way: BENCHMARKS.md, section "Design notes moved from the API docs".
pub(super) struct OutOfLine<F: Future>(std::mem::ManuallyDrop<std::pin::Pin<Box<F>>>);

/// Boxes `future` to be awaited out of line.
#[inline]
pub(super) fn out_of_line<F: Future>(future: F) -> OutOfLine<F> {
    OutOfLine(std::mem::ManuallyDrop::new(Box::pin(future)))
}

impl<F: Future> Future for OutOfLine<F> {
    type Output = F::Output;

    #[inline(always)]
    fn poll(
        self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        poll_out_of_line(self.get_mut().0.as_mut(), context)
    }
}

impl<F: Future> Drop for OutOfLine<F> {
    #[inline(always)]
    fn drop(&mut self) {
        // SAFETY: the field is never used again: this is its owner's drop.
        drop_out_of_line(unsafe { std::mem::ManuallyDrop::take(&mut self.0) });
    }
}

#[inline(never)]
fn poll_out_of_line<F: Future>(
    future: std::pin::Pin<&mut F>,
    context: &mut std::task::Context<'_>,
) -> std::task::Poll<F::Output> {
    future.poll(context)
}

#[inline(never)]
fn drop_out_of_line<F>(future: std::pin::Pin<Box<F>>) {
    drop(future);
}
