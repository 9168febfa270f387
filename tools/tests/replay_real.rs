//! End-to-end: import the real Binance USD-M line captures, replay them through the pipeline and
//! check the rebuilt books against the venue's bookTicker (tests skip with a message when
//! `../shared/data` is absent; the bundled-sample tests always run).

use std::path::{Path, PathBuf};
use std::process::Command;

use qalpha_engine::capture::{CaptureReader, CaptureWriter, RecordKind, WriterOptions};
use qalpha_engine::replay::ReplayOptions;
use qalpha_tools::import_lines::{import, ImportOptions};
use qalpha_tools::replay_cmd::{replay, ReplayReport};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

fn captures() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/binance-usdm/captures");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skip: {} not found", p.display());
        None
    }
}

fn import_pair(dir: &Path, a: &str, b: &str, out: &Path) {
    let rep = import(&[dir.join(a), dir.join(b)], out, &ImportOptions::default()).unwrap();
    assert_eq!(rep.rest_responses, 1);
    assert_eq!(rep.skipped, 0);
}

fn replay_checked(files: &[PathBuf]) -> ReplayReport {
    replay(files, true, &ReplayOptions::default()).unwrap()
}

#[test]
fn all_three_day_pairs_replay_exactly() {
    let Some(dir) = captures() else { return };
    let tmp = tempfile::tempdir().unwrap();
    for (a, b) in [
        ("btcusdt_20230404.dat.gz", "btcusdt_20230405.dat.gz"),
        ("btcusdt_20240718.gz", "btcusdt_20240719.gz"),
        ("ethusdt_20240718.gz", "ethusdt_20240719.gz"),
    ] {
        let out = tmp.path().join(format!("{a}.qcap"));
        import_pair(&dir, a, b, &out);
        let r = replay_checked(&[out]);
        assert_eq!(r.frames, r.records, "{a}");
        assert_eq!(r.decoded, r.frames, "{a}: {r:?}");
        assert_eq!(r.malformed, 0, "{a}");
        assert_eq!(r.gaps, 0, "{a}");
        assert_eq!(r.book_mismatches, 0, "{a}: {:?}", r.first_mismatches);
        assert!(r.book_checks >= 500, "{a}: only {} checks", r.book_checks);
        assert_eq!((r.snapshots, r.syncs, r.crossed_books), (1, 1, 0), "{a}");
        assert_eq!(r.stale_ns, 0, "{a}");
    }
}

/// Copies `src` into `dst`, leaving out the record at `skip`.
fn copy_without(src: &Path, dst: &Path, skip: usize) -> Vec<u8> {
    let r = CaptureReader::open(src).unwrap();
    let mut w =
        CaptureWriter::create(dst, r.connections().to_vec(), WriterOptions::default()).unwrap();
    let mut removed = Vec::new();
    for (i, rec) in r.records().enumerate() {
        if i == skip {
            removed = rec.payload.to_vec();
            continue;
        }
        w.write(rec.recv_ns, rec.conn_id, rec.kind, rec.payload)
            .unwrap();
    }
    w.finish().unwrap();
    removed
}

#[test]
fn one_removed_diff_is_a_gap_and_the_stale_book_is_never_checked() {
    // Works on the bundled sample, so it always runs.
    let src = Path::new(SAMPLE);
    let tmp = tempfile::tempdir().unwrap();
    let base = replay_checked(&[src.to_path_buf()]);
    assert_eq!((base.gaps, base.book_mismatches), (0, 0));
    // Pick a depth diff in the middle of the capture (well after the snapshot).
    let r = CaptureReader::open(src).unwrap();
    let mid = r.record_count() as usize / 2;
    let skip = r
        .records()
        .enumerate()
        .skip(mid)
        .find(|(_, rec)| {
            rec.kind == RecordKind::WsText && rec.payload.windows(11).any(|w| w == b"depthUpdate")
        })
        .map(|(i, _)| i)
        .unwrap();
    let cut = tmp.path().join("cut.qcap");
    let removed = copy_without(src, &cut, skip);
    assert!(removed.windows(11).any(|w| w == b"depthUpdate"));
    let g = replay_checked(&[cut]);
    assert_eq!(g.gaps, 1, "{g:?}");
    assert_eq!(
        g.book_mismatches, 0,
        "a stale book must never be compared: {:?}",
        g.first_mismatches
    );
    // No snapshot follows in this capture: the book stays stale to the end, and says so.
    assert_eq!(g.resyncs, 0);
    assert!(g.stale_ns > 0);
    assert!(g.book_checks < base.book_checks);
    assert_eq!(g.frames, base.frames - 1);
}

#[test]
fn bundled_sample_replays_with_checks() {
    let r = replay_checked(&[PathBuf::from(SAMPLE)]);
    assert_eq!((r.malformed, r.gaps, r.book_mismatches), (0, 0, 0));
    assert!(r.book_checks >= 500, "{}", r.book_checks);
    assert_eq!(r.frames, 32_000);
}

#[test]
fn rotated_series_replays_like_one_file() {
    let tmp = tempfile::tempdir().unwrap();
    let r = CaptureReader::open(SAMPLE).unwrap();
    let opts = WriterOptions {
        rotate_bytes: Some(2 << 20),
        ..Default::default()
    };
    let mut w =
        CaptureWriter::create(tmp.path().join("rot.qcap"), r.connections().to_vec(), opts).unwrap();
    for rec in r.records() {
        w.write(rec.recv_ns, rec.conn_id, rec.kind, rec.payload)
            .unwrap();
    }
    let files = w.finish().unwrap();
    assert!(files.len() >= 4);
    let whole = replay_checked(&[PathBuf::from(SAMPLE)]);
    let parts = replay_checked(&files);
    assert_eq!(
        (
            parts.frames,
            parts.book_checks,
            parts.book_mismatches,
            parts.gaps
        ),
        (whole.frames, whole.book_checks, 0, 0)
    );
}

#[test]
fn truncated_capture_replays_its_whole_records() {
    let tmp = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(SAMPLE).unwrap();
    let cut = tmp.path().join("crash.qcap");
    std::fs::write(&cut, &bytes[..bytes.len() - 1234]).unwrap();
    let r = replay_checked(&[cut]);
    assert!(r.lost_bytes > 0);
    assert!(r.frames < 32_000 && r.frames > 31_000);
    assert_eq!(r.book_mismatches, 0);
}

#[test]
fn cli_replay_json_and_errors() {
    let exe = env!("CARGO_BIN_EXE_qalpha");
    let out = Command::new(exe)
        .args(["replay", SAMPLE, "--check-book", "--json"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for k in [
        "frames",
        "decoded",
        "malformed",
        "book_checks",
        "book_mismatches",
        "gaps",
        "resyncs",
        "stale_ns",
        "elapsed_s",
        "frames_per_s",
    ] {
        assert!(v.get(k).is_some(), "missing {k} in {v}");
    }
    assert_eq!(v["frames"], 32_000);
    assert_eq!(v["book_mismatches"], 0);

    let out = Command::new(exe)
        .args(["replay", "/nonexistent/x.qcap"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("/nonexistent/x.qcap"), "{err}");

    let tmp = tempfile::tempdir().unwrap();
    let junk = tmp.path().join("junk.qcap");
    std::fs::write(&junk, vec![b'x'; 100]).unwrap();
    let out = Command::new(exe)
        .args(["replay", junk.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("not a qcap capture file"));

    for sub in [
        &["replay", "--help"][..],
        &["import", "lines", "--help"],
        &["inspect", "--help"],
        &["--help"],
    ] {
        let out = Command::new(exe).args(sub).output().unwrap();
        assert!(out.status.success() && !out.stdout.is_empty(), "{sub:?}");
    }
    let out = Command::new(exe)
        .args(["replay", SAMPLE, "--speed", "fast"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn import_rejects_ambiguous_or_missing_input() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("o.qcap");
    let e = import(
        &[tmp.path().join("nope.gz")],
        &out,
        &ImportOptions::default(),
    )
    .unwrap_err();
    assert!(format!("{e:#}").contains("nope.gz"));
    // A snapshot with two symbols' streams cannot be attributed.
    let two = tmp.path().join("two.txt");
    std::fs::write(
        &two,
        "1 {\"stream\":\"btcusdt@trade\",\"data\":{}}\n2 {\"stream\":\"ethusdt@trade\",\"data\":{}}\n3 {\"lastUpdateId\":1,\"bids\":[],\"asks\":[]}\n",
    )
    .unwrap();
    let e = import(&[two], &out, &ImportOptions::default()).unwrap_err();
    assert!(format!("{e:#}").contains("several symbols"));
}
