//! `qalpha dataset`: training datasets from the engine's own feature library (docs/DATASET.md).
//!
//! Kline CSVs (one symbol per file, named in the file name as the archive does —
//! `BTCUSDT-5m-2024-01.csv` — or given with `--symbol`) are merged per symbol, run through
//! `qalpha_strategy::features::standard` bar by bar exactly as the live engine does, labelled with
//! forward returns at the Oracle's horizons and the Strategist's hindsight action, split by time into
//! train / validation / test, and written as Parquet with `meta.json` (normalization fitted on the
//! train split only).
//!
//! Rows are dropped, never patched: warm-up rows (a feature still `NaN`), rows whose forward return
//! spans a gap in the data (the bar `h` later is not `h` intervals later) and the last bars of each
//! symbol. Counts of each are in `meta.json`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use arrow_array::{
    ArrayRef, Float32Array, Float64Array, Int64Array, Int8Array, RecordBatch, StringArray,
};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use qalpha_strategy::bars::{read_klines, Bar};
use qalpha_strategy::features::standard::standard;
use serde_json::json;

use crate::backtest::cmd::parse_time;

#[derive(clap::Args, Debug, Clone)]
pub struct DatasetArgs {
    /// Kline CSVs (Binance layout, header or not); the symbol is read from each file name.
    #[arg(long, required = true, num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// Output folder: meta.json, train.parquet, val.parquet, test.parquet.
    #[arg(long)]
    pub out: PathBuf,
    /// Forward-return horizons in bars (the Oracle's); the first also labels the Strategist.
    #[arg(long, value_delimiter = ',', default_value = "1,5,15")]
    pub horizons: Vec<u32>,
    /// Train on bars opening before this (epoch ms or YYYY-MM-DD, UTC).
    #[arg(long, default_value = "2023-01-01")]
    pub train_to: String,
    /// Validate on bars from --train-to until this; test on the rest.
    #[arg(long, default_value = "2024-01-01")]
    pub val_to: String,
    /// Taker fee in bps: the Strategist's labels need a move worth two of them.
    #[arg(long, default_value_t = 5.0)]
    pub fee_bps: f64,
    /// The symbol of every input (when the file names do not say).
    #[arg(long)]
    pub symbol: Option<String>,
}

/// `BTCUSDT` from `BTCUSDT-5m-2024-01.csv` or `binance-spot-btcusdt-1m.csv`.
pub fn symbol_from_name(path: &Path) -> Option<String> {
    let name = path.file_stem()?.to_str()?.to_ascii_uppercase();
    name.split(|c: char| !c.is_ascii_alphanumeric())
        .find(|t| t.len() > 4 && (t.ends_with("USDT") || t.ends_with("USDC") || t.ends_with("USD")))
        .map(str::to_string)
}

/// One labelled row.
struct Row {
    open_time: i64,
    close: f64,
    features: Vec<f32>,
    fwd: Vec<f32>,
    action: i8,
    reward: f32,
}

#[derive(Default, Debug, Clone, serde::Serialize)]
struct Dropped {
    warm_up: u64,
    gaps: u64,
    tail: u64,
}

/// The standard feature rows of one symbol's bars, bar by bar as the live engine computes them.
fn feature_rows(bars: &[Bar]) -> Vec<Vec<f64>> {
    let mut set = standard();
    let mut row = Vec::new();
    bars.iter()
        .map(|b| {
            set.update(b, &mut row);
            row.clone()
        })
        .collect()
}

/// Features (the `keep` columns) and labels of one symbol's bars.
fn label(
    bars: &[Bar],
    feats: &[Vec<f64>],
    keep: &[usize],
    horizons: &[u32],
    interval_ms: u64,
    fee: f64,
    dropped: &mut Dropped,
) -> Vec<Row> {
    let h0 = horizons[0] as usize;
    let mut out = Vec::new();
    for (i, (b, f)) in bars.iter().zip(feats).enumerate() {
        if keep.iter().any(|&k| !f[k].is_finite()) {
            dropped.warm_up += 1;
            continue;
        }
        let mut fwd = Vec::with_capacity(horizons.len());
        let mut ok = true;
        for &h in horizons {
            let j = i + h as usize;
            match bars.get(j) {
                None => {
                    ok = false;
                    dropped.tail += 1;
                    break;
                }
                Some(later) if later.open_time_ms != b.open_time_ms + h as u64 * interval_ms => {
                    ok = false;
                    dropped.gaps += 1;
                    break;
                }
                Some(later) => fwd.push((later.close / b.close - 1.0) as f32),
            }
        }
        if !ok {
            continue;
        }
        let r0 = (bars[i + h0].close / b.close - 1.0) as f32;
        let action: i8 = if f64::from(r0) > fee {
            1
        } else if f64::from(r0) < -fee {
            -1
        } else {
            0
        };
        let reward = match action {
            0 => 0.0,
            a => (f64::from(a) * f64::from(r0) - fee) as f32,
        };
        out.push(Row {
            open_time: b.open_time_ms as i64,
            close: b.close,
            features: keep.iter().map(|&k| f[k] as f32).collect(),
            fwd,
            action,
            reward,
        });
    }
    out
}

fn schema(features: &[String], horizons: &[u32]) -> Arc<Schema> {
    let mut fields = vec![
        Field::new("open_time", DataType::Int64, false),
        Field::new("symbol", DataType::Utf8, false),
        Field::new("close", DataType::Float64, false),
    ];
    fields.extend(
        features
            .iter()
            .map(|f| Field::new(f, DataType::Float32, false)),
    );
    fields.extend(
        horizons
            .iter()
            .map(|h| Field::new(format!("fwd_ret_{h}"), DataType::Float32, false)),
    );
    fields.push(Field::new("action", DataType::Int8, false));
    fields.push(Field::new("reward", DataType::Float32, false));
    Arc::new(Schema::new(fields))
}

fn batch(
    schema: &Arc<Schema>,
    symbol: &str,
    rows: &[&Row],
    n_feat: usize,
    n_h: usize,
) -> Result<RecordBatch> {
    let mut cols: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from_iter_values(
            rows.iter().map(|r| r.open_time),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(|_| symbol))),
        Arc::new(Float64Array::from_iter_values(rows.iter().map(|r| r.close))),
    ];
    for k in 0..n_feat {
        cols.push(Arc::new(Float32Array::from_iter_values(
            rows.iter().map(|r| r.features[k]),
        )));
    }
    for k in 0..n_h {
        cols.push(Arc::new(Float32Array::from_iter_values(
            rows.iter().map(|r| r.fwd[k]),
        )));
    }
    cols.push(Arc::new(Int8Array::from_iter_values(
        rows.iter().map(|r| r.action),
    )));
    cols.push(Arc::new(Float32Array::from_iter_values(
        rows.iter().map(|r| r.reward),
    )));
    Ok(RecordBatch::try_new(schema.clone(), cols)?)
}

/// Builds the dataset; returns `meta.json`'s content.
pub fn build(a: &DatasetArgs) -> Result<serde_json::Value> {
    if a.horizons.is_empty() || a.horizons.contains(&0) {
        bail!("--horizons: give positive bar counts, e.g. 1,5,15");
    }
    let (train_to, val_to) = (parse_time(&a.train_to)?, parse_time(&a.val_to)?);
    if val_to < train_to {
        bail!(
            "--val-to ({}) is before --train-to ({})",
            a.val_to,
            a.train_to
        );
    }
    let mut by_symbol: BTreeMap<String, Vec<Bar>> = BTreeMap::new();
    for p in &a.data {
        let sym = match (&a.symbol, symbol_from_name(p)) {
            (Some(s), _) => s.to_ascii_uppercase(),
            (None, Some(s)) => s,
            (None, None) => bail!("{}: no symbol in the file name; give --symbol", p.display()),
        };
        by_symbol.entry(sym).or_default().extend(read_klines(p)?);
    }
    let all_features: Vec<String> = standard().names().to_vec();
    let fee = 2.0 * a.fee_bps / 1e4;
    let mut interval_ms = None;
    let mut rows_of: Vec<(String, Vec<Vec<f64>>)> = Vec::new();
    for (sym, bars) in &mut by_symbol {
        bars.sort_by_key(|b| b.open_time_ms);
        bars.dedup_by_key(|b| b.open_time_ms);
        let iv = bars
            .windows(2)
            .map(|w| w[1].open_time_ms - w[0].open_time_ms)
            .min()
            .context("need at least two bars per symbol")?;
        match interval_ms {
            None => interval_ms = Some(iv),
            Some(x) if x != iv => bail!("{sym}: {iv} ms bars; the other symbols have {x} ms bars"),
            _ => {}
        }
        rows_of.push((sym.clone(), feature_rows(bars)));
    }
    // A feature the input layout cannot give (the short kline layout has no taker volume) is never
    // finite for a symbol: the column is left out (listed in meta.json), not every row.
    let keep: Vec<usize> = (0..all_features.len())
        .filter(|&k| {
            rows_of
                .iter()
                .all(|(_, rows)| rows.iter().any(|r| r[k].is_finite()))
        })
        .collect();
    let unavailable: Vec<&String> = (0..all_features.len())
        .filter(|k| !keep.contains(k))
        .map(|k| &all_features[k])
        .collect();
    let features: Vec<String> = keep.iter().map(|&k| all_features[k].clone()).collect();
    let iv = interval_ms.unwrap_or(1);
    let mut labelled: Vec<(String, Vec<Row>)> = Vec::new();
    let mut dropped = Dropped::default();
    for ((sym, feats), bars) in rows_of.iter().zip(by_symbol.values()) {
        let rows = label(bars, feats, &keep, &a.horizons, iv, fee, &mut dropped);
        labelled.push((sym.clone(), rows));
    }
    // Normalization from the train split only.
    let n = features.len();
    let (mut sum, mut sq, mut cnt) = (vec![0f64; n], vec![0f64; n], 0u64);
    for (_, rows) in &labelled {
        for r in rows.iter().filter(|r| (r.open_time as u64) < train_to) {
            for (k, &x) in r.features.iter().enumerate() {
                sum[k] += f64::from(x);
                sq[k] += f64::from(x) * f64::from(x);
            }
            cnt += 1;
        }
    }
    if cnt == 0 {
        bail!(
            "no training rows before {}: move --train-to later or give older data",
            a.train_to
        );
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / cnt as f64).collect();
    let std: Vec<f64> = sq
        .iter()
        .zip(&mean)
        .map(|(q, m)| {
            let v = (q / cnt as f64 - m * m).max(0.0).sqrt();
            if v > 1e-12 && v.is_finite() {
                v
            } else {
                1.0
            }
        })
        .collect();

    std::fs::create_dir_all(&a.out)
        .with_context(|| format!("cannot create {}", a.out.display()))?;
    let schema = schema(&features, &a.horizons);
    let props = WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .build();
    let mut splits = serde_json::Map::new();
    for (split, lo, hi) in [
        ("train", 0, train_to),
        ("val", train_to, val_to),
        ("test", val_to, u64::MAX),
    ] {
        let path = a.out.join(format!("{split}.parquet"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        let mut w = ArrowWriter::try_new(file, schema.clone(), Some(props.clone()))?;
        let (mut rows_n, mut first, mut last) = (0u64, u64::MAX, 0u64);
        for (sym, rows) in &labelled {
            let part: Vec<&Row> = rows
                .iter()
                .filter(|r| (r.open_time as u64) >= lo && (r.open_time as u64) < hi)
                .collect();
            if part.is_empty() {
                continue;
            }
            first = first.min(part[0].open_time as u64);
            last = last.max(part[part.len() - 1].open_time as u64);
            rows_n += part.len() as u64;
            w.write(&batch(&schema, sym, &part, n, a.horizons.len())?)?;
            w.flush()?;
        }
        w.close()?;
        splits.insert(
            split.into(),
            // The first and last bar opening in the split (the boundary when it is empty).
            json!({
                "from_ms": if rows_n > 0 { first } else { lo },
                "to_ms": if rows_n > 0 { last } else { lo },
                "rows": rows_n
            }),
        );
    }
    let meta = json!({
        "version": 1,
        "features": features,
        "unavailable_features": unavailable,
        "normalization": { "mean": mean, "std": std },
        "normalization_fitted_on": "train",
        "horizons": a.horizons,
        "fee_bps": a.fee_bps,
        "interval_ms": interval_ms,
        "symbols": by_symbol.keys().collect::<Vec<_>>(),
        "splits": splits,
        "dropped": dropped,
        "sources": a.data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
        "generator": concat!("qalpha dataset ", env!("CARGO_PKG_VERSION")),
    });
    let path = a.out.join("meta.json");
    std::fs::write(&path, serde_json::to_string_pretty(&meta)? + "\n")
        .with_context(|| format!("cannot write {}", path.display()))?;
    Ok(meta)
}

/// `qalpha dataset`.
pub fn run(a: DatasetArgs) -> Result<()> {
    let meta = build(&a)?;
    let s = &meta["splits"];
    println!(
        "dataset {}: {} features, horizons {:?}; train {} rows, val {} rows, test {} rows (dropped: {})",
        a.out.display(),
        meta["features"].as_array().map_or(0, Vec::len),
        a.horizons,
        s["train"]["rows"],
        s["val"]["rows"],
        s["test"]["rows"],
        meta["dropped"],
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_from_archive_and_local_names() {
        let s = |n: &str| symbol_from_name(Path::new(n));
        assert_eq!(s("BTCUSDT-5m-2024-01.csv").as_deref(), Some("BTCUSDT"));
        assert_eq!(s("binance-spot-ethusdt-1m.csv").as_deref(), Some("ETHUSDT"));
        assert_eq!(s("klines.csv"), None);
    }
}
