//! E-mail delivery: one SMTP session per alert (RFC 5321), over implicit TLS (port 465), STARTTLS
//! (RFC 3207, port 587) or plain TCP to a local relay, with AUTH PLAIN or LOGIN (RFC 4954). The
//! password is only ever sent inside TLS (the config refuses AUTH over plain TCP to anything but
//! loopback), and no error carries it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use base64::Engine as _;
use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use zeroize::Zeroizing;

use super::Alert;

/// How the session is protected.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SmtpTls {
    /// Plain TCP (a relay on this host or its network).
    None,
    /// Plain greeting, then `STARTTLS`; the server must offer it.
    StartTls,
    /// TLS from the first byte (SMTPS).
    Implicit,
}

impl SmtpTls {
    pub fn parse(s: &str) -> Option<SmtpTls> {
        match s {
            "none" => Some(SmtpTls::None),
            "starttls" => Some(SmtpTls::StartTls),
            "tls" => Some(SmtpTls::Implicit),
            _ => None,
        }
    }

    /// The default for a port: 465 implicit TLS, 587 STARTTLS, anything else plain.
    pub fn for_port(port: u16) -> SmtpTls {
        match port {
            465 => SmtpTls::Implicit,
            587 => SmtpTls::StartTls,
            _ => SmtpTls::None,
        }
    }
}

/// `[alerts.email]`.
#[derive(Clone)]
pub struct EmailSink {
    /// `HOST:PORT`.
    pub smtp: String,
    pub from: String,
    pub to: Vec<String>,
    pub tls: SmtpTls,
    /// User name and password for `AUTH`.
    pub auth: Option<(String, Zeroizing<String>)>,
    /// A CA certificate (PEM) to trust instead of the webpki roots (a private relay, tests).
    pub ca_file: Option<PathBuf>,
}

impl std::fmt::Debug for EmailSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Email")
            .field("smtp", &self.smtp)
            .field("from", &self.from)
            .field("to", &self.to)
            .field("tls", &self.tls)
            .field("user", &self.auth.as_ref().map(|(u, _)| u))
            .field("password", &self.auth.as_ref().map(|_| "<redacted>"))
            .field("ca_file", &self.ca_file)
            .finish()
    }
}

impl EmailSink {
    /// The host part of `smtp` (brackets of an IPv6 literal removed).
    pub fn host(&self) -> &str {
        let h = self.smtp.rsplit_once(':').map_or(&*self.smtp, |(h, _)| h);
        h.trim_start_matches('[').trim_end_matches(']')
    }

    pub fn host_is_loopback(&self) -> bool {
        let h = self.host();
        h == "localhost"
            || h.parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }
}

enum Conn {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
    /// Only while the plain stream is moved into TLS.
    Moved,
}

fn moved() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::NotConnected,
        "connection moved into TLS",
    )
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
            Conn::Moved => Err(moved()),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
            Conn::Moved => Err(moved()),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
            Conn::Moved => Err(moved()),
        }
    }
}

struct Session<'a> {
    io: BufReader<Conn>,
    addr: &'a str,
}

impl Session<'_> {
    fn send(&mut self, line: &str) -> Result<()> {
        let w = self.io.get_mut();
        w.write_all(line.as_bytes())?;
        w.write_all(b"\r\n")?;
        w.flush()?;
        Ok(())
    }

    /// Reads one (possibly multi-line) reply; fails unless its code starts with `want`.
    /// Returns the reply's lines without their codes.
    fn expect(&mut self, want: &str, what: &str) -> Result<Vec<String>> {
        let mut lines = Vec::new();
        loop {
            let mut line = String::new();
            if self.io.read_line(&mut line)? == 0 {
                bail!("smtp {}: closed during {what}", self.addr);
            }
            let line = line.trim_end();
            if !line.starts_with(want) {
                bail!("smtp {}: {what}: {line}", self.addr);
            }
            lines.push(line.get(4..).unwrap_or("").to_string());
            // Multi-line replies: "250-…" continue, "250 …" ends.
            if line.as_bytes().get(3) != Some(&b'-') {
                return Ok(lines);
            }
        }
    }

    fn ehlo(&mut self) -> Result<Vec<String>> {
        self.send("EHLO qalpha")?;
        self.expect("250", "EHLO")
    }

    /// Wraps the connection in TLS. Nothing may be buffered past the `220` to STARTTLS: bytes
    /// sent before the handshake would be taken as if they came through it (RFC 3207 §6).
    fn start_tls(&mut self, sink: &EmailSink) -> Result<()> {
        if !self.io.buffer().is_empty() {
            bail!(
                "smtp {}: data after the STARTTLS reply (refused)",
                self.addr
            );
        }
        let io = std::mem::replace(&mut self.io, BufReader::new(Conn::Moved));
        let Conn::Plain(tcp) = io.into_inner() else {
            bail!("smtp {}: STARTTLS twice", self.addr);
        };
        self.io = BufReader::new(tls_conn(sink, tcp)?);
        Ok(())
    }
}

fn tls_conn(sink: &EmailSink, tcp: TcpStream) -> Result<Conn> {
    let cfg = qalpha_engine::transport::tls::client_config(sink.ca_file.as_deref())
        .map_err(|e| anyhow!("smtp {}: TLS setup: {e}", sink.smtp))?;
    let name = ServerName::try_from(sink.host().to_string())
        .map_err(|e| anyhow!("smtp {}: server name: {e}", sink.smtp))?;
    let conn = ClientConnection::new(Arc::clone(&cfg), name)
        .map_err(|e| anyhow!("smtp {}: TLS: {e}", sink.smtp))?;
    let mut s = StreamOwned::new(conn, tcp);
    // Handshake now, so a certificate error is named as one.
    while s.conn.is_handshaking() {
        s.conn
            .complete_io(&mut s.sock)
            .map_err(|e| anyhow!("smtp {}: TLS handshake: {e}", sink.smtp))?;
    }
    Ok(Conn::Tls(Box::new(s)))
}

/// Delivers one alert as one e-mail.
pub fn send(sink: &EmailSink, a: &Alert) -> Result<()> {
    let addr = sink.smtp.as_str();
    let tcp = TcpStream::connect(addr).with_context(|| format!("smtp {addr}: connect"))?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    tcp.set_write_timeout(Some(Duration::from_secs(10)))?;
    let conn = match sink.tls {
        SmtpTls::Implicit => tls_conn(sink, tcp)?,
        SmtpTls::None | SmtpTls::StartTls => Conn::Plain(tcp),
    };
    let mut s = Session {
        io: BufReader::new(conn),
        addr,
    };
    s.expect("220", "greeting")?;
    let mut caps = s.ehlo()?;
    if sink.tls == SmtpTls::StartTls {
        if !has_cap(&caps, "STARTTLS") {
            bail!("smtp {addr}: the server does not offer STARTTLS (tls = \"starttls\")");
        }
        s.send("STARTTLS")?;
        s.expect("220", "STARTTLS")?;
        s.start_tls(sink)?;
        // Capabilities learned before TLS are discarded (RFC 3207 §4.2).
        caps = s.ehlo()?;
    }
    if let Some((user, pass)) = &sink.auth {
        auth(&mut s, &caps, user, pass)?;
    }
    s.send(&format!("MAIL FROM:<{}>", sink.from))?;
    s.expect("250", "MAIL FROM")?;
    for t in &sink.to {
        s.send(&format!("RCPT TO:<{t}>"))?;
        s.expect("25", "RCPT TO")?;
    }
    s.send("DATA")?;
    s.expect("354", "DATA")?;
    s.io.get_mut().write_all(message(sink, a).as_bytes())?;
    s.expect("250", "message")?;
    s.send("QUIT")?;
    let _ = s.expect("221", "QUIT");
    Ok(())
}

fn has_cap(caps: &[String], name: &str) -> bool {
    caps.iter().any(|c| {
        c.split_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case(name))
    })
}

/// The mechanisms the server lists after `AUTH` in its EHLO reply.
fn auth_mechs(caps: &[String]) -> Vec<String> {
    caps.iter()
        .filter_map(|c| {
            let mut w = c.split_whitespace();
            w.next()
                .is_some_and(|k| k.eq_ignore_ascii_case("AUTH"))
                .then(|| w.map(str::to_ascii_uppercase).collect::<Vec<_>>())
        })
        .flatten()
        .collect()
}

/// AUTH PLAIN, or LOGIN where PLAIN is not offered. A refusal names the server's reply, never
/// the password.
fn auth(s: &mut Session, caps: &[String], user: &str, pass: &str) -> Result<()> {
    let b64 = |x: &[u8]| base64::engine::general_purpose::STANDARD.encode(x);
    let mechs = auth_mechs(caps);
    if mechs.iter().any(|m| m == "PLAIN") {
        let token = Zeroizing::new(b64(format!("\0{user}\0{pass}").as_bytes()));
        s.send(&format!("AUTH PLAIN {}", token.as_str()))?;
        s.expect("235", "AUTH PLAIN")?;
    } else if mechs.iter().any(|m| m == "LOGIN") {
        s.send("AUTH LOGIN")?;
        s.expect("334", "AUTH LOGIN")?;
        s.send(&b64(user.as_bytes()))?;
        s.expect("334", "AUTH LOGIN user")?;
        let p = Zeroizing::new(b64(pass.as_bytes()));
        s.send(&p)?;
        s.expect("235", "AUTH LOGIN")?;
    } else {
        bail!(
            "smtp {}: no AUTH mechanism we speak (PLAIN, LOGIN) among {:?}",
            s.addr,
            mechs
        );
    }
    Ok(())
}

/// Headers, the dot-stuffed body and the closing dot.
fn message(sink: &EmailSink, a: &Alert) -> String {
    let subject = format!("[qalpha {:?}] {}", a.severity, a.title);
    let mut msg = format!(
        "From: {}\r\nTo: {}\r\nSubject: {subject}\r\nX-Qalpha-Key: {}\r\nX-Qalpha-Time: {}\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n",
        sink.from,
        sink.to.join(", "),
        a.key,
        a.ts_ms / 1000
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
    msg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capabilities_and_mechanisms_are_read_from_the_ehlo_reply() {
        let caps: Vec<String> = ["mail.example", "PIPELINING", "AUTH LOGIN plain", "STARTTLS"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert!(has_cap(&caps, "starttls"));
        assert!(!has_cap(&caps, "SMTPUTF8"));
        assert_eq!(auth_mechs(&caps), ["LOGIN", "PLAIN"]);
        assert_eq!(SmtpTls::for_port(465), SmtpTls::Implicit);
        assert_eq!(SmtpTls::for_port(587), SmtpTls::StartTls);
        assert_eq!(SmtpTls::for_port(25), SmtpTls::None);
    }

    #[test]
    fn host_and_loopback() {
        let mut e = EmailSink {
            smtp: "[::1]:25".into(),
            from: "a@b".into(),
            to: vec!["c@d".into()],
            tls: SmtpTls::None,
            auth: Some(("u".into(), Zeroizing::new("hunter2".into()))),
            ca_file: None,
        };
        assert_eq!(e.host(), "::1");
        assert!(e.host_is_loopback());
        e.smtp = "smtp.example.com:587".into();
        assert_eq!(e.host(), "smtp.example.com");
        assert!(!e.host_is_loopback());
        assert!(!format!("{e:?}").contains("hunter2"));
    }
}
