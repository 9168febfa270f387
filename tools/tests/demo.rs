//! `qalpha demo` in-process: the mock exchange on the bundled capture, the feed, the default
//! strategy (`maker`: post-only quotes at the touch, through the executor and risk) and the engine's gateway (WebSocket orders, user-data stream) — or, in paper mode, the
//! local paper venue — for a few seconds (127.0.0.1 only).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Duration;

use qalpha_engine::runtime::WaitMode;
use qalpha_tools::demo_cmd::{run_demo, DemoMode, DemoOptions};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

const REQUIRED_KEYS: &[&str] = &[
    "strategy",
    "strategy_params",
    "frames",
    "reconnects",
    "resyncs",
    "book_mismatches",
    "orders",
    "fills",
    "rejects",
    "duplicate_orders",
    "orders_on_stale_book",
    "pnl",
    "tick_to_order",
];

#[test]
fn demo_trades_against_the_mock_and_writes_its_summary() {
    let dir = tempfile::tempdir().unwrap();
    let json_path = dir.path().join("demo.json");
    let o = DemoOptions {
        duration: Duration::from_secs(6),
        speed: 20.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        json: Some(json_path.clone()),
        mode: DemoMode::Mock,
        ..Default::default()
    };
    let r = run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(r.strategy, "maker", "the default strategy");
    assert!(r.frames > 1000, "{r:?}");
    assert_eq!(r.book_mismatches, 0, "{r:?}");
    assert!(r.orders > 0 && r.acks > 0, "{r:?}");
    assert_eq!(r.orders_on_stale_book, 0, "{r:?}");
    assert_eq!(r.duplicate_orders, 0, "{r:?}");
    assert!(r.tick_to_order.p50_us > 0.0, "{r:?}");
    // Every new order was answered one way or the other.
    assert_eq!(r.acks + r.rejects, r.orders, "{r:?}");

    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json_path).unwrap()).unwrap();
    for k in REQUIRED_KEYS {
        assert!(v.get(k).is_some(), "JSON summary lacks {k}: {v}");
    }
    for k in ["p50_us", "p99_us"] {
        assert!(v["tick_to_order"][k].as_f64().is_some(), "{v}");
    }
    // PnL is an exact decimal string, not a float.
    let pnl = v["pnl"].as_str().expect("pnl is a string");
    assert!(
        pnl.trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.'),
        "{pnl}"
    );
}

/// Paper mode: the same strategy, fills from the local paper venue (the shared fill model on the
/// engine's own events); nothing is sent to the mock, which only serves market data.
#[test]
fn demo_in_paper_mode_fills_locally() {
    let o = DemoOptions {
        duration: Duration::from_secs(6),
        speed: 20.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        json: None,
        mode: DemoMode::Paper,
        ..Default::default()
    };
    let r = run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(r.mode, Some(DemoMode::Paper));
    assert!(r.orders > 0 && r.acks > 0, "{r:?}");
    assert!(
        r.fills > 0,
        "resting quotes fill on the capture's prints: {r:?}"
    );
    assert_eq!(r.orders_on_stale_book, 0, "{r:?}");
    assert_eq!(r.duplicate_orders, 0, "{r:?}");
    assert_eq!(r.acks + r.rejects, r.orders, "{r:?}");
    // Nothing went to a venue.
    assert_eq!((r.ws_requests, r.rest_requests), (0, 0), "{r:?}");
}

/// `qalpha demo --faults heavy` (issue 11): every fault of the mock at once — cut connections, gaps,
/// duplicated, reordered, malformed and fragmented frames, a stall, rejects, slow acks, private-stream
/// drops, a clock jump. The engine reconnects and resyncs, keeps trading, and never mismatches a
/// book, duplicates an order or sends one on a stale book; nothing stays open.
#[test]
fn heavy_faults_are_survived_and_never_trade_blind() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("heavy.json");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["demo", "--faults", "heavy", "--json"])
        .arg(&json)
        .arg("--journal")
        .arg(dir.path().join("orders.jsonl"))
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let n = |k: &str| s[k].as_u64().unwrap_or_else(|| panic!("{k} missing: {s}"));
    assert!(n("reconnects") >= 1, "{s}");
    assert!(n("resyncs") >= 1, "{s}");
    assert!(n("orders") >= 1, "{s}");
    assert_eq!(n("book_mismatches"), 0, "{s}");
    assert_eq!(n("duplicate_orders"), 0, "{s}");
    assert_eq!(n("orders_on_stale_book"), 0, "{s}");
    assert!(n("book_checks") > 0, "{s}");
    // The private stream was cut and reconciled; the run ended with nothing open.
    assert!(n("private_reconnects") >= 1, "{s}");
    assert_eq!(n("open_orders"), 0, "{s}");
    // Each fault class detected is journaled (a `detected` system entry with its running total).
    let j = std::fs::read_to_string(dir.path().join("orders.jsonl")).unwrap();
    let detected: std::collections::BTreeMap<String, u64> = j
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["event"] == "detected")
        .map(|v| {
            let d = &v["detail"];
            (
                d["what"].as_str().unwrap().to_string(),
                d["total"].as_u64().unwrap(),
            )
        })
        .collect();
    for what in [
        "feed_disconnect",
        "book_gap",
        "book_resync",
        "order_stream_reconnect",
    ] {
        assert!(
            detected.get(what).is_some_and(|n| *n >= 1),
            "{what} not journaled: {detected:?}"
        );
    }
    assert_eq!(
        detected.get("book_resync"),
        Some(&n("resyncs")),
        "{detected:?}"
    );
}

/// A slow consumer: the strategy thread takes 1 ms per event behind a 256-event ring, so the feed
/// thread drops events (never waits). Every drop marks the book stale; the executor sends nothing
/// on a stale book, books resync and still never mismatch.
#[test]
fn a_slow_strategy_fills_the_ring_and_never_trades_on_a_stale_book() {
    let o = DemoOptions {
        duration: Duration::from_secs(8),
        speed: 20.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        mode: DemoMode::Mock,
        md_ring: 256,
        slow_strategy: Some(Duration::from_millis(1)),
        ..Default::default()
    };
    let rep = run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap();
    assert!(rep.ring_drops > 0, "{rep:?}");
    assert!(rep.resyncs >= 1, "{rep:?}");
    assert_eq!(rep.orders_on_stale_book, 0, "{rep:?}");
    assert_eq!(rep.book_mismatches, 0, "{rep:?}");
    assert_eq!(rep.duplicate_orders, 0, "{rep:?}");
    assert!(rep.orders >= 1, "it still trades when in sync: {rep:?}");
}
