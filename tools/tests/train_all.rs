//! `qalpha train-all --smoke`: the research pipeline end to end on the bundled sample klines —
//! dataset from the engine's features → Guardian, Oracle and Strategist trained with tools/train
//! (PyTorch, 1 epoch) → ONNX + metadata that the engine loads in their Trinity roles → a held-out
//! backtest with the Trinity (inference on every test bar) next to the baselines → the report.

use std::process::Command;

use serde_json::Value;

#[test]
fn the_smoke_chain_trains_exports_checks_backtests_and_reports() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["train-all", "--smoke", "--out"])
        .arg(&out)
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
    let text = String::from_utf8_lossy(&o.stdout).to_string();
    for section in ["DATA", "MODELS", "BACKTEST", "CAVEATS", "fit their roles"] {
        assert!(text.contains(section), "report lacks {section}:\n{text}");
    }
    let report = std::fs::read_dir(&out)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("training_report_") && n.ends_with(".txt"))
        })
        .expect("training_report_<timestamp>.txt");
    assert_eq!(std::fs::read_to_string(report).unwrap(), text);

    // The models, as the engine loads them.
    let models = out.join("models");
    for m in ["guardian", "oracle", "strategist"] {
        for ext in ["onnx", "json"] {
            assert!(models.join(format!("{m}.{ext}")).is_file(), "{m}.{ext}");
        }
        let meta: Value = serde_json::from_str(
            &std::fs::read_to_string(models.join(format!("{m}.json"))).unwrap(),
        )
        .unwrap();
        assert_eq!(meta["name"], m);
        assert!(meta["trained_on"]["from"].is_string());
        let r: Value = serde_json::from_str(
            &std::fs::read_to_string(out.join(m).join("report.json")).unwrap(),
        )
        .unwrap();
        assert!(
            r["best_val_loss"].as_f64().is_some_and(f64::is_finite),
            "{m}: {r}"
        );
        assert!(out.join(m).join("best_model.ckpt").is_file());
    }
    let check = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["model-check", "--trinity"])
        .arg(&models)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stderr)
    );

    // The Trinity ran its models on the held-out bars of each symbol.
    let runs: Vec<u64> = text
        .lines()
        .filter(|l| l.contains("inference runs"))
        .map(|l| {
            let after = l.split("bars, ").nth(1).unwrap();
            after.split_whitespace().next().unwrap().parse().unwrap()
        })
        .collect();
    assert_eq!(runs.len(), 2, "{text}");
    assert!(runs.iter().all(|&n| n > 100), "{runs:?}");
    assert!(text.contains("(0 errors)"));
}
