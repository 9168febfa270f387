//! `qalpha model-check`: the test models in `strategy/tests/models` run through the binary give the
//! exporter's reference outputs (what the research pipeline's parity test relies on), a Trinity
//! folder is checked for its roles, and mistakes are clear errors.

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::{json, Value};

fn models() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../strategy/tests/models")
}

fn qalpha(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(args)
        .output()
        .unwrap()
}

#[test]
fn runs_the_reference_cases_through_tract() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["guardian", "oracle", "strategist"] {
        let reference: Value = serde_json::from_str(
            &std::fs::read_to_string(models().join(format!("{name}.reference.json"))).unwrap(),
        )
        .unwrap();
        let cases: Vec<Value> = reference["cases"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| json!({"window": c["input"], "condition": c.get("condition")}))
            .collect();
        let input = dir.path().join(format!("{name}.in.json"));
        std::fs::write(&input, json!({ "cases": cases }).to_string()).unwrap();
        let out = dir.path().join(format!("{name}.out.json"));
        let onnx = models().join(format!("{name}.onnx"));
        let meta = models().join(format!("{name}.json"));
        let o = qalpha(&[
            "model-check",
            "--onnx",
            onnx.to_str().unwrap(),
            "--meta",
            meta.to_str().unwrap(),
            "--inputs",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let got: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
        assert_eq!(got["model"], name);
        let (got, want) = (
            got["cases"].as_array().unwrap(),
            reference["cases"].as_array().unwrap(),
        );
        assert_eq!(got.len(), want.len());
        for (g, w) in got.iter().zip(want) {
            for (k, values) in w["outputs"].as_object().unwrap() {
                for (a, b) in g[k]
                    .as_array()
                    .unwrap()
                    .iter()
                    .zip(values.as_array().unwrap())
                {
                    let d = (a.as_f64().unwrap() - b.as_f64().unwrap()).abs();
                    assert!(d < 1e-5, "{name} `{k}`: tract {a} vs reference {b}");
                }
            }
        }
    }
}

#[test]
fn checks_a_trinity_folder_and_refuses_mistakes() {
    // The test models, and the small models the pipeline produced and the repo ships.
    let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("../strategy/models");
    for dir in [models(), shipped] {
        let o = qalpha(&["model-check", "--trinity", dir.to_str().unwrap()]);
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        assert!(String::from_utf8_lossy(&o.stdout).contains("fit their roles"));
    }

    let dir = tempfile::tempdir().unwrap();
    let o = qalpha(&["model-check", "--trinity", dir.path().to_str().unwrap()]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("guardian"),
        "names the missing model"
    );

    // A case without the Strategist's condition.
    let input = dir.path().join("in.json");
    std::fs::write(
        &input,
        json!({"cases": [{"window": vec![0.0; 128]}]}).to_string(),
    )
    .unwrap();
    let onnx = models().join("strategist.onnx");
    let meta = models().join("strategist.json");
    let o = qalpha(&[
        "model-check",
        "--onnx",
        onnx.to_str().unwrap(),
        "--meta",
        meta.to_str().unwrap(),
        "--inputs",
        input.to_str().unwrap(),
    ]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("needs a condition"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}
