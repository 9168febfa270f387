//! Blocking HTTP(S) GET for REST snapshots — cold path only (the feed's helper thread), never the
//! poll loop. One request per connection (`Connection: close`), bodies with `Content-Length` or
//! chunked encoding, a read timeout, and the response headers kept for rate-limit accounting
//! (`X-MBX-USED-WEIGHT-1M`).

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::Duration;

use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, StreamOwned};

use super::url::Endpoint;
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

/// GETs `url` (http or https) with a timeout. `tls` is required for https.
pub fn get(
    url: &str,
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    request("GET", url, &[], b"", tls, timeout)
}

/// Sends one request (`method` `url` with extra `headers` and `body`) and reads the whole response.
pub fn request(
    method: &str,
    url: &str,
    headers: &[(String, String)],
    body: &[u8],
    tls: Option<&Arc<ClientConfig>>,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    let ep = Endpoint::parse(url)?;
    let http = |why: String| TransportError::Http {
        url: url.to_string(),
        why,
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
    let mut head = format!(
        "{method} {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: qalpha\r\nAccept: application/json\r\nConnection: close\r\n",
        ep.target,
        ep.host
    );
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    if !body.is_empty() || method != "GET" {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("\r\n");
    let mut request = head.into_bytes();
    request.extend_from_slice(body);
    let raw = if ep.tls {
        let cfg = tls.ok_or_else(|| http("https:// needs a TLS client configuration".into()))?;
        let name = ServerName::try_from(ep.host.clone()).map_err(|e| http(e.to_string()))?;
        let conn = ClientConnection::new(cfg.clone(), name).map_err(|e| http(e.to_string()))?;
        let mut s = StreamOwned::new(conn, tcp);
        exchange(&mut s, &request).map_err(|e| http(describe_io(&e)))?
    } else {
        let mut s = tcp;
        exchange(&mut s, &request).map_err(|e| http(describe_io(&e)))?
    };
    parse_response(&raw).map_err(|why| http(why.to_string()))
}

fn exchange<S: Read + Write>(s: &mut S, request: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(request)?;
    s.flush()?;
    let mut out = Vec::with_capacity(64 * 1024);
    let mut buf = [0u8; 16 * 1024];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                out.extend_from_slice(&buf[..n]);
                if out.len() > MAX_RESPONSE {
                    return Err(std::io::Error::other("response too large"));
                }
                if response_complete(&out) {
                    break;
                }
            }
            // A TLS peer that closes without close_notify: accept what arrived if it is whole.
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && response_complete(&out) => {
                break
            }
            Err(e) => return Err(e),
        }
    }
    Ok(out)
}

fn head_end(raw: &[u8]) -> Option<usize> {
    raw.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4)
}

fn response_complete(raw: &[u8]) -> bool {
    let Some(end) = head_end(raw) else {
        return false;
    };
    let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
    if let Some(len) = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok())
    {
        return raw.len() >= end + len;
    }
    if head.contains("transfer-encoding: chunked") {
        return raw[end..].windows(5).any(|w| w == b"0\r\n\r\n");
    }
    false
}

/// Parses a whole HTTP/1.1 response.
pub fn parse_response(raw: &[u8]) -> Result<HttpResponse, &'static str> {
    let end = head_end(raw).ok_or("no complete response head")?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| "response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().ok_or("empty response")?;
    let status: u16 = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or("bad status line")?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let rest = &raw[end..];
    let chunked = headers
        .iter()
        .any(|(k, v)| k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse::<usize>().ok())
    {
        rest.get(..len)
            .ok_or("body shorter than Content-Length")?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn dechunk(mut b: &[u8]) -> Result<Vec<u8>, &'static str> {
    let mut out = Vec::with_capacity(b.len());
    loop {
        let i = b
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or("bad chunk header")?;
        let size_str = std::str::from_utf8(&b[..i]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_str.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| "bad chunk size")?;
        b = &b[i + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(b.get(..size).ok_or("chunk cut short")?);
        b = b.get(size + 2..).ok_or("chunk cut short")?;
    }
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
        assert_eq!(
            (
                r.status,
                r.body.as_slice(),
                r.header("x-mbx-used-weight-1m")
            ),
            (200, &b"hello"[..], Some("20"))
        );
        let r = parse_response(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n").unwrap();
        assert_eq!(r.body, b"abcde");
        assert!(response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
        ));
        assert!(!response_complete(
            b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok"
        ));
        assert!(parse_response(b"garbage").is_err());
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort").is_err());
    }

    #[test]
    fn post_with_headers_and_body_over_loopback() {
        use std::io::{BufRead, BufReader};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            let (sock, _) = listener.accept().unwrap();
            let mut r = BufReader::new(sock.try_clone().unwrap());
            let mut head = Vec::new();
            let mut len = 0usize;
            loop {
                let mut l = String::new();
                r.read_line(&mut l).unwrap();
                if let Some(v) = l.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
                if l == "\r\n" {
                    break;
                }
                head.push(l);
            }
            let mut body = vec![0u8; len];
            std::io::Read::read_exact(&mut r, &mut body).unwrap();
            let mut w = sock;
            w.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                .unwrap();
            (head, body)
        });
        let headers = vec![("X-BAPI-SIGN".to_string(), "abc".to_string())];
        let url = format!("http://{addr}/v5/order/create");
        let r = request(
            "POST",
            &url,
            &headers,
            br#"{"a":1}"#,
            None,
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        let (head, body) = server.join().unwrap();
        assert!(
            head[0].starts_with("POST /v5/order/create HTTP/1.1"),
            "{head:?}"
        );
        assert!(head.iter().any(|l| l.starts_with("X-BAPI-SIGN: abc")));
        assert_eq!(body, br#"{"a":1}"#);
    }
}
