//! Request signing for the venues' private endpoints (PROTOCOLS.md B.1, B.6, C.4, C.5).
//!
//! All four schemes are HMAC-SHA256 with lower-case hex output over a venue-defined string:
//!
//! | where | string signed |
//! |---|---|
//! | Binance REST | the query string + the form body, exactly as sent (`signature` appended last) |
//! | Binance WS API (`order.place` …) | every param except `signature`, sorted by name, `k=v` joined by `&` |
//! | Bybit REST | `timestamp + apiKey + recvWindow + (queryString | rawJsonBody)` |
//! | Bybit WS auth | `"GET/realtime" + expires` |
//!
//! Each is tested with the venue's documented vector. The secret never leaves [`Signer`]; its
//! `Debug` prints only the key's first characters.

use std::fmt;

use hmac::{Hmac, Mac};
use sha2::Sha256;

type HmacSha256 = Hmac<Sha256>;

/// An API key and its secret.
#[derive(Clone)]
pub struct Signer {
    api_key: String,
    secret: Vec<u8>,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let shown: String = self.api_key.chars().take(4).collect();
        write!(f, "Signer({shown}…)")
    }
}

/// Lower-case hex of bytes.
pub fn hex(bytes: &[u8]) -> String {
    const D: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(D[(b >> 4) as usize] as char);
        s.push(D[(b & 15) as usize] as char);
    }
    s
}

impl Signer {
    pub fn new(api_key: impl Into<String>, secret: impl AsRef<[u8]>) -> Self {
        Self {
            api_key: api_key.into(),
            secret: secret.as_ref().to_vec(),
        }
    }

    pub fn api_key(&self) -> &str {
        &self.api_key
    }

    /// HMAC-SHA256 of `parts` concatenated, as lower-case hex.
    pub fn hmac_hex(&self, parts: &[&[u8]]) -> String {
        // HMAC accepts keys of any length; `new_from_slice` cannot fail for it.
        let mut mac = match HmacSha256::new_from_slice(&self.secret) {
            Ok(m) => m,
            Err(_) => return String::new(),
        };
        for p in parts {
            mac.update(p);
        }
        hex(&mac.finalize().into_bytes())
    }

    /// Binance REST: signature over `query` (+ `body` for form-encoded POSTs), to append as the last
    /// parameter `&signature=…`.
    pub fn binance_rest(&self, query: &str, body: &str) -> String {
        self.hmac_hex(&[query.as_bytes(), body.as_bytes()])
    }

    /// Binance WebSocket API: signature over the params sorted by name (excluding `signature`).
    pub fn binance_ws(&self, params: &[(&str, &str)]) -> String {
        let mut sorted: Vec<&(&str, &str)> =
            params.iter().filter(|(k, _)| *k != "signature").collect();
        sorted.sort_by(|a, b| a.0.cmp(b.0));
        let joined = sorted
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        self.hmac_hex(&[joined.as_bytes()])
    }

    /// Bybit v5 REST: `timestamp + apiKey + recvWindow + payload` (the query string for GET, the raw
    /// JSON body for POST — sign exactly the bytes that are sent).
    pub fn bybit_rest(&self, timestamp_ms: u64, recv_window_ms: u64, payload: &str) -> String {
        let ts = timestamp_ms.to_string();
        let rw = recv_window_ms.to_string();
        self.hmac_hex(&[
            ts.as_bytes(),
            self.api_key.as_bytes(),
            rw.as_bytes(),
            payload.as_bytes(),
        ])
    }

    /// Bybit private/trade WebSocket auth: `"GET/realtime" + expires`.
    pub fn bybit_ws_auth(&self, expires_ms: u64) -> String {
        let e = expires_ms.to_string();
        self.hmac_hex(&[b"GET/realtime", e.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn binance_official_vector() {
        // PROTOCOLS.md B.1 (Binance's own documentation example).
        let s = Signer::new(
            "key",
            "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9",
        );
        let q = "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943";
        assert_eq!(
            s.binance_rest(q, ""),
            "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
        );
        // Query and body are one string: splitting it anywhere signs the same bytes.
        let (a, b) = q.split_at(40);
        assert_eq!(s.binance_rest(a, b), s.binance_rest(q, ""));
    }

    #[test]
    fn binance_ws_api_sorts_params() {
        let s = Signer::new(
            "key",
            "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9",
        );
        let shuffled = [
            ("timestamp", "1591702613943"),
            ("symbol", "BTCUSDT"),
            ("signature", "ignored"),
            ("side", "BUY"),
        ];
        let sorted = "side=BUY&symbol=BTCUSDT&timestamp=1591702613943";
        assert_eq!(s.binance_ws(&shuffled), s.hmac_hex(&[sorted.as_bytes()]));
    }

    #[test]
    fn bybit_rest_vector() {
        // PROTOCOLS.md C.5 [derived] vector.
        let s = Signer::new("test_key", "test_secret");
        let body = r#"{"category":"linear","symbol":"BTCUSDT","side":"Buy","orderType":"Limit","qty":"0.001","price":"50000","timeInForce":"PostOnly"}"#;
        assert_eq!(
            s.bybit_rest(1658385579423, 5000, body),
            "d480b2d4a31b245dcc27f6676ea1c8dff5c8188f852de9f81f84c54f55efe8ab"
        );
    }

    #[test]
    fn bybit_ws_auth_vector() {
        // PROTOCOLS.md C.4 [derived] vector.
        let s = Signer::new("test_key", "test_secret");
        assert_eq!(
            s.bybit_ws_auth(1662350400000),
            "dad2d67a66c9ee401d2e6e7bf26ebd10eb1026db8a703bf3139c6950ce11a5c6"
        );
    }

    #[test]
    fn debug_hides_the_secret() {
        let s = Signer::new("abcdefgh", "topsecret");
        let d = format!("{s:?}");
        assert!(!d.contains("topsecret") && !d.contains("efgh"), "{d}");
    }
}
