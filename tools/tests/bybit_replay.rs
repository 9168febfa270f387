//! End-to-end Bybit: import Bybit's own archive (`2024-12-01_XRPUSDT_ob500.data.zip`), replay it
//! through the pipeline with `--check-book`, and check the books against an independent rebuild and
//! against `orderbook.1` quotes matched by cross sequence (skipped with a message when
//! `../shared/data` is absent).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use qalpha_engine::capture::{CaptureReader, CaptureWriter, Connection, RecordKind, WriterOptions};
use qalpha_engine::event::{MarketEvent, MarketPayload, StaleReason, Venue};
use qalpha_engine::replay::ReplayOptions;
use qalpha_engine::{Price, Qty};
use qalpha_feeds::replay::VenueRouter;
use qalpha_tools::import_bybit::{import_archive, ArchiveOptions, BYBIT_PUBLIC_LINEAR_URL};
use qalpha_tools::import_lines::{import, ImportOptions};
use qalpha_tools::replay_cmd::{replay, ReplayReport};

fn archive() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/bybit-v5/xrpusdt-ob500.data.zip");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skip: {} not found", p.display());
        None
    }
}

fn replay_checked(files: &[PathBuf]) -> ReplayReport {
    replay(files, true, &ReplayOptions::default()).unwrap()
}

/// Imports the archive into `dir/ob500.qcap`.
fn imported(zip: &Path, dir: &Path) -> PathBuf {
    let out = dir.join("ob500.qcap");
    let rep = import_archive(&[zip.to_path_buf()], &out, &ArchiveOptions::default()).unwrap();
    assert_eq!((rep.frames, rep.without_ts, rep.out_of_order), (50, 0, 0));
    assert_eq!(rep.topics, ["orderbook.500.XRPUSDT"]);
    out
}

/// Every record of a capture: (recv_ns, kind, payload).
fn records(path: &Path) -> Vec<(u64, RecordKind, Vec<u8>)> {
    let r = CaptureReader::open(path).unwrap();
    r.records()
        .map(|rec| (rec.recv_ns, rec.kind, rec.payload.to_vec()))
        .collect()
}

/// Routes a capture through the replay router directly, collecting its events.
fn route_all(path: &Path) -> (VenueRouter, Vec<MarketEvent>) {
    let r = CaptureReader::open(path).unwrap();
    let mut router = VenueRouter::new();
    qalpha_engine::replay::CaptureHandler::begin_file(&mut router, r.connections());
    let mut ev = Vec::new();
    for rec in r.records() {
        router.route(&rec, &mut ev);
    }
    (router, ev)
}

/// An independent book: serde_json and a `BTreeMap` per side.
#[derive(Default)]
struct RefBook {
    bids: BTreeMap<Price, Qty>,
    asks: BTreeMap<Price, Qty>,
}

impl RefBook {
    /// Applies a frame; returns its `(ts, seq)`.
    fn apply(&mut self, frame: &[u8]) -> (u64, u64) {
        let v: serde_json::Value = serde_json::from_slice(frame).unwrap();
        if v["type"] == "snapshot" {
            *self = RefBook::default();
        }
        for (key, side) in [("b", &mut self.bids), ("a", &mut self.asks)] {
            for l in v["data"][key].as_array().unwrap() {
                let p = Price::parse(l[0].as_str().unwrap()).unwrap();
                let q = Qty::parse(l[1].as_str().unwrap()).unwrap();
                if q.is_zero() {
                    side.remove(&p);
                } else {
                    side.insert(p, q);
                }
            }
        }
        (
            v["ts"].as_u64().unwrap(),
            v["data"]["seq"].as_u64().unwrap(),
        )
    }

    fn best(&self) -> (Price, Qty, Price, Qty) {
        let (bp, bq) = self.bids.iter().next_back().unwrap();
        let (ap, aq) = self.asks.iter().next().unwrap();
        (*bp, *bq, *ap, *aq)
    }
}

#[test]
fn ob500_archive_imports_and_replays_exactly() {
    let Some(zip) = archive() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = imported(&zip, tmp.path());
    let r = CaptureReader::open(&out).unwrap();
    assert_eq!(
        r.connections(),
        &[Connection {
            id: 0,
            venue: Some(Venue::BybitLinear),
            transport: qalpha_engine::capture::Transport::WebSocket,
            url: BYBIT_PUBLIC_LINEAR_URL.into(),
        }]
    );
    let rep = replay_checked(std::slice::from_ref(&out));
    assert_eq!(
        (rep.frames, rep.decoded, rep.malformed, rep.ignored),
        (50, 50, 0, 0)
    );
    assert_eq!(
        (rep.gaps, rep.crossed_books, rep.resyncs, rep.stale_ns),
        (0, 0, 0, 0)
    );
    assert_eq!((rep.snapshots, rep.syncs, rep.diffs_applied), (1, 1, 49));
    // BookSynced + a BookTop per frame; the archive has no orderbook.1, so nothing to check against.
    assert_eq!(
        (rep.events, rep.book_checks, rep.book_mismatches),
        (51, 0, 0)
    );
}

#[test]
fn replayed_tops_equal_an_independent_rebuild_and_never_cross() {
    let Some(zip) = archive() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = imported(&zip, tmp.path());
    let (router, ev) = route_all(&out);
    let mut reference = RefBook::default();
    let tops: Vec<_> = ev
        .iter()
        .filter_map(|e| match e.payload {
            MarketPayload::BookTop(t) => Some((e.recv_ns, e.exch_ms, t)),
            _ => None,
        })
        .collect();
    let recs = records(&out);
    assert_eq!(tops.len(), recs.len());
    for ((recv_ns, exch_ms, top), (rec_ns, _, payload)) in tops.iter().zip(&recs) {
        let (ts, seq) = reference.apply(payload);
        // The importer timed each frame by its envelope `ts`.
        assert_eq!(
            (*recv_ns, *rec_ns, *exch_ms),
            (ts * 1_000_000, ts * 1_000_000, ts)
        );
        assert_eq!(top.update_id, seq);
        assert_eq!(
            (top.bid_px, top.bid_qty, top.ask_px, top.ask_qty),
            reference.best()
        );
        assert!(top.bid_px < top.ask_px);
    }
    assert_eq!(router.bybit.sync_counters().crossed, 0);
}

/// Copies `src` into `dst`, leaving out the record at `skip`.
fn copy_without(src: &Path, dst: &Path, skip: usize) {
    let r = CaptureReader::open(src).unwrap();
    let mut w =
        CaptureWriter::create(dst, r.connections().to_vec(), WriterOptions::default()).unwrap();
    for (i, rec) in r.records().enumerate() {
        if i != skip {
            w.write(rec.recv_ns, rec.conn_id, rec.kind, rec.payload)
                .unwrap();
        }
    }
    w.finish().unwrap();
}

#[test]
fn removed_delta_is_a_gap_and_the_book_stays_stale() {
    let Some(zip) = archive() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = imported(&zip, tmp.path());
    let cut = tmp.path().join("cut.qcap");
    copy_without(&out, &cut, 20);
    let g = replay_checked(std::slice::from_ref(&cut));
    assert_eq!((g.frames, g.malformed, g.gaps, g.resyncs), (49, 0, 1, 0));
    assert_eq!(g.diffs_applied, 19);
    // No snapshot follows: stale from the gap (frame 21's ts) to the last frame's ts.
    let recs = records(&out);
    assert_eq!(g.stale_ns, recs[49].0 - recs[21].0);
    let (_, ev) = route_all(&cut);
    let stale = ev
        .iter()
        .position(|e| matches!(e.payload, MarketPayload::BookStale { .. }))
        .unwrap();
    assert!(matches!(
        ev[stale].payload,
        MarketPayload::BookStale {
            reason: StaleReason::SequenceGap,
            ..
        }
    ));
    assert_eq!(
        stale,
        ev.len() - 1,
        "nothing from the stale book after the gap"
    );
}

/// The archive with an `orderbook.1` snapshot after every frame, built from an independent rebuild
/// and stamped with the frame's `seq` (as Bybit's level-1 stream does). `wrong` corrupts one quote.
fn with_quotes(src: &Path, dst: &Path, skip: Option<usize>, wrong: Option<usize>) {
    let r = CaptureReader::open(src).unwrap();
    let mut w =
        CaptureWriter::create(dst, r.connections().to_vec(), WriterOptions::default()).unwrap();
    let mut reference = RefBook::default();
    for (i, rec) in r.records().enumerate() {
        let (ts, seq) = reference.apply(rec.payload);
        if Some(i) == skip {
            continue;
        }
        w.write(rec.recv_ns, rec.conn_id, rec.kind, rec.payload)
            .unwrap();
        let (bp, mut bq, ap, aq) = reference.best();
        if Some(i) == wrong {
            bq = Qty(bq.raw() + 1);
        }
        let quote = format!(
            r#"{{"topic":"orderbook.1.XRPUSDT","type":"snapshot","ts":{ts},"data":{{"s":"XRPUSDT","b":[["{bp}","{bq}"]],"a":[["{ap}","{aq}"]],"u":{},"seq":{seq}}},"cts":{ts}}}"#,
            9000 + i
        );
        w.write(
            rec.recv_ns + 1,
            rec.conn_id,
            RecordKind::WsText,
            quote.as_bytes(),
        )
        .unwrap();
    }
    w.finish().unwrap();
}

#[test]
fn check_book_matches_level_one_quotes_by_cross_sequence() {
    let Some(zip) = archive() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = imported(&zip, tmp.path());

    let q = tmp.path().join("quotes.qcap");
    with_quotes(&out, &q, None, None);
    let r = replay_checked(std::slice::from_ref(&q));
    assert_eq!((r.frames, r.malformed, r.gaps), (100, 0, 0));
    assert_eq!(
        (r.book_checks, r.book_mismatches, r.unverifiable_quotes),
        (50, 0, 0)
    );

    let bad = tmp.path().join("bad.qcap");
    with_quotes(&out, &bad, None, Some(30));
    let r = replay_checked(std::slice::from_ref(&bad));
    assert_eq!((r.book_checks, r.book_mismatches), (50, 1));
    assert!(
        r.first_mismatches[0].contains("bybit XRPUSDT"),
        "{:?}",
        r.first_mismatches
    );

    // A lost delta: the stale book is never compared — only the 20 quotes before the gap are checked.
    // (The later quotes wait in the checker for a book that never comes back; it does not count
    // quotes still pending at the end of a replay as unverifiable.)
    let gap = tmp.path().join("gap.qcap");
    with_quotes(&out, &gap, Some(20), None);
    let r = replay_checked(std::slice::from_ref(&gap));
    assert_eq!((r.gaps, r.book_checks, r.book_mismatches), (1, 20, 0));
}

#[test]
fn disconnect_marks_the_book_stale_and_the_next_snapshot_resyncs() {
    let Some(zip) = archive() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = imported(&zip, tmp.path());
    let recs = records(&out);
    let r = CaptureReader::open(&out).unwrap();
    let conn = r.connections()[0].clone();
    let dst = tmp.path().join("reconnect.qcap");
    let mut w = CaptureWriter::create(&dst, vec![conn.clone()], WriterOptions::default()).unwrap();
    for (ns, kind, p) in &recs[..10] {
        w.write(*ns, 0, *kind, p).unwrap();
    }
    let down = recs[9].0 + 1_000_000;
    w.write(down, 0, RecordKind::Disconnect, b"test").unwrap();
    let up = down + 500_000_000;
    w.connect(up, conn).unwrap();
    // After the reconnect the stream starts again with the snapshot.
    for (ns, kind, p) in &recs {
        w.write(ns.max(&up) + 1, 0, *kind, p).unwrap();
    }
    w.finish().unwrap();
    let rep = replay_checked(&[dst]);
    assert_eq!(
        (rep.gaps, rep.malformed, rep.resyncs, rep.syncs),
        (0, 0, 1, 2)
    );
    assert_eq!(rep.stale_ns, up + 1 - down);
}

#[test]
fn cli_imports_and_replays_the_archive() {
    let Some(zip) = archive() else { return };
    let exe = env!("CARGO_BIN_EXE_qalpha");
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cli.qcap");
    let o = Command::new(exe)
        .args(["import", "bybit-archive"])
        .arg(&zip)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["frames"], 50);
    let o = Command::new(exe)
        .arg("replay")
        .arg(&out)
        .args(["--check-book", "--json"])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        (v["frames"].as_u64(), v["gaps"].as_u64()),
        (Some(50), Some(0))
    );
    assert_eq!(
        (v["crossed_books"].as_u64(), v["diffs_applied"].as_u64()),
        (Some(0), Some(49))
    );

    // Errors name the file and what to do.
    let o = Command::new(exe)
        .args(["import", "bybit-archive", "/nonexistent/a.zip", "--out"])
        .arg(tmp.path().join("x.qcap"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("/nonexistent/a.zip"));
    let junk = tmp.path().join("junk.data");
    std::fs::write(&junk, "hello\n").unwrap();
    let o = Command::new(exe)
        .args(["import", "bybit-archive"])
        .arg(&junk)
        .arg("--out")
        .arg(tmp.path().join("y.qcap"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("is this a Bybit archive file?"));
    assert!(
        !tmp.path().join("y.qcap").exists(),
        "no half-written capture"
    );
    let o = Command::new(exe)
        .args(["import", "bybit-archive", "--help"])
        .output()
        .unwrap();
    assert!(o.status.success() && !o.stdout.is_empty());
}

#[test]
fn plain_and_gzip_archives_import_like_the_zip() {
    let Some(zip) = archive() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let from_zip = records(&imported(&zip, tmp.path()));
    let text: Vec<u8> = from_zip
        .iter()
        .flat_map(|(_, _, p)| p.iter().copied().chain([b'\n']))
        .collect();
    let plain = tmp.path().join("2024-12-01_XRPUSDT_ob500.data");
    std::fs::write(&plain, &text).unwrap();
    let gz = tmp.path().join("two-parts.gz");
    {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(
            std::fs::File::create(&gz).unwrap(),
            flate2::Compression::fast(),
        );
        e.write_all(&text).unwrap();
        e.finish().unwrap();
    }
    for src in [plain, gz] {
        let out = tmp.path().join("again.qcap");
        import_archive(std::slice::from_ref(&src), &out, &ArchiveOptions::default()).unwrap();
        assert_eq!(records(&out), from_zip, "{}", src.display());
    }
    // Two inputs are concatenated; `--max-frames` cuts a sample.
    let out = tmp.path().join("cut.qcap");
    let rep = import_archive(
        &[zip.clone(), zip],
        &out,
        &ArchiveOptions {
            max_frames: Some(60),
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((rep.frames, rep.out_of_order), (60, 1));
}

#[test]
fn import_lines_accepts_bybit_timestamped_frames() {
    let Some(zip) = archive() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let from_zip = records(&imported(&zip, tmp.path()));
    // `<local ns> <json>`: the local time is 3 ms after Bybit's.
    let lines: String = from_zip
        .iter()
        .map(|(ns, _, p)| format!("{} {}\n", ns + 3_000_000, String::from_utf8_lossy(p)))
        .collect();
    let src = tmp.path().join("bybit.txt");
    std::fs::write(&src, lines).unwrap();
    let out = tmp.path().join("lines.qcap");
    let rep = import(
        &[src],
        &out,
        &ImportOptions {
            venue: Venue::BybitLinear,
            ..Default::default()
        },
    )
    .unwrap();
    assert_eq!((rep.ws_frames, rep.rest_responses, rep.skipped), (50, 0, 0));
    assert_eq!(rep.streams, ["orderbook.500.XRPUSDT"]);
    assert_eq!(rep.symbol.as_deref(), Some("XRPUSDT"));
    let recs = records(&out);
    assert_eq!(recs[0].0, from_zip[0].0 + 3_000_000);
    let r = replay_checked(&[out]);
    assert_eq!(
        (r.frames, r.gaps, r.diffs_applied, r.crossed_books),
        (50, 0, 49, 0)
    );
}
