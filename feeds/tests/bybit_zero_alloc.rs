//! Counts heap allocations on the Bybit hot path: decode + book apply + ticker merge of real frames
//! after warm-up (skipped with a message when `../shared/data` is absent).
//!
//! A counting global allocator wraps the system allocator for this test binary. Every real frame —
//! the ob500 archive (500-level snapshot + deltas), trades, level-1 quotes, tickers, liquidations —
//! plus control replies and a broken frame are fed once to warm up (buffers grow to the largest frame,
//! slots are created for every topic), then fed again many times while counting. The snapshot at the
//! head of the archive resets the book on every round, so each round applies the deltas again.

use std::alloc::{GlobalAlloc, Layout, System};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use qalpha_engine::event::MarketEvent;
use qalpha_engine::Symbol;
use qalpha_feeds::binance::feed::EventSink;
use qalpha_feeds::bybit::BybitFeed;

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

fn frames() -> Option<Vec<Vec<u8>>> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/bybit-v5");
    let zip = dir.join("xrpusdt-ob500.data.zip");
    if !zip.exists() {
        eprintln!(
            "skip: {} not found (../shared/data is not present)",
            zip.display()
        );
        return None;
    }
    let z = std::fs::read(zip).unwrap();
    let u16_at = |i: usize| usize::from(u16::from_le_bytes([z[i], z[i + 1]]));
    let u32_at = |i: usize| u32::from_le_bytes([z[i], z[i + 1], z[i + 2], z[i + 3]]) as usize;
    assert_eq!(u16_at(8), 0, "Bybit's archive member is stored");
    let start = 30 + u16_at(26) + u16_at(28);
    let body = &z[start..start + u32_at(18)];
    let mut out: Vec<Vec<u8>> = body
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(<[u8]>::to_vec)
        .collect();
    let public = std::fs::read(dir.join("public-frames.jsonl")).unwrap();
    out.extend(
        public
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty())
            .map(<[u8]>::to_vec),
    );
    out.push(
        br#"{"success":true,"ret_msg":"pong","conn_id":"c","req_id":"","op":"ping"}"#.to_vec(),
    );
    out.push(br#"{"success":false,"ret_msg":"Invalid topic: x","conn_id":"c","req_id":"","op":"subscribe"}"#.to_vec());
    out.push(
        br#"{"topic":"orderbook.500.XRPUSDT","type":"delta","ts":1,"data":{"s":"XRPUS"#.to_vec(),
    );
    Some(out)
}

#[test]
fn bybit_decode_and_book_apply_do_not_allocate_after_warm_up() {
    let Some(frames) = frames() else { return };
    let mut feed = BybitFeed::new();
    let mut sink = CountSink(0);
    for (i, f) in frames.iter().enumerate() {
        feed.on_ws_frame(i as u64, f, &mut sink);
    }
    let xrp = Symbol::parse("XRPUSDT").unwrap();
    assert!(
        feed.book(xrp, 500).unwrap().is_synced(),
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
    const ROUNDS: usize = 40;
    for r in 0..ROUNDS {
        for (i, f) in frames.iter().enumerate() {
            feed.on_ws_frame((r * frames.len() + i) as u64, f, &mut sink);
        }
    }
    COUNTING.store(false, Ordering::SeqCst);

    let allocs = ALLOCS.load(Ordering::SeqCst);
    let c = feed.counters();
    assert_eq!(
        c.decode.malformed,
        ROUNDS as u64 + 1,
        "one broken frame per round"
    );
    let s = feed.sync_counters();
    assert!(s.applied >= 49 * ROUNDS as u64, "{s:?}");
    assert_eq!((s.gaps, s.crossed), (0, 0), "{s:?}");
    assert_eq!(
        allocs,
        0,
        "{allocs} heap allocations over {} frames after warm-up",
        ROUNDS * frames.len()
    );
}
