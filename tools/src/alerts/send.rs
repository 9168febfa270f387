//! Delivery to one channel: an HTTP POST (Telegram, Discord, webhook) or an SMTP session. Errors
//! never carry the URL or the token.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde_json::json;

use super::{Alert, Sink};

pub(super) fn http_agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .timeout_global(Some(Duration::from_secs(10)))
        .user_agent(concat!("qalpha/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// Delivers one alert to one sink. Errors never carry the URL or token.
pub fn send(http: &ureq::Agent, sink: &Sink, a: &Alert) -> Result<()> {
    let post = |url: &str, body: serde_json::Value| -> Result<()> {
        let resp = http
            .post(url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_bytes())
            .map_err(|e| {
                anyhow!(
                    "{} POST failed: {}",
                    sink.name(),
                    redact(&e.to_string(), url)
                )
            })?;
        let st = resp.status().as_u16();
        if !(200..300).contains(&st) {
            bail!("{} answered HTTP {st}", sink.name());
        }
        Ok(())
    };
    match sink {
        Sink::Telegram {
            api_url,
            token,
            chat_id,
        } => post(
            &format!("{api_url}/bot{}/sendMessage", token.as_str()),
            json!({"chat_id": chat_id, "text": a.line(), "disable_web_page_preview": true}),
        ),
        Sink::Discord { url } => post(url, json!({"content": a.line()})),
        Sink::Webhook { url } => post(url, json!(a)),
        Sink::Email { smtp, from, to } => smtp_send(smtp, from, to, a),
    }
}

fn redact(msg: &str, url: &str) -> String {
    msg.replace(url, "<url>")
}

/// Plain SMTP to a relay (RFC 5321: EHLO, MAIL, RCPT, DATA, QUIT).
fn smtp_send(addr: &str, from: &str, to: &[String], a: &Alert) -> Result<()> {
    let stream = TcpStream::connect(addr).with_context(|| format!("smtp {addr}: connect"))?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.set_write_timeout(Some(Duration::from_secs(10)))?;
    let mut r = BufReader::new(stream.try_clone()?);
    let mut w = stream;
    let expect = |r: &mut BufReader<TcpStream>, code: &str, what: &str| -> Result<()> {
        loop {
            let mut line = String::new();
            if r.read_line(&mut line)? == 0 {
                bail!("smtp {addr}: closed during {what}");
            }
            if !line.starts_with(code) {
                bail!("smtp {addr}: {what}: {}", line.trim_end());
            }
            // Multi-line replies: "250-…" continue, "250 …" ends.
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(());
            }
        }
    };
    expect(&mut r, "220", "greeting")?;
    write!(w, "EHLO qalpha\r\n")?;
    expect(&mut r, "250", "EHLO")?;
    write!(w, "MAIL FROM:<{from}>\r\n")?;
    expect(&mut r, "250", "MAIL FROM")?;
    for t in to {
        write!(w, "RCPT TO:<{t}>\r\n")?;
        expect(&mut r, "25", "RCPT TO")?;
    }
    write!(w, "DATA\r\n")?;
    expect(&mut r, "354", "DATA")?;
    let date = a.ts_ms / 1000;
    let subject = format!("[qalpha {:?}] {}", a.severity, a.title);
    let mut msg = format!(
        "From: {from}\r\nTo: {}\r\nSubject: {subject}\r\nX-Qalpha-Key: {}\r\nX-Qalpha-Time: {date}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        to.join(", "),
        a.key
    );
    for line in a.line().lines() {
        // Dot-stuffing (RFC 5321 §4.5.2).
        if line.starts_with('.') {
            msg.push('.');
        }
        msg.push_str(line);
        msg.push_str("\r\n");
    }
    msg.push_str(".\r\n");
    w.write_all(msg.as_bytes())?;
    expect(&mut r, "250", "message")?;
    write!(w, "QUIT\r\n")?;
    let _ = expect(&mut r, "221", "QUIT");
    Ok(())
}
