//! Just enough HTTP/1.1 to follow a market-data connection: request and response heads, the
//! WebSocket upgrade handshake, and response bodies (Content-Length, chunked, or until close;
//! gzip/deflate content encodings undone, as an HTTP client would before the engine saw the body).
//!
//! Parsers take the bytes received so far and answer [`Parse::Partial`] until a whole head or
//! body is there, so they can be retried as TCP delivers more. Heads are capped at
//! [`MAX_HEAD`]: a stream that has not produced `\r\n\r\n` by then is not HTTP.

use std::io::Read;
use std::net::SocketAddr;

/// Longest request or response head accepted.
pub const MAX_HEAD: usize = 64 << 10;
/// Largest body recorded (the capture format's payload limit).
pub const MAX_BODY: usize = 64 << 20;

/// Result of parsing from the front of a buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parse<T> {
    /// Parsed; the value and how many bytes it used.
    Done(T, usize),
    /// Not enough bytes yet.
    Partial,
    /// Not HTTP (or not a framing this parser can follow).
    Invalid(String),
}

/// How a message body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyLen {
    None,
    Length(u64),
    Chunked,
    /// Until the sender closes the connection.
    UntilClose,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestHead {
    pub method: String,
    /// The request target as sent (`/path?query`, or absolute-form).
    pub target: String,
    pub host: Option<String>,
    pub upgrade_websocket: bool,
    pub body: BodyLen,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResponseHead {
    pub status: u16,
    pub upgrade_websocket: bool,
    /// `Sec-WebSocket-Extensions` names `permessage-deflate`.
    pub deflate: bool,
    pub content_encoding: Option<String>,
    pub chunked: bool,
    pub content_length: Option<u64>,
}

impl ResponseHead {
    /// The body framing of this response to a request made with `method` (RFC 9112 §6.3).
    pub fn body_len(&self, method: &str) -> BodyLen {
        if method.eq_ignore_ascii_case("HEAD")
            || (100..200).contains(&self.status)
            || self.status == 204
            || self.status == 304
        {
            BodyLen::None
        } else if self.chunked {
            BodyLen::Chunked
        } else if let Some(n) = self.content_length {
            BodyLen::Length(n)
        } else {
            BodyLen::UntilClose
        }
    }
}

const METHODS: [&str; 9] = [
    "GET", "POST", "PUT", "DELETE", "HEAD", "OPTIONS", "PATCH", "CONNECT", "TRACE",
];

/// Whether `b` could be the start of an HTTP request (used to tell client from server).
pub fn looks_like_request(b: &[u8]) -> bool {
    METHODS.iter().any(|m| {
        let m = m.as_bytes();
        let n = b.len().min(m.len() + 1);
        let mut want = m.to_vec();
        want.push(b' ');
        b[..n] == want[..n]
    })
}

/// Splits a head into its first line and header lines; `Done` carries the head's length.
fn split_head(b: &[u8]) -> Parse<(String, Vec<(String, String)>)> {
    let Some(end) = b.windows(4).take(MAX_HEAD).position(|w| w == b"\r\n\r\n") else {
        return if b.len() >= MAX_HEAD {
            Parse::Invalid(format!("no end of HTTP head within {MAX_HEAD} bytes"))
        } else {
            Parse::Partial
        };
    };
    let Ok(text) = std::str::from_utf8(&b[..end]) else {
        return Parse::Invalid("HTTP head is not UTF-8".into());
    };
    let mut lines = text.split("\r\n");
    let first = lines.next().unwrap_or_default().to_string();
    let mut headers = Vec::new();
    for l in lines {
        let Some((k, v)) = l.split_once(':') else {
            return Parse::Invalid(format!("malformed header line {l:?}"));
        };
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    Parse::Done((first, headers), end + 4)
}

fn header<'a>(h: &'a [(String, String)], name: &str) -> Option<&'a str> {
    h.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
}

fn has_token(h: &[(String, String)], name: &str, token: &str) -> bool {
    h.iter()
        .filter(|(k, _)| k == name)
        .flat_map(|(_, v)| v.split([',', ';']))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

fn content_length(h: &[(String, String)]) -> Result<Option<u64>, String> {
    match header(h, "content-length") {
        None => Ok(None),
        Some(v) => v
            .parse()
            .map(Some)
            .map_err(|_| format!("bad Content-Length {v:?}")),
    }
}

/// Parses a request head from the front of `b`.
pub fn parse_request(b: &[u8]) -> Parse<RequestHead> {
    let (first, h, used) = match split_head(b) {
        Parse::Done((f, h), n) => (f, h, n),
        Parse::Partial => return Parse::Partial,
        Parse::Invalid(e) => return Parse::Invalid(e),
    };
    let mut parts = first.split(' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Parse::Invalid(format!("malformed request line {first:?}"));
    };
    if !version.starts_with("HTTP/1.") || !METHODS.contains(&method) {
        return Parse::Invalid(format!("not an HTTP/1.x request: {first:?}"));
    }
    let cl = match content_length(&h) {
        Ok(c) => c,
        Err(e) => return Parse::Invalid(e),
    };
    let body = if has_token(&h, "transfer-encoding", "chunked") {
        BodyLen::Chunked
    } else {
        cl.map_or(BodyLen::None, BodyLen::Length)
    };
    Parse::Done(
        RequestHead {
            method: method.to_string(),
            target: target.to_string(),
            host: header(&h, "host").map(str::to_string),
            upgrade_websocket: has_token(&h, "upgrade", "websocket"),
            body,
        },
        used,
    )
}

/// Parses a response head from the front of `b`.
pub fn parse_response(b: &[u8]) -> Parse<ResponseHead> {
    let (first, h, used) = match split_head(b) {
        Parse::Done((f, h), n) => (f, h, n),
        Parse::Partial => return Parse::Partial,
        Parse::Invalid(e) => return Parse::Invalid(e),
    };
    let mut parts = first.splitn(3, ' ');
    let (Some(version), Some(code)) = (parts.next(), parts.next()) else {
        return Parse::Invalid(format!("malformed status line {first:?}"));
    };
    let Ok(status) = code.parse::<u16>() else {
        return Parse::Invalid(format!("malformed status line {first:?}"));
    };
    if !version.starts_with("HTTP/1.") {
        return Parse::Invalid(format!("not an HTTP/1.x response: {first:?}"));
    }
    let content_length = match content_length(&h) {
        Ok(c) => c,
        Err(e) => return Parse::Invalid(e),
    };
    Parse::Done(
        ResponseHead {
            status,
            upgrade_websocket: status == 101 && has_token(&h, "upgrade", "websocket"),
            deflate: has_token(&h, "sec-websocket-extensions", "permessage-deflate"),
            content_encoding: header(&h, "content-encoding").map(|v| v.to_ascii_lowercase()),
            chunked: has_token(&h, "transfer-encoding", "chunked"),
            content_length,
        },
        used,
    )
}

/// Parses a body framed by `len` from the front of `b`. `closed`: the sender has closed, so an
/// until-close body is complete. Returns the raw (still content-encoded) body.
pub fn parse_body(b: &[u8], len: BodyLen, closed: bool) -> Parse<Vec<u8>> {
    match len {
        BodyLen::None => Parse::Done(Vec::new(), 0),
        BodyLen::Length(n) if n > MAX_BODY as u64 => {
            Parse::Invalid(format!("body of {n} bytes exceeds the limit"))
        }
        BodyLen::Length(n) => {
            let n = n as usize;
            if b.len() >= n {
                Parse::Done(b[..n].to_vec(), n)
            } else {
                Parse::Partial
            }
        }
        BodyLen::UntilClose if closed => Parse::Done(b.to_vec(), b.len()),
        BodyLen::UntilClose => Parse::Partial,
        BodyLen::Chunked => parse_chunked(b),
    }
}

/// Chunked transfer coding (RFC 9112 §7.1): walks the chunk headers first (cheap to repeat as
/// bytes arrive), copies the data once the last chunk and trailers are in.
fn parse_chunked(b: &[u8]) -> Parse<Vec<u8>> {
    let mut at = 0usize;
    let mut spans = Vec::new();
    let mut total = 0usize;
    loop {
        let Some(eol) = b[at..].windows(2).position(|w| w == b"\r\n") else {
            return if b.len() - at > 1024 {
                Parse::Invalid("chunk size line too long".into())
            } else {
                Parse::Partial
            };
        };
        let line = String::from_utf8_lossy(&b[at..at + eol]);
        let hex = line.split(';').next().unwrap_or_default().trim();
        let Ok(size) = usize::from_str_radix(hex, 16) else {
            return Parse::Invalid(format!("bad chunk size {hex:?}"));
        };
        at += eol + 2;
        if size == 0 {
            // Trailer section: header lines until an empty line.
            loop {
                let Some(eol) = b[at..].windows(2).position(|w| w == b"\r\n") else {
                    return Parse::Partial;
                };
                at += eol + 2;
                if eol == 0 {
                    let mut body = Vec::with_capacity(total);
                    for (s, n) in spans {
                        body.extend_from_slice(&b[s..s + n]);
                    }
                    return Parse::Done(body, at);
                }
            }
        }
        total += size;
        if total > MAX_BODY {
            return Parse::Invalid("chunked body exceeds the limit".into());
        }
        if b.len() < at + size + 2 {
            return Parse::Partial;
        }
        if &b[at + size..at + size + 2] != b"\r\n" {
            return Parse::Invalid("chunk not followed by CRLF".into());
        }
        spans.push((at, size));
        at += size + 2;
    }
}

/// Undoes a `Content-Encoding` (gzip, deflate); identity and absent pass through.
pub fn decode_content(body: Vec<u8>, encoding: Option<&str>) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let res = match encoding {
        None | Some("identity") => return Ok(body),
        Some("gzip") | Some("x-gzip") => flate2::read::MultiGzDecoder::new(&body[..])
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut out),
        Some("deflate") => flate2::read::ZlibDecoder::new(&body[..])
            .take(MAX_BODY as u64 + 1)
            .read_to_end(&mut out),
        Some(other) => return Err(format!("content encoding {other:?} is not supported")),
    };
    match res {
        Ok(_) if out.len() > MAX_BODY => Err("decoded body exceeds the limit".into()),
        Ok(_) => Ok(out),
        Err(e) => Err(format!(
            "cannot decode {} body: {e}",
            encoding.unwrap_or("?")
        )),
    }
}

/// A request head plus its body (skipped), so the next request starts where it should.
pub fn parse_request_with_body(b: &[u8]) -> Parse<RequestHead> {
    match parse_request(b) {
        Parse::Done(req, n) => match parse_body(&b[n..], req.body, false) {
            Parse::Done(_, m) => Parse::Done(req, n + m),
            Parse::Partial => Parse::Partial,
            Parse::Invalid(e) => Parse::Invalid(e),
        },
        other => other,
    }
}

/// `scheme://HOST:PORT/PATH?QUERY`: host from the Host header (else the server's address), port
/// from the TCP connection (the port actually used), path and query from the request target.
pub fn url_of(scheme: &str, req: &RequestHead, server: SocketAddr) -> String {
    let (target_host, path) = match req.target.split_once("://") {
        Some((_, rest)) => match rest.find('/') {
            Some(i) => (Some(&rest[..i]), &rest[i..]),
            None => (Some(rest), "/"),
        },
        None if req.target.starts_with('/') => (None, req.target.as_str()),
        None => (None, "/"),
    };
    let host = target_host.or(req.host.as_deref()).map(strip_port);
    let host = match host {
        Some(h) if !h.is_empty() => h.to_string(),
        _ => match server.ip() {
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            ip => ip.to_string(),
        },
    };
    format!("{scheme}://{host}:{}{path}", server.port())
}

fn strip_port(h: &str) -> &str {
    if h.starts_with('[') {
        return h.find(']').map_or(h, |i| &h[..=i]);
    }
    match h.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => h,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upgrade_request_and_response() {
        let req = b"GET /stream?streams=btcusdt@depth@0ms HTTP/1.1\r\nHost: 127.0.0.1:9000\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x02{}";
        for cut in 0..req.len() - 4 {
            assert_eq!(parse_request(&req[..cut]), Parse::Partial, "{cut}");
        }
        let Parse::Done(r, used) = parse_request(req) else {
            panic!()
        };
        assert_eq!(&req[used..], b"\x81\x02{}");
        assert_eq!(r.target, "/stream?streams=btcusdt@depth@0ms");
        assert_eq!(r.host.as_deref(), Some("127.0.0.1:9000"));
        assert!(r.upgrade_websocket);
        let resp = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: Upgrade\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n";
        let Parse::Done(h, n) = parse_response(resp) else {
            panic!()
        };
        assert_eq!(n, resp.len());
        assert!(h.upgrade_websocket && h.deflate);
        assert_eq!(h.body_len("GET"), BodyLen::None);
        assert!(
            looks_like_request(b"GE")
                && looks_like_request(b"GET /")
                && !looks_like_request(b"\x16\x03\x01")
        );
        assert!(matches!(
            parse_request(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n"),
            Parse::Invalid(_)
        ));
    }

    #[test]
    fn urls_from_request_line_host_and_connection() {
        let req = |target: &str, host: Option<&str>| RequestHead {
            method: "GET".into(),
            target: target.into(),
            host: host.map(str::to_string),
            upgrade_websocket: false,
            body: BodyLen::None,
        };
        let v4: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        let v6: SocketAddr = "[::1]:443".parse().unwrap();
        let r = req("/stream?streams=a/b", Some("fstream.binance.com:9000"));
        assert_eq!(
            url_of("ws", &r, v4),
            "ws://fstream.binance.com:9000/stream?streams=a/b"
        );
        let r = req("/fapi/v1/depth?symbol=X", None);
        assert_eq!(
            url_of("http", &r, v4),
            "http://127.0.0.1:9000/fapi/v1/depth?symbol=X"
        );
        assert_eq!(
            url_of("http", &r, v6),
            "http://[::1]:443/fapi/v1/depth?symbol=X"
        );
        let r = req("/x", Some("[::1]:443"));
        assert_eq!(url_of("ws", &r, v6), "ws://[::1]:443/x");
        let r = req("http://proxy.target/p?q=1", Some("ignored"));
        assert_eq!(url_of("http", &r, v4), "http://proxy.target:9000/p?q=1");
        let body = b"POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabcGET /b HTTP/1.1\r\n\r\n";
        let Parse::Done(r, n) = parse_request_with_body(body) else {
            panic!()
        };
        assert_eq!(
            (r.method.as_str(), &body[n..n + 6]),
            ("POST", &b"GET /b"[..])
        );
    }

    #[test]
    fn bodies_by_length_chunked_until_close_and_gzip() {
        let resp = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhelloNEXT";
        let Parse::Done(h, n) = parse_response(resp) else {
            panic!()
        };
        assert_eq!(h.body_len("GET"), BodyLen::Length(5));
        assert_eq!(
            parse_body(&resp[n..], BodyLen::Length(5), false),
            Parse::Done(b"hello".to_vec(), 5)
        );
        assert_eq!(h.body_len("HEAD"), BodyLen::None);
        let chunked = b"4;ext=1\r\n{\"a\"\r\n3\r\n:1}\r\n0\r\nX-Trailer: y\r\n\r\nrest";
        for cut in 0..chunked.len() - 4 {
            assert_eq!(
                parse_body(&chunked[..cut], BodyLen::Chunked, false),
                Parse::Partial,
                "{cut}"
            );
        }
        assert_eq!(
            parse_body(chunked, BodyLen::Chunked, false),
            Parse::Done(b"{\"a\":1}".to_vec(), chunked.len() - 4)
        );
        assert!(matches!(
            parse_body(b"zz\r\n", BodyLen::Chunked, false),
            Parse::Invalid(_)
        ));
        assert_eq!(
            parse_body(b"abc", BodyLen::UntilClose, false),
            Parse::Partial
        );
        assert_eq!(
            parse_body(b"abc", BodyLen::UntilClose, true),
            Parse::Done(b"abc".to_vec(), 3)
        );
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, b"{\"lastUpdateId\":1}").unwrap();
        let gz = gz.finish().unwrap();
        assert_eq!(
            decode_content(gz, Some("gzip")).unwrap(),
            b"{\"lastUpdateId\":1}"
        );
        assert!(decode_content(b"not gzip".to_vec(), Some("gzip")).is_err());
        assert!(decode_content(b"x".to_vec(), Some("br")).is_err());
    }
}
