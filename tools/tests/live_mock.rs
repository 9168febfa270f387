//! Live market data against the mock exchange on 127.0.0.1: real TLS, real WebSocket framing, the
//! venues' real message formats. Every test records what the engine received and replays the
//! recording through the book checks.

use std::path::{Path, PathBuf};

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use qalpha_engine::capture::{CaptureReader, RecordKind};
use qalpha_engine::event::Venue;
use qalpha_engine::replay::{ReplayOptions, Speed};
use qalpha_feeds::live::LiveOptions;
use qalpha_tools::live_cmd::{effective_config, record, RecordOverrides, RecordReport};
use qalpha_tools::replay_cmd::replay;
use qalpha_venues::mock::{FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

fn mock(
    venue: Venue,
    source: MarketSource,
    speed: Speed,
    faults: &str,
    dir: &Path,
) -> MockExchange {
    MockExchange::start(MockOptions {
        venue,
        source,
        listen: "127.0.0.1:0".parse().unwrap(),
        tls: true,
        cert_out: Some(dir.to_path_buf()),
        speed,
        faults: FaultSpec::parse(faults).unwrap(),
        seed: 11,
    })
    .unwrap()
}

fn overrides(venue: &str, m: &MockExchange, streams: &[&str]) -> RecordOverrides {
    RecordOverrides {
        venue: Some(venue.into()),
        symbols: Some(vec!["BTCUSDT".into()]),
        streams: (!streams.is_empty()).then(|| streams.iter().map(|s| s.to_string()).collect()),
        ws_url: Some(format!("wss://{}", m.addr)),
        rest_url: Some(format!("https://{}", m.addr)),
        ca_file: m.ca_file.clone(),
        // Park: epoll waits instead of spinning, so parallel tests do not starve each other.
        wait: Some(qalpha_engine::runtime::WaitMode::Park),
    }
}

/// Records until `done` says so (checked every 50 ms) or `limit` passes.
fn record_until(
    o: &RecordOverrides,
    out: &Path,
    opts: LiveOptions,
    limit: Duration,
    done: impl Fn() -> bool,
) -> RecordReport {
    let cfg = effective_config(None, o).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let (s2, out2) = (stop.clone(), out.to_path_buf());
    let t = std::thread::spawn(move || record(&cfg, out2, None, s2, opts).unwrap());
    let start = Instant::now();
    while !done() && start.elapsed() < limit {
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::Relaxed);
    t.join().unwrap()
}

fn replay_checked(f: &Path) -> qalpha_tools::replay_cmd::ReplayReport {
    replay(&[f.to_path_buf()], true, &ReplayOptions::default()).unwrap()
}

#[test]
fn recording_from_the_mock_is_the_source_frame_for_frame() {
    let dir = tempfile::tempdir().unwrap();
    // 50x: the 216 s sample in ~4 s, so the REST snapshot is fetched while diffs still flow.
    let m = mock(
        Venue::BinanceUsdm,
        MarketSource::Capture(SAMPLE.into()),
        Speed::Factor(50.0),
        "",
        dir.path(),
    );
    let out = dir.path().join("rec.qcap");
    let o = overrides("binance", &m, &["depth@0ms", "bookTicker", "trade"]);
    let settled = std::cell::Cell::new((0u64, Instant::now()));
    let rep = record_until(
        &o,
        &out,
        LiveOptions::default(),
        Duration::from_secs(60),
        || {
            // Done when the tape is played and nothing more has been sent for 300 ms.
            let sent = m.counters.frames_sent.load(Ordering::Relaxed);
            if settled.get().0 != sent {
                settled.set((sent, Instant::now()));
            }
            m.tape_finished() && settled.get().1.elapsed() > Duration::from_millis(300)
        },
    );
    assert_eq!(
        (rep.malformed, rep.gaps, rep.book_mismatches),
        (0, 0, 0),
        "{rep:?}"
    );

    // The source frames the mock serves: from the diff that bridges the snapshot, public streams only.
    let src = CaptureReader::open(SAMPLE).unwrap();
    let snapshot_id: u64 = {
        let body = src
            .records()
            .find(|r| r.kind == RecordKind::RestResponse)
            .unwrap()
            .payload;
        let v: serde_json::Value = serde_json::from_slice(body).unwrap();
        v["lastUpdateId"].as_u64().unwrap()
    };
    let mut expect: Vec<&[u8]> = Vec::new();
    let mut bridged = false;
    for r in src.records().filter(|r| r.kind == RecordKind::WsText) {
        let v: serde_json::Value = serde_json::from_slice(r.payload).unwrap();
        let stream = v["stream"].as_str().unwrap();
        if stream.contains("markPrice") {
            continue;
        }
        if !bridged {
            let d = &v["data"];
            if d["e"] == "depthUpdate"
                && d["U"].as_u64().unwrap() <= snapshot_id
                && snapshot_id <= d["u"].as_u64().unwrap()
            {
                bridged = true;
            } else {
                continue;
            }
        }
        expect.push(r.payload);
    }
    let rec = CaptureReader::open(&out).unwrap();
    let got: Vec<&[u8]> = rec
        .records()
        .filter(|r| r.kind == RecordKind::WsText)
        .map(|r| r.payload)
        .collect();
    assert!(expect.len() > 20_000, "{}", expect.len());
    assert_eq!(got.len(), expect.len(), "frame count");
    for (i, (g, e)) in got.iter().zip(&expect).enumerate() {
        assert_eq!(g, e, "frame {i} differs");
    }
    // The recording holds the REST snapshot the engine fetched, and replays to exact books.
    assert_eq!(
        rec.records()
            .filter(|r| r.kind == RecordKind::RestResponse)
            .count(),
        1
    );
    let r = replay_checked(&out);
    assert_eq!((r.malformed, r.gaps, r.book_mismatches), (0, 0, 0));
    assert!(r.book_checks >= 400, "{}", r.book_checks);
    assert_eq!(
        r.book_checks, rep.book_checks,
        "live and replayed checks agree"
    );
}

fn synthetic() -> MarketSource {
    MarketSource::Synthetic(SyntheticSpec::default())
}

fn fast_opts() -> LiveOptions {
    LiveOptions {
        liveness_timeout: Duration::from_millis(700),
        backoff_min: Duration::from_millis(50),
        backoff_max: Duration::from_millis(400),
        snapshot_retry: Duration::from_millis(100),
        wait: qalpha_engine::runtime::WaitMode::Park,
        ..Default::default()
    }
}

type FaultRun = (
    RecordReport,
    MockExchange,
    qalpha_tools::replay_cmd::ReplayReport,
);

/// Runs `venue`'s synthetic market with `faults` for `secs` and returns the live report, the mock
/// and the replay of the recording.
fn with_faults(venue: Venue, faults: &str, secs: u64) -> FaultRun {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), Speed::Factor(5.0), faults, dir.path());
    let out = dir.path().join("rec.qcap");
    let o = match venue {
        Venue::BinanceUsdm => overrides("binance", &m, &["depth@0ms", "bookTicker", "trade"]),
        Venue::BybitLinear => overrides("bybit", &m, &[]),
    };
    let rep = record_until(&o, &out, fast_opts(), Duration::from_secs(secs), || false);
    let r = replay_checked(&out);
    (rep, m, r)
}

fn binance_with_faults(faults: &str, secs: u64) -> FaultRun {
    with_faults(Venue::BinanceUsdm, faults, secs)
}

fn bybit_with_faults(faults: &str, secs: u64) -> FaultRun {
    with_faults(Venue::BybitLinear, faults, secs)
}

/// What every fault run must show: still running and checking books, never a wrong book.
fn assert_healthy(rep: &RecordReport, r: &qalpha_tools::replay_cmd::ReplayReport) {
    assert!(rep.frames > 1000, "{rep:?}");
    assert!(rep.book_checks > 50, "{rep:?}");
    assert_eq!(rep.book_mismatches, 0, "{rep:?}");
    assert_eq!(r.book_mismatches, 0, "{:?}", r.first_mismatches);
    assert!(r.book_checks > 50, "{r:?}");
    assert_eq!(r.crossed_books, 0);
}

#[test]
fn fault_drop_diff_is_a_gap_then_a_resync() {
    let (rep, m, r) = binance_with_faults("drop-diff=0.01", 4);
    assert!(m.counters.dropped_diffs.load(Ordering::Relaxed) > 0);
    assert!(rep.gaps > 0 && rep.resyncs > 0, "{rep:?}");
    assert!(rep.snapshot_requests > rep.resyncs, "{rep:?}");
    assert!(r.gaps > 0 && r.resyncs > 0, "{r:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn fault_duplicate_frames_are_dropped() {
    let (rep, m, r) = binance_with_faults("duplicate=0.02", 3);
    assert!(m.counters.duplicated.load(Ordering::Relaxed) > 0);
    assert!(rep.duplicates > 0, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn fault_reorder_is_detected_and_resynced() {
    let (rep, m, r) = binance_with_faults("reorder=0.02", 4);
    assert!(m.counters.reordered.load(Ordering::Relaxed) > 0);
    // A diff held back arrives after its successor: the successor breaks `pu`, the late one is old.
    assert!(rep.gaps > 0 && rep.resyncs > 0, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn fault_malformed_frames_are_counted() {
    let (rep, m, r) = binance_with_faults("malformed=0.01", 4);
    assert!(m.counters.malformed.load(Ordering::Relaxed) > 0);
    assert!(rep.malformed > 0, "{rep:?}");
    assert_eq!(
        r.malformed, rep.malformed,
        "the recording holds the broken frames as received"
    );
    assert_healthy(&rep, &r);
}

#[test]
fn fault_fragmented_frames_are_reassembled() {
    let (rep, m, r) = binance_with_faults("fragment=0.05", 3);
    assert!(m.counters.fragmented.load(Ordering::Relaxed) > 0);
    assert_eq!((rep.malformed, rep.gaps), (0, 0), "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn fault_disconnects_reconnect_and_resync() {
    let (rep, _m, r) = binance_with_faults("disconnect-every=1s", 5);
    assert!(rep.disconnects >= 3 && rep.connects >= 4, "{rep:?}");
    assert!(rep.resyncs >= 2, "{rep:?}");
    assert!(r.resyncs >= 2, "{r:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn fault_tls_handshake_failures_are_counted_and_retried() {
    // Half the handshakes refused with a fatal alert (market data and REST snapshots alike),
    // connections cut every second: the feed keeps reconnecting with backoff until one succeeds.
    let (rep, m, r) = binance_with_faults("tls-fail=0.5,disconnect-every=1s", 6);
    let refused = m.counters.tls_failures.load(Ordering::Relaxed);
    assert!(refused > 0, "{rep:?}");
    assert!(rep.connect_failures > 0, "{rep:?}");
    assert!(
        rep.connect_failures + rep.snapshot_failures >= refused.saturating_sub(1),
        "every refusal seen by the client: {refused} {rep:?}"
    );
    assert!(rep.last_error.is_some(), "{rep:?}");
    assert!(rep.resyncs >= 2, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn fault_stall_trips_liveness_and_recovers() {
    let (rep, _m, r) = binance_with_faults("stall=1500ms@1s", 5);
    assert!(rep.liveness_timeouts > 0, "{rep:?}");
    assert!(rep.resyncs > 0, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn fault_silent_connection_is_replaced() {
    let (rep, m, r) = binance_with_faults("ping-timeout", 8);
    assert!(m.counters.silenced.load(Ordering::Relaxed) > 0);
    assert!(rep.liveness_timeouts > 0 && rep.connects >= 2, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn untrusted_certificate_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(
        Venue::BinanceUsdm,
        synthetic(),
        Speed::Factor(1.0),
        "",
        dir.path(),
    );
    let mut o = overrides("binance", &m, &["depth@0ms"]);
    o.ca_file = None; // trust only the public webpki roots
    let rep = record_until(
        &o,
        &dir.path().join("x.qcap"),
        fast_opts(),
        Duration::from_millis(1500),
        || false,
    );
    let err = rep.last_error.unwrap_or_default();
    assert!(
        err.contains("not trusted") && err.contains("--ca-file"),
        "{err}"
    );
    assert_eq!(rep.frames, 0);
}

#[test]
fn two_venues_on_one_feed_thread() {
    let dir = tempfile::tempdir().unwrap();
    let (d1, d2) = (dir.path().join("bn"), dir.path().join("bb"));
    let bn = mock(Venue::BinanceUsdm, synthetic(), Speed::Factor(2.0), "", &d1);
    let bb = mock(Venue::BybitLinear, synthetic(), Speed::Factor(2.0), "", &d2);
    let cfg = format!(
        r#"
[[feed_threads]]
name = "feed-0"
wait = "park"
[[venues]]
venue = "binance"
ws_url = "wss://{a}"
rest_url = "https://{a}"
symbols = ["BTCUSDT"]
streams = ["depth@0ms", "bookTicker", "trade"]
feed_thread = "feed-0"
ca_file = "{ca1}"
[[venues]]
venue = "bybit"
ws_url = "wss://{b}"
symbols = ["BTCUSDT"]
feed_thread = "feed-0"
ca_file = "{ca2}"
"#,
        a = bn.addr,
        b = bb.addr,
        ca1 = bn.ca_file.as_ref().unwrap().display(),
        ca2 = bb.ca_file.as_ref().unwrap().display()
    );
    let cfg = qalpha_engine::config::EngineConfig::parse(&cfg, "test").unwrap();
    let out: PathBuf = dir.path().join("both.qcap");
    let stop = Arc::new(AtomicBool::new(false));
    let rep = record(
        &cfg,
        out.clone(),
        Some(Duration::from_secs(3)),
        stop,
        fast_opts(),
    )
    .unwrap();
    assert!(
        rep.binance_book_checks > 20 && rep.bybit_book_checks > 20,
        "{rep:?}"
    );
    assert_eq!((rep.book_mismatches, rep.malformed), (0, 0), "{rep:?}");
    assert!(rep.syncs >= 2, "{rep:?}");
    let r = replay_checked(&out);
    assert_eq!(r.book_mismatches, 0);
    let rec = CaptureReader::open(&out).unwrap();
    let venues: Vec<_> = rec.connections().iter().filter_map(|c| c.venue).collect();
    assert!(venues.contains(&Venue::BinanceUsdm) && venues.contains(&Venue::BybitLinear));
}

#[test]
fn planned_rotation_switches_connections_without_a_gap() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(
        Venue::BinanceUsdm,
        synthetic(),
        Speed::Factor(5.0),
        "",
        dir.path(),
    );
    let out = dir.path().join("rot.qcap");
    let o = overrides("binance", &m, &["depth@0ms", "bookTicker", "trade"]);
    let opts = LiveOptions {
        rotate_after: Some(Duration::from_millis(1200)),
        ..fast_opts()
    };
    let rep = record_until(&o, &out, opts, Duration::from_millis(5000), || false);
    assert!(rep.rotations >= 2, "{rep:?}");
    // Each rotation opens a second connection; the primary is closed only after the switch.
    assert!(rep.connects >= 3, "{rep:?}");
    assert_eq!(
        (rep.gaps, rep.resyncs, rep.liveness_timeouts),
        (0, 0, 0),
        "{rep:?}"
    );
    assert_eq!(rep.syncs, 1, "one sync for the whole run: {rep:?}");
    assert!(
        rep.duplicates > 0,
        "the overlap's copies are dropped as duplicates: {rep:?}"
    );
    assert_eq!(rep.book_mismatches, 0);
    let r = replay_checked(&out);
    assert_eq!((r.gaps, r.book_mismatches, r.syncs), (0, 0, 1), "{r:?}");
    assert!(m.counters.connections.load(Ordering::Relaxed) >= 4);
}

#[test]
fn bybit_drop_delta_is_a_gap_then_a_resubscribe() {
    let (rep, m, r) = bybit_with_faults("drop-diff=0.01", 4);
    assert!(m.counters.dropped_diffs.load(Ordering::Relaxed) > 0);
    assert!(rep.gaps > 0 && rep.resyncs > 0, "{rep:?}");
    assert!(rep.bybit_book_checks > 50, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn bybit_disconnects_and_malformed_frames_recover() {
    let (rep, m, r) = bybit_with_faults("disconnect-every=1s,malformed=0.005,fragment=0.02", 4);
    assert!(m.counters.fragmented.load(Ordering::Relaxed) > 0);
    assert!(rep.disconnects >= 2 && rep.malformed > 0, "{rep:?}");
    assert!(rep.syncs >= 3, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn live_subscribe_adds_a_stream_without_reconnecting() {
    use qalpha_engine::event::MarketPayload;
    use qalpha_engine::ring::{ring, FullPolicy};
    use qalpha_engine::runtime::WaitMode;
    use qalpha_feeds::live::{plan_venue, FeedCommand, FeedRunner};

    let dir = tempfile::tempdir().unwrap();
    let m = mock(
        Venue::BinanceUsdm,
        synthetic(),
        Speed::Factor(5.0),
        "",
        dir.path(),
    );
    let o = overrides("binance", &m, &["depth@0ms", "bookTicker"]);
    let cfg = effective_config(None, &o).unwrap();
    let plan = plan_venue(&cfg.venues[0]).unwrap();
    let (tx, mut rx) = ring(1 << 16, FullPolicy::DropNewest, WaitMode::Yield);
    let mut runner = FeedRunner::new(&[plan], fast_opts(), tx, None).unwrap();
    let cmd = runner.command_sender();
    let stop = Arc::new(AtomicBool::new(false));
    let s2 = stop.clone();
    let t = std::thread::spawn(move || {
        runner.run(&s2);
        runner
    });
    let count_trades = |rx: &mut qalpha_engine::ring::Consumer<qalpha_engine::MarketEvent>| {
        let mut n = 0;
        while let Ok(ev) = rx.pop() {
            n += matches!(ev.payload, MarketPayload::Trade(_)) as u32;
        }
        n
    };
    std::thread::sleep(Duration::from_millis(1200));
    assert_eq!(count_trades(&mut rx), 0, "no trade stream yet");
    cmd.send(FeedCommand::SubscribeBinance(vec![
        "btcusdt@trade".into(),
        "ethusdt@depth@0ms".into(),
    ]))
    .unwrap();
    std::thread::sleep(Duration::from_millis(1200));
    let trades = count_trades(&mut rx);
    stop.store(true, Ordering::Relaxed);
    let runner = t.join().unwrap();
    assert!(trades > 10, "{trades} trades after SUBSCRIBE");
    let st = runner.stats();
    assert_eq!((st.live_subscriptions, st.disconnects), (1, 1), "{st:?}"); // the one disconnect is the shutdown
    assert!(
        st.last_error
            .as_deref()
            .unwrap_or("")
            .contains("ethusdt@depth@0ms"),
        "{st:?}"
    );
}

#[test]
fn bybit_duplicated_frames_are_dropped() {
    let (rep, m, r) = bybit_with_faults("duplicate=0.05", 3);
    assert!(m.counters.duplicated.load(Ordering::Relaxed) > 0);
    // Duplicated deltas (same `u`) and duplicated trades (same id) are both dropped, not gaps.
    assert!(rep.duplicates > 0, "{rep:?}");
    assert_eq!(rep.gaps, 0, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn fault_snapshot_errors_are_counted_and_retried() {
    // Gaps force resyncs; half of the snapshots are answered with the venue's internal error.
    let (rep, m, r) = binance_with_faults("drop-diff=0.01,snapshot-fail=0.5", 5);
    assert!(m.counters.snapshot_faults.load(Ordering::Relaxed) > 0);
    assert!(rep.snapshot_failures > 0, "{rep:?}");
    assert!(rep.resyncs > 0, "every gap still ends in sync: {rep:?}");
    assert!(rep.last_error.is_some());
    assert_healthy(&rep, &r);
}

#[test]
fn fault_snapshot_timeout_keeps_the_book_stale_and_retries() {
    // Every snapshot answers after the client's REST timeout: the book never syncs, so nothing is
    // ever published from it (no book checks, no crossed or wrong book); the feed keeps running,
    // counting each timeout and asking again.
    let dir = tempfile::tempdir().unwrap();
    let m = mock(
        Venue::BinanceUsdm,
        synthetic(),
        Speed::Factor(5.0),
        "snapshot-delay=600ms",
        dir.path(),
    );
    let out = dir.path().join("rec.qcap");
    let o = overrides("binance", &m, &["depth@0ms", "trade"]);
    let opts = LiveOptions {
        rest_timeout: Duration::from_millis(250),
        ..fast_opts()
    };
    let rep = record_until(&o, &out, opts, Duration::from_secs(3), || false);
    assert!(rep.frames > 500, "{rep:?}");
    assert!(rep.snapshot_failures >= 2, "{rep:?}");
    assert_eq!(
        (rep.syncs, rep.book_checks, rep.book_mismatches),
        (0, 0, 0),
        "{rep:?}"
    );
    // The same mock with a client that waits long enough syncs at once.
    let out2 = dir.path().join("rec2.qcap");
    let rep = record_until(&o, &out2, fast_opts(), Duration::from_secs(3), || false);
    assert!(rep.syncs >= 1 && rep.snapshot_failures == 0, "{rep:?}");
}

#[test]
fn fault_oversize_message_drops_the_connection_and_resyncs() {
    let (rep, m, r) = binance_with_faults("oversize=0.002", 5);
    assert!(m.counters.oversized.load(Ordering::Relaxed) > 0);
    assert!(rep.disconnects >= 1 && rep.connects >= 2, "{rep:?}");
    assert!(
        rep.last_error
            .as_deref()
            .is_some_and(|e| e.contains("too long")
                || e.contains("Space limit")
                || e.contains("size")),
        "{:?}",
        rep.last_error
    );
    assert!(rep.resyncs >= 1, "{rep:?}");
    assert_healthy(&rep, &r);
}

#[test]
fn bybit_venue_restart_replaces_the_book_without_a_gap() {
    // 1.5 s in, the service restarts: an orderbook.50 snapshot with u = 1, deltas from 2.
    let (rep, _m, r) = bybit_with_faults("venue-restart=1500ms", 4);
    assert_eq!(
        (rep.gaps, r.gaps),
        (0, 0),
        "a restart is not a gap: {rep:?}"
    );
    assert!(
        r.snapshots >= 2,
        "the subscription's and the restart's: {r:?}"
    );
    assert_eq!(rep.connects, 1, "no reconnect needed: {rep:?}");
    assert_healthy(&rep, &r);
}
