//! `qalpha model-check`: load an ONNX model the way the engine does (metadata checked against the
//! engine's feature columns, tract, fixed shapes) and run it on given inputs — the Rust side of the
//! research pipeline's PyTorch-vs-tract parity test, and a quick way to see that an exported model
//! will load at all.
//!
//! `IN.json`: `{"cases": [{"window": [f32; window × features], "condition": f32 | null}, …]}` — the
//! window already normalized, row-major, oldest bar first. `OUT.json`: `{"model": …, "cases":
//! [{"<output name>": [f32…], …}, …]}` in the metadata's output order.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use qalpha_strategy::model::Model;
use qalpha_strategy::trinity::{Trinity, TrinityModels};
use serde::Deserialize;
use serde_json::{json, Map, Value};

#[derive(clap::Args, Debug)]
pub struct ModelCheckArgs {
    /// The model's ONNX file.
    #[arg(long, required_unless_present = "trinity", requires = "meta")]
    pub onnx: Option<PathBuf>,
    /// Its metadata JSON.
    #[arg(long, requires = "onnx")]
    pub meta: Option<PathBuf>,
    /// Instead: check that DIR's guardian, oracle and strategist load and fit their Trinity roles.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["onnx", "meta", "inputs"])]
    pub trinity: Option<PathBuf>,
    /// Inputs to run (see the command's docs); without it the model is only loaded and checked.
    #[arg(long)]
    pub inputs: Option<PathBuf>,
    /// Where to write the outputs (default: stdout).
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Inputs {
    cases: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    window: Vec<f32>,
    #[serde(default)]
    condition: Option<f32>,
}

/// Runs `a`; returns the output document.
pub fn check(a: &ModelCheckArgs) -> Result<Value> {
    let (Some(onnx), Some(meta_path)) = (&a.onnx, &a.meta) else {
        bail!("give --onnx and --meta (or --trinity DIR)");
    };
    let columns = Trinity::feature_columns();
    let mut model = Model::load(onnx, meta_path, &columns)?;
    let meta = model.meta().clone();
    let mut cases = Vec::new();
    if let Some(p) = &a.inputs {
        let text =
            std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))?;
        let inputs: Inputs = serde_json::from_str(&text)
            .with_context(|| format!("{}: not a model-check inputs file", p.display()))?;
        for (i, c) in inputs.cases.iter().enumerate() {
            let outputs = match (c.condition, meta.condition().is_some()) {
                (Some(v), true) => model.run_conditioned(&c.window, &[v]),
                (None, false) => model.run(&c.window),
                (None, true) => bail!(
                    "case {i}: the model needs a condition (its `{}` input)",
                    meta.inputs[1].name
                ),
                (Some(_), false) => {
                    bail!("case {i}: a condition was given, the model has no condition input")
                }
            }
            .with_context(|| format!("case {i}"))?;
            let mut m = Map::new();
            for (spec, values) in meta.outputs.iter().zip(outputs) {
                m.insert(spec.name.clone(), json!(values));
            }
            cases.push(Value::Object(m));
        }
    }
    Ok(json!({
        "model": meta.name,
        "version": meta.version,
        "features": meta.features.len(),
        "window": meta.window,
        "outputs": meta.outputs.iter().map(|o| json!({"name": o.name, "shape": o.shape})).collect::<Vec<_>>(),
        "cases": cases,
    }))
}

/// `qalpha model-check`.
pub fn run(a: ModelCheckArgs) -> Result<()> {
    if let Some(dir) = &a.trinity {
        println!("{}", check_trinity(dir)?);
        return Ok(());
    }
    let v = check(&a)?;
    let text = serde_json::to_string_pretty(&v)? + "\n";
    match &a.out {
        Some(p) => std::fs::write(p, text).with_context(|| format!("cannot write {}", p.display())),
        None => {
            print!("{text}");
            Ok(())
        }
    }
}

/// Checks that a directory's three models load and play their Trinity roles
/// (`qalpha model-check --trinity DIR`).
pub fn check_trinity(dir: &std::path::Path) -> Result<String> {
    let m = TrinityModels::load(dir, &Trinity::feature_columns(), None)?;
    Ok(format!(
        "{}: guardian, oracle and strategist load and fit their roles (oracle horizon {} bars)",
        dir.display(),
        m.horizon_bars()
    ))
}
