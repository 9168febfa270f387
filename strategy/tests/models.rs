//! The model runtime against the test models in `tests/models` (written by
//! `tools/train/qalpha_train/make_test_models.py`): tract's outputs equal the exporter's reference
//! outputs (`onnx.reference.ReferenceEvaluator`), and metadata that does not fit the engine or the
//! graph is refused with an error naming the file and the problem.

use std::path::{Path, PathBuf};

use qalpha_strategy::features::standard::standard;
use qalpha_strategy::model::{FeatureWindow, Mismatch, Model, ModelError, ModelMeta};
use serde_json::Value;

const MODELS: [&str; 3] = ["guardian", "oracle", "strategist"];
const OUTPUT_TOLERANCE: f64 = 1e-5;

fn models_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/models")
}

fn engine_features() -> Vec<String> {
    standard().names().to_vec()
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e} (run make_test_models.py)", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .expect("array")
        .iter()
        .map(|x| x.as_f64().expect("number"))
        .collect()
}

fn load(name: &str) -> Model {
    let dir = models_dir();
    Model::load(
        dir.join(format!("{name}.onnx")),
        dir.join(format!("{name}.json")),
        &engine_features(),
    )
    .unwrap_or_else(|e| panic!("{name}: {e}"))
}

#[test]
fn tract_matches_the_exporters_reference_outputs() {
    let engine = engine_features();
    for name in MODELS {
        let mut model = load(name);
        let reference = read_json(&models_dir().join(format!("{name}.reference.json")));
        let (rows, width) = (model.meta().window, model.meta().features.len());
        let output_names: Vec<String> = model
            .meta()
            .outputs
            .iter()
            .map(|o| o.name.clone())
            .collect();
        let cases = reference["cases"].as_array().expect("cases");
        assert!(!cases.is_empty(), "{name}: no reference cases");
        for (i, case) in cases.iter().enumerate() {
            // The engine's rows: every column NaN except the model's, which sit at their engine
            // positions — so the test also proves the index maps engine order to model order and
            // reads no other column.
            let mut window = FeatureWindow::new(rows, width);
            for raw in case["raw"].as_array().expect("raw rows") {
                let mut engine_row = vec![f64::NAN; engine.len()];
                for (feature, value) in model.meta().features.iter().zip(floats(raw)) {
                    let col = engine
                        .iter()
                        .position(|e| e == feature)
                        .expect("checked at load");
                    engine_row[col] = value;
                }
                let finite = window.push_with(|row| model.normalize_row(&engine_row, row));
                assert!(finite, "{name} case {i}: a normalized value is not finite");
            }
            let input = window.as_slice().expect("window full").to_vec();
            for (j, (got, want)) in input.iter().zip(floats(&case["input"])).enumerate() {
                assert!(
                    (f64::from(*got) - want).abs() <= 1e-6 * want.abs().max(1.0),
                    "{name} case {i} input {j}: normalized {got}, reference {want}"
                );
            }
            let condition = case.get("condition").and_then(Value::as_f64);
            assert_eq!(
                condition.is_some(),
                model.meta().condition().is_some(),
                "{name} case {i}: a condition exactly when the model has that input"
            );
            // Twice: the reused state must not carry anything from one run to the next.
            for attempt in 0..2 {
                let outputs = match condition {
                    Some(c) => model.run_conditioned(&input, &[c as f32]),
                    None => model.run(&input),
                }
                .unwrap_or_else(|e| panic!("{e}"));
                assert_eq!(outputs.len(), output_names.len());
                for (out, out_name) in outputs.iter().zip(&output_names) {
                    let want = floats(&case["outputs"][out_name]);
                    assert_eq!(out.len(), want.len(), "{name} `{out_name}` length");
                    for (k, (got, want)) in out.iter().zip(&want).enumerate() {
                        let delta = (f64::from(*got) - want).abs();
                        assert!(
                            delta <= OUTPUT_TOLERANCE,
                            "{name} case {i} run {attempt} `{out_name}`[{k}]: tract {got}, \
                             reference {want}, |Δ| = {delta:e}"
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn outputs_have_the_shapes_the_roles_promise() {
    let window = vec![0.25_f32; 16 * 8];
    let mut guardian = load("guardian");
    let out = guardian.run(&window).unwrap();
    let probs = &out[0];
    assert!((probs.iter().sum::<f32>() - 1.0).abs() < 1e-5, "{probs:?}");
    assert!(
        out[1].len() == 1 && out[1][0] > 0.0 && out[1][0] < 1.0,
        "{:?}",
        out[1]
    );
    let mut oracle = load("oracle");
    let q = &oracle.run(&window).unwrap()[0];
    assert_eq!(q.len(), 9, "3 horizons × 3 quantiles");
    for h in q.chunks(3) {
        assert!(h.windows(2).all(|p| p[0] <= p[1]), "quantiles cross: {q:?}");
    }
    let meta = oracle.meta();
    assert_eq!(meta.name, "oracle");
    assert_eq!(meta.horizons.as_deref(), Some(&[1, 5, 15][..]));
    assert_eq!(
        meta.outputs[0].names.as_deref().unwrap(),
        ["q10", "q50", "q90"]
    );
    // The strategist's answer depends on the target return it is conditioned on.
    let mut strategist = load("strategist");
    let low = strategist.run_conditioned(&window, &[-0.05]).unwrap()[0].clone();
    let high = strategist.run_conditioned(&window, &[0.05]).unwrap()[0].clone();
    assert_ne!(low, high);
}

#[test]
fn refuses_a_run_without_the_models_inputs() {
    let window = vec![0.0_f32; 16 * 8];
    let mut strategist = load("strategist");
    let msg = strategist.run(&window).unwrap_err().to_string();
    assert!(
        msg.contains("target_return") && msg.contains("run_conditioned"),
        "{msg}"
    );
    let msg = strategist
        .run_conditioned(&window, &[0.0, 1.0])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("2 values"), "{msg}");
    let mut guardian = load("guardian");
    let msg = guardian
        .run_conditioned(&window, &[0.0])
        .unwrap_err()
        .to_string();
    assert!(msg.contains("no condition input"), "{msg}");
}

#[test]
fn a_model_moves_to_the_inference_thread() {
    fn assert_send<T: Send>() {}
    assert_send::<Model>();
    let mut model = load("strategist");
    let logits = std::thread::spawn(move || {
        model.run_conditioned(&[0.0; 16 * 8], &[0.01]).unwrap()[0].clone()
    })
    .join()
    .unwrap();
    assert_eq!(logits.len(), 3);
}

/// Copies `guardian.onnx` into a temp dir and writes its metadata there after `edit`.
fn edited(edit: impl FnOnce(&mut Value)) -> (tempfile::TempDir, PathBuf, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let onnx = dir.path().join("guardian.onnx");
    std::fs::copy(models_dir().join("guardian.onnx"), &onnx).unwrap();
    let mut meta = read_json(&models_dir().join("guardian.json"));
    edit(&mut meta);
    let meta_path = dir.path().join("guardian.json");
    std::fs::write(&meta_path, serde_json::to_string_pretty(&meta).unwrap()).unwrap();
    (dir, onnx, meta_path)
}

/// Loads with the edited metadata and returns the refusal, checking that its message names the
/// metadata file and contains each of `says`.
fn refusal(edit: impl FnOnce(&mut Value), says: &[&str]) -> ModelError {
    let (_dir, onnx, meta) = edited(edit);
    let err = Model::load(&onnx, &meta, &engine_features()).expect_err("must be refused");
    let msg = err.to_string();
    assert!(
        msg.contains(&meta.display().to_string()),
        "no file in: {msg}"
    );
    for s in says {
        assert!(msg.contains(s), "`{s}` missing from: {msg}");
    }
    err
}

fn problem(err: ModelError) -> Mismatch {
    match err {
        ModelError::Mismatch { problem, .. } => problem,
        other => panic!("expected a mismatch, got {other:?}"),
    }
}

#[test]
fn refuses_a_feature_the_engine_does_not_have() {
    let err = refusal(
        |m| {
            m["features"][2] = "funding_rate_z".into();
            m["features"][5] = "natr_99".into();
        },
        &[
            "funding_rate_z",
            "natr_99",
            "not in the engine's feature set",
        ],
    );
    assert_eq!(
        problem(err),
        Mismatch::UnknownFeatures(vec!["funding_rate_z".into(), "natr_99".into()])
    );
}

#[test]
fn refuses_a_wrong_window_or_input_shape() {
    // The window disagrees with the declared input shape.
    let err = refusal(|m| m["window"] = 12.into(), &["[1, 12, 8]", "[1, 16, 8]"]);
    assert!(matches!(problem(err), Mismatch::InputShape { .. }));
    // Window and shape agree with each other but not with the graph.
    let err = refusal(
        |m| {
            m["window"] = 12.into();
            m["inputs"][0]["shape"] = serde_json::json!([1, 12, 8]);
        },
        &["input shape differs", "[1, 16, 8]"],
    );
    assert!(matches!(problem(err), Mismatch::Graph { .. }));
    // A layout other than [1, window, features].
    let err = refusal(
        |m| m["inputs"][0]["shape"] = serde_json::json!([1, 8, 16]),
        &["[1, 8, 16]"],
    );
    assert!(matches!(problem(err), Mismatch::InputShape { .. }));
}

#[test]
fn refuses_normalization_that_does_not_fit_the_features() {
    let err = refusal(
        |m| {
            m["normalization"]["mean"].as_array_mut().unwrap().pop();
        },
        &["normalization.mean", "7 values for 8 features"],
    );
    assert!(matches!(
        problem(err),
        Mismatch::NormalizationLength {
            field: "mean",
            got: 7,
            want: 8
        }
    ));
    let err = refusal(
        |m| m["normalization"]["std"][3] = 0.0.into(),
        &["bb_pctb_20"],
    );
    assert!(matches!(problem(err), Mismatch::BadNormalization { .. }));
}

#[test]
fn refuses_outputs_that_differ_from_the_graph() {
    let err = refusal(
        |m| m["outputs"][0]["name"] = "regimes".into(),
        &["regimes", "regime_probs"],
    );
    assert!(matches!(problem(err), Mismatch::Graph { .. }));
    let err = refusal(
        |m| {
            m["outputs"][0]["shape"] = serde_json::json!([1, 4]);
            m["outputs"][0]["names"] = serde_json::json!(["a", "b", "c", "d"]);
        },
        &["output shape differs", "[1, 3]"],
    );
    assert!(matches!(problem(err), Mismatch::Graph { .. }));
}

#[test]
fn refuses_unknown_metadata_fields() {
    let err = refusal(|m| m["learning_rate"] = 0.001.into(), &["learning_rate"]);
    assert!(matches!(err, ModelError::MetaFormat { .. }), "{err:?}");
}

#[test]
fn refuses_missing_files_naming_them() {
    let dir = models_dir();
    let engine = engine_features();
    let missing = dir.join("no_such_model.onnx");
    let err = Model::load(&missing, dir.join("guardian.json"), &engine).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err:?}");
    assert!(err.to_string().contains("no_such_model.onnx"), "{err}");
    let missing = dir.join("no_such_model.json");
    let err = Model::load(dir.join("guardian.onnx"), &missing, &engine).unwrap_err();
    assert!(err.to_string().contains("no_such_model.json"), "{err}");
    let err = ModelMeta::load(&missing).unwrap_err();
    assert!(matches!(err, ModelError::Io { .. }), "{err:?}");
}

#[test]
fn refuses_a_window_of_the_wrong_length_at_run() {
    let mut model = load("guardian");
    let err = model.run(&[0.0; 10]).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("guardian") && msg.contains("16 × 8 = 128"),
        "{msg}"
    );
}
