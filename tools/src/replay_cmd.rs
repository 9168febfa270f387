//! `qalpha replay`: a capture through feed thread → ring → consumer, with optional book checks.

use std::path::PathBuf;

use anyhow::{Context, Result};
use qalpha_engine::capture::CaptureReader;
use qalpha_engine::replay::{self, ReplayOptions};
use qalpha_feeds::replay::{ReplayConsumer, VenueRouter};

/// The replay summary (`--json` prints it as one object).
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct ReplayReport {
    pub files: usize,
    pub records: u64,
    /// Data frames handed to decoders (WebSocket frames and REST bodies).
    pub frames: u64,
    pub decoded: u64,
    pub malformed: u64,
    /// Well-formed messages this engine does not use (control replies, 24h tickers, …).
    pub ignored: u64,
    pub events: u64,
    pub book_checks: u64,
    pub book_mismatches: u64,
    /// Venue quotes whose update id the in-sync book never stopped at (not checkable).
    pub unverifiable_quotes: u64,
    pub crossed_books: u64,
    pub gaps: u64,
    pub resyncs: u64,
    pub syncs: u64,
    pub snapshots: u64,
    pub stale_ns: u64,
    pub diffs_applied: u64,
    pub ring_full_waits: u64,
    pub lost_bytes: u64,
    pub elapsed_s: f64,
    pub frames_per_s: f64,
    /// Up to eight mismatches, for diagnosis.
    pub first_mismatches: Vec<String>,
}

/// Opens every file (failing with the file's name if one cannot be read) and replays them in order.
pub fn replay(files: &[PathBuf], check_book: bool, opts: &ReplayOptions) -> Result<ReplayReport> {
    let readers = files
        .iter()
        .map(|f| CaptureReader::open(f).with_context(|| format!("cannot replay {}", f.display())))
        .collect::<Result<Vec<_>>>()?;
    let consumer = ReplayConsumer {
        check_books: check_book,
        ..Default::default()
    };
    let (router, consumer, pipe) = replay::run(readers, VenueRouter::new(), consumer, opts)?;
    let d = router.decode_stats();
    let sync = router.binance.sync_counters();
    let fc = router.binance.counters();
    // Bybit's depth books (orderbook.1 is a quote stream, not a rebuilt book: not counted here).
    let bsync = router.bybit.sync_counters();
    let bfc = router.bybit.counters();
    let chk = consumer.checker.counters();
    let elapsed_s = pipe.elapsed.as_secs_f64();
    Ok(ReplayReport {
        files: pipe.files,
        records: pipe.records,
        frames: d.frames,
        decoded: d.decoded,
        malformed: d.malformed,
        ignored: d.ignored,
        events: pipe.events,
        book_checks: chk.checks,
        book_mismatches: chk.mismatches,
        unverifiable_quotes: chk.unverifiable,
        crossed_books: sync.crossed + bsync.crossed,
        gaps: sync.gaps + bsync.gaps,
        resyncs: fc.resyncs + bfc.resyncs,
        syncs: sync.syncs + bsync.syncs,
        snapshots: sync.snapshots + bsync.snapshots,
        stale_ns: fc.stale_ns + bfc.stale_ns,
        diffs_applied: sync.applied + bsync.applied,
        ring_full_waits: pipe.ring_full_waits,
        lost_bytes: pipe.lost_bytes,
        elapsed_s,
        frames_per_s: if elapsed_s > 0.0 {
            d.frames as f64 / elapsed_s
        } else {
            0.0
        },
        first_mismatches: chk
            .first_mismatches
            .iter()
            .map(|m| {
                format!(
                    "{} {} recv_ns={} book={:?} quote={:?}",
                    m.venue.name(),
                    m.symbol,
                    m.recv_ns,
                    m.book,
                    m.quote
                )
            })
            .collect(),
    })
}
