//! HTTP/1.1 on the wire for the REST client: request encoding and a response reader that knows
//! exactly where each response ends (`Content-Length`, chunked encoding, or the close), so a
//! connection can carry the next request. Cold path; see [`super::rest`].

use std::io::{Read, Write};

use super::{describe_io, TransportError};

/// An HTTP response.
#[derive(Clone, Debug)]
pub struct HttpResponse {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Largest response accepted (a 1000-level snapshot is ~60 KB; exchangeInfo ~1 MB).
const MAX_RESPONSE: usize = 16 << 20;

/// Request head and body in one buffer (one write; one TLS record for small requests).
pub(crate) fn encode_request(
    method: &str,
    host: &str,
    target: &str,
    headers: &[(String, String)],
    body: &[u8],
    connection: &str,
) -> Vec<u8> {
    let mut head = format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: qalpha\r\nAccept: application/json\r\n"
    );
    if !headers
        .iter()
        .any(|(k, _)| k.eq_ignore_ascii_case("connection"))
    {
        head.push_str(&format!("Connection: {connection}\r\n"));
    }
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Why an exchange produced no response.
pub(crate) enum Failure {
    /// Nothing came back: the write failed, or the peer closed before any response byte.
    Unanswered(std::io::Error),
    /// A timeout, an I/O error after response bytes arrived, or a malformed response.
    Failed(String),
}

impl Failure {
    pub(crate) fn into_error(self, url: &str) -> TransportError {
        let why = match self {
            Failure::Unanswered(e) => {
                format!("connection closed without a response: {}", describe_io(&e))
            }
            Failure::Failed(why) => why,
        };
        TransportError::Http {
            url: url.to_string(),
            why,
        }
    }
}

/// Writes one request and reads its response; the bool says whether the connection may be reused.
pub(crate) fn exchange<S: Read + Write>(
    s: &mut S,
    request: &[u8],
    buf: &mut Vec<u8>,
    head_only: bool,
) -> Result<(HttpResponse, bool), Failure> {
    s.write_all(request)
        .and_then(|()| s.flush())
        .map_err(Failure::Unanswered)?;
    read_response(s, buf, head_only)
}

/// How a response body ends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// A parsed response head.
struct Head {
    status: u16,
    headers: Vec<(String, String)>,
    /// Bytes in the head, blank line included.
    len: usize,
    framing: Framing,
    keep_alive: bool,
}

fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

/// Parses the head once it is complete (`Ok(None)` until then).
fn parse_head(raw: &[u8], head_only: bool) -> Result<Option<Head>, &'static str> {
    let Some(len) = head_end(raw) else {
        return Ok(None);
    };
    let text = std::str::from_utf8(&raw[..len]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = text.split("\r\n");
    let mut status_line = lines.next().ok_or("empty response")?.split(' ');
    let version = status_line.next().unwrap_or("");
    let status: u16 = status_line
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    if !version.starts_with("HTTP/1.") {
        return Err("not an HTTP/1.x response");
    }
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let value = |name: &str| {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.to_ascii_lowercase())
    };
    // HTTP/1.1 keeps the connection unless told otherwise; HTTP/1.0 closes unless told otherwise.
    let mut keep_alive = match value("connection") {
        Some(c) if c.split(',').any(|t| t.trim() == "close") => false,
        Some(c) if c.split(',').any(|t| t.trim() == "keep-alive") => true,
        _ => version == "HTTP/1.1",
    };
    let chunked = value("transfer-encoding")
        .is_some_and(|te| te.rsplit(',').next().is_some_and(|t| t.trim() == "chunked"));
    let framing = if head_only || (100..200).contains(&status) || status == 204 || status == 304 {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(v) = value("content-length") {
        Framing::Length(v.trim().parse().map_err(|_| "bad Content-Length")?)
    } else {
        keep_alive = false;
        Framing::UntilClose
    };
    Ok(Some(Head {
        status,
        headers,
        len,
        framing,
        keep_alive,
    }))
}

/// The whole message's length once all of it is in `raw` (`Ok(None)` until then, and always for
/// a body that ends with the close).
fn message_len(raw: &[u8], head: &Head) -> Result<Option<usize>, &'static str> {
    Ok(match head.framing {
        Framing::Length(n) => {
            let total = head.len.checked_add(n).ok_or("bad Content-Length")?;
            (raw.len() >= total).then_some(total)
        }
        Framing::Chunked => walk_chunks(&raw[head.len..], None)?.map(|n| head.len + n),
        Framing::UntilClose => None,
    })
}

/// Walks a chunked body, appending its data to `out` when given. Returns the bytes the chunked
/// encoding occupies (trailers included) once it is complete, `Ok(None)` while more is needed.
fn walk_chunks(b: &[u8], mut out: Option<&mut Vec<u8>>) -> Result<Option<usize>, &'static str> {
    let line_end = |from: usize| {
        b.get(from..)?
            .windows(2)
            .position(|w| w == b"\r\n")
            .map(|i| from + i)
    };
    let mut pos = 0;
    loop {
        let Some(eol) = line_end(pos) else {
            return Ok(None);
        };
        let size_str = std::str::from_utf8(&b[pos..eol]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        pos = eol + 2;
        if size == 0 {
            // Trailer fields, then the blank line that ends the message.
            loop {
                let Some(eol) = line_end(pos) else {
                    return Ok(None);
                };
                let blank = eol == pos;
                pos = eol + 2;
                if blank {
                    return Ok(Some(pos));
                }
            }
        }
        let data_end = pos.checked_add(size).ok_or("bad chunk size")?;
        let Some(crlf) = b.get(data_end..data_end + 2) else {
            return Ok(None);
        };
        if crlf != b"\r\n" {
            return Err("chunk not followed by CRLF");
        }
        if let Some(out) = out.as_deref_mut() {
            out.extend_from_slice(&b[pos..data_end]);
        }
        pos = data_end + 2;
    }
}

/// Builds the response from a complete message of `total` bytes in `raw`.
fn finish(raw: &[u8], head: Head, total: usize) -> Result<(HttpResponse, bool), &'static str> {
    let body_bytes = &raw[head.len..total];
    let body = match head.framing {
        Framing::Chunked => {
            let mut body = Vec::with_capacity(body_bytes.len());
            walk_chunks(body_bytes, Some(&mut body))?;
            body
        }
        _ => body_bytes.to_vec(),
    };
    // Bytes after the response were never asked for: the connection is out of step.
    let keep = head.keep_alive && total == raw.len();
    let resp = HttpResponse {
        status: head.status,
        headers: head.headers,
        body,
    };
    Ok((resp, keep))
}

/// Reads one response (skipping interim 1xx responses). `buf` is scratch space.
pub(crate) fn read_response<S: Read>(
    s: &mut S,
    buf: &mut Vec<u8>,
    head_only: bool,
) -> Result<(HttpResponse, bool), Failure> {
    use std::io::ErrorKind;
    let bad = |why: &str| Failure::Failed(why.to_string());
    buf.clear();
    let mut head: Option<Head> = None;
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if head.is_none() {
            match parse_head(buf, head_only).map_err(bad)? {
                Some(h) if (100..200).contains(&h.status) && h.status != 101 => {
                    buf.drain(..h.len);
                    continue;
                }
                h => head = h,
            }
        }
        if let Some(h) = &head {
            if let Some(total) = message_len(buf, h).map_err(bad)? {
                let h = head.take().ok_or_else(|| bad("lost response head"))?;
                return finish(buf, h, total).map_err(bad);
            }
        }
        let closed = match s.read(&mut chunk) {
            Ok(0) => true,
            Ok(n) => {
                buf.extend_from_slice(&chunk[..n]);
                if buf.len() > MAX_RESPONSE {
                    return Err(bad("response too large"));
                }
                false
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => false,
            // A TLS peer that closes without close_notify: accept what arrived if it is whole.
            Err(e) if e.kind() == ErrorKind::UnexpectedEof && !buf.is_empty() => true,
            Err(e)
                if buf.is_empty()
                    && matches!(
                        e.kind(),
                        ErrorKind::UnexpectedEof
                            | ErrorKind::ConnectionReset
                            | ErrorKind::ConnectionAborted
                            | ErrorKind::BrokenPipe
                    ) =>
            {
                return Err(Failure::Unanswered(e))
            }
            Err(e) => return Err(Failure::Failed(describe_io(&e))),
        };
        if closed {
            return match head.take() {
                None if buf.is_empty() => Err(Failure::Unanswered(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    "closed by the server",
                ))),
                Some(h) if h.framing == Framing::UntilClose => {
                    finish(buf, h, buf.len()).map_err(bad)
                }
                _ => Err(bad("connection closed mid-response")),
            };
        }
    }
}

/// Parses a whole HTTP/1.1 response.
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, &'static str> {
    let head = parse_head(raw, false)?.ok_or("no complete response head")?;
    let total = match head.framing {
        Framing::UntilClose => raw.len(),
        Framing::Length(_) => message_len(raw, &head)?.ok_or("body shorter than Content-Length")?,
        Framing::Chunked => message_len(raw, &head)?.ok_or("chunk cut short")?,
    };
    finish(raw, head, total).map(|(resp, _)| resp)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_length_and_chunked_bodies() {
        let r = parse_response(
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-MBX-USED-WEIGHT-1M: 20\r\n\r\nhello",
        )
        .unwrap();
        let weight = r.header("x-mbx-used-weight-1m");
        assert_eq!(
            (r.status, &r.body[..], weight),
            (200, &b"hello"[..], Some("20"))
        );
        // Data that looks like the last chunk does not end the body early; trailers are skipped.
        let raw = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n0\r\n\r\n\r\n2;x=1\r\nde\r\n0\r\nT: 1\r\n\r\n";
        assert_eq!(parse_response(raw).unwrap().body, b"0\r\n\r\nde");
        assert!(parse_response(&raw[..raw.len() - 2]).is_err());
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        let r = parse_response(b"HTTP/1.0 200 OK\r\n\r\nuntil close").unwrap();
        assert_eq!(r.body, b"until close");
    }
}
