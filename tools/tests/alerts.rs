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

/// What the TLS-capable SMTP server offers and accepts.
#[derive(Clone, Copy)]
struct SmtpSrv {
    /// TLS from the first byte (SMTPS) instead of a plain greeting.
    implicit: bool,
    /// `STARTTLS` in the plain EHLO reply.
    offer_starttls: bool,
    /// The AUTH mechanisms offered (only inside TLS, as real submission servers do).
    mechs: &'static str,
}

const SMTP_USER: &str = "ops-bot";
const SMTP_PASS: &str = "s3cret-Pa55-for-tests";

/// An SMTP server with STARTTLS, SMTPS and AUTH PLAIN/LOGIN, certified by a throw-away CA
/// (`ca.pem` in the returned dir). The log has every command line, prefixed by `plain:` or `tls:`,
/// and `DATA:` + the message once it is accepted.
fn smtp_tls_server(srv: SmtpSrv) -> (String, tempfile::TempDir, Arc<Mutex<Vec<String>>>) {
    let certs = qalpha_venues::mock::certs::MockCerts::generate().unwrap();
    let dir = tempfile::tempdir().unwrap();
    certs.write_ca(dir.path()).unwrap();
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap().to_string();
    let log: Arc<Mutex<Vec<String>>> = Arc::default();
    let lg = log.clone();
    let tls = move |tcp: TcpStream| {
        let conn = rustls::ServerConnection::new(certs.server_config.clone()).unwrap();
        rustls::StreamOwned::new(conn, tcp)
    };
    std::thread::spawn(move || {
        for s in l.incoming().flatten() {
            s.set_read_timeout(Some(Duration::from_secs(5))).ok();
            if srv.implicit {
                smtp_tls_session(tls(s), true, true, srv, &lg);
            } else if let Some(tcp) = smtp_tls_session(s, false, true, srv, &lg) {
                smtp_tls_session(tls(tcp), true, false, srv, &lg);
            }
        }
    });
    (addr, dir, log)
}

/// One phase of a session; gives the stream back when the client asked for STARTTLS.
fn smtp_tls_session<S: Read + Write>(
    s: S,
    tls: bool,
    greet: bool,
    srv: SmtpSrv,
    log: &Mutex<Vec<String>>,
) -> Option<S> {
    use base64::Engine as _;
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut r = BufReader::new(s);
    let phase = if tls { "tls: " } else { "plain: " };
    let mut line = String::new();
    let mut read = |r: &mut BufReader<S>| -> Option<String> {
        line.clear();
        (r.read_line(&mut line).ok()? > 0).then(|| {
            log.lock()
                .unwrap()
                .push(format!("{phase}{}", line.trim_end()));
            line.trim_end().to_string()
        })
    };
    let say = |r: &mut BufReader<S>, m: &str| r.get_mut().write_all(m.as_bytes()).ok();
    if greet {
        say(&mut r, "220 test ESMTP\r\n")?;
    }
    let mut authed = false;
    loop {
        let cmd = read(&mut r)?;
        let up = cmd.to_ascii_uppercase();
        if up.starts_with("EHLO") {
            let mut m = String::from("250-test\r\n");
            if !tls && srv.offer_starttls {
                m.push_str("250-STARTTLS\r\n");
            }
            if tls {
                m.push_str(&format!("250-AUTH {}\r\n", srv.mechs));
            }
            say(&mut r, &(m + "250 OK\r\n"))?;
        } else if up == "STARTTLS" {
            say(&mut r, "220 go ahead\r\n")?;
            return Some(r.into_inner());
        } else if let Some(tok) = cmd.strip_prefix("AUTH PLAIN ") {
            let want = format!("\0{SMTP_USER}\0{SMTP_PASS}");
            authed = b64.decode(tok).ok()? == want.as_bytes();
            say(
                &mut r,
                if authed {
                    "235 ok\r\n"
                } else {
                    "535 bad credentials\r\n"
                },
            )?;
        } else if up == "AUTH LOGIN" {
            say(&mut r, "334 VXNlcm5hbWU6\r\n")?;
            let u = b64.decode(read(&mut r)?).ok()?;
            say(&mut r, "334 UGFzc3dvcmQ6\r\n")?;
            let p = b64.decode(read(&mut r)?).ok()?;
            authed = u == SMTP_USER.as_bytes() && p == SMTP_PASS.as_bytes();
            say(
                &mut r,
                if authed {
                    "235 ok\r\n"
                } else {
                    "535 bad credentials\r\n"
                },
            )?;
        } else if up.starts_with("MAIL") && !authed {
            say(&mut r, "530 authentication required\r\n")?;
        } else if up == "DATA" {
            say(&mut r, "354 go\r\n")?;
            let mut data = String::new();
            loop {
                let mut l = String::new();
                r.read_line(&mut l).ok()?;
                if l == ".\r\n" || l.is_empty() {
                    break;
                }
                data.push_str(&l);
            }
            log.lock().unwrap().push(format!("DATA:{data}"));
            say(&mut r, "250 queued\r\n")?;
        } else if up == "QUIT" {
            say(&mut r, "221 bye\r\n")?;
            return None;
        } else {
            say(&mut r, "250 OK\r\n")?;
        }
    }
}

/// One alert through an `[alerts.email]` table; returns (sent, failed).
fn mail_one(email_toml: &str) -> (u64, u64) {
    let a = Alerter::start(alerts_config(&format!("[email]\n{email_toml}"))).unwrap();
    a.raise(Alert::new(
        "halt:daily_loss",
        Severity::Critical,
        "trading halted (daily_loss)",
        "x",
    ));
    let c = a.finish();
    (
        c.sent.load(Ordering::Relaxed),
        c.failed.load(Ordering::Relaxed),
    )
}

#[test]
fn email_goes_through_starttls_and_smtps_with_auth_and_the_password_only_inside_tls() {
    // Set before the alert thread reads it; the variables' names are this test's alone.
    std::env::set_var("QALPHA_TEST_SMTP_PASSWORD", SMTP_PASS);
    let common = |addr: &str, dir: &std::path::Path, tls: &str| {
        format!(
            "smtp = \"{addr}\"\ntls = \"{tls}\"\nusername = \"{SMTP_USER}\"\n\
             password_env = \"QALPHA_TEST_SMTP_PASSWORD\"\nca_file = \"{}\"\n\
             from = \"qalpha@test.local\"\nto = [\"ops@test.local\"]\n",
            dir.join("ca.pem").display()
        )
    };
    let b64_secret = {
        use base64::Engine as _;
        base64::engine::general_purpose::STANDARD.encode(SMTP_PASS)
    };

    // STARTTLS (port 587 style), AUTH PLAIN.
    let srv = SmtpSrv {
        implicit: false,
        offer_starttls: true,
        mechs: "PLAIN LOGIN",
    };
    let (addr, dir, log) = smtp_tls_server(srv);
    assert_eq!(mail_one(&common(&addr, dir.path(), "starttls")), (1, 0));
    let log = log.lock().unwrap().clone();
    let plain: Vec<&String> = log.iter().filter(|l| l.starts_with("plain:")).collect();
    assert_eq!(plain, ["plain: EHLO qalpha", "plain: STARTTLS"], "{log:?}");
    assert!(
        log.iter().any(|l| l.starts_with("tls: AUTH PLAIN ")),
        "{log:?}"
    );
    assert!(log.contains(&"tls: MAIL FROM:<qalpha@test.local>".to_string()));
    let data = log
        .iter()
        .find(|l| l.starts_with("DATA:"))
        .expect("no message");
    assert!(data.contains("Subject: [qalpha Critical] trading halted (daily_loss)"));

    // SMTPS (port 465 style), a server offering only AUTH LOGIN.
    let (addr, dir, log) = smtp_tls_server(SmtpSrv {
        implicit: true,
        offer_starttls: false,
        mechs: "LOGIN",
    });
    assert_eq!(mail_one(&common(&addr, dir.path(), "tls")), (1, 0));
    let log = log.lock().unwrap().clone();
    assert!(log.iter().all(|l| !l.starts_with("plain:")), "{log:?}");
    assert!(log.contains(&"tls: AUTH LOGIN".to_string()), "{log:?}");
    assert!(log.contains(&format!("tls: {b64_secret}")), "{log:?}");
    assert!(log.iter().any(|l| l.starts_with("DATA:")));

    // A wrong password: refused (tried, retried once), counted as failed, nothing delivered.
    let (addr, dir, log) = smtp_tls_server(srv);
    let bad = common(&addr, dir.path(), "starttls").replace(
        "QALPHA_TEST_SMTP_PASSWORD",
        "QALPHA_TEST_SMTP_PASSWORD_WRONG",
    );
    std::env::set_var("QALPHA_TEST_SMTP_PASSWORD_WRONG", "not-it");
    assert_eq!(mail_one(&bad), (0, 1));
    let log = log.lock().unwrap().clone();
    assert_eq!(log.iter().filter(|l| l.starts_with("tls: AUTH")).count(), 2);
    assert!(!log
        .iter()
        .any(|l| l.starts_with("DATA:") || l.contains("MAIL")));

    // A server that does not offer STARTTLS (a downgrade): nothing past EHLO is sent.
    let (addr, dir, log) = smtp_tls_server(SmtpSrv {
        offer_starttls: false,
        ..srv
    });
    assert_eq!(mail_one(&common(&addr, dir.path(), "starttls")), (0, 1));
    let log = log.lock().unwrap().clone();
    assert!(log.contains(&"plain: EHLO qalpha".to_string()), "{log:?}");
    assert!(log.iter().all(|l| l == "plain: EHLO qalpha"), "{log:?}");

    // A certificate the client does not trust (webpki roots, no ca_file): no AUTH, no mail.
    let (addr, dir, log) = smtp_tls_server(srv);
    let untrusted = common(&addr, dir.path(), "starttls")
        .lines()
        .filter(|l| !l.starts_with("ca_file"))
        .collect::<Vec<_>>()
        .join("\n");
    assert_eq!(mail_one(&untrusted), (0, 1));
    let log = log.lock().unwrap().clone();
    assert!(log.contains(&"plain: STARTTLS".to_string()), "{log:?}");
    assert!(log.iter().all(|l| l.starts_with("plain:")), "{log:?}");
    assert!(!log.iter().any(|l| l.contains(&b64_secret)));
}
