//! Blocking HTTP(S)/1.1 client — cold path only (the feed's snapshot helper thread, order-entry and
//! reconciliation calls), never the poll loop.
//!
//! - [`RestClient`]: one kept-alive connection to one base URL, opened lazily and reopened when the
//!   server closed it. Reuse saves the TCP and TLS handshakes (two to three round trips) per request.
//! - [`request`] / [`get`]: one request on a fresh connection with `Connection: close`.
//!
//! Both send through the same encoder and read through the same response reader: bodies framed by
//! `Content-Length`, by chunked encoding, or (without either) by the close; a read/write timeout;
//! the response headers kept for rate-limit accounting (`X-MBX-USED-WEIGHT-1M`).
//!
//! # When a request is sent twice
//! A server (or a load balancer in front of it) may close an idle kept connection at the moment a
//! request goes out on it. Before reusing a connection, [`RestClient::send`] checks that nothing
//! arrived on it while idle (a close, a TLS `close_notify`); that catches the common case without
//! sending anything. For the race that remains, it resends **once**, on a new connection, only when
//! all of these hold:
//! - the connection was reused (a freshly opened connection is never retried);
//! - writing the request failed, or the connection closed before a single response byte arrived
//!   (a timeout does not count: the server may still be working on the request);
//!
//! and never once any response byte has arrived. This is the signature of a server that closed the
//! idle connection without reading the request. It does not prove the server never acted on it, so a
//! resent POST could in principle be a duplicate: order requests carry client order ids
//! (`newClientOrderId` / `orderLinkId`), which the venues deduplicate, so a duplicate is refused
//! instead of being filled twice.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::http1::{encode_request, exchange, Failure};
pub use super::http1::{parse_response, HttpResponse};
use super::url::Endpoint;
use super::{describe_io, TransportError};

/// GETs `url` (http or https) with a timeout. `tls` is required for https.
pub fn get(
    url: &str,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    request("GET", url, &[], b"", tls, timeout)
}

/// Sends one request (`method` `url` with extra `headers` and `body`) on a new connection with
/// `Connection: close` and reads the whole response. For several requests to one venue prefer
/// [`RestClient`].
pub fn request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    let ep = Endpoint::parse(url)?;
    let mut conn = open(&ep, tls, timeout, url)?;
    let req = encode_request(
        method,
        &host_header(&ep),
        &ep.target,
        headers,
        body,
        "close",
    );
    let mut buf = Vec::with_capacity(64 * 1024);
    exchange(&mut conn, &req, &mut buf, is_head(method))
        .map(|(resp, _)| resp)
        .map_err(|f| f.into_error(url))
}

/// A kept-alive HTTP/1.1 connection to one venue's REST base URL (see the module doc for when a
/// request is resent).
pub struct RestClient {
    /// As given, without a trailing `/`.
    base: String,
    ep: Endpoint,
    /// The base URL's path, prefixed to every target (`""` for none).
    prefix: String,
    host_header: String,
    tls: Option<Arc<ClientConfig>>,
    timeout: Duration,
    conn: Option<Conn>,
    opened: u64,
    /// Response bytes, reused between requests.
    buf: Vec<u8>,
}

impl std::fmt::Debug for RestClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RestClient")
            .field("base", &self.base)
            .field("connected", &self.conn.is_some())
            .field("connections_opened", &self.opened)
            .finish()
    }
}

impl RestClient {
    /// `base` like "https://127.0.0.1:9443" (http or https); TLS config required for https.
    /// Nothing is connected until the first [`send`](Self::send).
    pub fn new(
        base: &str,
        tls: Option<Arc<ClientConfig>>,
        timeout: Duration,
    ) -> Result<Self, TransportError> {
        let base = base.trim_end_matches('/').to_string();
        let ep = Endpoint::parse(&base)?;
        if ep.target.contains('?') {
            return Err(TransportError::BadUrl {
                url: base,
                why: "a REST base URL has no query; pass it with each request",
            });
        }
        if ep.tls && tls.is_none() {
            return Err(TransportError::Http {
                url: base,
                why: "https:// needs a TLS client configuration".into(),
            });
        }
        Ok(Self {
            prefix: ep.target.trim_end_matches('/').to_string(),
            host_header: host_header(&ep),
            base,
            ep,
            tls,
            timeout,
            conn: None,
            opened: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// One request on the kept-alive connection (opened lazily; reopened when the server closed
    /// it). `target` is path + optional "?query". Returns the whole response, whatever its status.
    pub fn send(
        &mut self,
        method: &str,
        target: &str,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Result<HttpResponse, TransportError> {
        let slash = if target.starts_with('/') { "" } else { "/" };
        let path = format!("{}{slash}{target}", self.prefix);
        let caller_closes = headers
            .iter()
            .any(|(k, v)| k.eq_ignore_ascii_case("connection") && v.eq_ignore_ascii_case("close"));
        let req = encode_request(
            method,
            &self.host_header,
            &path,
            headers,
            body,
            "keep-alive",
        );
        if self.conn.as_ref().is_some_and(|c| !c.idle_and_open()) {
            self.conn = None;
        }
        let reused = self.conn.is_some();
        let mut conn = match self.conn.take() {
            Some(c) => c,
            None => self.open()?,
        };
        let head_only = is_head(method);
        let outcome = match exchange(&mut conn, &req, &mut self.buf, head_only) {
            Err(Failure::Unanswered(e)) if reused => {
                tracing::debug!(
                    "{}: kept connection closed before answering ({}); resending once on a new connection",
                    self.base,
                    describe_io(&e)
                );
                conn = self.open()?;
                exchange(&mut conn, &req, &mut self.buf, head_only)
            }
            other => other,
        };
        let (resp, keep) = outcome.map_err(|f| f.into_error(&format!("{}{target}", self.base)))?;
        if keep && !caller_closes {
            self.conn = Some(conn);
        }
        Ok(resp)
    }

    /// TCP connections opened so far (1 for any number of requests on one kept connection).
    pub fn connections_opened(&self) -> u64 {
        self.opened
    }

    pub fn base(&self) -> &str {
        &self.base
    }

    fn open(&mut self) -> Result<Conn, TransportError> {
        let conn = open(&self.ep, self.tls.as_ref(), self.timeout, &self.base)?;
        self.opened += 1;
        Ok(conn)
    }
}

/// An open connection, plain or TLS.
enum Conn {
    Plain(TcpStream),
    // (boxed: a rustls connection is large)
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Conn {
    fn tcp(&self) -> &TcpStream {
        match self {
            Conn::Plain(s) => s,
            Conn::Tls(s) => &s.sock,
        }
    }

    /// Whether an idle kept connection is still usable: nothing arrived since the last response.
    /// Anything readable while no request is outstanding is a close (EOF, reset, a TLS
    /// `close_notify`) or bytes no request asked for; either way the connection is done.
    fn idle_and_open(&self) -> bool {
        let tcp = self.tcp();
        if tcp.set_nonblocking(true).is_err() {
            return false;
        }
        let peeked = tcp.peek(&mut [0u8; 1]);
        let restored = tcp.set_nonblocking(false).is_ok();
        restored && matches!(peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.read(buf),
            Conn::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            Conn::Plain(s) => s.write(buf),
            Conn::Tls(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Conn::Plain(s) => s.flush(),
            Conn::Tls(s) => s.flush(),
        }
    }
}

/// Connects (TCP; the TLS handshake runs on the first write). `url` names the target in errors.
fn open(
    ep: &Endpoint,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
    url: &str,
) -> Result<Conn, TransportError> {
    let http = |why: String| TransportError::Http {
        url: url.to_string(),
        why,
    };
    // Checked before connecting so a missing TLS configuration costs no connection.
    let tls_setup = match ep.tls {
        true => {
            let cfg =
                tls.ok_or_else(|| http("https:// needs a TLS client configuration".into()))?;
            let name = ServerName::try_from(ep.host.clone()).map_err(|e| http(e.to_string()))?;
            Some((cfg, name))
        }
        false => None,
    };
    let addr = (ep.host.as_str(), ep.port)
        .to_socket_addrs()
        .map_err(|e| TransportError::Resolve {
            host: ep.host.clone(),
            why: e.to_string(),
        })?
        .next()
        .ok_or_else(|| TransportError::Resolve {
            host: ep.host.clone(),
            why: "no address".into(),
        })?;
    let tcp =
        TcpStream::connect_timeout(&addr, timeout).map_err(|source| TransportError::Connect {
            addr: ep.authority(),
            source,
        })?;
    tcp.set_read_timeout(Some(timeout)).ok();
    tcp.set_write_timeout(Some(timeout)).ok();
    tcp.set_nodelay(true).ok();
    Ok(match tls_setup {
        Some((cfg, name)) => {
            let conn = ClientConnection::new(cfg.clone(), name).map_err(|e| http(e.to_string()))?;
            Conn::Tls(Box::new(StreamOwned::new(conn, tcp)))
        }
        None => Conn::Plain(tcp),
    })
}

/// `Host` header value: the port only when it is not the scheme's default.
fn host_header(ep: &Endpoint) -> String {
    let host = if ep.host.contains(':') {
        format!("[{}]", ep.host)
    } else {
        ep.host.clone()
    };
    match (ep.tls, ep.port) {
        (true, 443) | (false, 80) => host,
        (_, port) => format!("{host}:{port}"),
    }
}

fn is_head(method: &str) -> bool {
    method.eq_ignore_ascii_case("HEAD")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufRead, BufReader};
    use std::net::TcpListener;

    /// What the test server does with one request on a connection.
    enum Step {
        /// Read the request, write these bytes.
        Reply(&'static [u8]),
        /// Read the request, close without answering.
        Hangup,
        /// Write these bytes and close without reading anything (an idle close).
        Close(&'static [u8]),
    }

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    /// Serves one connection per script entry, in order, then reports the first line of the next
    /// connection's request (a sentinel the test sends, unless the client connected again).
    /// Returns each request's first line and body.
    fn server(script: Vec<Vec<Step>>) -> (String, std::thread::JoinHandle<Vec<String>>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let handle = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for conn in script {
                let (sock, _) = listener.accept().unwrap();
                let mut r = BufReader::new(sock.try_clone().unwrap());
                let mut w = sock;
                for step in conn {
                    if let Step::Close(bytes) = step {
                        w.write_all(bytes).unwrap();
                        break;
                    }
                    seen.push(read_request(&mut r));
                    match step {
                        Step::Reply(bytes) => w.write_all(bytes).unwrap(),
                        _ => break,
                    }
                }
            }
            let (sock, _) = listener.accept().unwrap();
            seen.push(read_request(&mut BufReader::new(sock)));
            seen
        });
        (base, handle)
    }

    fn read_request(r: &mut BufReader<TcpStream>) -> String {
        let (mut first, mut len) = (String::new(), 0usize);
        r.read_line(&mut first).unwrap();
        loop {
            let mut l = String::new();
            r.read_line(&mut l).unwrap();
            if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                len = v.trim().parse().unwrap();
            }
            if l == "\r\n" || l.is_empty() {
                break;
            }
        }
        let mut body = vec![0u8; len];
        r.read_exact(&mut body).unwrap();
        format!("{} {}", first.trim_end(), String::from_utf8_lossy(&body))
    }

    /// Sends the sentinel request the server's last accept expects.
    fn sentinel(base: &str) {
        let addr = base.trim_start_matches("http://");
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"SENTINEL\r\n\r\n").unwrap();
    }

    fn client(base: &str) -> RestClient {
        RestClient::new(base, None, Duration::from_secs(5)).unwrap()
    }

    #[test]
    fn three_requests_share_one_connection() {
        let (base, srv) = server(vec![vec![
            Step::Reply(OK),
            Step::Reply(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
            Step::Reply(
                b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
            ),
        ]]);
        let mut c = client(&base);
        let hdr = vec![("X-BAPI-SIGN".to_string(), "abc".to_string())];
        assert_eq!(c.send("GET", "/a?x=1", &hdr, b"").unwrap().body, b"ok");
        assert_eq!(c.send("GET", "/b", &[], b"").unwrap().status, 404);
        assert_eq!(c.send("POST", "/c", &[], b"{}").unwrap().body, b"abc");
        assert_eq!(c.connections_opened(), 1);
        sentinel(&base);
        let seen = srv.join().unwrap();
        assert_eq!(
            seen[..3],
            [
                "GET /a?x=1 HTTP/1.1 ",
                "GET /b HTTP/1.1 ",
                "POST /c HTTP/1.1 {}"
            ]
        );
        assert_eq!(seen[3], "SENTINEL ");
    }

    #[test]
    fn server_connection_close_makes_the_next_send_reconnect() {
        let close = b"HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok";
        let (base, srv) = server(vec![vec![Step::Reply(close)], vec![Step::Reply(OK)]]);
        let mut c = client(&base);
        c.send("GET", "/1", &[], b"").unwrap();
        assert_eq!(c.send("GET", "/2", &[], b"").unwrap().body, b"ok");
        assert_eq!(c.connections_opened(), 2);
        sentinel(&base);
        assert_eq!(srv.join().unwrap().len(), 3);
    }

    #[test]
    fn kept_connection_closed_unanswered_is_resent_once() {
        let (base, srv) = server(vec![
            vec![Step::Reply(OK), Step::Hangup],
            vec![Step::Reply(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nfresh",
            )],
        ]);
        let mut c = client(&base);
        c.send("GET", "/1", &[], b"").unwrap();
        let r = c.send("POST", "/order", &[], b"id=7").unwrap();
        assert_eq!(
            (r.body.as_slice(), c.connections_opened()),
            (&b"fresh"[..], 2)
        );
        sentinel(&base);
        let seen = srv.join().unwrap();
        assert_eq!(seen[1], seen[2], "the same request, resent");
        assert_eq!(seen[3], "SENTINEL ");
    }

    #[test]
    fn idle_close_is_noticed_before_sending() {
        let (base, srv) = server(vec![
            vec![Step::Reply(OK), Step::Close(b"")],
            vec![Step::Reply(OK)],
        ]);
        let mut c = client(&base);
        c.send("GET", "/1", &[], b"").unwrap();
        // Wait until the server's close has reached the client's socket.
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while c.conn.as_ref().is_some_and(Conn::idle_and_open)
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_millis(5));
        }
        c.send("GET", "/2", &[], b"").unwrap();
        assert_eq!(c.connections_opened(), 2);
        sentinel(&base);
        assert_eq!(
            srv.join().unwrap(),
            ["GET /1 HTTP/1.1 ", "GET /2 HTTP/1.1 ", "SENTINEL "]
        );
    }

    #[test]
    fn never_resent_on_a_fresh_connection_or_after_response_bytes() {
        // Fresh connection closed unanswered: an error, no second connection.
        let (base, srv) = server(vec![vec![Step::Hangup]]);
        let mut c = client(&base);
        assert!(c.send("POST", "/order", &[], b"id=1").is_err());
        sentinel(&base);
        assert_eq!(srv.join().unwrap()[1], "SENTINEL ");
        // Kept connection cut mid-response: an error, no resend.
        let cut = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nab";
        let (base, srv) = server(vec![vec![Step::Reply(OK), Step::Reply(cut)]]);
        let mut c = client(&base);
        c.send("GET", "/1", &[], b"").unwrap();
        let e = c.send("POST", "/order", &[], b"id=2").unwrap_err();
        assert!(e.to_string().contains("mid-response"), "{e}");
        assert_eq!(c.connections_opened(), 1);
        sentinel(&base);
        assert_eq!(srv.join().unwrap()[2], "SENTINEL ");
    }

    #[test]
    fn chunked_body_on_a_kept_connection() {
        let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let (base, srv) = server(vec![vec![Step::Reply(chunked), Step::Reply(OK)]]);
        let mut c = client(&base);
        assert_eq!(c.send("GET", "/1", &[], b"").unwrap().body, b"abcde");
        assert_eq!(c.send("GET", "/2", &[], b"").unwrap().body, b"ok");
        assert_eq!(c.connections_opened(), 1);
        sentinel(&base);
        srv.join().unwrap();
    }

    #[test]
    fn one_shot_request_sends_connection_close() {
        let (base, srv) = server(vec![vec![Step::Reply(OK)]]);
        let hdr = vec![("X-BAPI-SIGN".to_string(), "abc".to_string())];
        let r = request(
            "POST",
            &format!("{base}/v5/order/create"),
            &hdr,
            br#"{"a":1}"#,
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        sentinel(&base);
        assert_eq!(
            srv.join().unwrap()[0],
            r#"POST /v5/order/create HTTP/1.1 {"a":1}"#
        );
        let req = encode_request("GET", "h", "/x", &hdr, b"", "close");
        let text = String::from_utf8(req).unwrap();
        assert!(text.contains("Connection: close\r\n") && text.contains("X-BAPI-SIGN: abc\r\n"));
        assert!(RestClient::new("https://127.0.0.1:1", None, Duration::from_secs(1)).is_err());
    }
}
