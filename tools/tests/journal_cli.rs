//! `qalpha journal` on the journal of a real demo run (obi-taker against the mock on the bundled
//! capture, a daily-loss limit of 1 so risk halts it — by that or by the losing streak): every order's decision and the halt read back in
//! time order, filters, CSV, a journal cut mid-record, and files that are not journals.

use std::path::Path;
use std::process::Command;

fn qalpha(args: &[&str], files: &[&Path]) -> (bool, String, String) {
    let o = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args(args)
        .args(files)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .output()
        .unwrap();
    (
        o.status.success(),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

#[test]
fn a_demo_journal_reads_back() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("risk.qrisk");
    let summary = dir.path().join("s.json");
    let (ok, _, err) = qalpha(
        &[
            "demo",
            "--strategy",
            "obi-taker",
            "--mode",
            "paper",
            "--duration",
            "20s",
            "--set",
            "strategy.threshold=0.3",
            "--set",
            "risk.daily_loss_limit=1",
            "--risk-journal",
            j.to_str().unwrap(),
            "--json",
            summary.to_str().unwrap(),
        ],
        &[],
    );
    assert!(ok, "{err}");
    let s: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    let orders = s["orders"].as_u64().unwrap();
    assert!(orders >= 1, "{s}");

    // Text: every decision, the halt.
    let (ok, text, err) = qalpha(&["journal"], &[&j]);
    assert!(ok, "{err}");
    let decisions = text.lines().filter(|l| l.contains(" decision ")).count() as u64;
    assert!(
        decisions >= orders,
        "{decisions} decisions for {orders} orders:\n{text}"
    );
    assert!(text.contains("active -> halted by "), "{text}");

    // CSV: a header and one row per entry; times never go back.
    let (ok, csv, _) = qalpha(&["journal", "--csv"], &[&j]);
    assert!(ok);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("ts_ms,utc,kind,venue,symbol,side,price,qty,client_id,detail")
    );
    let ts: Vec<u64> = lines
        .map(|l| l.split(',').next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(ts.len(), text.lines().count());
    assert!(ts.windows(2).all(|w| w[0] <= w[1]));

    // Filters.
    let (_, only_state, _) = qalpha(&["journal", "--kind", "state"], &[&j]);
    assert!(only_state.lines().count() >= 1);
    assert!(
        only_state.lines().all(|l| l.contains(" state ")),
        "{only_state}"
    );
    let (_, future, _) = qalpha(&["journal", "--since", "2999-01-01"], &[&j]);
    assert!(future.is_empty());
    let (ok, _, err) = qalpha(&["journal", "--kind", "fills"], &[&j]);
    assert!(!ok && err.contains("--kind \"fills\""), "{err}");

    // Cut inside the last record (a crash while writing): the whole records read, a warning.
    let bytes = std::fs::read(&j).unwrap();
    let cut = dir.path().join("cut.qrisk");
    std::fs::write(&cut, &bytes[..bytes.len() - 7]).unwrap();
    let (ok, text_cut, err) = qalpha(&["journal"], &[&cut]);
    assert!(ok, "{err}");
    assert!(err.contains("ends inside a record"), "{err}");
    assert_eq!(text_cut.lines().count() + 1, text.lines().count());

    // A control audit file merges in; anything else is an error naming the file.
    let audit = dir.path().join("audit.jsonl");
    let t = ts[0] + 1;
    std::fs::write(
        &audit,
        format!("{{\"ts_ms\":{t},\"kind\":\"control\",\"peer\":\"127.0.0.1\",\"method\":\"POST\",\"path\":\"/halt\",\"status\":401,\"outcome\":\"wrong X-TOTP\"}}\n"),
    )
    .unwrap();
    let (ok, merged, err) = qalpha(&["journal"], &[&j, &audit]);
    assert!(ok, "{err}");
    assert_eq!(merged.lines().count(), text.lines().count() + 1);
    assert!(
        merged.contains("control    POST /halt from 127.0.0.1: 401 wrong X-TOTP"),
        "{merged}"
    );
    let junk = dir.path().join("junk.txt");
    std::fs::write(&junk, "hello\n").unwrap();
    let (ok, _, err) = qalpha(&["journal"], &[&junk]);
    assert!(!ok && err.contains("junk.txt"), "{err}");
}

#[test]
fn an_order_journal_cut_by_a_crash_reads_to_its_last_whole_line() {
    let dir = tempfile::tempdir().unwrap();
    let j = dir.path().join("orders.jsonl");
    let (ok, _, err) = qalpha(
        &[
            "demo",
            "--mode",
            "paper",
            "--duration",
            "6s",
            "--strategy",
            "obi-taker",
            "--journal",
        ],
        &[&j],
    );
    assert!(ok, "{err}");
    let text = std::fs::read_to_string(&j).unwrap();
    let whole = text.lines().count() - 1;
    assert!(whole > 3, "{text}");
    let (ok, all, _) = qalpha(&["journal", "--csv"], &[&j]);
    assert!(ok);
    assert_eq!(all.lines().count() - 1, whole, "one row per journal line");
    assert!(
        all.contains(",order,binance,BTCUSDT,") && all.contains(",fill,"),
        "{all}"
    );
    // Cut the file inside its last line.
    let cut = dir.path().join("cut.jsonl");
    std::fs::write(&cut, &text[..text.len() - 10]).unwrap();
    let (ok, rows, err) = qalpha(&["journal", "--csv"], &[&cut]);
    assert!(ok, "{err}");
    assert_eq!(rows.lines().count() - 1, whole - 1);
    assert!(err.contains("cut short"), "{err}");
    // Damage in the middle is an error naming the line.
    let bad = dir.path().join("bad.jsonl");
    let mut lines: Vec<&str> = text.lines().collect();
    lines[2] = "{not json";
    std::fs::write(&bad, lines.join("\n") + "\n").unwrap();
    let (ok, _, err) = qalpha(&["journal"], &[&bad]);
    assert!(!ok);
    assert!(err.contains("bad.jsonl:3"), "{err}");
}
