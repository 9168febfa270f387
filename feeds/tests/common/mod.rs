//! Shared by the zero-allocation tests: a counting global allocator and a counting event sink.
//! Each test binary installs the allocator with `#[global_allocator] static GLOBAL: Counting = Counting;`.
#![allow(dead_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use qalpha_engine::event::MarketEvent;
use qalpha_feeds::EventSink;

/// Counts allocations (and reallocations) while [`COUNTING`] is set.
pub struct Counting;

pub static COUNTING: AtomicBool = AtomicBool::new(false);
pub static ALLOCS: AtomicU64 = AtomicU64::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: forwarding the caller's layout to the system allocator unchanged.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `System` with this layout (every allocation goes through it).
        unsafe { System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        if COUNTING.load(Ordering::Relaxed) {
            ALLOCS.fetch_add(1, Ordering::Relaxed);
        }
        // SAFETY: as for `dealloc`; `new_size` comes from the caller's contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Starts counting; first proves the counter counts (one deliberate allocation must be seen).
pub fn start_counting() {
    COUNTING.store(true, Ordering::SeqCst);
    drop(std::hint::black_box(Box::new(1u64)));
    assert_eq!(
        ALLOCS.swap(0, Ordering::SeqCst),
        1,
        "counting allocator is not counting"
    );
}

/// Stops counting and returns the allocations seen since [`start_counting`].
pub fn stop_counting() -> u64 {
    COUNTING.store(false, Ordering::SeqCst);
    ALLOCS.load(Ordering::SeqCst)
}

/// A sink that keeps only counts (a ring would not allocate either).
pub struct CountSink(pub u64);

impl EventSink for CountSink {
    fn emit(&mut self, _ev: MarketEvent) -> qalpha_engine::ring::PushOutcome {
        self.0 += 1;
        qalpha_engine::ring::PushOutcome::Pushed
    }
}
