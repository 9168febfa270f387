//! Per-frame cost of the Binance USD-M hot path, on real frames from the bundled sample capture.
//!
//! Measures, one frame per iteration (so criterion's time is the per-frame time and its
//! throughput is frames/s):
//!
//! - `json_parse/{depth,trade,bookTicker}`: `JsonParser::parse` + `binance::decode` only (depth
//!   levels are left unparsed, as the decoder hands them to the book lazily);
//!   `json_parse/depth_with_levels` also parses every level's price and quantity.
//! - `feed/depth_decode_apply`: `BinanceFeed::on_ws_frame` on the capture's depth diffs, in order,
//!   on a book already synced from the capture's REST snapshot: parse, decode, sync check, book
//!   update and the `BookTop` event (DESIGN target: < 2 µs median).
//! - `feed/trade` (target: < 500 ns) and `feed/bookTicker`: `on_ws_frame` for those frames.
//! - `book/set_near_touch`: `OrderBook::set` on the real 1000-level snapshot book for levels near
//!   the best prices (quantity change, delete, re-insert); `book/set_deep` does the same 400 levels
//!   down, for contrast (the sorted-`Vec` book moves more memory there).
//!
//! Why: these are the steps a market-data frame takes on the feed thread before any strategy
//! sees it; measuring them apart shows where a regression against the DESIGN targets comes from.
//! Frames cycle through a few hundred real ones spread over the capture so branch predictors and
//! caches cannot settle on a single frame.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qalpha_bench::{CountingSink, Frame, Sample};
use qalpha_engine::Qty;
use qalpha_feeds::binance::{decode, BinanceFeed, BinanceMsg};
use qalpha_feeds::book::{BookSide, OrderBook};
use qalpha_feeds::json::JsonParser;
use qalpha_feeds::stats::MsgKind;

/// Frames each `json_parse` / `feed` benchmark cycles through (per kind).
const CYCLE_FRAMES: usize = 512;

/// Levels per side the `book` benchmarks touch.
const BOOK_LEVELS: usize = 16;

fn json_parse(c: &mut Criterion, sample: &Sample) {
    let mut g = c.benchmark_group("json_parse");
    g.throughput(Throughput::Elements(1));
    let mut parser = JsonParser::new(64 * 1024);

    for (name, kind) in [
        ("depth", MsgKind::DepthUpdate),
        ("trade", MsgKind::Trade),
        ("bookTicker", MsgKind::BookTicker),
    ] {
        let frames = sample.spread(kind, CYCLE_FRAMES);
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                let f = frames[i];
                i = (i + 1) % frames.len();
                parser
                    .parse(black_box(&f.bytes), |root| black_box(decode(root)).is_ok())
                    .is_ok_and(|ok| ok)
            })
        });
        // The alternative a reader asks about: serde_json into a `Value`, the same fields read
        // (what the decoder reads from each frame type; levels left as they are, like ours).
        let mut j = 0;
        g.bench_function(format!("{name}_serde_json"), |b| {
            b.iter(|| {
                let f = frames[j];
                j = (j + 1) % frames.len();
                let v: serde_json::Value =
                    serde_json::from_slice(black_box(&f.bytes)).unwrap_or_default();
                black_box((
                    v.get("e"),
                    v.get("E"),
                    v.get("u"),
                    v.get("t"),
                    v.get("b"),
                    v.get("a"),
                ));
            })
        });
    }

    // The same depth frames, with every level's decimals parsed (what the book consumes).
    let frames = sample.spread(MsgKind::DepthUpdate, CYCLE_FRAMES);
    let levels: usize = frames
        .iter()
        .map(|f| depth_levels(&mut parser, &f.bytes))
        .sum();
    assert!(levels > 0, "depth frames carry levels");
    let mut i = 0;
    g.bench_function("depth_with_levels", |b| {
        b.iter(|| {
            let f = frames[i];
            i = (i + 1) % frames.len();
            depth_levels(&mut parser, black_box(&f.bytes))
        })
    });
    g.finish();
}

/// Parses and decodes a depth frame and parses all of its levels; returns how many parsed.
#[inline]
fn depth_levels(parser: &mut JsonParser, frame: &[u8]) -> usize {
    parser
        .parse(frame, |root| match decode(root) {
            Ok(BinanceMsg::Depth(d)) => d
                .bids
                .iter()
                .chain(d.asks.iter())
                .filter(|l| black_box(l).is_ok())
                .count(),
            _ => 0,
        })
        .unwrap_or(0)
}

fn feed(c: &mut Criterion, sample: &Sample) {
    let mut g = c.benchmark_group("feed");
    g.throughput(Throughput::Elements(1));

    // Every depth diff after the one that synced the book, in capture order. A diff can be
    // applied only once (its `pu` must match the book's last id), so the benchmark walks the
    // sequence on one synced feed and, when it runs out, builds a fresh synced feed outside the
    // timed region and starts over.
    let (_, next) = sample.synced_feed();
    let diffs: Vec<&Frame> = sample.frames[next..]
        .iter()
        .filter(|f| f.kind == MsgKind::DepthUpdate)
        .collect();
    check_diffs_apply(sample, &diffs);
    let mut state: Option<(BinanceFeed, usize)> = None;
    g.bench_function("depth_decode_apply", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            let mut left = iters as usize;
            let mut sink = CountingSink::default();
            while left > 0 {
                if state.as_ref().is_none_or(|(_, pos)| *pos == diffs.len()) {
                    state = Some((sample.synced_feed().0, 0));
                }
                let (feed, pos) = state.as_mut().expect("a synced feed was just built");
                let run = &diffs[*pos..diffs.len().min(*pos + left)];
                let t = Instant::now();
                for f in run {
                    feed.on_ws_frame(f.recv_ns, black_box(&f.bytes), &mut sink);
                }
                timed += t.elapsed();
                *pos += run.len();
                left -= run.len();
            }
            black_box(sink.events);
            timed
        })
    });

    for (name, kind) in [
        ("trade", MsgKind::Trade),
        ("bookTicker", MsgKind::BookTicker),
    ] {
        let frames = sample.spread(kind, CYCLE_FRAMES);
        let mut feed = BinanceFeed::new();
        let mut sink = CountingSink::default();
        for f in &frames {
            feed.on_ws_frame(f.recv_ns, &f.bytes, &mut sink);
        }
        let counters = feed.counters();
        assert_eq!(
            (
                counters.decode.decoded,
                counters.decode.malformed,
                sink.events
            ),
            (frames.len() as u64, 0, frames.len() as u64),
            "every {name} frame decodes to one event"
        );
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                let f = frames[i];
                i = (i + 1) % frames.len();
                feed.on_ws_frame(f.recv_ns, black_box(&f.bytes), &mut sink);
            })
        });
        black_box(sink.events);
    }
    g.finish();
}

/// Applies the whole diff sequence once, untimed, and checks every diff took the in-sync apply
/// path (no gaps, no malformed frames, no crossed book), so the benchmark measures that path.
fn check_diffs_apply(sample: &Sample, diffs: &[&Frame]) {
    let (mut feed, _) = sample.synced_feed();
    let before = feed.sync_counters();
    let mut sink = CountingSink::default();
    for f in diffs {
        feed.on_ws_frame(f.recv_ns, &f.bytes, &mut sink);
    }
    let after = feed.sync_counters();
    assert_eq!(after.applied - before.applied, diffs.len() as u64);
    assert_eq!(
        (after.gaps, after.crossed, after.malformed_diffs),
        (0, 0, 0)
    );
    assert_eq!(feed.counters().decode.malformed, 0);
    assert_eq!(sink.events, diffs.len() as u64, "one BookTop per diff");
    assert!(feed.book(sample.symbol).is_some_and(|b| b.is_synced()));
}

/// A cycle of `set` calls on `book` touching `BOOK_LEVELS` levels per side starting `depth`
/// levels from the touch: for each level, change its quantity (to the next level's real one),
/// delete it, and put it back. One cycle leaves the book as it found it.
fn set_cycle(book: &OrderBook, depth: usize) -> Vec<(BookSide, qalpha_engine::Price, Qty)> {
    let bids: Vec<_> = book.bids().skip(depth).take(BOOK_LEVELS + 1).collect();
    let asks: Vec<_> = book.asks().skip(depth).take(BOOK_LEVELS + 1).collect();
    assert!(bids.len() > BOOK_LEVELS && asks.len() > BOOK_LEVELS);
    let mut ops = Vec::with_capacity(BOOK_LEVELS * 6);
    for j in 0..BOOK_LEVELS {
        for (side, lv) in [(BookSide::Bid, &bids), (BookSide::Ask, &asks)] {
            let (l, other) = (lv[j], lv[j + 1]);
            ops.push((side, l.px, other.qty));
            ops.push((side, l.px, Qty::ZERO));
            ops.push((side, l.px, l.qty));
        }
    }
    ops
}

fn book(c: &mut Criterion, sample: &Sample) {
    let mut g = c.benchmark_group("book");
    g.throughput(Throughput::Elements(1));
    let snapshot = sample.snapshot_book();
    for (name, depth) in [("set_near_touch", 0), ("set_deep", 400)] {
        let ops = set_cycle(&snapshot, depth);
        let mut book = snapshot.clone();
        for &(side, px, qty) in &ops {
            book.set(side, px, qty);
        }
        assert!(book.bids().eq(snapshot.bids()) && book.asks().eq(snapshot.asks()));
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                let (side, px, qty) = ops[i];
                i = (i + 1) % ops.len();
                book.set(side, black_box(px), black_box(qty));
            })
        });
        black_box(book.best_bid());
    }
    g.finish();
}

fn benches(c: &mut Criterion) {
    let sample = Sample::load();
    json_parse(c, &sample);
    feed(c, &sample);
    book(c, &sample);
}

criterion_group!(decode_benches, benches);
criterion_main!(decode_benches);
