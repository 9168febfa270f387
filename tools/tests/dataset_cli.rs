//! `qalpha dataset` on the real BTCUSDT and ETHUSDT 1m klines in the bundled sample `data/sample/klines` (copies of `../shared/data/klines`): the
//! Parquet files hold the engine's own feature values (recomputed here bar by bar), forward returns
//! and Strategist labels that follow the documented rules, the splits by time, and a normalization
//! fitted on the train rows only (docs/DATASET.md). pyarrow (the trainers' reader) reads the files.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::Command;

use arrow_array::{Array, Float32Array, Float64Array, Int64Array, Int8Array, StringArray};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use qalpha_strategy::bars::read_klines;
use qalpha_strategy::features::standard::standard;
use serde_json::Value;

fn klines(name: &str) -> PathBuf {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/sample/klines")
        .join(name);
    assert!(
        p.is_file(),
        "{} is missing (the bundled sample klines)",
        p.display()
    );
    p
}

/// Every row of a Parquet file as (symbol, open_time, close, features, fwd, action, reward).
type Row = (String, i64, f64, Vec<f32>, Vec<f32>, i8, f32);

fn read_rows(path: &Path, n_feat: usize, n_h: usize) -> Vec<Row> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(File::open(path).unwrap())
        .unwrap()
        .build()
        .unwrap();
    let mut rows = Vec::new();
    for batch in reader {
        let b = batch.unwrap();
        let col = |i: usize| b.column(i).clone();
        let t = col(0)
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .clone();
        let s = col(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .clone();
        let c = col(2)
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap()
            .clone();
        let f32col = |i: usize| {
            col(i)
                .as_any()
                .downcast_ref::<Float32Array>()
                .unwrap()
                .clone()
        };
        let feats: Vec<Float32Array> = (0..n_feat).map(|k| f32col(3 + k)).collect();
        let fwd: Vec<Float32Array> = (0..n_h).map(|k| f32col(3 + n_feat + k)).collect();
        let act = col(3 + n_feat + n_h)
            .as_any()
            .downcast_ref::<Int8Array>()
            .unwrap()
            .clone();
        let rew = f32col(4 + n_feat + n_h);
        for i in 0..b.num_rows() {
            rows.push((
                s.value(i).to_string(),
                t.value(i),
                c.value(i),
                feats.iter().map(|a| a.value(i)).collect(),
                fwd.iter().map(|a| a.value(i)).collect(),
                act.value(i),
                rew.value(i),
            ));
        }
    }
    rows
}

#[test]
fn real_klines_become_a_labelled_split_normalized_dataset() {
    let dir = tempfile::tempdir().unwrap();
    let (btc, eth) = (
        klines("BTCUSDT-1m-2026-04-sample.csv"),
        klines("ETHUSDT-1m-2026-04-sample.csv"),
    );
    let bars = read_klines(&btc).unwrap();
    let t0 = bars[0].open_time_ms;
    let (train_to, val_to) = (t0 + 20 * 3_600_000, t0 + 35 * 3_600_000);
    let out = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["dataset", "--data"])
        .arg(&btc)
        .arg(&eth)
        .arg("--out")
        .arg(dir.path())
        .args(["--horizons", "1,5,15", "--fee-bps", "5"])
        .args([
            "--train-to",
            &train_to.to_string(),
            "--val-to",
            &val_to.to_string(),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("meta.json")).unwrap())
            .unwrap();
    // The short kline layout has no taker volume: that one column is left out, and said so.
    let all: Vec<String> = standard().names().to_vec();
    let names: Vec<String> = all
        .iter()
        .filter(|n| *n != "taker_buy_ratio")
        .cloned()
        .collect();
    assert_eq!(meta["features"], serde_json::json!(names));
    assert_eq!(
        meta["unavailable_features"],
        serde_json::json!(["taker_buy_ratio"])
    );
    let col: Vec<usize> = names
        .iter()
        .map(|n| all.iter().position(|a| a == n).unwrap())
        .collect();
    assert_eq!(meta["symbols"], serde_json::json!(["BTCUSDT", "ETHUSDT"]));
    assert_eq!(meta["interval_ms"], 60_000);
    let (nf, nh) = (names.len(), 3);

    // The BTC rows, recomputed independently: the feature set over the bars, labels from closes.
    let mut set = standard();
    let mut row = Vec::new();
    let feats: Vec<Vec<f64>> = bars
        .iter()
        .map(|b| {
            set.update(b, &mut row);
            row.clone()
        })
        .collect();
    let fee = 2.0 * 5.0 / 1e4;
    let mut all = Vec::new();
    for split in ["train", "val", "test"] {
        let rows = read_rows(&dir.path().join(format!("{split}.parquet")), nf, nh);
        assert_eq!(meta["splits"][split]["rows"], rows.len() as u64, "{split}");
        for r in &rows {
            let t = r.1 as u64;
            match split {
                "train" => assert!(t < train_to),
                "val" => assert!(t >= train_to && t < val_to),
                _ => assert!(t >= val_to),
            }
        }
        all.extend(rows.into_iter().map(|r| (split, r)));
    }
    let btc_rows: Vec<&(&str, Row)> = all.iter().filter(|(_, r)| r.0 == "BTCUSDT").collect();
    assert!(btc_rows.len() > 2800, "{} BTC rows", btc_rows.len());
    for (_, r) in &btc_rows {
        let i = bars
            .iter()
            .position(|b| b.open_time_ms as i64 == r.1)
            .unwrap();
        for (k, &got) in r.3.iter().enumerate() {
            let want = feats[i][col[k]];
            assert!(want.is_finite(), "no warm-up rows");
            assert_eq!(got, want as f32, "{} at {}", names[k], r.1);
        }
        for (k, h) in [1usize, 5, 15].iter().enumerate() {
            let want = (bars[i + h].close / bars[i].close - 1.0) as f32;
            assert_eq!(r.4[k], want, "fwd_ret_{h}");
        }
        let r0 = f64::from(r.4[0]);
        let action = if r0 > fee {
            1
        } else if r0 < -fee {
            -1
        } else {
            0
        };
        assert_eq!(r.5, action);
        let reward = if action == 0 {
            0.0
        } else {
            (f64::from(action) * r0 - fee) as f32
        };
        assert_eq!(r.6, reward);
        assert_eq!(r.2, bars[i].close);
    }
    // The last 15 bars have no 15-bar label: dropped, and counted.
    assert!(meta["dropped"]["tail"].as_u64().unwrap() >= 2 * 15);
    assert!(meta["dropped"]["warm_up"].as_u64().unwrap() > 0);

    // Normalization: mean and std over the train rows only (both symbols).
    let train: Vec<&Row> = all
        .iter()
        .filter(|(s, _)| *s == "train")
        .map(|(_, r)| r)
        .collect();
    let mean = meta["normalization"]["mean"].as_array().unwrap();
    let std = meta["normalization"]["std"].as_array().unwrap();
    for k in [0usize, 3, 10, nf - 1] {
        let n = train.len() as f64;
        let m: f64 = train.iter().map(|r| f64::from(r.3[k])).sum::<f64>() / n;
        let v: f64 = train
            .iter()
            .map(|r| (f64::from(r.3[k]) - m).powi(2))
            .sum::<f64>()
            / n;
        let (gm, gs) = (mean[k].as_f64().unwrap(), std[k].as_f64().unwrap());
        assert!(
            (gm - m).abs() <= 1e-6 * m.abs().max(1.0),
            "{}: mean {gm} vs {m}",
            names[k]
        );
        let s = if v.sqrt() > 1e-12 { v.sqrt() } else { 1.0 };
        assert!((gs - s).abs() <= 1e-5 * s, "{}: std {gs} vs {s}", names[k]);
    }

    // The trainers' reader: pyarrow in tools/train/.venv.
    let py = Path::new(env!("CARGO_MANIFEST_DIR")).join("train/.venv/bin/python");
    assert!(py.is_file(), "{} missing: run tools/test.sh", py.display());
    let o = Command::new(&py)
        .args(["-c", "import sys, pyarrow.parquet as pq; t = pq.read_table(sys.argv[1]); print(t.num_rows, t.schema.field('fwd_ret_5').type, t.schema.field('action').type)"])
        .arg(dir.path().join("train.parquet"))
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let said = String::from_utf8_lossy(&o.stdout);
    assert_eq!(
        said.trim(),
        format!("{} float int8", meta["splits"]["train"]["rows"])
    );
}

#[test]
fn bad_arguments_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qalpha"))
            .arg("dataset")
            .args(args)
            .output()
            .unwrap()
    };
    let btc = klines("BTCUSDT-1m-2026-04-sample.csv");
    let out = dir.path().to_str().unwrap();
    let o = run(&["--data", btc.to_str().unwrap(), "--out", out]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("no training rows"),
        "the 2026 file has nothing before 2023"
    );
    let o = run(&[
        "--data",
        btc.to_str().unwrap(),
        "--out",
        out,
        "--horizons",
        "0",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("positive"));
    let anon = dir.path().join("klines.csv");
    std::fs::copy(&btc, &anon).unwrap();
    let o = run(&[
        "--data",
        anon.to_str().unwrap(),
        "--out",
        out,
        "--train-to",
        "2030-01-01",
        "--val-to",
        "2031-01-01",
    ]);
    assert!(String::from_utf8_lossy(&o.stderr).contains("--symbol"));
}
