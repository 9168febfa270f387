//! The control API: the allowlist (403), TOTP on every POST (401 missing / wrong / reused, 200 valid),
//! the audit journal (every POST and refusal, never the code); then end to end — `qalpha demo
//! --control` against the mock exchange halted by `POST /halt`, `GET /status` showing it, the run
//! ending halted, flat, with nothing open.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qalpha_tools::control::totp::{base32_decode, totp};
use qalpha_tools::control::{ControlCmd, ControlConfig, ControlServer, Net};
use serde_json::{json, Value};

/// base32 of "12345678901234567890" (RFC 6238's test key).
const SECRET_B32: &str = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";

fn now_s() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn code() -> String {
    format!(
        "{:06}",
        totp(&base32_decode(SECRET_B32).unwrap(), now_s(), 6)
    )
}

/// One HTTP request; (status, JSON body).
fn http(addr: SocketAddr, method: &str, path: &str, totp: Option<&str>) -> (u16, Value) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: qalpha\r\nContent-Length: 0\r\n");
    if let Some(c) = totp {
        req.push_str(&format!("X-TOTP: {c}\r\n"));
    }
    req.push_str("\r\n");
    s.write_all(req.as_bytes()).unwrap();
    let mut resp = String::new();
    let _ = s.read_to_string(&mut resp);
    let status: u16 = resp
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status in {resp:?}"));
    let body = resp.split("\r\n\r\n").nth(1).unwrap_or("null");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn server(
    allow: &str,
    audit: &std::path::Path,
) -> (ControlServer, crossbeam::channel::Receiver<ControlCmd>) {
    let (tx, rx) = crossbeam::channel::bounded(16);
    let cfg = ControlConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        allow: allow.split(',').map(|a| Net::parse(a).unwrap()).collect(),
        totp_secret: base32_decode(SECRET_B32).unwrap(),
        audit: Some(audit.to_path_buf()),
    };
    let status = Arc::new(Mutex::new(json!({"risk_state": "active"})));
    (ControlServer::start(cfg, status, tx).unwrap(), rx)
}

#[test]
fn allowlist_totp_and_audit() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("control.jsonl");
    // Not on the allowlist: 403 for everything, journaled.
    let (s, rx) = server("10.0.0.0/8", &audit);
    assert_eq!(http(s.addr, "GET", "/status", None).0, 403);
    assert_eq!(http(s.addr, "POST", "/halt", Some(&code())).0, 403);
    assert!(rx.try_recv().is_err(), "nothing reached the engine");
    s.stop();

    let (s, rx) = server("127.0.0.1,::1", &audit);
    let (st, body) = http(s.addr, "GET", "/status", None);
    assert_eq!((st, body["risk_state"].as_str()), (200, Some("active")));
    let (st, body) = http(s.addr, "POST", "/halt", None);
    assert_eq!(st, 401);
    assert_eq!(body["error"], "missing X-TOTP");
    let wrong = format!("{:06}", (code().parse::<u32>().unwrap() + 1) % 1_000_000);
    let (st, body) = http(s.addr, "POST", "/halt", Some(&wrong));
    assert_eq!((st, body["error"].as_str()), (401, Some("wrong X-TOTP")));
    assert_eq!(http(s.addr, "POST", "/halt", Some("12ab56")).0, 401);
    assert!(rx.try_recv().is_err());
    let c = code();
    let (st, body) = http(s.addr, "POST", "/halt", Some(&c));
    assert_eq!(
        (st, body["command"].as_str()),
        (200, Some("halt")),
        "{body}"
    );
    assert_eq!(rx.try_recv().unwrap(), ControlCmd::Halt);
    // The same code again on the same endpoint: a replay.
    let (st, body) = http(s.addr, "POST", "/halt", Some(&c));
    assert_eq!(
        (st, body["error"].as_str()),
        (401, Some("X-TOTP code already used"))
    );
    // Another endpoint may use the current code once.
    assert_eq!(http(s.addr, "POST", "/resume", Some(&c)).0, 200);
    assert_eq!(rx.try_recv().unwrap(), ControlCmd::Resume);
    assert_eq!(http(s.addr, "GET", "/nope", None).0, 404);
    assert_eq!(http(s.addr, "GET", "/halt", None).0, 405);
    s.stop();

    let log = std::fs::read_to_string(&audit).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |status: u64| lines.iter().filter(|l| l["status"] == status).count();
    assert_eq!(count(403), 2, "{log}");
    assert_eq!(count(401), 4, "{log}");
    assert_eq!(count(200), 2, "{log}");
    assert!(
        !log.contains(&c) && !log.contains(&wrong),
        "codes are never journaled"
    );
    assert!(lines
        .iter()
        .all(|l| l["kind"] == "control" && l["peer"].is_string()));
}

#[test]
fn a_demo_is_halted_through_the_control_api() {
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let summary = dir.path().join("summary.json");
    let mut child = Command::new(env!("CARGO_BIN_EXE_qalpha"))
        .args([
            "demo",
            "--duration",
            "40s",
            "--speed",
            "10",
            "--control",
            "127.0.0.1:0",
        ])
        .arg("--control-audit")
        .arg(&audit)
        .arg("--json")
        .arg(&summary)
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/.."))
        .env("QALPHA_CONTROL_TOTP_SECRET", SECRET_B32)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The demo says where the control API listens.
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut addr = None;
    let mut line = String::new();
    while addr.is_none() && err.read_line(&mut line).unwrap() > 0 {
        if let Some(a) = line.trim().strip_prefix("control API on ") {
            addr = Some(a.parse::<SocketAddr>().unwrap());
        }
        line.clear();
    }
    let addr = addr.expect("the demo printed its control address");
    std::thread::spawn(move || {
        // Keep draining stderr so the demo never blocks on it.
        let mut sink = String::new();
        let _ = err.read_to_string(&mut sink);
    });
    // Wait until the engine is trading and the status is published (bounded: 200 polls).
    for poll in 0.. {
        let (st, v) = http(addr, "GET", "/status", None);
        assert!(poll < 200, "no trading status: {v}");
        if st == 200
            && v["risk_state"] == "active"
            && v["connections"]["market_data_events"].as_u64() > Some(100)
        {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(http(addr, "POST", "/halt", Some("000000")).0, 401);
    let (st, body) = http(addr, "POST", "/halt", Some(&code()));
    assert_eq!(st, 200, "{body}");
    for poll in 0.. {
        let (_, v) = http(addr, "GET", "/status", None);
        assert!(poll < 100, "not halted: {v}");
        if v["risk_state"] == "halted" {
            assert!(
                v["positions"].is_object() && v["pnl"]["net"].is_string(),
                "{v}"
            );
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let st = child.wait().unwrap();
    assert!(st.success());
    let s: Value = serde_json::from_str(&std::fs::read_to_string(&summary).unwrap()).unwrap();
    assert_eq!(s["final_state"], "halted", "{s}");
    assert_eq!(s["open_orders"], 0, "{s}");
    for (sym, q) in s["final_positions"].as_object().unwrap() {
        assert_eq!(q, "0", "{sym} flat after the halt: {s}");
    }
    let log = std::fs::read_to_string(&audit).unwrap();
    assert_eq!(log.lines().count(), 2, "{log}");
    assert!(
        log.contains("\"status\":401") && log.contains("\"status\":200"),
        "{log}"
    );
}
