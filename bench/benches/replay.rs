//! Whole-capture replay throughput on the bundled real sample (32,000 Binance USD-M frames).
//!
//! - `replay/sample_pipeline`: `qalpha_tools::replay_cmd::replay` exactly as `qalpha replay
//!   --check-book` runs it: mmap the capture, decode and sync books on the feed thread, push events
//!   through the SPSC ring, count them and check every book against the venue's quotes on the
//!   consumer thread (DESIGN target: ≥ 1 M frames/s).
//! - `capture_read/records`: open the capture and walk every record (bytes/s): the floor under both.
//! - `replay/feed_only`: the same records routed through `VenueRouter::route` on one thread into a
//!   counting sink, with no ring and no consumer thread.
//!
//! Why: the difference between the two is what the ring, the second thread and the book checks
//! cost; `feed_only` is the ceiling the decoders allow. Throughput is in frames (data frames
//! handed to decoders), so criterion's `thrpt` reads directly as frames/s.

use std::hint::black_box;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use qalpha_bench::{CountingSink, SAMPLE_CAPTURE};
use qalpha_engine::capture::CaptureReader;
use qalpha_engine::replay::{CaptureHandler, ReplayOptions};
use qalpha_feeds::replay::VenueRouter;
use qalpha_tools::replay_cmd::replay;

/// Routes every record of `reader` through a fresh router on this thread; returns the router and
/// the number of events it emitted.
fn route_all(reader: &CaptureReader, mut router: VenueRouter) -> (VenueRouter, u64) {
    let mut sink = CountingSink::default();
    router.begin_file(reader.connections());
    for rec in reader.records() {
        router.route(&rec, &mut sink);
    }
    router.finish();
    (router, sink.events)
}

fn benches(c: &mut Criterion) {
    let files = [PathBuf::from(SAMPLE_CAPTURE)];
    let opts = ReplayOptions::default();

    // One untimed run of each, checked, so the benchmarks measure a clean replay.
    let report = replay(&files, true, &opts).expect("replay of the bundled sample");
    assert_eq!(report.malformed, 0);
    assert_eq!((report.book_mismatches, report.gaps), (0, 0));
    assert!(report.book_checks > 0 && report.diffs_applied > 0);
    let reader = CaptureReader::open(&files[0]).expect("bundled sample opens");
    let (router, events) = route_all(&reader, VenueRouter::new());
    let stats = router.decode_stats();
    assert_eq!(
        (stats.frames, stats.malformed, events),
        (report.frames, 0, report.events),
        "feed_only sees what the pipeline sees"
    );

    let mut g = c.benchmark_group("replay");
    g.sample_size(10);
    g.throughput(Throughput::Elements(report.frames));
    g.bench_function("sample_pipeline", |b| {
        b.iter(|| replay(black_box(&files), true, &opts).expect("replay"))
    });
    g.bench_function("feed_only", |b| {
        b.iter_batched(
            VenueRouter::new,
            |router| route_all(black_box(&reader), router),
            BatchSize::PerIteration,
        )
    });
    g.finish();

    // Capture read alone: open (mmap, header, connection table) and walk every record, touching
    // its payload — the floor under any replay or backtest.
    let bytes: u64 = reader.records().map(|r| r.payload.len() as u64).sum();
    let mut g = c.benchmark_group("capture_read");
    g.sample_size(20);
    g.throughput(Throughput::Bytes(bytes));
    g.bench_function("records", |b| {
        b.iter(|| {
            let r = CaptureReader::open(black_box(&files[0])).expect("capture");
            r.records()
                .map(|rec| rec.payload.first().copied().unwrap_or(0) as u64)
                .sum::<u64>()
        })
    });
    g.finish();
}

criterion_group!(replay_benches, benches);
criterion_main!(replay_benches);
