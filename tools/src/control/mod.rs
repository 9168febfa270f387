//! The control API (`--control ADDR`): a small HTTP/1.1 server on its own thread, never on the hot
//! path. `GET /status` answers the engine's latest status snapshot (JSON: `risk_state`, positions,
//! PnL, connections, counters — published by the strategy thread a few times a second);
//! `POST /halt`, `POST /resume`, `POST /flatten` hand a [`ControlCmd`] to the strategy thread.
//!
//! Every request must come from an address on the allowlist (`403` otherwise); every POST must carry a
//! valid RFC 6238 code in `X-TOTP` (secret: base32 in `QALPHA_CONTROL_TOTP_SECRET`; one step of skew
//! either way; a code is accepted once per endpoint) — `401` when missing, malformed, wrong or reused. Every POST and
//! every refusal is appended to the audit journal (JSON lines: time, peer, method, path, outcome; never
//! the code). Loopback by default.

pub mod totp;

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use crossbeam::channel::Sender;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// What the operator asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ControlCmd {
    Halt,
    Resume,
    Flatten,
}

/// One allowlist entry: an address, or a network in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// `127.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`.
    pub fn parse(s: &str) -> Result<Net> {
        let s = s.trim();
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a
            .parse()
            .with_context(|| format!("allowlist entry {s:?}: not an IP address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .with_context(|| format!("allowlist entry {s:?}: prefix must be 0..={max}"))?,
        };
        Ok(Net { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        // An IPv4 peer may arrive as an IPv4-mapped IPv6 address on a dual-stack socket.
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        let mask = |bits: u32, width: u32| -> u128 {
            if bits == 0 {
                0
            } else {
                (!0u128 << (width - bits)) & (!0u128 >> (128 - width))
            }
        };
        match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => {
                let m = mask(self.prefix.into(), 32);
                (u32::from(a) as u128 & m) == (u32::from(b) as u128 & m)
            }
            (IpAddr::V6(a), IpAddr::V6(b)) => {
                let m = mask(self.prefix.into(), 128);
                (u128::from(a) & m) == (u128::from(b) & m)
            }
            _ => false,
        }
    }
}

/// The control API's settings.
#[derive(Clone)]
pub struct ControlConfig {
    pub addr: SocketAddr,
    pub allow: Vec<Net>,
    /// The decoded TOTP secret.
    pub totp_secret: Zeroizing<Vec<u8>>,
    /// The audit journal (JSON lines), if any.
    pub audit: Option<PathBuf>,
}

impl std::fmt::Debug for ControlConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ControlConfig")
            .field("addr", &self.addr)
            .field("allow", &self.allow)
            .field("totp_secret", &"<redacted>")
            .field("audit", &self.audit)
            .finish()
    }
}

impl ControlConfig {
    /// From the command line: `addr`, a comma-separated allowlist, the secret from
    /// `QALPHA_CONTROL_TOTP_SECRET`.
    pub fn from_args(addr: &str, allow: &str, audit: Option<PathBuf>) -> Result<ControlConfig> {
        let addr: SocketAddr = addr
            .parse()
            .with_context(|| format!("--control {addr:?}: use IP:PORT, e.g. 127.0.0.1:9300"))?;
        let allow = allow
            .split(',')
            .filter(|s| !s.trim().is_empty())
            .map(Net::parse)
            .collect::<Result<Vec<_>>>()?;
        if allow.is_empty() {
            bail!("--control-allow is empty: nobody could use the control API");
        }
        let secret =
            Zeroizing::new(std::env::var("QALPHA_CONTROL_TOTP_SECRET").unwrap_or_default());
        if secret.trim().is_empty() {
            bail!("--control needs QALPHA_CONTROL_TOTP_SECRET (a base32 TOTP secret, as authenticator apps use)");
        }
        let totp_secret = totp::base32_decode(&secret)
            .context("QALPHA_CONTROL_TOTP_SECRET is not valid base32")?;
        if totp_secret.len() < 10 {
            bail!(
                "QALPHA_CONTROL_TOTP_SECRET is too short: at least 80 bits (16 base32 characters)"
            );
        }
        Ok(ControlConfig {
            addr,
            allow,
            totp_secret,
            audit,
        })
    }
}

/// The running server.
pub struct ControlServer {
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<()>>,
}

impl ControlServer {
    /// Binds and serves until dropped or [`ControlServer::stop`]. `status` is the snapshot the engine
    /// publishes; commands go to `cmds`.
    pub fn start(
        cfg: ControlConfig,
        status: Arc<Mutex<Value>>,
        cmds: Sender<ControlCmd>,
    ) -> Result<ControlServer> {
        let listener = TcpListener::bind(cfg.addr)
            .with_context(|| format!("--control {}: cannot listen", cfg.addr))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let handle = std::thread::Builder::new()
            .name("qa-control".into())
            .spawn(move || {
                // The last TOTP step accepted per endpoint (a code works once per endpoint).
                let mut used: HashMap<String, u64> = HashMap::new();
                while !s.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, peer)) => {
                            let _ = serve(stream, peer, &cfg, &status, &cmds, &mut used);
                        }
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                            std::thread::sleep(Duration::from_millis(5));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(50)),
                    }
                }
            })?;
        Ok(ControlServer {
            addr,
            stop,
            handle: Some(handle),
        })
    }

    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for ControlServer {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// A parsed request: method, path, the `X-TOTP` header.
pub(crate) struct Request {
    pub(crate) method: String,
    pub(crate) path: String,
    totp: Option<String>,
}

pub(crate) fn read_request(stream: &mut TcpStream) -> Option<Request> {
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 || buf.len() + n > 8192 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8_lossy(&buf);
    let mut lines = text.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_string(), first.next()?.to_string());
    let totp = lines.find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim()
            .eq_ignore_ascii_case("x-totp")
            .then(|| v.trim().to_string())
    });
    Some(Request { method, path, totp })
}

fn respond(stream: &mut TcpStream, code: u16, body: &Value) {
    write_response(stream, code, "application/json", &body.to_string());
}

/// Writes one HTTP/1.1 response and asks the client to close (shared with the metrics server).
pub(crate) fn write_response(stream: &mut TcpStream, code: u16, content_type: &str, body: &str) {
    let reason = match code {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        _ => "Service Unavailable",
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

fn audit(cfg: &ControlConfig, peer: SocketAddr, method: &str, path: &str, code: u16, why: &str) {
    let Some(p) = &cfg.audit else {
        return;
    };
    let line = json!({
        "ts_ms": std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64),
        "kind": "control",
        "peer": peer.ip().to_string(),
        "method": method,
        "path": path,
        "status": code,
        "outcome": why,
    });
    if let Ok(mut f) = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(p)
    {
        let _ = writeln!(f, "{line}");
    }
}

fn serve(
    mut stream: TcpStream,
    peer: SocketAddr,
    cfg: &ControlConfig,
    status: &Mutex<Value>,
    cmds: &Sender<ControlCmd>,
    used: &mut HashMap<String, u64>,
) -> Option<()> {
    stream.set_nonblocking(false).ok()?;
    if !cfg.allow.iter().any(|n| n.contains(peer.ip())) {
        audit(cfg, peer, "?", "?", 403, "address not on the allowlist");
        respond(&mut stream, 403, &json!({"error": "address not allowed"}));
        return Some(());
    }
    let Some(req) = read_request(&mut stream) else {
        respond(&mut stream, 400, &json!({"error": "malformed request"}));
        return Some(());
    };
    let (m, p) = (req.method.as_str(), req.path.as_str());
    let cmd = match (m, p) {
        ("GET", "/status") => {
            let v = status.lock().map(|v| v.clone()).unwrap_or(Value::Null);
            respond(&mut stream, 200, &v);
            return Some(());
        }
        ("POST", "/halt") => ControlCmd::Halt,
        ("POST", "/resume") => ControlCmd::Resume,
        ("POST", "/flatten") => ControlCmd::Flatten,
        (_, "/status" | "/halt" | "/resume" | "/flatten") => {
            respond(&mut stream, 405, &json!({"error": "method not allowed"}));
            return Some(());
        }
        _ => {
            respond(&mut stream, 404, &json!({"error": "no such endpoint"}));
            return Some(());
        }
    };
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let refused = match req.totp.as_deref() {
        None => Some("missing X-TOTP"),
        Some(code) => match totp::verify(&cfg.totp_secret, code, now_s) {
            None => Some("wrong X-TOTP"),
            Some(step) if used.get(p).is_some_and(|l| step <= *l) => {
                Some("X-TOTP code already used")
            }
            Some(step) => {
                used.insert(p.to_string(), step);
                None
            }
        },
    };
    if let Some(why) = refused {
        audit(cfg, peer, m, p, 401, why);
        respond(&mut stream, 401, &json!({"error": why}));
        return Some(());
    }
    if cmds.send(cmd).is_err() {
        audit(cfg, peer, m, p, 503, "the engine is not running");
        respond(
            &mut stream,
            503,
            &json!({"error": "the engine is not running"}),
        );
        return Some(());
    }
    audit(cfg, peer, m, p, 200, "accepted");
    respond(&mut stream, 200, &json!({"ok": true, "command": &p[1..]}));
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allowlist_nets() {
        let n = Net::parse("10.0.0.0/8").unwrap();
        assert!(n.contains("10.1.2.3".parse().unwrap()));
        assert!(!n.contains("11.0.0.1".parse().unwrap()));
        assert!(n.contains("::ffff:10.9.9.9".parse().unwrap()));
        let one = Net::parse("127.0.0.1").unwrap();
        assert!(one.contains("127.0.0.1".parse().unwrap()));
        assert!(!one.contains("127.0.0.2".parse().unwrap()));
        let v6 = Net::parse("fd00::/8").unwrap();
        assert!(v6.contains("fd12::1".parse().unwrap()));
        assert!(!v6.contains("fe80::1".parse().unwrap()));
        assert!(Net::parse("0.0.0.0/0")
            .unwrap()
            .contains("8.8.8.8".parse().unwrap()));
        assert!(Net::parse("10.0.0.0/33").is_err());
        assert!(Net::parse("localhost").is_err());
    }
}
