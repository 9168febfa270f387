//! `qalpha backtest` in bar mode on real BTCUSDT 1m klines (the bundled sample `data/sample/klines` (copies of `../shared/data/klines`)): the report is
//! byte-identical across runs, `sma-cross` trades exactly where an independent recomputation of its
//! rules says (fills at the next bar's open), money adds up exactly, and perturbing the data after a
//! time changes no order before it (no look-ahead).

use std::path::{Path, PathBuf};
use std::process::Command;

use qalpha_strategy::bars::{read_klines, Bar};
use qalpha_tools::backtest::cmd::{self, BacktestArgs};
use serde_json::Value;

fn klines() -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/sample/klines/BTCUSDT-1m-2026-04-sample.csv");
    assert!(
        p.is_file(),
        "{} is missing (the bundled sample klines)",
        p.display()
    );
    p
}

fn args(data: PathBuf, sets: &[&str]) -> BacktestArgs {
    BacktestArgs {
        sets: sets.iter().map(|s| s.to_string()).collect(),
        period: 3_600_000,
        ..BacktestArgs::new(vec![data], "sma-cross")
    }
}

fn report(a: &BacktestArgs) -> Value {
    cmd::bar_report(a).unwrap().0
}

/// 10⁻⁸ units of a decimal string.
fn units(s: &str) -> i128 {
    let (w, f) = s.split_once('.').unwrap_or((s, ""));
    let neg = w.starts_with('-');
    let w: i128 = w.trim_start_matches('-').parse().unwrap();
    let f: i128 = format!("{f:0<16}")[..16].parse().unwrap();
    let v = w * 10i128.pow(16) + f;
    if neg {
        -v
    } else {
        v
    }
}

fn px_units(x: f64) -> i64 {
    (x * 1e8).round() as i64
}

#[test]
fn json_report_is_byte_identical_across_runs() {
    let dir = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_qalpha");
    let mut outs = Vec::new();
    for i in 0..2 {
        let json = dir.path().join(format!("r{i}.json"));
        let st = Command::new(bin)
            .args(["backtest", "--data"])
            .arg(klines())
            .args([
                "--set",
                "strategy.fast=5",
                "--set",
                "strategy.slow=20",
                "--json",
            ])
            .arg(&json)
            .status()
            .unwrap();
        assert!(st.success());
        outs.push(std::fs::read(&json).unwrap());
    }
    assert!(!outs[0].is_empty());
    assert_eq!(
        outs[0], outs[1],
        "same inputs, config and seed → the same bytes"
    );
    let v: Value = serde_json::from_slice(&outs[0]).unwrap();
    for key in [
        "trades",
        "orders",
        "final_state",
        "halt_reason",
        "halted_at_ns",
        "final_positions",
        "open_orders",
        "risk_events",
    ] {
        assert!(v.get(key).is_some(), "report lacks {key}");
    }
    let t = &v["trades"][0];
    for key in [
        "side",
        "entry_time",
        "entry_price",
        "exit_time",
        "exit_price",
        "pnl",
    ] {
        assert!(t.get(key).is_some(), "trade lacks {key}: {t}");
    }
}

/// The sma-cross rules recomputed from exact integer closes: the bar index at whose next open each
/// position change happens, and the target (in units of qty) — the last one at the end of data.
fn reference(bars: &[Bar], fast: usize, slow: usize) -> Vec<(usize, i8)> {
    let closes: Vec<i128> = bars.iter().map(|b| px_units(b.close) as i128).collect();
    let (mut pos, mut out) = (0i8, Vec::new());
    for t in slow - 1..bars.len() {
        let f: i128 = closes[t + 1 - fast..=t].iter().sum();
        let s: i128 = closes[t + 1 - slow..=t].iter().sum();
        let sig = (f * slow as i128 - s * fast as i128).signum() as i8;
        if sig != 0 && sig != pos && t + 1 < bars.len() {
            out.push((t + 1, sig));
            pos = sig;
        }
    }
    if pos != 0 {
        out.push((bars.len(), 0));
    }
    out
}

#[test]
fn sma_cross_trades_where_its_rules_say_at_the_next_open_and_money_adds_up() {
    let a = args(
        klines(),
        &[
            "strategy.fast=10",
            "strategy.slow=30",
            "fees.maker_bps=0",
            "fees.taker_bps=0",
        ],
    );
    let v = report(&a);
    let bars = read_klines(&klines()).unwrap();
    let want = reference(&bars, 10, 30);
    let orders = v["orders"].as_array().unwrap();
    assert_eq!(orders.len(), want.len(), "one order per position change");
    let qty = 100_000i64; // 0.001
    let mut pos = 0i64;
    for (o, (at, target)) in orders.iter().zip(&want) {
        let (t_ms, px) = match bars.get(*at) {
            Some(b) => (b.open_time_ms, px_units(b.open)),
            // on_end: the last bar's close.
            None => (
                bars[bars.len() - 1].open_time_ms + 60_000,
                px_units(bars[bars.len() - 1].close),
            ),
        };
        assert_eq!(o["ts_ns"].as_u64().unwrap(), t_ms * 1_000_000, "{o}");
        assert_eq!(
            units(o["price"].as_str().unwrap()),
            px as i128 * 100_000_000,
            "{o}"
        );
        let delta = *target as i64 * qty - pos;
        assert_eq!(o["side"], if delta > 0 { "buy" } else { "sell" });
        assert_eq!(
            units(o["qty"].as_str().unwrap()),
            delta.abs() as i128 * 100_000_000
        );
        assert!(o["rejected"].is_null());
        pos = *target as i64 * qty;
    }
    // Exact money: final − initial = Σ trade PnL (no fees here), and each trade's PnL is its
    // price difference × qty.
    let m = &v["metrics"];
    let total =
        units(m["final_equity"].as_str().unwrap()) - units(m["initial_equity"].as_str().unwrap());
    let trades = v["trades"].as_array().unwrap();
    let sum: i128 = trades
        .iter()
        .map(|t| units(t["pnl"].as_str().unwrap()))
        .sum();
    assert_eq!(total, sum);
    for t in trades {
        let (e, x) = (
            units(t["entry_price"].as_str().unwrap()),
            units(t["exit_price"].as_str().unwrap()),
        );
        let dir = if t["side"] == "long" { 1 } else { -1 };
        assert_eq!(
            units(t["pnl"].as_str().unwrap()),
            dir * (x - e) / 1000,
            "{t}"
        );
    }
    assert_eq!(v["final_state"], "active");
    assert_eq!(v["final_positions"]["BTCUSDT"], "0");
}

#[test]
fn perturbing_data_after_t_changes_no_order_before_t() {
    let bars = read_klines(&klines()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let k = 1500;
    let cut_ms = bars[k].open_time_ms;
    // The same file with every bar from k on moved: closes ×1.07, opens ×0.95.
    let text = std::fs::read_to_string(klines()).unwrap();
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        let cols: Vec<&str> = line.split(',').collect();
        let is_late = i > 0 && cols[0].parse::<u64>().is_ok_and(|t| t >= cut_ms);
        if is_late {
            let o: f64 = cols[1].parse().unwrap();
            let c: f64 = cols[4].parse().unwrap();
            let (o2, c2) = (o * 0.95, c * 1.07);
            let hi = o2.max(c2).max(cols[2].parse().unwrap());
            let lo = o2.min(c2).min(cols[3].parse::<f64>().unwrap());
            out.push_str(&format!(
                "{},{o2:.2},{hi:.2},{lo:.2},{c2:.2},{}\n",
                cols[0], cols[5]
            ));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    let moved = dir.path().join("moved.csv");
    std::fs::write(&moved, out).unwrap();
    let before = |v: &Value| -> Vec<Value> {
        v["orders"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|o| o["ts_ns"].as_u64().unwrap() <= cut_ms * 1_000_000)
            .cloned()
            .collect()
    };
    let a = report(&args(klines(), &["strategy.fast=5", "strategy.slow=20"]));
    let b = report(&args(moved, &["strategy.fast=5", "strategy.slow=20"]));
    assert!(before(&a).len() > 10);
    assert_eq!(before(&a), before(&b), "orders up to the cut are unchanged");
    assert_ne!(
        a["orders"], b["orders"],
        "the perturbation does change later orders"
    );
}

#[test]
fn bad_settings_name_the_key() {
    let e = cmd::setup(&args(klines(), &["fees.taker_bp=4"])).unwrap_err();
    assert!(e.to_string().contains("fees.taker_bp"), "{e}");
    let e = cmd::setup(&args(klines(), &["fees.taker_bps=0.001"])).unwrap_err();
    assert!(e.to_string().contains("2 decimals"), "{e}");
    let e = cmd::setup(&args(klines(), &["account.initial_equity=-5"])).unwrap_err();
    assert!(e.to_string().contains("initial_equity"), "{e:#}");
    let mut a = args(klines(), &[]);
    a.year = Some(2019);
    let s = cmd::setup(&a).unwrap();
    let e = cmd::load_data(&s, &a.data).unwrap_err();
    assert!(format!("{e:#}").contains("no bars"), "{e:#}");
    let e = cmd::bar_report(&args(klines(), &["strategy.fast=50"]))
        .err()
        .unwrap();
    assert!(e.to_string().contains("fast < slow"), "{e}");
}

#[test]
fn a_sweep_ranks_the_grid_and_warns() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("sweep.json");
    let out = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["backtest", "--data"])
        .arg(klines())
        .args([
            "--sweep",
            "strategy.fast=5,10,40",
            "--sweep",
            "strategy.slow=20,30",
            "--json",
        ])
        .arg(&json)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("in-sample sweep"), "{text}");
    let v: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).unwrap();
    let points = v["points"].as_array().unwrap();
    assert_eq!(points.len(), 6);
    // fast=40 is not below either slow: both refused by the strategy, listed last with the reason.
    let errors: Vec<&Value> = points.iter().filter(|p| !p["error"].is_null()).collect();
    assert_eq!(errors.len(), 2);
    assert!(errors
        .iter()
        .all(|p| p["error"].as_str().unwrap().contains("fast < slow")));
    assert!(points[4]["error"].is_string() && points[5]["error"].is_string());
    // Ranked by Sharpe, and each point equals a single backtest with the same settings.
    let sharpes: Vec<f64> = points[..4]
        .iter()
        .map(|p| p["metrics"]["sharpe"].as_f64().unwrap())
        .collect();
    assert!(sharpes.windows(2).all(|w| w[0] >= w[1]), "{sharpes:?}");
    let best = &points[0];
    let sets: Vec<&str> = best["sets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    let single = report(&BacktestArgs {
        period: 86_400_000,
        ..args(klines(), &sets)
    });
    // Exact fields equal; floats read back from the JSON text agree to the last few ulps.
    for key in ["pnl", "final_equity", "fees", "trades"] {
        assert_eq!(single["metrics"][key], best["metrics"][key], "{key}");
    }
    let (x, y) = (
        single["metrics"]["sharpe"].as_f64().unwrap(),
        best["metrics"]["sharpe"].as_f64().unwrap(),
    );
    assert!((x - y).abs() <= 1e-12 * x.abs(), "{x} vs {y}");
}
