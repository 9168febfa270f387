//! The `qalpha mock-exchange` and `qalpha record` commands as an operator runs them, on 127.0.0.1.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use qalpha_engine::capture::{CaptureReader, TailStatus};

const EXE: &str = env!("CARGO_BIN_EXE_qalpha");

#[test]
fn record_from_mock_exchange_ends_cleanly_on_ctrl_c() {
    let dir = tempfile::tempdir().unwrap();
    let mut mock = Command::new(EXE)
        .args([
            "mock-exchange",
            "--venue",
            "binance",
            "--synthetic",
            "--speed",
            "5",
            "--duration",
            "30s",
            "--cert-out",
        ])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(mock.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let info: serde_json::Value = serde_json::from_str(&line).unwrap();
    let (ws, rest, ca) = (
        info["ws_url"].as_str().unwrap().to_string(),
        info["rest_url"].as_str().unwrap().to_string(),
        info["ca_file"].as_str().unwrap().to_string(),
    );
    assert!(ws.starts_with("wss://127.0.0.1:"));

    let out = dir.path().join("live.qcap");
    let rec = Command::new(EXE)
        .args([
            "record",
            "--venue",
            "binance",
            "--symbols",
            "BTCUSDT",
            "--ws-url",
            &ws,
            "--rest-url",
            &rest,
            "--ca-file",
            &ca,
            "--out",
        ])
        .arg(&out)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let st = Command::new("kill")
        .args(["-INT", &rec.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let done = rec.wait_with_output().unwrap();
    assert!(
        done.status.success(),
        "record exited with {:?}",
        done.status
    );
    let rep: serde_json::Value = serde_json::from_slice(&done.stdout).unwrap();
    assert!(rep["frames"].as_u64().unwrap() > 100, "{rep}");
    assert_eq!(rep["book_mismatches"], 0);
    assert!(rep["book_checks"].as_u64().unwrap() > 0, "{rep}");

    // A complete file: clean tail, connect/disconnect records, the REST snapshot.
    let r = CaptureReader::open(&out).unwrap();
    assert_eq!(r.tail(), &TailStatus::Clean);
    let kinds: Vec<_> = r.records().map(|x| x.kind.name()).collect();
    for k in ["connect", "ws_text", "rest_response", "disconnect"] {
        assert!(kinds.contains(&k), "no {k} record");
    }
    let _ = mock.kill();
    let _ = mock.wait();
}

#[test]
fn record_with_duration_and_config_errors() {
    let dir = tempfile::tempdir().unwrap();
    // Nothing to record.
    let o = Command::new(EXE)
        .args(["record", "--duration", "1s", "--out"])
        .arg(dir.path().join("x.qcap"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("--venue"));
    // A bad config names the file and the field.
    let cfg = dir.path().join("bad.toml");
    std::fs::write(&cfg, "[[venues]]\nvenue = \"kraken\"\nsymbols = [\"X\"]\n").unwrap();
    let o = Command::new(EXE)
        .args(["record", "--duration", "1s", "--config"])
        .arg(&cfg)
        .arg("--out")
        .arg(dir.path().join("x.qcap"))
        .output()
        .unwrap();
    assert!(!o.status.success());
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        err.contains("bad.toml") && err.contains("venues[0].venue"),
        "{err}"
    );
    // --help names every fault kind.
    let o = Command::new(EXE)
        .args(["mock-exchange", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&o.stdout);
    for k in [
        "disconnect-every",
        "drop-diff",
        "duplicate",
        "reorder",
        "malformed",
        "fragment",
        "stall",
        "ping-timeout",
    ] {
        assert!(help.contains(k), "--help lacks {k}");
    }
    // A bad fault spec is refused with the list of kinds.
    let o = Command::new(EXE)
        .args([
            "mock-exchange",
            "--venue",
            "binance",
            "--synthetic",
            "--faults",
            "explode",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("unknown fault"));
}
