//! Several symbols in one backtest, on the bundled real BTCUSDT and ETHUSDT 1m klines and on the
//! real capture's trades and quotes as archive CSVs: each symbol trades exactly as it does alone,
//! the account adds them up exactly, per-symbol params apply to their symbol only, one risk engine
//! halts them all (bar mode), funding files are paid at their times, and bad symbol choices are
//! clear errors.

use std::path::{Path, PathBuf};

use qalpha_strategy::bars::read_klines;
use qalpha_tools::backtest::cmd::{self, BacktestArgs};
use qalpha_tools::backtest::tick_cmd;
use qalpha_tools::backtest::tick_sim::Fill;
use serde_json::Value;

mod common;
use common::archive_csvs;

fn sample_klines(symbol: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../data/sample/klines/{symbol}-1m-2026-04-sample.csv"
    ));
    assert!(p.is_file(), "{} is missing", p.display());
    p
}

/// Risk wide enough that no check refuses an order (what is tested here is the portfolio), and
/// room for ETH's larger quantity.
const ROOMY: [&str; 7] = [
    "account.initial_equity=1000000",
    "risk.max_position_qty=100",
    "risk.max_position_notional=1000000",
    "risk.max_order_notional=1000000",
    "risk.max_consecutive_losses=100000",
    "risk.daily_loss_limit=1000000",
    "risk.vol_spike_bps=1000000",
];

fn bar_args(data: Vec<PathBuf>, sets: &[&str]) -> BacktestArgs {
    BacktestArgs {
        sets: ROOMY.iter().chain(sets).map(|s| s.to_string()).collect(),
        period: 3_600_000,
        ..BacktestArgs::new(data, "sma-cross")
    }
}

fn bars(a: &BacktestArgs) -> Value {
    cmd::bar_report(a).unwrap().0
}

fn units(v: &Value) -> i128 {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("a decimal string, got {v}"));
    let (neg, s) = s.strip_prefix('-').map_or((false, s), |r| (true, r));
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    // Money has 16 decimals: compare exactly.
    let x = i.parse::<i128>().unwrap() * 10i128.pow(16)
        + format!("{f:0<16}")[..16].parse::<i128>().unwrap();
    if neg {
        -x
    } else {
        x
    }
}

fn trades_of<'a>(v: &'a Value, symbol: &str) -> Vec<&'a Value> {
    v["trades"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["symbol"] == symbol)
        .collect()
}

/// A trade without its symbol (for comparing runs).
fn plain(t: &Value) -> Value {
    let mut t = t.clone();
    t.as_object_mut().unwrap().remove("symbol");
    t
}

#[test]
fn each_symbol_trades_as_it_does_alone_and_the_account_adds_up() {
    let (btc, eth) = (sample_klines("BTCUSDT"), sample_klines("ETHUSDT"));
    let sets = ["strategy.qty=0.01", "strategy.ETHUSDT.qty=0.3"];
    let both = bars(&bar_args(vec![eth.clone(), btc.clone()], &sets));
    assert_eq!(
        both["data"]["symbols"],
        serde_json::json!(["BTCUSDT", "ETHUSDT"])
    );
    assert_eq!(both["data"]["bars"], 6000);
    let initial = units(&Value::from("1000000"));
    let mut pnl_sum = 0i128;
    for (sym, file, qty) in [("BTCUSDT", &btc, "0.01"), ("ETHUSDT", &eth, "0.3")] {
        let alone = bars(&bar_args(vec![file.clone()], &sets));
        assert_eq!(
            alone["data"]["symbol"], sym,
            "the symbol comes from the file name"
        );
        let mine = trades_of(&both, sym);
        let theirs = alone["trades"].as_array().unwrap();
        assert!(theirs.len() >= 5, "{sym}: {} trades", theirs.len());
        assert_eq!(
            mine.iter().map(|t| plain(t)).collect::<Vec<_>>(),
            theirs.iter().map(plain).collect::<Vec<_>>(),
            "{sym}: the same round trips in the portfolio as alone"
        );
        assert!(
            mine.iter().all(|t| t["qty"] == qty),
            "{sym}: strategy.{sym}.qty applies"
        );
        let row = &both["per_symbol"][sym];
        assert_eq!(row["trades"], theirs.len());
        assert_eq!(
            units(&row["pnl"]),
            units(&alone["metrics"]["final_equity"]) - initial,
            "{sym}: its PnL in the portfolio is its PnL alone"
        );
        assert_eq!(both["final_positions"][sym], "0");
        pnl_sum += units(&row["pnl"]);
    }
    assert_eq!(
        units(&both["metrics"]["final_equity"]),
        initial + pnl_sum,
        "one account: the initial equity plus each symbol's PnL, exactly"
    );
    let fees: i128 = ["BTCUSDT", "ETHUSDT"]
        .iter()
        .map(|s| units(&both["per_symbol"][s]["fees"]))
        .sum();
    assert_eq!(units(&both["metrics"]["fees"]), fees);
    // Buy & hold holds each symbol's quantity.
    assert_eq!(both["baselines"]["buy_and_hold"]["trades"], 2);
    // Deterministic; the order of the files does not matter (but they are listed as given).
    let mut again = bars(&bar_args(vec![btc, eth], &sets));
    assert!(again["data"]["files"] != both["data"]["files"]);
    again["data"]["files"] = both["data"]["files"].clone();
    assert!(again == both, "the same report for the same inputs");
}

#[test]
fn one_risk_engine_halts_every_symbol() {
    let (btc, eth) = (sample_klines("BTCUSDT"), sample_klines("ETHUSDT"));
    // Fast crossings and a small daily-loss limit: the combined losses trip it.
    let sets = [
        "strategy.fast=3",
        "strategy.slow=8",
        "strategy.qty=0.05",
        "strategy.ETHUSDT.qty=1",
        "risk.daily_loss_limit=15",
    ];
    let v = bars(&bar_args(vec![btc, eth], &sets));
    assert_eq!(v["final_state"], "halted", "{}", v["risk_events"]);
    assert_eq!(v["halt_reason"], "daily_loss");
    let halted = v["halted_at_ns"].as_u64().unwrap();
    for sym in ["BTCUSDT", "ETHUSDT"] {
        assert_eq!(v["final_positions"][sym], "0", "{sym} flat after the halt");
    }
    // After the halt no symbol gets an order that adds exposure, only reductions.
    let orders = v["orders"].as_array().unwrap();
    let late: Vec<&Value> = orders
        .iter()
        .filter(|o| o["ts_ns"].as_u64().unwrap() > halted && o["rejected"].is_null())
        .collect();
    assert!(late.iter().all(|o| o["reduce_only"] == true), "{late:?}");
    // Both symbols traded before it, and both are refused after it.
    for sym in ["BTCUSDT", "ETHUSDT"] {
        assert!(orders
            .iter()
            .any(|o| o["symbol"] == sym && o["ts_ns"].as_u64().unwrap() < halted));
    }
    let refused_after: Vec<&str> = orders
        .iter()
        .filter(|o| o["ts_ns"].as_u64().unwrap() > halted && !o["rejected"].is_null())
        .map(|o| o["symbol"].as_str().unwrap())
        .collect();
    assert!(
        refused_after.contains(&"BTCUSDT") && refused_after.contains(&"ETHUSDT"),
        "the halt refuses new exposure on every symbol: {refused_after:?}"
    );
}

#[test]
fn funding_files_are_paid_at_their_times() {
    let dir = tempfile::tempdir().unwrap();
    let btc = sample_klines("BTCUSDT");
    let k = read_klines(&btc).unwrap();
    // Two funding times inside the data (a few ms after the hour, as the archive has them), one
    // before it: buy & hold pays −rate × qty × the open of the first bar at or after each.
    let (t1, t2) = (k[100].open_time_ms + 3, k[2000].open_time_ms - 60_000 + 1);
    let f = dir.path().join("BTCUSDT-fundingRate-2026-04.csv");
    std::fs::write(
        &f,
        format!(
            "calc_time,funding_interval_hours,last_funding_rate\n{},8,0.00050000\n{t1},8,0.00010000\n{t2},8,-0.00030000\n",
            k[0].open_time_ms - 8 * 3_600_000
        ),
    )
    .unwrap();
    let v = bars(&bar_args(vec![btc.clone(), f], &["strategy.qty=0.5"]));
    let paid_at = |t: u64| k.iter().find(|b| b.open_time_ms >= t).unwrap().open;
    let want = -(0.0001 * 0.5 * paid_at(t1)) + 0.0003 * 0.5 * paid_at(t2);
    let got: f64 = v["baselines"]["buy_and_hold"]["funding"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((got - want).abs() < 1e-6, "funding {got}, want {want}");
    assert_eq!(v["per_symbol"]["BTCUSDT"]["funding_events"], 2);
    // Without the file nothing is paid.
    let none = bars(&bar_args(vec![btc], &["strategy.qty=0.5"]));
    assert_eq!(none["baselines"]["buy_and_hold"]["funding"], "0");
}

#[test]
fn symbol_choices_that_do_not_fit_the_data_are_clear_errors() {
    let (btc, eth) = (sample_klines("BTCUSDT"), sample_klines("ETHUSDT"));
    let err = |a: &BacktestArgs| format!("{:#}", cmd::bar_report(a).err().unwrap());
    let mut a = bar_args(vec![btc.clone()], &[]);
    a.symbol = Some("ETHUSDT".into());
    assert!(err(&a).contains("--symbol is ETHUSDT"), "{}", err(&a));
    a.symbol = Some("BTCUSDT,XRPUSDT".into());
    assert!(err(&a).contains("no --data file holds it"), "{}", err(&a));
    let a = bar_args(vec![btc.clone()], &["strategy.btcusdt.qty=1"]);
    assert!(err(&a).contains("not a symbol like BTCUSDT"), "{}", err(&a));
    // Mixed intervals cannot share one portfolio clock.
    let dir = tempfile::tempdir().unwrap();
    let eth5 = dir.path().join("ETHUSDT-5m-2026-04.csv");
    let text = std::fs::read_to_string(&eth).unwrap();
    let five: Vec<&str> = text.lines().skip(1).step_by(5).collect();
    std::fs::write(&eth5, five.join("\n")).unwrap();
    let a = bar_args(vec![btc, eth5], &[]);
    assert!(err(&a).contains("one interval"), "{}", err(&a));
}

fn capture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../data/sample/btcusdt-usdm-20230404.qcap")
}

fn ticks(data: Vec<PathBuf>) -> Value {
    let a = BacktestArgs {
        sets: vec!["strategy.threshold=0.3".into()],
        seed: 7,
        period: 60_000,
        fill: Fill::Top,
        ..BacktestArgs::new(data, "obi-taker")
    };
    let setup = cmd::setup(&a).unwrap();
    tick_cmd::run(&setup, &a).unwrap().0
}

#[test]
fn tick_mode_runs_each_symbol_and_sums_the_account() {
    let dir = tempfile::tempdir().unwrap();
    // The same real market under two names: each symbol must trade exactly as alone.
    let btc = archive_csvs(&capture(), dir.path(), "BTCUSDT");
    let eth = archive_csvs(&capture(), dir.path(), "ETHUSDT");
    let alone = ticks(btc.to_vec());
    let both = ticks(btc.iter().chain(&eth).cloned().collect());
    assert_eq!(
        both["data"]["symbols"],
        serde_json::json!(["BTCUSDT", "ETHUSDT"])
    );
    let n = alone["executor"]["orders"].as_u64().unwrap();
    assert!(n >= 3, "{}", alone["executor"]);
    assert_eq!(both["executor"]["orders"], 2 * n);
    let solo: Vec<Value> = alone["trades"]
        .as_array()
        .unwrap()
        .iter()
        .map(plain)
        .collect();
    for sym in ["BTCUSDT", "ETHUSDT"] {
        let mine: Vec<Value> = trades_of(&both, sym).into_iter().map(plain).collect();
        assert_eq!(mine, solo, "{sym} trades as it does alone");
        assert_eq!(
            both["per_symbol"][sym]["pnl"],
            alone["per_symbol"]["BTCUSDT"]["pnl"]
        );
    }
    let pnl =
        units(&alone["metrics"]["final_equity"]) - units(&alone["settings"]["initial_equity"]);
    assert_eq!(
        units(&both["metrics"]["final_equity"]),
        units(&both["settings"]["initial_equity"]) + 2 * pnl,
        "the account is the initial equity plus each symbol's PnL"
    );
    // A capture of BTCUSDT only: asking for ETHUSDT there is an error naming it.
    let a = BacktestArgs {
        symbol: Some("BTCUSDT,ETHUSDT".into()),
        ..BacktestArgs::new(vec![capture()], "obi-taker")
    };
    let setup = cmd::setup(&a).unwrap();
    let e = format!("{:#}", tick_cmd::run(&setup, &a).err().unwrap());
    assert!(e.contains("no prices of ETHUSDT"), "{e}");
}
