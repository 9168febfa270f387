//! Minimal HTTP/1.1 for the mock: read request heads on a kept-alive connection, answer JSON, or
//! upgrade to WebSocket.
//!
//! A connection serves REST requests until the client sends `Connection: close` (or speaks
//! HTTP/1.0 without `keep-alive`), stays idle past [`IDLE_TIMEOUT`], or the mock stops. Responses
//! say `Connection: keep-alive`, or `Connection: close` on the last one.

use std::cell::Cell;
use std::io::{Read, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use super::server::ServerIo;

/// How long a kept connection may sit idle between requests before the mock closes it.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(10);

/// How often an idle connection looks at the stop flag.
const STOP_POLL: Duration = Duration::from_millis(100);

/// Largest request body read and thrown away on a path that takes none.
const MAX_IGNORED_BODY: usize = 1 << 20;

/// A parsed request head.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    /// Path and query.
    pub target: String,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// A query parameter's value.
    pub fn query(&self, name: &str) -> Option<&str> {
        let q = self.target.split_once('?')?.1;
        q.split('&')
            .find_map(|kv| kv.strip_prefix(name)?.strip_prefix('='))
    }

    pub fn is_websocket_upgrade(&self) -> bool {
        self.header("upgrade")
            .is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
    }

    /// Whether the client wants the connection closed after this request's response.
    pub fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case("close")))
    }
}

/// Waits for the next request on a kept connection: `Ok(None)` when the client closed it, it sat
/// idle for [`IDLE_TIMEOUT`], or `stop` was raised. Leaves the socket's read timeout at
/// [`IDLE_TIMEOUT`] for the rest of the request (head, body, WebSocket handshake).
pub fn next_request(io: &mut ServerIo, stop: &AtomicBool) -> std::io::Result<Option<Request>> {
    use std::io::ErrorKind;
    io.tcp().set_read_timeout(Some(STOP_POLL))?;
    let idle_since = Instant::now();
    let mut first = [0u8; 1];
    // One byte at a time so a timeout never splits a request head; a TLS record cut by the
    // timeout stays buffered inside rustls and is completed by the next read.
    loop {
        if stop.load(Ordering::Relaxed) {
            return Ok(None);
        }
        match io.read(&mut first) {
            Ok(0) => return Ok(None),
            Ok(_) => break,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                if idle_since.elapsed() >= IDLE_TIMEOUT {
                    return Ok(None);
                }
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::UnexpectedEof
                        | ErrorKind::ConnectionReset
                        | ErrorKind::ConnectionAborted
                ) =>
            {
                return Ok(None)
            }
            Err(e) => return Err(e),
        }
    }
    io.tcp().set_read_timeout(Some(IDLE_TIMEOUT))?;
    read_request(&mut (&first[..]).chain(&mut *io)).map(Some)
}

/// Reads and drops a request body no handler reads, so the next request on the connection starts
/// where it should.
pub fn skip_body<S: Read>(s: &mut S, req: &Request) -> std::io::Result<()> {
    if req
        .header("transfer-encoding")
        .is_some_and(|v| !v.eq_ignore_ascii_case("identity"))
    {
        return Err(std::io::Error::other(
            "chunked request bodies are not supported",
        ));
    }
    let len = req
        .header("content-length")
        .map(|v| v.parse::<usize>())
        .transpose()
        .map_err(|_| std::io::Error::other("bad Content-Length"))?
        .unwrap_or(0);
    if len > MAX_IGNORED_BODY {
        return Err(std::io::Error::other("request body too large"));
    }
    std::io::copy(&mut s.take(len as u64), &mut std::io::sink())?;
    Ok(())
}

/// Reads bytes until the end of the request head (at most 16 KiB).
pub fn read_request<S: Read>(s: &mut S) -> std::io::Result<Request> {
    let mut buf = Vec::with_capacity(1024);
    let mut byte = [0u8; 1];
    // Byte-wise so nothing after the head (the first WebSocket frame) is consumed here.
    while !buf.ends_with(b"\r\n\r\n") {
        if s.read(&mut byte)? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "connection closed before request",
            ));
        }
        buf.push(byte[0]);
        if buf.len() > 16 * 1024 {
            return Err(std::io::Error::other("request head too large"));
        }
    }
    let head = String::from_utf8_lossy(&buf);
    let mut lines = head.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let method = first.next().unwrap_or("").to_string();
    let target = first.next().unwrap_or("/").to_string();
    let version = first.next().unwrap_or("");
    let mut headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    // HTTP/1.0 closes after each response unless the client asks to keep the connection; recorded
    // as the header that rule implies, so `wants_close` has one place to look.
    let keep_alive_asked = headers
        .iter()
        .any(|(k, v)| k == "connection" && v.to_ascii_lowercase().contains("keep-alive"));
    if version == "HTTP/1.0" && !keep_alive_asked {
        headers.retain(|(k, _)| k != "connection");
        headers.push(("connection".into(), "close".into()));
    }
    Ok(Request {
        method,
        target,
        headers,
    })
}

thread_local! {
    /// Whether the response being written on this thread is its connection's last. The mock runs
    /// one thread per connection (see `server::serve`), so this is per connection; it lets the
    /// handlers keep calling [`respond`] without knowing about connection reuse.
    static LAST_RESPONSE: Cell<bool> = const { Cell::new(false) };
}

/// Marks whether the responses this thread writes next are its connection's last (they then say
/// `Connection: close`).
pub fn set_last_response(last: bool) {
    LAST_RESPONSE.with(|c| c.set(last));
}

/// Writes a complete response with a JSON (or text) body; `Connection: keep-alive` unless this
/// connection was marked as closing (see [`set_last_response`]).
pub fn respond<S: Write>(
    s: &mut S,
    status: u16,
    reason: &str,
    extra_headers: &[(&str, String)],
    body: &[u8],
) -> std::io::Result<()> {
    let close = LAST_RESPONSE.with(Cell::get);
    respond_with(s, status, reason, extra_headers, body, close)
}

/// [`respond`] with the `Connection` header chosen by the caller: `close` for the connection's
/// last response, `keep-alive` otherwise.
pub fn respond_with<S: Write>(
    s: &mut S,
    status: u16,
    reason: &str,
    extra_headers: &[(&str, String)],
    body: &[u8],
    close: bool,
) -> std::io::Result<()> {
    let connection = if close { "close" } else { "keep-alive" };
    let mut head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: {connection}\r\n",
        body.len()
    );
    for (k, v) in extra_headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("\r\n");
    s.write_all(head.as_bytes())?;
    s.write_all(body)?;
    s.flush()
}

/// Completes the WebSocket upgrade (RFC 6455 §4.2.2).
pub fn accept_websocket<S: Write>(s: &mut S, req: &Request) -> std::io::Result<()> {
    let key = req
        .header("sec-websocket-key")
        .ok_or_else(|| std::io::Error::other("missing Sec-WebSocket-Key"))?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    let head = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    s.write_all(head.as_bytes())?;
    s.flush()
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering::Relaxed;

    use qalpha_engine::event::Venue;
    use qalpha_engine::replay::Speed;
    use qalpha_engine::transport::{rest, tls, RestClient};

    use super::super::{FaultSpec, MarketSource, MockExchange, MockOptions, SyntheticSpec};
    use super::*;

    #[test]
    fn rest_requests_share_one_tls_connection_until_the_client_closes() {
        let dir = std::env::temp_dir().join(format!("qa-mock-keepalive-{}", std::process::id()));
        let m = MockExchange::start(MockOptions {
            venue: Venue::BinanceUsdm,
            source: MarketSource::Synthetic(SyntheticSpec::default()),
            listen: "127.0.0.1:0".parse().unwrap(),
            tls: true,
            cert_out: Some(dir.clone()),
            speed: Speed::Factor(1.0),
            faults: FaultSpec::default(),
            seed: 1,
        })
        .unwrap();
        let tls = tls::client_config(m.ca_file.as_deref()).unwrap();
        let base = format!("https://{}", m.addr);
        let timeout = Duration::from_secs(5);
        let mut c = RestClient::new(&base, Some(tls.clone()), timeout).unwrap();
        for _ in 0..3 {
            let r = c.send("GET", "/fapi/v1/time", &[], b"").unwrap();
            assert_eq!(
                (r.status, r.header("connection")),
                (200, Some("keep-alive"))
            );
        }
        // A body on a path that takes none is skipped, not read as the next request.
        let r = c.send("POST", "/fapi/v1/nope", &[], b"x=1").unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(
            c.send("GET", "/fapi/v1/time", &[], b"").unwrap().status,
            200
        );
        assert_eq!(c.connections_opened(), 1);
        assert_eq!(m.counters.connections.load(Relaxed), 1);
        assert_eq!(m.counters.rest_requests.load(Relaxed), 5);
        let close = [("Connection".to_string(), "close".to_string())];
        let r = c.send("GET", "/fapi/v1/time", &close, b"").unwrap();
        assert_eq!(r.header("connection"), Some("close"));
        c.send("GET", "/fapi/v1/time", &[], b"").unwrap();
        assert_eq!(c.connections_opened(), 2);
        // The one-shot client asks to close, and is told so.
        let r = rest::get(&format!("{base}/fapi/v1/time"), Some(&tls), timeout).unwrap();
        assert_eq!((r.status, r.header("connection")), (200, Some("close")));
        assert_eq!(m.counters.connections.load(Relaxed), 3);
        m.stop();
        std::fs::remove_dir_all(&dir).ok();
    }

    #[test]
    fn http10_and_close_header_mean_close() {
        let mut s = &b"GET /x HTTP/1.0\r\nHost: h\r\n\r\n"[..];
        assert!(read_request(&mut s).unwrap().wants_close());
        let mut s = &b"GET /x HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"[..];
        assert!(!read_request(&mut s).unwrap().wants_close());
        let mut s = &b"GET /x HTTP/1.1\r\nConnection: close\r\n\r\n"[..];
        assert!(read_request(&mut s).unwrap().wants_close());
        let mut s = &b"GET /x HTTP/1.1\r\n\r\n"[..];
        assert!(!read_request(&mut s).unwrap().wants_close());
        let mut out = Vec::new();
        respond_with(&mut out, 200, "OK", &[], b"{}", true).unwrap();
        assert!(String::from_utf8(out)
            .unwrap()
            .contains("Connection: close\r\n"));
    }
}
