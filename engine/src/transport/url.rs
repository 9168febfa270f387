//! The parts of a WebSocket or HTTP URL the transport needs.

use super::TransportError;

/// `scheme://host[:port]/path?query`, split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `wss`/`https` use TLS; `ws`/`http` do not.
    pub tls: bool,
    pub host: String,
    pub port: u16,
    /// Path and query, starting with `/`.
    pub target: String,
    /// The URL as given.
    pub url: String,
}

impl Endpoint {
    pub fn parse(url: &str) -> Result<Self, TransportError> {
        let bad = |why| TransportError::BadUrl {
            url: url.to_string(),
            why,
        };
        let (scheme, rest) = url.split_once("://").ok_or(bad("missing scheme"))?;
        let (tls, default_port) = match scheme {
            "wss" | "https" => (true, 443),
            "ws" | "http" => (false, 80),
            _ => return Err(bad("scheme must be ws, wss, http or https")),
        };
        let (authority, target) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let target = if target.starts_with('?') {
            format!("/{target}")
        } else {
            target.to_string()
        };
        if authority.is_empty() {
            return Err(bad("missing host"));
        }
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !h.ends_with(']') || authority.starts_with('[') => (
                h.trim_matches(['[', ']']).to_string(),
                p.parse().map_err(|_| bad("invalid port"))?,
            ),
            _ => (authority.to_string(), default_port),
        };
        if host.is_empty() {
            return Err(bad("missing host"));
        }
        Ok(Self {
            tls,
            host,
            port,
            target,
            url: url.to_string(),
        })
    }

    /// `host:port` for connecting and for logs.
    pub fn authority(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_venue_urls() {
        let e =
            Endpoint::parse("wss://fstream.binance.com/public/stream?streams=btcusdt@depth@0ms")
                .unwrap();
        assert_eq!(
            (e.tls, e.host.as_str(), e.port),
            (true, "fstream.binance.com", 443)
        );
        assert_eq!(e.target, "/public/stream?streams=btcusdt@depth@0ms");
        let e = Endpoint::parse("ws://127.0.0.1:9443").unwrap();
        assert_eq!((e.tls, e.port, e.target.as_str()), (false, 9443, "/"));
        let e = Endpoint::parse("https://127.0.0.1:8443/fapi/v1/depth?symbol=BTCUSDT").unwrap();
        assert_eq!(
            (e.host.as_str(), e.target.as_str()),
            ("127.0.0.1", "/fapi/v1/depth?symbol=BTCUSDT")
        );
        assert!(Endpoint::parse("ftp://x").is_err());
        assert!(Endpoint::parse("wss://:1/").is_err());
        assert!(Endpoint::parse("wss://h:notaport/").is_err());
    }
}
