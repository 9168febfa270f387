//! `qalpha backtest` on the bundled real capture (tick mode): the report is byte-identical across
//! runs with the same seed (empirical latency included), a daily-loss kill switch ends the run
//! halted and flat, market orders walk the rebuilt book, latency changes what fills, and a capture
//! cut at time t gives exactly the same orders before t (no look-ahead).

use std::path::{Path, PathBuf};
use std::process::Command;

use qalpha_engine::capture::{CaptureReader, CaptureWriter, RecordKind, WriterOptions};
use qalpha_tools::backtest::cmd::{self, BacktestArgs};
use qalpha_tools::backtest::latency::Latency;
use qalpha_tools::backtest::tick_cmd;
use serde_json::Value;

mod common;
use common::archive_csvs;

fn sample() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample/btcusdt-usdm-20230404.qcap");
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

fn args(data: PathBuf, strategy: &str, sets: &[&str]) -> BacktestArgs {
    BacktestArgs {
        sets: sets.iter().map(|s| s.to_string()).collect(),
        seed: 7,
        period: 60_000,
        ..BacktestArgs::new(vec![data], strategy)
    }
}

fn report(a: &BacktestArgs) -> Value {
    let setup = cmd::setup(a).unwrap();
    tick_cmd::run(&setup, a).unwrap().0
}

#[test]
fn the_json_is_byte_identical_for_the_same_seed() {
    let dir = tempfile::tempdir().unwrap();
    let lat = dir.path().join("acks.txt");
    // An empirical latency distribution (ns), drawn with the seed.
    std::fs::write(&lat, "150000\n240000\n310000\n900000\n2500000\n").unwrap();
    let mut outs = Vec::new();
    for i in 0..2 {
        let json = dir.path().join(format!("r{i}.json"));
        let st = Command::new(env!("CARGO_BIN_EXE_qalpha"))
            .args([
                "backtest",
                "--strategy",
                "obi-taker",
                "--seed",
                "3",
                "--data",
            ])
            .arg(sample())
            .arg("--order-latency")
            .arg(format!("samples:{}", lat.display()))
            .args(["--feed-latency", "100us", "--json"])
            .arg(&json)
            .output()
            .unwrap();
        assert!(
            st.status.success(),
            "{}",
            String::from_utf8_lossy(&st.stderr)
        );
        outs.push(std::fs::read(&json).unwrap());
    }
    assert_eq!(
        outs[0], outs[1],
        "same capture, config and seed → the same bytes"
    );
    let v: Value = serde_json::from_slice(&outs[0]).unwrap();
    assert_eq!(v["mode"], "ticks");
    assert!(
        v["executor"]["orders"].as_u64().unwrap() >= 5,
        "{}",
        v["executor"]
    );
    assert_eq!(v["executor"]["orders_on_stale_book"], 0);
    assert!(v["settings"]["order_latency"]
        .as_str()
        .unwrap()
        .contains("empirical, 5 samples"));
}

#[test]
fn a_daily_loss_limit_of_one_ends_halted_and_flat() {
    // obi-taker pays the spread and the taker fee on every round trip; at 0.01 BTC a trade the
    // day's loss passes 1 USDT within minutes of the capture.
    let v = report(&args(
        sample(),
        "obi-taker",
        &[
            "risk.daily_loss_limit=1",
            "strategy.qty=0.01",
            "strategy.threshold=0.3",
        ],
    ));
    assert_eq!(v["final_state"], "halted", "{}", v["risk_events"]);
    assert_eq!(v["halt_reason"], "daily_loss");
    assert!(v["halted_at_ns"].as_u64().is_some());
    assert_eq!(v["final_positions"]["BTCUSDT"], "0", "flattened");
    assert_eq!(v["open_orders"], 0);
    let events = v["risk_events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .any(|e| e["switch"] == "daily_loss" && e["state"] == "halted"),
        "{events:?}"
    );
    // Nothing opened after the halt: every order after it reduces.
    let halted = v["halted_at_ns"].as_u64().unwrap();
    for o in v["orders"].as_array().unwrap() {
        if o["ts_ns"].as_u64().unwrap() > halted {
            assert_eq!(o["reduce_only"], true, "{o}");
        }
    }
    let pnl: f64 = v["metrics"]["pnl"].as_str().unwrap().parse().unwrap();
    assert!(pnl < -1.0, "the loss that tripped it: {pnl}");
}

#[test]
fn market_orders_walk_the_book_and_latency_changes_fills() {
    // sma-cross on 1 s bars sends market orders; at 30 BTC an order is larger than the touch, so
    // the fill model takes several levels of the rebuilt book: more fills than orders.
    let sets = [
        "strategy.bar_ms=1000",
        "strategy.fast=2",
        "strategy.slow=3",
        "strategy.qty=30",
        "account.initial_equity=100000000",
        "risk.max_position_qty=100",
        "risk.max_position_notional=100000000",
        "risk.max_order_notional=100000000",
        "risk.daily_loss_limit=100000000",
        "risk.max_consecutive_losses=100000",
    ];
    let v = report(&args(sample(), "sma-cross", &sets));
    let e = &v["executor"];
    let (orders, fills) = (e["orders"].as_u64().unwrap(), e["fills"].as_u64().unwrap());
    assert!(orders >= 5, "{e}");
    assert!(fills > orders, "market orders filled across levels: {e}");
    for t in v["trades"].as_array().unwrap() {
        assert_eq!(t["qty"], "30", "every order filled completely: {t}");
    }

    // obi-taker's IOCs at the touch: half a second late, more of them find the touch gone.
    let quick = report(&args(sample(), "obi-taker", &["strategy.threshold=0.3"]));
    let mut slow_args = args(sample(), "obi-taker", &["strategy.threshold=0.3"]);
    slow_args.order_latency = Latency::Constant(500_000_000);
    let slow = report(&slow_args);
    let expired = |v: &Value| v["executor"]["expired"].as_u64().unwrap();
    assert_ne!(quick["orders"], slow["orders"], "latency changes the run");
    assert!(
        expired(&slow) > expired(&quick),
        "late IOCs expire more: {} vs {}",
        expired(&slow),
        expired(&quick)
    );
}

/// A copy of the capture holding its records up to (and excluding) the first at or after `cut_ns`.
fn truncated(src: &Path, cut_ns: u64, dst: &Path) {
    let r = CaptureReader::open(src).unwrap();
    let mut w =
        CaptureWriter::create(dst, r.connections().to_vec(), WriterOptions::default()).unwrap();
    for rec in r.records() {
        if rec.recv_ns >= cut_ns {
            break;
        }
        if rec.kind != RecordKind::Connect {
            w.write(rec.recv_ns, rec.conn_id, rec.kind, rec.payload)
                .unwrap();
        }
    }
    w.finish().unwrap();
}

#[test]
fn data_after_t_changes_no_order_before_t() {
    let dir = tempfile::tempdir().unwrap();
    let r = CaptureReader::open(sample()).unwrap();
    let recs: Vec<u64> = r.records().map(|x| x.recv_ns).collect();
    let cut_ns = recs[recs.len() * 3 / 5];
    let cut = dir.path().join("cut.qcap");
    truncated(&sample(), cut_ns, &cut);
    for strategy in ["obi-taker", "maker"] {
        let sets: &[&str] = if strategy == "obi-taker" {
            &["strategy.threshold=0.3"]
        } else {
            &[]
        };
        let full = report(&args(sample(), strategy, sets));
        let part = report(&args(cut.clone(), strategy, sets));
        // Orders decided before the last record of the cut capture (the cut run also settles at
        // its end, which the full run does not).
        let before = |v: &Value| -> Vec<Value> {
            v["orders"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|o| o["ts_ns"].as_u64().unwrap() < cut_ns)
                .cloned()
                .collect()
        };
        let (a, b) = (before(&full), before(&part));
        assert!(
            a.len() >= 3,
            "{strategy}: {} orders before the cut",
            a.len()
        );
        assert_eq!(a, b, "{strategy}: the same orders before the cut");
    }
}

#[test]
fn archive_trade_and_quote_csvs_backtest_tick_strategies_on_the_paper_venue() {
    let dir = tempfile::tempdir().unwrap();
    let [agg, tick] = archive_csvs(&sample(), dir.path(), "BTCUSDT");
    let mut a = args(agg.clone(), "obi-taker", &["strategy.threshold=0.3"]);
    a.data = vec![agg.clone(), tick.clone()];
    a.fill = qalpha_tools::backtest::tick_sim::Fill::Top;
    let v = report(&a);
    assert_eq!(v["mode"], "ticks");
    let e = &v["executor"];
    assert!(e["orders"].as_u64().unwrap() >= 3, "{e}");
    assert!(e["fills"].as_u64().unwrap() >= 1, "{e}");
    assert_eq!(e["orders_on_stale_book"], 0);
    assert!(v["data"]["events"].as_u64().unwrap() > 5000);
    assert_eq!(report(&a), v, "deterministic");
    // No depth in the archive: the book-walking venue is refused with the reason.
    a.fill = qalpha_tools::backtest::tick_sim::Fill::Book;
    let setup = cmd::setup(&a).unwrap();
    let err = format!("{:#}", tick_cmd::run(&setup, &a).err().unwrap());
    assert!(err.contains("--fill top"), "{err}");
}
