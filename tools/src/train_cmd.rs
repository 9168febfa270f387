//! `qalpha train` and `qalpha train-all`: the research pipeline's driver.
//!
//! `train-all` runs the whole chain: data (local kline files, or the bundled sample with `--smoke`)
//! → `qalpha dataset` (the engine's features, labels, time splits) → the three trainers in
//! `tools/train` (Guardian, Oracle, Strategist; one after the other or `--parallel`) → the exported
//! models checked as the engine loads them (Trinity roles) → a bar backtest of the test split with
//! the Trinity next to the baselines → `DIR/training_report_<timestamp>.txt`. Models land in
//! `DIR/models/{guardian,oracle,strategist}.{onnx,json}`.
//!
//! The trainers are Python (`python -m qalpha_train`): the interpreter is `--python`, else
//! `$QALPHA_PYTHON`, else the repository's `tools/train/.venv/bin/python`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::backtest::cmd::{self as backtest, BacktestArgs};
use crate::dataset_cmd::{self, DatasetArgs};

/// The three models, in training order.
pub const MODELS: [&str; 3] = ["guardian", "oracle", "strategist"];

fn repo_root() -> PathBuf {
    let here = PathBuf::from("tools/train/qalpha_train");
    if here.is_dir() {
        return PathBuf::from(".");
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
}

/// The Python that runs the trainers.
pub fn python(explicit: Option<&Path>) -> Result<PathBuf> {
    let p = match (explicit, std::env::var_os("QALPHA_PYTHON")) {
        (Some(p), _) => p.to_path_buf(),
        (None, Some(p)) => PathBuf::from(p),
        (None, None) => repo_root().join("tools/train/.venv/bin/python"),
    };
    if !p.is_file() {
        bail!(
            "{}: no Python for the trainers; run tools/test.sh (it builds tools/train/.venv) or give --python",
            p.display()
        );
    }
    Ok(p)
}

#[derive(clap::Args, Debug, Clone)]
pub struct TrainArgs {
    /// guardian, oracle or strategist.
    #[arg(long)]
    pub model: String,
    /// A `qalpha dataset` folder.
    #[arg(long)]
    pub data: PathBuf,
    /// Output folder: <model>/best_model.ckpt, TensorBoard logs, models/<model>.{onnx,json}.
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 20)]
    pub epochs: u32,
    /// The trainers' Python.
    #[arg(long)]
    pub python: Option<PathBuf>,
    /// More trainer flags, passed through (e.g. `-- --devices 2 --accelerator gpu --resume`).
    #[arg(last = true)]
    pub extra: Vec<String>,
}

/// Starts one trainer; its report JSON lands in `out/<model>/report.json`, its log next to it.
fn spawn_trainer(a: &TrainArgs) -> Result<std::process::Child> {
    if !MODELS.contains(&a.model.as_str()) {
        bail!("--model {:?}: one of {}", a.model, MODELS.join(", "));
    }
    let py = python(a.python.as_deref())?;
    let run_dir = a.out.join(&a.model);
    std::fs::create_dir_all(&run_dir)
        .with_context(|| format!("cannot create {}", run_dir.display()))?;
    let log = std::fs::File::create(run_dir.join("train.log"))?;
    let root = repo_root().join("tools/train");
    Command::new(&py)
        .args(["-m", "qalpha_train", "train", "--model", &a.model, "--data"])
        .arg(&a.data)
        .arg("--out")
        .arg(&a.out)
        .args(["--epochs", &a.epochs.to_string(), "--report-json"])
        .arg(run_dir.join("report.json"))
        .args(&a.extra)
        .env("PYTHONPATH", &root)
        .stdout(log.try_clone()?)
        .stderr(log)
        .spawn()
        .with_context(|| format!("cannot start {}", py.display()))
}

fn wait_trainer(model: &str, out: &Path, mut child: std::process::Child) -> Result<Value> {
    let st = child.wait()?;
    let run_dir = out.join(model);
    if !st.success() {
        let log = std::fs::read_to_string(run_dir.join("train.log")).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(15).collect();
        bail!(
            "training {model} failed ({st}); last lines of {}:\n{}",
            run_dir.join("train.log").display(),
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
    let p = run_dir.join("report.json");
    let text = std::fs::read_to_string(&p).with_context(|| format!("{} missing", p.display()))?;
    Ok(serde_json::from_str(&text)?)
}

/// `qalpha train`.
pub fn run_train(a: TrainArgs) -> Result<()> {
    let child = spawn_trainer(&a)?;
    let r = wait_trainer(&a.model, &a.out, child)?;
    println!("{}", serde_json::to_string_pretty(&r)?);
    Ok(())
}

#[derive(clap::Args, Debug, Clone)]
pub struct TrainAllArgs {
    /// Kline CSVs to learn from (Binance layout; the symbol from each file name).
    #[arg(long, num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// The bundled sample (data/sample/klines), one epoch, small windows: the whole chain in minutes.
    #[arg(long)]
    pub smoke: bool,
    /// Output folder (default runs/train-<timestamp>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    #[arg(long, default_value_t = 20)]
    pub epochs: u32,
    /// Train before this (epoch ms or YYYY-MM-DD); validate until --val-to; test (and backtest) after.
    #[arg(long, default_value = "2023-01-01")]
    pub train_to: String,
    #[arg(long, default_value = "2024-01-01")]
    pub val_to: String,
    /// Train the three models at once (separate processes: give each a GPU with `-- --devices`).
    #[arg(long)]
    pub parallel: bool,
    #[arg(long)]
    pub python: Option<PathBuf>,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

fn utc_stamp() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (y, m) = crate::backtest::metrics::month_of(s * 1000);
    let day_s = s % 86_400;
    let d = (s / 86_400) as i64 - crate::backtest::cmd::days_from_civil(y, m, 1) + 1;
    format!(
        "{y:04}{m:02}{d:02}T{:02}{:02}{:02}Z",
        day_s / 3600,
        day_s % 3600 / 60,
        day_s % 60
    )
}

/// The bundled sample klines and split times at 60 % and 80 % of their common range.
fn smoke_inputs() -> Result<(Vec<PathBuf>, String, String)> {
    let dir = repo_root().join("data/sample/klines");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot list {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "csv"))
        .collect();
    files.sort();
    let bars = qalpha_strategy::bars::read_klines(&files[0])?;
    let (t0, t1) = (bars[0].open_time_ms, bars[bars.len() - 1].open_time_ms);
    let at = |f: f64| (t0 + ((t1 - t0) as f64 * f) as u64).to_string();
    Ok((files, at(0.6), at(0.8)))
}

/// `qalpha train-all`.
pub fn run_all(a: TrainAllArgs) -> Result<()> {
    let (data, train_to, val_to, epochs) = if a.smoke {
        let (files, t, v) = smoke_inputs()?;
        (files, t, v, 1)
    } else if a.data.is_empty() {
        bail!("give --data KLINES.csv… (download them with `qalpha download`), or --smoke");
    } else {
        (
            a.data.clone(),
            a.train_to.clone(),
            a.val_to.clone(),
            a.epochs,
        )
    };
    let out = a
        .out
        .clone()
        .unwrap_or_else(|| PathBuf::from(format!("runs/train-{}", utc_stamp())));
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let started = std::time::Instant::now();

    eprintln!("train-all: dataset from {} files", data.len());
    let ds_dir = out.join("dataset");
    let meta = dataset_cmd::build(&DatasetArgs {
        data: data.clone(),
        out: ds_dir.clone(),
        horizons: vec![1, 5, 15],
        train_to: train_to.clone(),
        val_to: val_to.clone(),
        fee_bps: 5.0,
        symbol: None,
    })?;

    let extra: Vec<String> = if a.smoke {
        ["--window", "16", "--batch-size", "64", "--seed"]
            .iter()
            .map(|s| s.to_string())
            .chain([a.seed.to_string()])
            .collect()
    } else {
        vec!["--seed".into(), a.seed.to_string()]
    };
    let train = |model: &str| TrainArgs {
        model: model.into(),
        data: ds_dir.clone(),
        out: out.clone(),
        epochs,
        python: a.python.clone(),
        extra: extra.clone(),
    };
    let mut reports = Vec::new();
    if a.parallel {
        let children: Vec<_> = MODELS
            .iter()
            .map(|m| spawn_trainer(&train(m)).map(|c| (*m, c)))
            .collect::<Result<_>>()?;
        for (m, c) in children {
            reports.push((m, wait_trainer(m, &out, c)?));
        }
    } else {
        for m in MODELS {
            eprintln!("train-all: training {m}");
            let c = spawn_trainer(&train(m))?;
            reports.push((m, wait_trainer(m, &out, c)?));
        }
    }
    let models = out.join("models");
    let check = crate::model_cmd::check_trinity(&models)?;

    // The held-out test split, one backtest per symbol: the Trinity and sma-cross, each next to
    // buy & hold and flat.
    let interval = meta["interval_ms"].as_u64().unwrap_or(60_000);
    let mut backtests = Vec::new();
    for sym in meta["symbols"].as_array().into_iter().flatten() {
        let sym = sym.as_str().unwrap_or_default();
        let files: Vec<PathBuf> = data
            .iter()
            .filter(|p| dataset_cmd::symbol_from_name(p).as_deref() == Some(sym))
            .cloned()
            .collect();
        for (strategy, sets) in [
            (
                "trinity",
                vec![
                    format!("strategy.models={}", models.display()),
                    format!("strategy.bar_ms={interval}"),
                    "strategy.max_qty=0.01".to_string(),
                ],
            ),
            ("sma-cross", vec!["strategy.qty=0.01".to_string()]),
        ] {
            let args = BacktestArgs {
                sets,
                from: Some(val_to.clone()),
                symbol: Some(sym.to_string()),
                seed: a.seed,
                ..BacktestArgs::new(files.clone(), strategy)
            };
            let setup = backtest::setup(&args)?;
            let data = backtest::load_data(&setup, &args.data)?;
            let runs = backtest::run_all(&setup, &data)?;
            backtests.push((
                sym.to_string(),
                strategy,
                backtest::report_json(&setup, &args.data, &data, &runs),
            ));
        }
    }
    let text = crate::train_report::render(&crate::train_report::Inputs {
        smoke: a.smoke,
        out: &out,
        dataset: &meta,
        reports: &reports,
        check: &check,
        backtests: &backtests,
        elapsed_s: started.elapsed().as_secs_f64(),
    });
    let path = out.join(format!("training_report_{}.txt", utc_stamp()));
    std::fs::write(&path, &text).with_context(|| format!("cannot write {}", path.display()))?;
    print!("{text}");
    eprintln!(
        "train-all: report {}; models in {}",
        path.display(),
        models.display()
    );
    Ok(())
}
