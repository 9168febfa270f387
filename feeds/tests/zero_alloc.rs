//! Counts heap allocations on the hot path: decode + book apply of real frames after warm-up.
//!
//! A counting global allocator wraps the system allocator for this test binary. The bundled sample
//! capture is fed through `BinanceFeed` twice over its first part (warm-up: buffers grow to the
//! largest frame, the book to its working size), then the rest of the capture is fed while counting.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use qalpha_engine::capture::{CaptureReader, RecordKind};
use qalpha_engine::event::MarketEvent;
use qalpha_engine::Symbol;
use qalpha_feeds::binance::feed::EventSink;
use qalpha_feeds::binance::BinanceFeed;

struct Counting;

static COUNTING: AtomicBool = AtomicBool::new(false);
static ALLOCS: AtomicU64 = AtomicU64::new(0);

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

#[global_allocator]
static GLOBAL: Counting = Counting;

/// A sink that keeps only counts (a ring would not allocate either).
struct CountSink(u64);
impl EventSink for CountSink {
    fn emit(&mut self, _ev: MarketEvent) -> qalpha_engine::ring::PushOutcome {
        self.0 += 1;
        qalpha_engine::ring::PushOutcome::Pushed
    }
}

#[test]
fn decode_and_book_apply_do_not_allocate_after_warm_up() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../data/sample/btcusdt-usdm-20230404.qcap"
    );
    let reader = CaptureReader::open(path).expect("bundled sample");
    let sym = Symbol::parse("BTCUSDT").unwrap();
    let records: Vec<_> = reader.records().collect();
    let warm = records.len() / 3;
    let mut feed = BinanceFeed::new();
    let mut sink = CountSink(0);
    let feed_one = |feed: &mut BinanceFeed, sink: &mut CountSink, i: usize| {
        let r = &records[i];
        match r.kind {
            RecordKind::RestResponse => feed.on_snapshot(r.recv_ns, sym, r.payload, sink),
            RecordKind::WsText => feed.on_ws_frame(r.recv_ns, r.payload, sink),
            _ => {}
        }
    };
    for i in 0..warm {
        feed_one(&mut feed, &mut sink, i);
    }
    assert!(
        feed.book(sym).unwrap().is_synced(),
        "warm-up must reach sync"
    );

    COUNTING.store(true, Ordering::SeqCst);
    // The counter itself works: one deliberate allocation is seen.
    drop(std::hint::black_box(Box::new(1u64)));
    assert_eq!(
        ALLOCS.swap(0, Ordering::SeqCst),
        1,
        "counting allocator is not counting"
    );
    for i in warm..records.len() {
        feed_one(&mut feed, &mut sink, i);
    }
    COUNTING.store(false, Ordering::SeqCst);

    let frames = (records.len() - warm) as u64;
    let allocs = ALLOCS.load(Ordering::SeqCst);
    let c = feed.counters();
    assert_eq!(c.decode.malformed, 0);
    assert!(feed.book(sym).unwrap().is_synced());
    assert!(
        feed.sync_counters().applied > 4000,
        "{:?}",
        feed.sync_counters()
    );
    assert_eq!(
        allocs, 0,
        "{allocs} heap allocations over {frames} frames after warm-up"
    );
}
