//! `qalpha features` end to end: the binary on a real kline file (skips when `../shared/data` is
//! absent), on the bundled capture, and on a malformed CSV.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

fn features(input: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .arg("features")
        .arg("--input")
        .arg(input)
        .arg("--out")
        .arg(out)
        .args(extra)
        .output()
        .expect("run qalpha")
}

fn btc_klines() -> Option<PathBuf> {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../shared/data/klines/binance-spot-btcusdt-1m.csv");
    if p.exists() {
        Some(p)
    } else {
        eprintln!("skip: {} not found", p.display());
        None
    }
}

fn assert_ok(o: &Output) {
    assert!(
        o.status.success(),
        "qalpha features failed ({}):\n{}{}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn kline_csv_gives_one_row_per_bar_with_empty_warm_up_cells() {
    let Some(input) = btc_klines() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("f.csv");
    assert_ok(&features(&input, &out, &[]));

    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3001, "header + 3000 rows");
    let header: Vec<&str> = lines[0].split(',').collect();
    assert_eq!(header[0], "open_time");
    assert!(header.contains(&"sma_20") && header.contains(&"macd_signal"));

    let input_text = std::fs::read_to_string(&input).unwrap();
    let input_times: Vec<&str> = input_text
        .lines()
        .skip(1) // the header row
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(input_times.len(), 3000);
    let sma = header.iter().position(|h| *h == "sma_20").unwrap();
    for (i, line) in lines[1..].iter().enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), header.len(), "row {i}: {line}");
        assert_eq!(f[0], input_times[i], "open_time of row {i}");
        // SMA(20): TA-Lib's first value is on the 20th bar.
        if i < 19 {
            assert_eq!(f[sma], "", "row {i}: sma_20 during warm-up");
        } else {
            let v: f64 = f[sma].parse().unwrap();
            assert!(v.is_finite(), "row {i}: sma_20 {v}");
        }
        for c in &f[1..] {
            assert!(
                c.is_empty() || c.parse::<f64>().is_ok_and(f64::is_finite),
                "row {i}: cell {c:?}"
            );
        }
    }
    // Every column is empty on the first bar except the running totals (obv, ad, …) at most.
    let first: Vec<&str> = lines[1].split(',').collect();
    assert!(
        first[1..].iter().filter(|c| c.is_empty()).count() > header.len() / 2,
        "first row: {}",
        lines[1]
    );
}

#[test]
fn capture_trades_make_time_bars() {
    let tmp = tempfile::tempdir().unwrap();
    let out = tmp.path().join("cap.csv");
    assert_ok(&features(Path::new(SAMPLE), &out, &["--interval", "1s"]));
    let text = std::fs::read_to_string(&out).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.len() >= 2, "at least one bar: {text}");
    assert!(lines[0].starts_with("open_time,"));
    let times: Vec<u64> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert!(times.windows(2).all(|w| w[0] < w[1]), "bars in time order");
    assert!(times.iter().all(|t| t % 1000 == 0), "aligned to 1s");
}

#[test]
fn malformed_csv_fails_naming_the_line() {
    let tmp = tempfile::tempdir().unwrap();
    let input = tmp.path().join("bad.csv");
    std::fs::write(
        &input,
        "timestamp,open,high,low,close,volume\n\
         1776606960000,10,11,9,10.5,3\n\
         1776607020000,10,11,9,oops,3\n",
    )
    .unwrap();
    let o = features(&input, &tmp.path().join("o.csv"), &[]);
    assert!(!o.status.success(), "malformed input must fail");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.csv:3"),
        "error names file and line: {err}"
    );
}

#[test]
fn bad_interval_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let o = features(
        Path::new(SAMPLE),
        &tmp.path().join("o.csv"),
        &["--interval", "1x"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("invalid interval"));
}
