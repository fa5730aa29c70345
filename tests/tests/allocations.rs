//! A call through `#[monitored] #[circuit_breaker]` in the closed state allocates nothing, nor
//! does a `#[cached]` hit, even when its key is made of borrowed arguments.
//!
//! A counting global allocator counts allocations made on this test's thread while a flag is
//! set; the calls are polled by hand (no runtime) so only the pipeline is measured.

use reliable_runtime::{cached, circuit_breaker, monitored, Rejected};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

struct CountingAllocator;

thread_local! {
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    /// Per thread, so the tests, which run in parallel, do not count each other's allocations.
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

fn count_allocation() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|count| count.set(count.get() + 1));
    }
}

/// Allocations on this thread while `calls` runs.
fn allocations_during(calls: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    COUNTING.with(|counting| counting.set(true));
    calls();
    COUNTING.with(|counting| counting.set(false));
    ALLOCATIONS.with(Cell::get) - before
}

// SAFETY: defers every operation to the system allocator; only counts.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: same contract as ours.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        // SAFETY: same contract as ours.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

#[derive(Clone, Debug)]
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

#[cached(ttl = 3600, name = "alloc_cached_default_key")]
async fn quote(symbol: &str, depth: u32) -> Result<u64, ApiError> {
    Ok(symbol.len() as u64 + u64::from(depth))
}

struct Exchange {
    id: u32,
}

impl Exchange {
    #[cached(ttl = 3600, key = (self.id, symbol), name = "alloc_cached_method")]
    async fn ticker(&self, symbol: &str) -> Result<u64, ApiError> {
        Ok(symbol.len() as u64 + u64::from(self.id))
    }

    // A reference to an owned type on purpose: looked up as `&String`, kept as `String`.
    #[allow(clippy::ptr_arg)]
    #[cached(ttl = 3600, key = symbol, name = "alloc_cached_sync")]
    fn book(&self, symbol: &String) -> Option<u64> {
        Some(symbol.len() as u64)
    }
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

    let mut sum = 0;
    let allocations = allocations_during(|| {
        for price in 0..10_000 {
            sum += block_on(ticker(price)).unwrap();
            sum += ticker_sync(price).unwrap();
        }
    });

    assert!(sum > 0);
    assert_eq!(allocations, 0, "allocations on the hot path");
}

#[test]
fn cache_hits_allocate_nothing_even_for_keys_of_borrowed_arguments() {
    let exchange = Exchange { id: 7 };
    let symbols: Vec<String> = ["BTC", "ETH", "SOL"].map(String::from).into();
    // The misses build owned keys and entries: those allocate.
    for symbol in &symbols {
        block_on(quote(symbol, 5)).unwrap();
        block_on(exchange.ticker(symbol)).unwrap();
        exchange.book(symbol).unwrap();
    }

    let mut sum = 0;
    let allocations = allocations_during(|| {
        for round in 0..3_000 {
            let symbol = &symbols[round % symbols.len()];
            sum += block_on(quote(symbol, 5)).unwrap();
            sum += block_on(exchange.ticker(symbol)).unwrap();
            sum += exchange.book(symbol).unwrap();
        }
    });

    assert_eq!(sum, 3_000 * (8 + 10 + 3));
    assert_eq!(allocations, 0, "allocations on a cache hit");
}
