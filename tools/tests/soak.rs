//! `qalpha soak`, the short version for CI: 30 s of the whole engine against the mock's endless
//! synthetic market (20×), trading through the gateway, sampled every second. Resident memory must
//! stay flat after the warm-up, the rings must not back up, and the run must keep its invariants.
//! (`qalpha soak` alone runs an hour.)

use std::process::Command;

use serde_json::Value;

#[test]
fn a_short_soak_keeps_memory_flat_and_the_invariants() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("soak.json");
    let out = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args([
            "soak",
            "--duration",
            "30s",
            "--sample-every",
            "1s",
            "--max-growth-mb",
            "16",
        ])
        .arg("--soak-json")
        .arg(&json)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("growth after warm-up"), "{text}");
    let r: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let samples = r["samples"].as_array().unwrap();
    assert!(samples.len() >= 25, "{}", samples.len());
    assert!(samples.iter().all(|s| s["rss_kb"].as_u64().unwrap() > 0));
    // Events and orders kept flowing to the end.
    let last = &samples[samples.len() - 1];
    let mid = &samples[samples.len() / 2];
    assert!(last["events"].as_u64() > mid["events"].as_u64(), "{r}");
    assert!(r["orders"].as_u64().unwrap() > 10, "{r}");
    assert!(last["orders"].as_u64() > mid["orders"].as_u64(), "{r}");
    // The soak keeps the losing-streak and daily-loss switches out of the way by itself.
    assert_eq!(r["final_state"], "active", "{r}");
    assert!(r["orders_last_tenth"].as_u64().unwrap() > 0, "{r}");
    assert!(r["growth_mb"].as_f64().unwrap() <= 16.0);
    assert_eq!(r["passed"], true);
    for k in [
        "book_mismatches",
        "duplicate_orders",
        "orders_on_stale_book",
    ] {
        assert_eq!(r[k], 0, "{k}: {r}");
    }
}

#[test]
fn a_soak_that_stops_trading_fails_and_says_why() {
    // Risk limits named by the operator (a losing streak of 1, a daily loss of 0.0001 USDT: the
    // first losing fill, fees included) halt the engine within seconds; a soak whose last tenth sent
    // no order measured an idle engine and must not pass. 20 s, so that a slow start on a loaded
    // machine (this runs beside the 30 s soak) still halts well before the last tenth.
    let out = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["soak", "--duration", "20s", "--sample-every", "500ms"])
        .args(["--set", "risk.max_consecutive_losses=1"])
        .args(["--set", "risk.daily_loss_limit=0.0001"])
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "{text}{err}");
    assert!(
        err.contains("no orders in the last tenth")
            && (err.contains("halted by consecutive_losses")
                || err.contains("halted by daily_loss")),
        "{text}{err}"
    );
}
