//! The backtester's `sma-cross` against backtesting.py (an independent implementation of the same
//! rules: `tools/train/qalpha_train/ref_sma_cross.py`, run in `tools/train/.venv`, which
//! `tools/test.sh` installs) on real BTCUSDT 1m klines: the same trades, entered and left at the
//! same bars and prices, with the same PnL per unit — without fees and with a 5 bps commission.

use std::path::{Path, PathBuf};
use std::process::Command;

use qalpha_tools::backtest::cmd::{self, BacktestArgs};
use serde_json::Value;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn klines() -> PathBuf {
    let p = root().join("data/sample/klines/BTCUSDT-1m-2026-04-sample.csv");
    assert!(
        p.is_file(),
        "{} is missing (the bundled sample klines)",
        p.display()
    );
    p
}

fn python() -> PathBuf {
    let p = root().join("tools/train/.venv/bin/python");
    assert!(
        p.is_file(),
        "{} is missing: run tools/test.sh, which installs tools/train/requirements-ta.txt",
        p.display()
    );
    p
}

/// backtesting.py's trades for `sma-cross(fast, slow)`.
fn reference(fast: usize, slow: usize, commission: f64) -> Vec<Value> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ref.json");
    let st = Command::new(python())
        .arg(root().join("tools/train/qalpha_train/ref_sma_cross.py"))
        .arg(klines())
        .args([fast.to_string(), slow.to_string()])
        .arg(&out)
        .env("QALPHA_REF_COMMISSION", commission.to_string())
        .output()
        .unwrap();
    assert!(
        st.status.success(),
        "reference failed: {}",
        String::from_utf8_lossy(&st.stderr)
    );
    let v: Value = serde_json::from_slice(&std::fs::read(out).unwrap()).unwrap();
    v["trades"].as_array().unwrap().clone()
}

fn ours(fast: usize, slow: usize, taker_bps: &str) -> Value {
    let sets = [
        format!("strategy.fast={fast}"),
        format!("strategy.slow={slow}"),
        "strategy.qty=1".to_string(),
        "fees.maker_bps=0".to_string(),
        format!("fees.taker_bps={taker_bps}"),
        // One BTC a trade at ~76k: room for it under risk's limits (not what is tested here).
        "account.initial_equity=10000000".to_string(),
        "risk.max_position_qty=10".to_string(),
        "risk.max_position_notional=10000000".to_string(),
        "risk.max_order_notional=10000000".to_string(),
        "risk.max_consecutive_losses=100000".to_string(),
        "risk.daily_loss_limit=10000000".to_string(),
    ];
    let a = BacktestArgs {
        sets: sets.to_vec(),
        ..BacktestArgs::new(vec![klines()], "sma-cross")
    };
    cmd::bar_report(&a).unwrap().0
}

/// (open, close) of the file's last bar.
fn last_bar() -> (f64, f64) {
    let text = std::fs::read_to_string(klines()).unwrap();
    let cols: Vec<f64> = text
        .lines()
        .last()
        .unwrap()
        .split(',')
        .map(|c| c.parse().unwrap())
        .collect();
    (cols[1], cols[4])
}

fn num(v: &Value) -> f64 {
    match v {
        Value::String(s) => s.parse().unwrap(),
        v => v.as_f64().unwrap(),
    }
}

fn compare(fast: usize, slow: usize, bps: &str) {
    let rate: f64 = bps.parse::<f64>().unwrap() / 1e4;
    let theirs = reference(fast, slow, rate);
    let v = ours(fast, slow, bps);
    assert!(
        v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["rejected"].is_null()),
        "risk refused an order: the comparison needs every order through"
    );
    let mine = v["trades"].as_array().unwrap();
    assert!(theirs.len() > 50, "{} reference trades", theirs.len());
    assert_eq!(
        mine.len(),
        theirs.len(),
        "fast={fast} slow={slow}: trade counts differ"
    );
    let last = theirs.len() - 1;
    for (i, (m, t)) in mine.iter().zip(&theirs).enumerate() {
        let ctx = format!("fast={fast} slow={slow} bps={bps} trade {i}: ours {m} theirs {t}");
        assert_eq!(m["side"], t["side"], "{ctx}");
        assert_eq!(m["entry_time"], t["entry_time"], "{ctx}");
        if i < last {
            assert_eq!(m["exit_time"], t["exit_time"], "{ctx}");
        } else {
            // At the end of data: backtesting.py stamps the last bar's open, we its close (the
            // price is that close in both).
            assert_eq!(
                m["exit_time"].as_u64().unwrap(),
                t["exit_time"].as_u64().unwrap() + 60_000,
                "{ctx}"
            );
        }
        assert!(
            (num(&m["entry_price"]) - num(&t["entry_price"])).abs() < 1e-6,
            "{ctx}: entry_price"
        );
        if i == last {
            // backtesting.py's finalize_trades closes at the last bar's open; the rules here say
            // the last bar's close. Each must be what its convention says.
            let (open, close) = last_bar();
            assert!((num(&m["exit_price"]) - close).abs() < 1e-6, "{ctx}");
            assert!((num(&t["exit_price"]) - open).abs() < 1e-6, "{ctx}");
            continue;
        }
        assert!(
            (num(&m["exit_price"]) - num(&t["exit_price"])).abs() < 1e-6,
            "{ctx}: exit_price"
        );
        // PnL of one unit, net of both legs' commission (ours rounds each fee up to 10⁻⁸).
        let (pm, pt) = (num(&m["pnl"]), num(&t["pnl"]));
        assert!((pm - pt).abs() < 1e-6 + 1e-9 * pt.abs(), "{ctx}: pnl");
    }
}

#[test]
fn sma_cross_matches_backtesting_py_without_fees() {
    compare(10, 30, "0");
    compare(5, 20, "0");
}

#[test]
fn sma_cross_matches_backtesting_py_with_commission() {
    compare(10, 30, "5");
}
