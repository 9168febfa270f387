//! SIGTERM (what systemd sends) while the engine has orders resting on the mock exchange: the demo
//! stops taking new orders, cancels every open one, waits for the answers, writes its summary and
//! its risk journal, and exits 0.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use serde_json::Value;

#[cfg(unix)]
#[test]
fn sigterm_cancels_every_open_order_and_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.json");
    let journal = dir.path().join("risk.qrisk");
    let orders = dir.path().join("orders.jsonl");
    let mut child = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args([
            "demo",
            "--strategy",
            "maker",
            "--duration",
            "120s",
            "--speed",
            "2",
        ])
        .arg("--json")
        .arg(&summary)
        .arg("--risk-journal")
        .arg(&journal)
        .arg("--journal")
        .arg(&orders)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Progress lines (every 3 s) say how many orders are out; wait for some acknowledged ones.
    let err = BufReader::new(child.stderr.take().unwrap());
    let mut lines = err.lines();
    // At most 20 progress lines (a minute of the demo): the run has orders out well before.
    for seen in 0.. {
        assert!(seen < 20, "no orders acknowledged in 20 progress lines");
        let line = lines
            .next()
            .expect("the demo ended before it had orders out")
            .unwrap();
        let acks = line
            .split_whitespace()
            .skip_while(|w| *w != "acks")
            .nth(1)
            .and_then(|n| n.parse::<u64>().ok());
        if acks.is_some_and(|a| a >= 2) {
            break;
        }
    }
    let pid = child.id().to_string();
    let st = Command::new("kill").args(["-TERM", &pid]).status().unwrap();
    assert!(st.success());
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let status = child.wait().unwrap();
    assert!(status.success(), "exit status {status:?}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["open_orders"], 0, "every open order was cancelled: {s}");
    assert!(s["orders"].as_u64().unwrap() >= 2, "{s}");
    assert!(
        s["canceled"].as_u64().unwrap() >= 1,
        "the resting quotes were cancelled at the venue: {s}"
    );
    // Stopped by the signal: the tape (at twice its pace) had not played to its end.
    assert_eq!(s["tape_finished"], false, "{s}");
    // The risk journal was flushed: every order's pre-trade decision reads back.
    let r = qalpha_risk::journal::JournalReader::open(&journal).unwrap();
    let decisions = r
        .events()
        .filter(|e| matches!(e.kind, qalpha_risk::journal::RiskEventKind::Decision { .. }))
        .count() as u64;
    assert!(
        decisions >= s["orders"].as_u64().unwrap(),
        "{decisions} decisions journaled: {s}"
    );
    // The order journal was flushed: every new order it holds reached a final state (filled,
    // cancelled, rejected or expired), as many as the engine sent, and the stop is the last entry.
    let lines: Vec<Value> = std::fs::read_to_string(&orders)
        .unwrap()
        .lines()
        .skip(1)
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let new_ids: Vec<&str> = lines
        .iter()
        .filter(|v| v["kind"] == "order" && v["action"] == "new")
        .map(|v| v["client_id"].as_str().unwrap())
        .collect();
    assert_eq!(new_ids.len() as u64, s["orders"].as_u64().unwrap());
    for id in &new_ids {
        let last = lines
            .iter()
            .rfind(|v| v["client_id"] == *id && v["kind"] != "order")
            .unwrap_or_else(|| panic!("no report for {id}"));
        let done = match last["kind"].as_str().unwrap() {
            "cancel" | "reject" => true,
            "fill" => last["leaves_qty"] == "0",
            _ => false,
        };
        assert!(done, "{id} not final in the journal: {last}");
    }
    assert!(lines
        .iter()
        .any(|v| v["kind"] == "order" && v["action"] == "cancel"));
    let stop = lines.last().unwrap();
    assert_eq!(stop["kind"], "system");
    assert_eq!(stop["event"], "stop");
    assert_eq!(stop["detail"]["why"], "signal", "{stop}");
    // `qalpha journal` reads it with the risk journal, in time order.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(["journal", "--kind", "order,cancel,system", "--csv"])
        .arg(&orders)
        .arg(&journal)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let csv = String::from_utf8(out.stdout).unwrap();
    assert!(csv.lines().skip(1).all(|l| {
        let k = l.split(',').nth(2).unwrap();
        k == "order" || k == "cancel" || k == "system"
    }));
    assert!(
        csv.contains(",system,") && csv.contains(",order,binance,BTCUSDT,"),
        "{csv}"
    );
}
