//! Counts heap allocations on the hot path: decode + book apply of real frames after warm-up.
//!
//! A counting global allocator wraps the system allocator for this test binary. The bundled sample
//! capture is fed through `BinanceFeed` twice over its first part (warm-up: buffers grow to the
//! largest frame, the book to its working size), then the rest of the capture is fed while counting.

use qalpha_engine::capture::{CaptureReader, RecordKind};
use qalpha_engine::Symbol;
use qalpha_feeds::binance::BinanceFeed;

mod common;
use common::{start_counting, stop_counting, CountSink, Counting};

#[global_allocator]
static GLOBAL: Counting = Counting;

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

    start_counting();
    for i in warm..records.len() {
        feed_one(&mut feed, &mut sink, i);
    }
    let allocs = stop_counting();

    let frames = (records.len() - warm) as u64;
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
