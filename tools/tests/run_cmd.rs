//! `qalpha run --config FILE` against the mock exchange on 127.0.0.1 (a config like
//! `configs/mock.toml`): testnet mode trades through the gateway with the mock's test keys and
//! serves `--metrics` and `--control`; paper mode trades on the same live feed with no keys; live
//! mode refuses to start without `--live`; a config that names no usable venue is a clear error.

mod engine_common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::Stdio;
use std::time::Duration;

use engine_common::{config, get, mock, qalpha};
use serde_json::Value;

#[test]
fn testnet_mode_trades_through_the_gateway_with_metrics_and_control() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(dir.path());
    let cfg = dir.path().join("run.toml");
    std::fs::write(&cfg, config("testnet", &m)).unwrap();
    let (summary, journal) = (dir.path().join("s.json"), dir.path().join("orders.jsonl"));
    let mut child = qalpha()
        .args(["run", "--strategy", "maker", "--duration", "8s"])
        .args(["--metrics", "127.0.0.1:0", "--control", "127.0.0.1:0"])
        .arg("--config")
        .arg(&cfg)
        .arg("--json")
        .arg(&summary)
        .arg("--journal")
        .arg(&journal)
        .env("QALPHA_BINANCE_API_KEY", qalpha_venues::mock::TEST_API_KEY)
        .env(
            "QALPHA_BINANCE_API_SECRET",
            qalpha_venues::mock::TEST_API_SECRET,
        )
        .env("QALPHA_CONTROL_TOTP_SECRET", "JBSWY3DPEHPK3PXP")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let (mut metrics, mut control) = (None, None);
    let mut log = String::new();
    // The two addresses come within the first few lines (bounded: 50).
    for _ in 0..50 {
        let Some(Ok(l)) = lines.next() else { break };
        log.push_str(&l);
        log.push('\n');
        if let Some(a) = l.strip_prefix("metrics on http://") {
            metrics = Some(a.trim_end_matches("/metrics").to_string());
        }
        if let Some(a) = l.strip_prefix("control API on ") {
            control = Some(a.to_string());
        }
        if metrics.is_some() && control.is_some() {
            break;
        }
    }
    let (metrics, control) = (metrics.expect(&log), control.expect(&log));
    // Within the run: the status and the metrics answer (bounded polls for the first orders).
    let mut sent = 0.0;
    for _ in 0..40 {
        std::thread::sleep(Duration::from_millis(100));
        let text = get(&metrics, "/metrics");
        sent = text
            .lines()
            .find_map(|l| l.strip_prefix("qalpha_orders_total{venue=\"binance\",status=\"sent\"} "))
            .unwrap()
            .parse()
            .unwrap();
        if sent > 0.0 {
            assert!(text.contains("qalpha_build_info{version=\"0.1.0\",mode=\"testnet\"} 1"));
            break;
        }
    }
    assert!(sent > 0.0, "no order sent while running");
    let status: Value = serde_json::from_str(&get(&control, "/status")).unwrap();
    assert_eq!(status["risk_state"], "active", "{status}");
    std::thread::spawn(move || for _ in lines.by_ref() {});
    let st = child.wait().unwrap();
    assert!(st.success(), "{st:?}");
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["mode"], "testnet");
    assert!(
        s["orders"].as_u64().unwrap() > 0 && s["acks"].as_u64().unwrap() > 0,
        "{s}"
    );
    assert!(s["frames"].as_u64().unwrap() > 100, "{s}");
    assert_eq!(s["open_orders"], 0, "{s}");
    assert!(
        s["ws_requests"].as_u64().unwrap() > 0,
        "orders over the WebSocket API: {s}"
    );
    let j = std::fs::read_to_string(&journal).unwrap();
    assert!(j.contains("\"action\":\"new\"") && j.contains("\"kind\":\"ack\""));
    m.stop();
}

#[test]
fn paper_mode_needs_no_keys_and_live_mode_needs_live() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(dir.path());
    let cfg = dir.path().join("paper.toml");
    std::fs::write(&cfg, config("paper", &m)).unwrap();
    let out = qalpha()
        .args(["run", "--strategy", "obi-taker", "--duration", "5s"])
        .arg("--config")
        .arg(&cfg)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let s: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(s["mode"], "paper");
    assert!(s["events"].as_u64().unwrap() > 100, "{s}");
    assert_eq!(s["ws_requests"], 0, "paper mode sends nothing: {s}");

    let live = dir.path().join("live.toml");
    std::fs::write(&live, config("live", &m)).unwrap();
    let out = qalpha()
        .args(["run", "--duration", "5s", "--config"])
        .arg(&live)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("add --live to confirm"), "{err}");

    // Testnet without keys names the variable; an unknown --venue names the entry.
    let tn = dir.path().join("tn.toml");
    std::fs::write(&tn, config("testnet", &m)).unwrap();
    let out = qalpha()
        .args(["run", "--config"])
        .arg(&tn)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("QALPHA_BINANCE_API_KEY"), "{err}");
    let out = qalpha()
        .args(["run", "--venue", "bybit", "--config"])
        .arg(&tn)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("--venue bybit: no such [[venues]] entry"),
        "{err}"
    );
    m.stop();
}

/// Everything the engine writes in a full run — stdout, stderr at debug level, the summary, the
/// order and risk journals, the control audit, the recorded capture, the metrics, the alerts'
/// bodies — is scanned for the planted secrets: the API secret (from the key store), the store's
/// passphrase, the TOTP secret, the Telegram bot token and the SMTP password (its relay is down,
/// so the delivery errors are logged too).
#[test]
fn a_full_run_writes_no_secret_anywhere() {
    use std::sync::{Arc, Mutex};
    const PASSPHRASE: &str = "planted-passphrase-51c7";
    const TOTP: &str = "KRUGS4ZANFZSAYJAORSXG5BAON";
    const TG_TOKEN: &str = "4242:planted-bot-token-x9";
    const SMTP_PASS: &str = "planted-smtp-pass-7e1";
    let smtp_down = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let m = mock(dir.path());
    let (store, pass) = (dir.path().join("keys.qks"), dir.path().join("pass.txt"));
    std::fs::write(&pass, format!("{PASSPHRASE}\n")).unwrap();
    let mut add = qalpha()
        .args(["keys", "--keystore"])
        .arg(&store)
        .arg("--passphrase-file")
        .arg(&pass)
        .args(["add", "--venue", "binance"])
        .env("QALPHA_KEYSTORE_KDF", "256,1,1")
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let secret = qalpha_venues::mock::TEST_API_SECRET;
    write!(
        add.stdin.take().unwrap(),
        "{}\n{secret}\n",
        qalpha_venues::mock::TEST_API_KEY
    )
    .unwrap();
    assert!(add.wait().unwrap().success());

    // A local alert endpoint keeping the bodies it receives.
    let hook = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let hook_addr = hook.local_addr().unwrap();
    let bodies: Arc<Mutex<String>> = Arc::default();
    let b = bodies.clone();
    std::thread::spawn(move || {
        for mut s in hook.incoming().flatten() {
            s.set_read_timeout(Some(Duration::from_secs(2))).ok();
            // Read the head, then the body to its Content-Length.
            let mut req = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let n = s.read(&mut chunk).unwrap_or(0);
                if n == 0 {
                    break None;
                }
                req.extend_from_slice(&chunk[..n]);
                let text = String::from_utf8_lossy(&req).to_string();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let len: usize = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse().ok())?
                        })
                        .unwrap_or(0);
                    if body.len() >= len {
                        break Some(body.to_string());
                    }
                }
            };
            if let Some(body) = body {
                b.lock().unwrap().push_str(&body);
            }
            let _ =
                s.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}");
        }
    });
    let cfg = dir.path().join("run.toml");
    std::fs::write(
        &cfg,
        config("testnet", &m).replace("daily_loss_limit = 1000", "daily_loss_limit = 0.05")
            + &format!(
                "\n[alerts.telegram]\nchat_id = \"1\"\ntoken_env = \"QALPHA_TEST_TG_TOKEN\"\napi_url = \"http://{hook_addr}\"\n\
                 [alerts.email]\nsmtp = \"{smtp_down}\"\nusername = \"ops\"\npassword_env = \"QALPHA_TEST_SMTP_PASS\"\n\
                 from = \"q@test.local\"\nto = \"ops@test.local\"\n"
            ),
    )
    .unwrap();
    let out_dir = dir.path().join("out");
    std::fs::create_dir(&out_dir).unwrap();
    let f = |n: &str| out_dir.join(n);
    let mut child = qalpha()
        .args(["run", "--strategy", "obi-taker", "--duration", "8s"])
        .args(["--metrics", "127.0.0.1:0", "--control", "127.0.0.1:0"])
        .arg("--config")
        .arg(&cfg)
        .arg("--keystore")
        .arg(&store)
        .arg("--passphrase-file")
        .arg(&pass)
        .arg("--control-audit")
        .arg(f("audit.jsonl"))
        .arg("--journal")
        .arg(f("orders.jsonl"))
        .arg("--risk-journal")
        .arg(f("risk.qrisk"))
        .arg("--record")
        .arg(f("cap.qcap"))
        .arg("--json")
        .arg(f("summary.json"))
        .env("QALPHA_LOG", "debug")
        .env("QALPHA_CONTROL_TOTP_SECRET", TOTP)
        .env("QALPHA_TEST_TG_TOKEN", TG_TOKEN)
        .env("QALPHA_TEST_SMTP_PASS", SMTP_PASS)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let err_text = std::thread::spawn(move || {
        let mut all = String::new();
        for l in BufReader::new(stderr).lines() {
            let l = l.unwrap_or_default();
            if let Some(a) = l.strip_prefix("metrics on http://") {
                let _ = tx.send(("m", a.trim_end_matches("/metrics").to_string()));
            }
            if let Some(a) = l.strip_prefix("control API on ") {
                let _ = tx.send(("c", a.to_string()));
            }
            all.push_str(&l);
            all.push('\n');
        }
        all
    });
    let mut written = String::new();
    for _ in 0..2 {
        let (k, addr) = rx.recv_timeout(Duration::from_secs(30)).unwrap();
        if k == "m" {
            std::thread::sleep(Duration::from_secs(2));
            written.push_str(&get(&addr, "/metrics"));
        } else {
            written.push_str(&get(&addr, "/status"));
            // A refused POST (wrong code) lands in the audit file.
            let mut s = TcpStream::connect(&addr).unwrap();
            write!(
                s,
                "POST /halt HTTP/1.1\r\nX-TOTP: 000000\r\nContent-Length: 0\r\n\r\n"
            )
            .unwrap();
            let mut r = String::new();
            let _ = s.read_to_string(&mut r);
            assert!(r.starts_with("HTTP/1.1 401"), "{r}");
        }
    }
    let out = child.wait_with_output().unwrap();
    written.push_str(&String::from_utf8_lossy(&out.stdout));
    written.push_str(&err_text.join().unwrap());
    assert!(out.status.success(), "{written}");
    for e in std::fs::read_dir(&out_dir).unwrap() {
        let p = e.unwrap().path();
        written.push_str(&String::from_utf8_lossy(&std::fs::read(&p).unwrap()));
    }
    let alerts = bodies.lock().unwrap().clone();
    assert!(
        alerts.contains("trading halted"),
        "the halt alert went out: {alerts}"
    );
    written.push_str(&alerts);
    assert!(
        written.contains("\"risk_state\""),
        "the scan saw the status and summary"
    );
    assert!(
        written.contains(&format!("smtp {smtp_down}")),
        "the failed e-mail delivery was logged"
    );
    for planted in [secret, PASSPHRASE, TOTP, TG_TOKEN, SMTP_PASS] {
        assert!(!written.contains(planted), "{planted:?} leaked");
    }
    m.stop();
}
