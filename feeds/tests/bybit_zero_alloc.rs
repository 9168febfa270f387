//! Counts heap allocations on the Bybit hot path: decode + book apply + ticker merge of real frames
//! after warm-up (skipped with a message when `../shared/data` is absent).
//!
//! A counting global allocator wraps the system allocator for this test binary. Every real frame —
//! the ob500 archive (500-level snapshot + deltas), trades, level-1 quotes, tickers, liquidations —
//! plus control replies and a broken frame are fed once to warm up (buffers grow to the largest frame,
//! slots are created for every topic), then fed again many times while counting. The snapshot at the
//! head of the archive resets the book on every round, so each round applies the deltas again.

use std::path::Path;

use qalpha_engine::Symbol;
use qalpha_feeds::bybit::BybitFeed;

mod common;
use common::{start_counting, stop_counting, CountSink, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

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

    start_counting();
    const ROUNDS: usize = 40;
    for r in 0..ROUNDS {
        for (i, f) in frames.iter().enumerate() {
            feed.on_ws_frame((r * frames.len() + i) as u64, f, &mut sink);
        }
    }
    let allocs = stop_counting();

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
