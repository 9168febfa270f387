//! Non-blocking TLS WebSocket transport on `mio` + `rustls` + `tungstenite`, driven by the feed
//! thread's poll loop.
//!
//! - [`url`]: `ws://` / `wss://` / `https://` URL parts.
//! - [`tls`]: rustls client configuration (webpki roots, or a CA file for the mock exchange).
//! - [`ws`]: [`ws::WsClient`], one connection's state machine: TCP connect → TLS + WebSocket
//!   handshake (retried on would-block) → open (read until would-block after every readiness event;
//!   writes that would block stay queued and are flushed later).
//! - [`rest`]: blocking HTTP(S)/1.1 for snapshots and order entry, cold path only: [`RestClient`]
//!   keeps one connection alive per venue; [`rest::request`] sends one request per connection.
//! - `http1`: the HTTP/1.1 wire format under [`rest`] (request encoding, response framing).
//!
//! Gotchas handled here (STACK-NOTES §2): the mio socket is registered before it is wrapped; the
//! TCP connect is complete only when the socket is writable, `take_error()` is `None` and
//! `peer_addr()` succeeds; `set_nodelay(true)`; a `send` that returns `WouldBlock` has already queued
//! the frame — it is flushed later, never resent.

mod http1;
pub mod rest;
pub mod tls;
pub mod url;
pub mod ws;

pub use rest::{HttpResponse, RestClient};

/// Transport errors, phrased for the operator.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    #[error("invalid URL {url:?}: {why}")]
    BadUrl { url: String, why: &'static str },
    #[error("cannot read CA file {path}: {why}")]
    CaFile { path: String, why: String },
    #[error("connect to {addr}: {source}")]
    Connect {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    #[error("TLS with {host}: {why}")]
    Tls { host: String, why: String },
    #[error("WebSocket handshake with {url}: {why}")]
    Handshake { url: String, why: String },
    #[error("WebSocket {url}: {why}")]
    Closed { url: String, why: String },
    #[error("HTTP {url}: {why}")]
    Http { url: String, why: String },
    #[error("cannot resolve {host}: {why}")]
    Resolve { host: String, why: String },
}

/// A URL as errors and logs may show it: a Binance user-data stream's listenKey (the last path
/// segment after `/ws/` when it is a long alphanumeric token — a credential for the account's
/// private stream) is replaced by `<listenKey>`; stream names like `btcusdt@trade` stay.
pub fn redact_url(url: &str) -> String {
    match url.rfind("/ws/") {
        Some(i)
            if url[i + 4..].len() >= 32
                && url[i + 4..].bytes().all(|b| b.is_ascii_alphanumeric()) =>
        {
            format!("{}/ws/<listenKey>", &url[..i])
        }
        _ => url.to_string(),
    }
}

/// Turns an I/O error from a TLS stream into a message that names the likely cause.
pub(crate) fn describe_io(e: &std::io::Error) -> String {
    if let Some(inner) = e.get_ref() {
        if let Some(tls) = inner.downcast_ref::<rustls::Error>() {
            return match tls {
                rustls::Error::InvalidCertificate(c) => format!(
                    "server certificate not trusted ({c:?}); for the mock exchange pass --ca-file DIR/ca.pem"
                ),
                other => format!("TLS error: {other}"),
            };
        }
    }
    e.to_string()
}

#[cfg(test)]
mod redact_tests {
    #[test]
    fn the_listen_key_is_hidden() {
        assert_eq!(
            super::redact_url(
                "wss://fstream.binance.com/private/ws/ISi1QyUDaFYckKus9nskK1TV246Pyjo6egHFqBP7txBnfgPoGEedcYSt89EGjNts"
            ),
            "wss://fstream.binance.com/private/ws/<listenKey>"
        );
        assert_eq!(
            super::redact_url("wss://fstream.binance.com/ws/btcusdt@trade"),
            "wss://fstream.binance.com/ws/btcusdt@trade"
        );
        assert_eq!(
            super::redact_url("wss://stream.bybit.com/v5/private"),
            "wss://stream.bybit.com/v5/private"
        );
    }
}
