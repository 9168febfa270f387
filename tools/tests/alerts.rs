//! Alert delivery against local servers: a Telegram Bot API, a Discord webhook and a generic
//! webhook (one HTTP server of the test's own, by path) and an SMTP server (the test's own). The
//! engine halts on its daily-loss kill switch on the mock exchange; the halt and the shutdown
//! summary reach every channel. Deduplication, the rate limit and failed deliveries are checked on
//! the alert thread directly.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qalpha_engine::config::EngineConfig;
use qalpha_engine::runtime::WaitMode;
use qalpha_risk::RiskConfig;
use qalpha_tools::alerts::{Alert, AlertConfig, Alerter, Severity};
use qalpha_tools::demo_cmd::{run_demo, DemoMode, DemoOptions};
use serde_json::Value;

const SAMPLE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../data/sample/btcusdt-usdm-20230404.qcap"
);

type Log = Arc<Mutex<Vec<(String, String)>>>;

/// An HTTP server recording (path, body) and answering `status`.
fn http_server(status: u16) -> (String, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let log: Log = Arc::default();
    let lg = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            read_http(s, status, &lg);
        }
    });
    (addr, log)
}

/// Reads one request, records it, then answers (recorded before the client can see the answer).
fn read_http(mut s: TcpStream, status: u16, log: &Log) -> Option<()> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    let mut first = String::new();
    r.read_line(&mut first).ok()?;
    let path = first.split(' ').nth(1)?.to_string();
    let mut len = 0usize;
    loop {
        let mut h = String::new();
        r.read_line(&mut h).ok()?;
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((k, v)) = h.split_once(':') {
            if k.eq_ignore_ascii_case("content-length") {
                len = v.trim().parse().ok()?;
            }
        }
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).ok()?;
    log.lock()
        .unwrap()
        .push((path, String::from_utf8_lossy(&body).into_owned()));
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{{\"ok\":true}}"
    );
    Some(())
}

/// An SMTP server recording each session's commands and message.
fn smtp_server() -> (String, Log) {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let log: Log = Arc::default();
    let lg = log.clone();
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            smtp_session(s, &lg);
        }
    });
    (addr, log)
}

/// One SMTP session; the message is recorded before its `250` goes out.
fn smtp_session(mut s: TcpStream, log: &Log) -> Option<()> {
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut r = BufReader::new(s.try_clone().ok()?);
    write!(s, "220 test ESMTP\r\n").ok()?;
    let (mut cmds, mut data) = (String::new(), String::new());
    loop {
        let mut line = String::new();
        if r.read_line(&mut line).ok()? == 0 {
            return Some(());
        }
        cmds.push_str(&line);
        let up = line.to_ascii_uppercase();
        if up.starts_with("EHLO") {
            write!(s, "250-test\r\n250 OK\r\n").ok()?;
        } else if up.starts_with("DATA") {
            write!(s, "354 go\r\n").ok()?;
            loop {
                let mut l = String::new();
                r.read_line(&mut l).ok()?;
                if l == ".\r\n" {
                    break;
                }
                data.push_str(&l);
            }
            log.lock().unwrap().push((cmds.clone(), data.clone()));
            write!(s, "250 queued\r\n").ok()?;
        } else if up.starts_with("QUIT") {
            write!(s, "221 bye\r\n").ok()?;
            return Some(());
        } else {
            write!(s, "250 OK\r\n").ok()?;
        }
    }
}

fn alerts_config(toml_text: &str) -> AlertConfig {
    let t: toml::Table = toml::from_str(toml_text).unwrap();
    AlertConfig::from_table(Some(&t)).unwrap()
}

#[test]
fn a_halt_and_the_run_summary_reach_every_channel() {
    let (http, hits) = http_server(200);
    let (smtp, mails) = smtp_server();
    let alerts = alerts_config(&format!(
        r#"
[telegram]
chat_id = "42"
token = "123:TESTTOKEN"
api_url = "http://{http}"
[discord]
url = "http://{http}/discord/hook"
[webhook]
url = "http://{http}/hook"
[email]
smtp = "{smtp}"
from = "qalpha@test.local"
to = ["ops@test.local"]
"#
    ));
    let cfg = EngineConfig::load_with_overrides(None, &["risk.daily_loss_limit=0.05".to_string()])
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let o = DemoOptions {
        duration: Duration::from_secs(15),
        speed: 20.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        mode: DemoMode::Mock,
        risk: RiskConfig::from_engine(&cfg).unwrap(),
        risk_journal: Some(dir.path().join("risk.qrisk")),
        alerts,
        ..Default::default()
    };
    let rep = run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap();
    assert_eq!(rep.final_state, "halted", "{rep:?}");
    assert_eq!(rep.halt_reason.as_deref(), Some("daily_loss"));
    let counts = rep.alerts.clone().unwrap();
    assert_eq!(counts.failed, 0, "{counts:?}");
    // The halt and the shutdown summary, each on four channels.
    assert!(counts.sent >= 8, "{counts:?}");

    let hits = hits.lock().unwrap().clone();
    let on = |prefix: &str| -> Vec<Value> {
        hits.iter()
            .filter(|(p, _)| p.starts_with(prefix))
            .map(|(_, b)| serde_json::from_str(b).unwrap())
            .collect()
    };
    let tg = on("/bot123:TESTTOKEN/sendMessage");
    assert!(tg.iter().all(|m| m["chat_id"] == "42"));
    assert!(
        tg.iter().any(|m| m["text"]
            .as_str()
            .unwrap()
            .contains("trading halted (daily_loss)")),
        "{tg:?}"
    );
    let dc = on("/discord/hook");
    assert!(dc.iter().any(|m| m["content"]
        .as_str()
        .unwrap()
        .contains("[qalpha CRITICAL] trading halted")));
    let wh = on("/hook");
    let halt = wh.iter().find(|m| m["key"] == "halt:daily_loss").unwrap();
    assert_eq!(halt["severity"], "critical");
    let summary = wh.iter().find(|m| m["key"] == "summary:shutdown").unwrap();
    assert!(
        summary["text"]
            .as_str()
            .unwrap()
            .contains("risk state halted"),
        "{summary}"
    );
    // The halt is raised once, however long the engine stays halted.
    assert_eq!(
        wh.iter().filter(|m| m["key"] == "halt:daily_loss").count(),
        1
    );

    let mails = mails.lock().unwrap().clone();
    let (cmds, data) = mails
        .iter()
        .find(|(_, d)| d.contains("trading halted"))
        .expect("no halt e-mail");
    assert!(cmds.contains("MAIL FROM:<qalpha@test.local>"), "{cmds}");
    assert!(cmds.contains("RCPT TO:<ops@test.local>"), "{cmds}");
    assert!(
        data.contains("Subject: [qalpha Critical] trading halted (daily_loss)"),
        "{data}"
    );
    assert!(data.contains("X-Qalpha-Key: halt:daily_loss"));
    // The bot token never shows in the report.
    assert!(!serde_json::to_string(&rep).unwrap().contains("TESTTOKEN"));
}

#[test]
fn duplicates_are_dropped_the_rate_is_limited_and_failures_counted() {
    let (http, hits) = http_server(200);
    let cfg = alerts_config(&format!(
        "max_per_minute = 3\ndedup_window_s = 600\n[webhook]\nurl = \"http://{http}/hook\"\n"
    ));
    let a = Alerter::start(cfg).unwrap();
    for _ in 0..3 {
        a.raise(Alert::new("halt:x", Severity::Critical, "halted", "x"));
    }
    for i in 0..4 {
        a.raise(Alert::new(
            &format!("info:{i}"),
            Severity::Info,
            "note",
            "x",
        ));
    }
    let c = a.finish();
    // halt:x once (two duplicates), then two info alerts fill the budget of 3, two are dropped.
    assert_eq!(c.deduplicated.load(Ordering::Relaxed), 2);
    assert_eq!(c.rate_limited.load(Ordering::Relaxed), 2);
    assert_eq!(c.sent.load(Ordering::Relaxed), 3);
    let keys: Vec<String> = hits
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(keys, ["halt:x", "info:0", "info:1"]);

    // A channel answering 500: retried once, then counted as failed; nothing panics.
    let (bad, bad_hits) = http_server(500);
    let a = Alerter::start(alerts_config(&format!(
        "[webhook]\nurl = \"http://{bad}/hook\"\n"
    )))
    .unwrap();
    a.raise(Alert::new("k", Severity::Warning, "t", "x"));
    let c = a.finish();
    assert_eq!(c.failed.load(Ordering::Relaxed), 1);
    assert_eq!(c.sent.load(Ordering::Relaxed), 0);
    assert_eq!(bad_hits.lock().unwrap().len(), 2, "one try and one retry");
}

#[test]
fn a_disconnect_storm_raises_one_alert() {
    let (http, hits) = http_server(200);
    let alerts = alerts_config(&format!(
        "disconnect_storm = 2\ndisconnect_window_s = 60\n[webhook]\nurl = \"http://{http}/hook\"\n"
    ));
    let o = DemoOptions {
        duration: Duration::from_secs(8),
        speed: 5.0,
        capture: SAMPLE.into(),
        wait: WaitMode::Park,
        progress_every: None,
        mode: DemoMode::Mock,
        faults: qalpha_venues::mock::FaultSpec::parse("disconnect-every=1500ms").unwrap(),
        alerts,
        ..Default::default()
    };
    let rep = run_demo(&o, Arc::new(AtomicBool::new(false))).unwrap();
    assert!(rep.reconnects >= 2, "{rep:?}");
    let keys: Vec<String> = hits
        .lock()
        .unwrap()
        .iter()
        .map(|(_, b)| {
            serde_json::from_str::<Value>(b).unwrap()["key"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    // Storms keep coming every couple of drops; the key deduplicates them to one alert.
    assert_eq!(
        keys.iter().filter(|k| *k == "disconnects").count(),
        1,
        "{keys:?}"
    );
    assert!(rep.alerts.unwrap().deduplicated >= 1 || rep.reconnects < 4);
}
