//! The mock's side of the wire-to-wire latency benchmark: when it handed each market frame to its
//! socket, and when each order request arrived, on the engine's clock (`clock::now_ns`, the same
//! process). Set with [`super::market::Hub::set_probe`]; off (and free) otherwise.
//!
//! A frame is known by [`frame_key`] — its kind and the venue's own id (Binance depth diff and
//! bookTicker `u`, trade `t`), which the engine's events carry too ([`event_key`]), so a benchmark
//! can pair the order an event caused with the frame that carried the event.

use std::sync::Mutex;

use qalpha_engine::clock::now_ns;
use qalpha_engine::event::{MarketEvent, MarketPayload};

/// Key kinds (top byte of a key).
const DEPTH: u64 = 1;
const QUOTE: u64 = 2;
const TRADE: u64 = 3;
const ID_BITS: u64 = 56;

fn key(kind: u64, id: u64) -> u64 {
    kind << ID_BITS | (id & ((1 << ID_BITS) - 1))
}

/// The probe key of a Binance market frame body (the event object, or a combined-stream wrapper):
/// `depthUpdate` and `bookTicker` by `u`, `trade` by `t`; `None` for anything else.
pub fn frame_key(body: &str) -> Option<u64> {
    let kind = if body.contains("\"e\":\"depthUpdate\"") {
        DEPTH
    } else if body.contains("\"e\":\"bookTicker\"") {
        QUOTE
    } else if body.contains("\"e\":\"trade\"") {
        TRADE
    } else {
        return None;
    };
    let field = if kind == TRADE { "\"t\":" } else { "\"u\":" };
    let at = body.find(field)? + field.len();
    let digits: &str = body[at..]
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .filter(|d| !d.is_empty())?;
    Some(key(kind, digits.parse().ok()?))
}

/// The probe key of the frame an engine event came from (depth book tops, quotes, trades).
pub fn event_key(ev: &MarketEvent) -> Option<u64> {
    match ev.payload {
        MarketPayload::BookTop(t) if t.update_id > 0 => Some(key(DEPTH, t.update_id)),
        MarketPayload::Quote(q) if q.update_id > 0 => Some(key(QUOTE, q.update_id)),
        MarketPayload::Trade(t) => Some(key(TRADE, t.trade_id)),
        _ => None,
    }
}

/// `(frame key, ns)` per market frame handed to a socket, `(client order id, ns)` per order read.
pub type ProbeLog = (Vec<(u64, u64)>, Vec<(String, u64)>);

/// What the mock saw, in arrival order.
#[derive(Debug, Default)]
pub struct WireProbe {
    /// `(frame key, ns)`: a market frame handed to a connection's socket.
    sent: Mutex<Vec<(u64, u64)>>,
    /// `(client order id, ns)`: an order request read off the order WebSocket.
    arrived: Mutex<Vec<(String, u64)>>,
}

impl WireProbe {
    pub fn new() -> Self {
        Self::default()
    }

    /// Frames handed to the socket at `ns` (keys gathered while writing them).
    pub fn frames_sent(&self, keys: &mut Vec<u64>, ns: u64) {
        if keys.is_empty() {
            return;
        }
        let mut s = self.sent.lock().unwrap_or_else(|e| e.into_inner());
        s.extend(keys.drain(..).map(|k| (k, ns)));
    }

    /// An order request's text arrived at `ns` (its client order id is read from it here).
    pub fn order_arrived(&self, text: &str, ns: u64) {
        let Some(id) = client_id_in(text) else {
            return;
        };
        self.arrived
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((id, ns));
    }

    /// The current time on the probe's clock.
    pub fn now(&self) -> u64 {
        now_ns()
    }

    /// Everything recorded so far: (frames sent, orders arrived).
    pub fn take(&self) -> ProbeLog {
        let s = std::mem::take(&mut *self.sent.lock().unwrap_or_else(|e| e.into_inner()));
        let a = std::mem::take(&mut *self.arrived.lock().unwrap_or_else(|e| e.into_inner()));
        (s, a)
    }
}

/// `newClientOrderId` (Binance) or `orderLinkId` (Bybit) of an order request.
fn client_id_in(text: &str) -> Option<String> {
    ["\"newClientOrderId\":\"", "\"orderLinkId\":\""]
        .iter()
        .find_map(|f| {
            let at = text.find(f)? + f.len();
            let end = text[at..].find('"')?;
            Some(text[at..at + end].to_string())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_real_frames() {
        let depth = r#"{"e":"depthUpdate","E":1680566400123,"T":1680566400120,"s":"BTCUSDT","U":2696,"u":2700,"pu":2695,"b":[],"a":[]}"#;
        let quote = r#"{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":400900217,"s":"BTCUSDT","b":"25.35","B":"31.21","a":"25.36","A":"40.66","T":1568014460891,"E":1568014460893}}"#;
        let trade = r#"{"e":"trade","E":123456789,"s":"BTCUSDT","t":12345,"p":"0.001","q":"100","T":123456785,"m":true}"#;
        assert_eq!(frame_key(depth), Some(key(DEPTH, 2700)));
        assert_eq!(frame_key(quote), Some(key(QUOTE, 400900217)));
        assert_eq!(frame_key(trade), Some(key(TRADE, 12345)));
        assert_eq!(frame_key(r#"{"e":"markPriceUpdate","u":1}"#), None);
        assert_eq!(frame_key(r#"{"e":"trade","t":"x"}"#), None);
        let order = r#"{"id":"7","method":"order.place","params":{"newClientOrderId":"qa-1-9","price":"1"}}"#;
        assert_eq!(client_id_in(order).as_deref(), Some("qa-1-9"));
        let p = WireProbe::new();
        p.order_arrived(order, 5);
        p.order_arrived("{}", 6);
        let mut keys = vec![1, 2];
        p.frames_sent(&mut keys, 9);
        assert!(keys.is_empty());
        let (s, a) = p.take();
        assert_eq!(s, [(1, 9), (2, 9)]);
        assert_eq!(a, [("qa-1-9".to_string(), 5)]);
    }
}
