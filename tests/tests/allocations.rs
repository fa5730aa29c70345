//! A call through `#[monitored] #[circuit_breaker]` in the closed state allocates nothing.
//!
//! A counting global allocator counts allocations made on this test's thread while a flag is
//! set; the calls are polled by hand (no runtime) so only the pipeline is measured.

use reliable_runtime::{circuit_breaker, monitored, Rejected};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll, Waker};

struct CountingAllocator;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
}

// SAFETY: defers every operation to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.with(Cell::get) {
            ALLOCATIONS.fetch_add(1, Ordering::SeqCst);
        }
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[derive(Debug)]
struct ApiError;

impl From<Rejected> for ApiError {
    fn from(_: Rejected) -> Self {
        ApiError
    }
}

#[monitored(name = "alloc_monitored")]
#[circuit_breaker(name = "alloc_breaker")]
async fn ticker(price: u64) -> Result<u64, ApiError> {
    Ok(price + 1)
}

#[monitored(name = "alloc_sync")]
#[circuit_breaker(name = "alloc_sync")]
fn ticker_sync(price: u64) -> Result<u64, ApiError> {
    Ok(price + 1)
}

fn block_on<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    let mut context = Context::from_waker(Waker::noop());
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return output;
        }
    }
}

#[test]
fn closed_breaker_and_monitor_allocate_nothing_per_call() {
    // The first calls create the instances and the registry entries: those allocate.
    block_on(ticker(1)).unwrap();
    ticker_sync(1).unwrap();

    COUNTING.with(|counting| counting.set(true));
    let mut sum = 0;
    for price in 0..10_000 {
        sum += block_on(ticker(price)).unwrap();
        sum += ticker_sync(price).unwrap();
    }
    COUNTING.with(|counting| counting.set(false));

    assert!(sum > 0);
    assert_eq!(
        ALLOCATIONS.load(Ordering::SeqCst),
        0,
        "allocations on the hot path"
    );
}
