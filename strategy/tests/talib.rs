//! The standard feature set against TA-Lib on real Binance klines: every REQUIRED column, every row.
//!
//! The reference is `tools/train/qalpha_train/ta_reference.py`, run in the venv `tools/test.sh`
//! creates (`tools/train/.venv`, pinned `requirements-ta.txt`). A missing venv is a failure, not a
//! skip: the point of this test is that the features match TA-Lib. Missing `../shared/data` skips.

use std::path::{Path, PathBuf};
use std::process::Command;

use qalpha_strategy::bars::read_klines;
use qalpha_strategy::features::standard::{standard, REQUIRED};

const FILES: [&str; 3] = [
    "binance-spot-btcusdt-1m.csv",
    "binance-spot-ethusdt-1m.csv",
    "binance-usdm-xrpusdt-5m.csv",
];

/// Relative tolerance: floating-point summation order differs between a streaming update and
/// TA-Lib's loops, so the last few bits may too.
const REL_TOL: f64 = 1e-9;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("strategy/ sits in the repository root")
        .to_path_buf()
}

fn klines_dir() -> Option<PathBuf> {
    let p = repo_root().join("../shared/data/klines");
    if p.is_dir() {
        Some(p)
    } else {
        eprintln!("skip: {} not found (real kline data)", p.display());
        None
    }
}

fn venv_python() -> PathBuf {
    let py = repo_root().join("tools/train/.venv/bin/python");
    assert!(
        py.exists(),
        "{} is missing: run tools/test.sh once (it creates tools/train/.venv with TA-Lib from \
         tools/train/requirements-ta.txt)",
        py.display()
    );
    py
}

/// The reference CSV: header names and one row of values (NaN for empty cells) per bar.
struct Reference {
    open_time: Vec<u64>,
    columns: Vec<String>,
    rows: Vec<Vec<f64>>,
}

fn run_reference(csv: &Path, out: &Path) -> Reference {
    let py = venv_python();
    let res = Command::new(&py)
        .args(["-m", "qalpha_train.ta_reference"])
        .arg(csv)
        .arg(out)
        .current_dir(repo_root().join("tools/train"))
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", py.display()));
    assert!(
        res.status.success(),
        "ta_reference failed on {} ({}):\n{}{}\n(if TA-Lib is missing, run tools/test.sh)",
        csv.display(),
        res.status,
        String::from_utf8_lossy(&res.stdout),
        String::from_utf8_lossy(&res.stderr)
    );
    let text = std::fs::read_to_string(out).unwrap();
    let mut lines = text.lines();
    let header: Vec<String> = lines
        .next()
        .expect("reference CSV has a header")
        .split(',')
        .map(str::to_string)
        .collect();
    assert_eq!(header[0], "open_time");
    let mut r = Reference {
        open_time: Vec::new(),
        columns: header[1..].to_vec(),
        rows: Vec::new(),
    };
    for (i, line) in lines.enumerate() {
        let f: Vec<&str> = line.split(',').collect();
        assert_eq!(f.len(), header.len(), "reference line {}: {line}", i + 2);
        r.open_time.push(f[0].parse().unwrap());
        r.rows.push(
            f[1..]
                .iter()
                .map(|c| {
                    if c.is_empty() {
                        f64::NAN
                    } else {
                        c.parse()
                            .unwrap_or_else(|_| panic!("reference line {}: {c:?}", i + 2))
                    }
                })
                .collect(),
        );
    }
    r
}

fn matches(ours: f64, talib: f64) -> bool {
    if talib.is_nan() || ours.is_nan() {
        return talib.is_nan() && ours.is_nan();
    }
    (ours - talib).abs() <= REL_TOL * talib.abs().max(1.0)
}

/// Compares one file; returns a description of every mismatching column (empty when all match).
fn compare_file(csv: &Path) -> Vec<String> {
    let tmp = tempfile::tempdir().unwrap();
    let reference = run_reference(csv, &tmp.path().join("talib.csv"));
    let bars = read_klines(csv).unwrap();
    assert_eq!(
        bars.len(),
        reference.rows.len(),
        "{}: row count",
        csv.display()
    );

    let mut set = standard();
    let names: Vec<String> = set.names().to_vec();
    let mut ours = Vec::with_capacity(bars.len());
    let mut row = Vec::new();
    for (i, b) in bars.iter().enumerate() {
        assert_eq!(
            b.open_time_ms,
            reference.open_time[i],
            "{}: open_time of row {i}",
            csv.display()
        );
        set.update(b, &mut row);
        ours.push(row.clone());
    }

    let mut failures = Vec::new();
    for name in REQUIRED {
        let ci = names.iter().position(|n| n == name).unwrap();
        let ri = reference
            .columns
            .iter()
            .position(|n| n == name)
            .unwrap_or_else(|| panic!("ta_reference wrote no column {name}"));
        let bad: Vec<usize> = (0..bars.len())
            .filter(|&i| !matches(ours[i][ci], reference.rows[i][ri]))
            .collect();
        if bad.is_empty() {
            continue;
        }
        let first: Vec<String> = bad
            .iter()
            .take(5)
            .map(|&i| {
                format!(
                    "row {i} (open_time {}): ours {:?} talib {:?}",
                    bars[i].open_time_ms, ours[i][ci], reference.rows[i][ri]
                )
            })
            .collect();
        failures.push(format!(
            "{}: column {name}: {} of {} rows differ; first: {}",
            csv.file_name().unwrap().to_string_lossy(),
            bad.len(),
            bars.len(),
            first.join("; ")
        ));
    }
    failures
}

#[test]
fn standard_set_has_every_required_column() {
    let set = standard();
    assert!(
        set.len() >= 44,
        "standard() has {} columns, want >= 44",
        set.len()
    );
    for name in REQUIRED {
        assert!(
            set.names().iter().any(|n| n == name),
            "standard() lacks {name}: {:?}",
            set.names()
        );
    }
}

#[test]
fn required_columns_match_talib_on_real_klines() {
    let Some(dir) = klines_dir() else { return };
    let mut failures = Vec::new();
    for f in FILES {
        let csv = dir.join(f);
        if !csv.exists() {
            eprintln!("skip {f}: {} not found", csv.display());
            continue;
        }
        failures.extend(compare_file(&csv));
    }
    assert!(
        failures.is_empty(),
        "features differ from TA-Lib (|ours - talib| > {REL_TOL:e} * max(1, |talib|), or NaN \
         placement):\n{}",
        failures.join("\n")
    );
}
