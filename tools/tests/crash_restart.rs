//! Crash and restart: `qalpha run` (testnet mode, against the mock on 127.0.0.1) is killed with
//! SIGKILL while it has orders resting and a position; the venue keeps both. A second run on the
//! same journals cancels the orphaned orders before trading, restores the venue's position into
//! its ledgers, places nothing twice, and ends with its books and the venue's agreeing.

mod engine_common;

use std::io::{BufRead, BufReader, Lines};
use std::path::Path;
use std::process::{Child, ChildStderr, Command, Stdio};
use std::sync::atomic::Ordering;

use engine_common::{config, mock, qalpha};
use qalpha_venues::mock::{MockExchange, TEST_API_KEY, TEST_API_SECRET};
use serde_json::Value;

fn keyed(mut c: Command) -> Command {
    c.env("QALPHA_BINANCE_API_KEY", TEST_API_KEY)
        .env("QALPHA_BINANCE_API_SECRET", TEST_API_SECRET);
    c
}

/// The venue's answer to `qalpha open-orders` / `qalpha positions`.
fn venue(m: &MockExchange, what: &str) -> Value {
    let out = keyed(qalpha())
        .args([
            what, "--venue", "binance", "--symbol", "BTCUSDT", "--mode", "testnet",
        ])
        .arg("--rest-url")
        .arg(format!("https://{}", m.addr))
        .arg("--ca-file")
        .arg(m.ca_file.as_ref().unwrap())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn venue_position(m: &MockExchange) -> f64 {
    let v = venue(m, "positions");
    v.as_array()
        .unwrap()
        .iter()
        .find(|p| p["symbol"] == "BTCUSDT")
        .map_or(0.0, |p| p["positionAmt"].as_str().unwrap().parse().unwrap())
}

fn run_args(c: &mut Command, cfg: &Path, dir: &Path, tag: &str) {
    c.args(["run", "--strategy", "maker"])
        .arg("--config")
        .arg(cfg)
        .arg("--risk-journal")
        .arg(dir.join("risk.qrisk"))
        .arg("--journal")
        .arg(dir.join(format!("orders-{tag}.jsonl")))
        .arg("--json")
        .arg(dir.join(format!("summary-{tag}.json")));
}

/// `qalpha run` (keyed, run `tag`'s journals and summary) for `duration`, its stderr as lines.
fn spawn_run(
    cfg: &Path,
    dir: &Path,
    tag: &str,
    duration: &str,
) -> (Child, Lines<BufReader<ChildStderr>>) {
    let mut c = keyed(qalpha());
    run_args(&mut c, cfg, dir, tag);
    let mut child = c
        .args(["--duration", duration])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let lines = BufReader::new(child.stderr.take().unwrap()).lines();
    (child, lines)
}

fn new_ids(journal: &Path) -> Vec<String> {
    std::fs::read_to_string(journal)
        .unwrap_or_default()
        .lines()
        .skip(1)
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "order" && v["action"] == "new")
        .map(|v| v["client_id"].as_str().unwrap().to_string())
        .collect()
}

#[cfg(unix)]
#[test]
fn kill_9_with_orders_and_a_position_then_restart_restores_and_cleans_up() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(dir.path());
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, config("testnet", &m)).unwrap();

    // Run 1: trade until a position and resting quotes exist, then SIGKILL (no shutdown at all).
    let (mut child, mut lines) = spawn_run(&cfg, dir.path(), "1", "120s");
    let mut seen = String::new();
    // Progress lines every 3 s; at most 30 of them.
    let mut progress = 0;
    loop {
        let line = lines.next().expect("run 1 ended early").unwrap();
        seen.push_str(&line);
        seen.push('\n');
        if !line.starts_with("demo ") {
            continue;
        }
        progress += 1;
        assert!(progress <= 30, "no position in 30 progress lines:\n{seen}");
        let pos = line.split_whitespace().last().unwrap();
        if pos != "0" && !venue(&m, "open-orders").as_array().unwrap().is_empty() {
            break;
        }
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    std::thread::spawn(move || for _ in lines.by_ref() {});
    // The market stands still from here until run 2 has reconciled: a resting order filling in
    // between would make the venue's state at start-up differ from what is measured here.
    // (A short settle first: an order the killed process wrote just before dying is in the
    // mock's socket buffer, not yet on its book.)
    m.pause();
    std::thread::sleep(std::time::Duration::from_millis(300));
    let frames_paused = m.hub.published.load(Ordering::Acquire);
    let open_before = venue(&m, "open-orders").as_array().unwrap().len();
    let pos_before = venue_position(&m);
    assert!(open_before >= 1, "orders left resting by the killed run");
    assert!(pos_before != 0.0, "a position left by the killed run");

    // Run 2 on the same journals; the market resumes once its start-up has reconciled.
    let (mut child, lines) = spawn_run(&cfg, dir.path(), "2", "4s");
    let mut err = String::new();
    for line in lines {
        let line = line.unwrap();
        if line.starts_with("start-up:") {
            // Nothing moved while the venue was measured and run 2 reconciled.
            assert_eq!(m.hub.published.load(Ordering::Acquire), frames_paused);
            m.resume();
        }
        err.push_str(&line);
        err.push('\n');
    }
    m.resume();
    let status = child.wait().unwrap();
    assert!(status.success(), "{err}");
    assert!(
        err.contains("start-up:"),
        "no start-up reconciliation:\n{err}"
    );
    let s: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("summary-2.json")).unwrap())
            .unwrap();
    let r = &s["restored"];
    assert_eq!(
        r["canceled_orders"].as_u64(),
        Some(open_before as u64),
        "{s}"
    );
    assert_eq!(r["still_open"], 0, "{s}");
    let restored: f64 = r["position"].as_str().unwrap().parse().unwrap();
    assert_eq!(restored, pos_before, "{s}");
    // No order placed twice: run 2's ids are its own, and the venue saw no duplicate.
    let (ids1, ids2) = (
        new_ids(&dir.path().join("orders-1.jsonl")),
        new_ids(&dir.path().join("orders-2.jsonl")),
    );
    assert!(!ids1.is_empty());
    assert!(ids2.iter().all(|i| !ids1.contains(i)), "an id reused");
    assert_eq!(s["duplicate_orders"], 0, "{s}");
    // Converged: nothing open at the venue, and the engine's position (restored + this run's
    // fills) is the venue's, in the executor's ledger and in risk's.
    assert_eq!(s["open_orders"], 0, "{s}");
    assert!(venue(&m, "open-orders").as_array().unwrap().is_empty());
    let engine_pos: f64 = s["position"].as_str().unwrap().parse().unwrap();
    assert_eq!(engine_pos, venue_position(&m), "{s}");
    let risk_pos: f64 = s["final_positions"]["BTCUSDT"]
        .as_str()
        .unwrap_or("0")
        .parse()
        .unwrap();
    assert_eq!(risk_pos, engine_pos, "{s}");
    m.stop();
}
