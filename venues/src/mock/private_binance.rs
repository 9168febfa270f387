//! Binance USD-M user data stream on the mock (PROTOCOLS.md B.5): the listen keys an account opens,
//! and the events built from each [`OrderUpdate`] — `ORDER_TRADE_UPDATE` for every change to one of
//! our orders, `ACCOUNT_UPDATE` after every fill, `listenKeyExpired` when a key ends.
//!
//! Deliberate simplifications:
//! - One key per account, valid 60 min from its last `POST` / `PUT`; a `DELETE` ends it at once.
//!   Keys are 64 random alphanumerics drawn from the mock's seed (reproducible runs).
//! - The mock has one shared order book for all accounts (see [`super::orders`]), so every stream
//!   sees every order update.
//! - `ACCOUNT_UPDATE.a.B` reports a fixed USDT wallet of [`WALLET_USDT`] (`bc` 0): the mock keeps no
//!   balance ledger. `rp` (realized profit) and `cr` are `"0"`, `bep` is the entry price (no fee
//!   adjustment), `b` / `a` (open-order notionals) are `"0"`. The mark price behind `up` is the mid
//!   of the book the mock serves ([`Position::mark_price`]).
//! - `REJECTED` never appears: a refused order is only answered, never streamed (as on Binance).
//!
//! Cold path: `serde_json` values, one message per update.

use std::time::{Duration, Instant};

use qalpha_engine::order::ExecKind;
use serde_json::json;

use super::orders::OrderUpdate;
use super::orders_binance::order_object;
use super::positions::Position;
use super::rng::Rng;

/// The wallet balance `ACCOUNT_UPDATE` reports (USDT; fixed, see the module doc).
pub const WALLET_USDT: &str = "100000";

/// How long a listen key lives without a keep-alive (B.5).
pub const LISTEN_KEY_VALIDITY: Duration = Duration::from_secs(60 * 60);

/// One account's open listen key.
#[derive(Clone, Debug)]
struct ListenKey {
    api_key: String,
    key: String,
    expires: Instant,
}

/// The mock's listen keys (one per account while valid).
#[derive(Debug)]
pub struct ListenKeys {
    keys: Vec<ListenKey>,
    rng: Rng,
    validity: Duration,
}

impl ListenKeys {
    /// No keys yet; new keys are drawn from `seed`.
    pub fn new(seed: u64) -> Self {
        Self::with_validity(seed, LISTEN_KEY_VALIDITY)
    }

    /// [`ListenKeys::new`] with another validity (tests of expiry).
    pub fn with_validity(seed: u64, validity: Duration) -> Self {
        Self {
            keys: Vec::new(),
            rng: Rng::new(seed ^ 0x11_57e7_4e75),
            validity,
        }
    }

    fn purge(&mut self, now: Instant) {
        self.keys.retain(|k| k.expires > now);
    }

    /// `POST /fapi/v1/listenKey`: the account's valid key, extended, or a new one.
    pub fn start(&mut self, api_key: &str, now: Instant) -> String {
        self.purge(now);
        let expires = now + self.validity;
        if let Some(k) = self.keys.iter_mut().find(|k| k.api_key == api_key) {
            k.expires = expires;
            return k.key.clone();
        }
        const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let key: String = (0..64)
            .map(|_| ALNUM[(self.rng.next_u64() % ALNUM.len() as u64) as usize] as char)
            .collect();
        self.keys.push(ListenKey {
            api_key: api_key.to_string(),
            key: key.clone(),
            expires,
        });
        key
    }

    fn find(&mut self, api_key: &str, named: Option<&str>, now: Instant) -> Option<usize> {
        self.purge(now);
        self.keys
            .iter()
            .position(|k| k.api_key == api_key && named.is_none_or(|n| n == k.key))
    }

    /// `PUT`: extends the account's key (which `named` must be, if given); `None` = -1125.
    pub fn keepalive(
        &mut self,
        api_key: &str,
        named: Option<&str>,
        now: Instant,
    ) -> Option<String> {
        let i = self.find(api_key, named, now)?;
        self.keys[i].expires = now + self.validity;
        Some(self.keys[i].key.clone())
    }

    /// `DELETE`: ends the account's key; false = -1125.
    pub fn close(&mut self, api_key: &str, named: Option<&str>, now: Instant) -> bool {
        match self.find(api_key, named, now) {
            Some(i) => {
                self.keys.remove(i);
                true
            }
            None => false,
        }
    }

    /// Whether `key` is a currently valid listen key.
    pub fn is_valid(&mut self, key: &str, now: Instant) -> bool {
        self.purge(now);
        self.keys.iter().any(|k| k.key == key)
    }
}

/// `x` of an update: `None` for a report the stream does not carry.
fn execution_type(kind: ExecKind) -> Option<&'static str> {
    Some(match kind {
        ExecKind::Ack => "NEW",
        ExecKind::Canceled => "CANCELED",
        ExecKind::Expired => "EXPIRED",
        ExecKind::PartialFill | ExecKind::Fill => "TRADE",
        ExecKind::Amended => "AMENDMENT",
        ExecKind::Rejected => return None,
    })
}

/// Whether the update is a fill (and so is followed by an `ACCOUNT_UPDATE`).
pub fn is_fill(u: &OrderUpdate) -> bool {
    matches!(u.report.kind, ExecKind::PartialFill | ExecKind::Fill)
}

/// The `ORDER_TRADE_UPDATE` event of `u`, sent at `now_ms` (B.5); `None` for a reject.
pub fn order_trade_update(u: &OrderUpdate, now_ms: u64) -> Option<String> {
    let x = execution_type(u.report.kind)?;
    let r = &u.report;
    let obj = order_object(&u.record, false);
    let fill = is_fill(u);
    let mut o = json!({
        "s": obj["symbol"],
        "c": obj["clientOrderId"],
        "S": obj["side"],
        "o": obj["type"],
        "f": obj["timeInForce"],
        "q": obj["origQty"],
        "p": obj["price"],
        "ap": obj["avgPrice"],
        "sp": "0",
        "x": x,
        "X": obj["status"],
        "i": u.record.order_id,
        "l": if fill { r.last_qty.to_string() } else { "0".into() },
        "z": u.record.cum_qty.to_string(),
        "L": if fill { r.last_px.to_string() } else { "0".into() },
        "T": r.exch_ms,
        "t": if fill { u.seq } else { 0 },
        "b": "0",
        "a": "0",
        "m": fill && r.is_maker,
        "R": obj["reduceOnly"],
        "wt": "CONTRACT_PRICE",
        "ot": obj["type"],
        "ps": "BOTH",
        "cp": false,
        "rp": "0",
        "pP": false,
        "si": 0,
        "ss": 0,
        "V": obj["selfTradePreventionMode"],
        "pm": "NONE",
        "gtd": 0,
    });
    // Commission asset and amount are absent when there is no fee (B.5).
    if fill && r.fee.raw() != 0 {
        o["N"] = json!("USDT");
        o["n"] = json!(r.fee.to_string());
    }
    Some(json!({"e": "ORDER_TRADE_UPDATE", "E": now_ms, "T": r.exch_ms, "o": o}).to_string())
}

/// The `ACCOUNT_UPDATE` event after a fill: the USDT balance and the symbol's position at `mark`.
pub fn account_update(u: &OrderUpdate, mark: qalpha_engine::Price, now_ms: u64) -> String {
    let pos: &Position = &u.position;
    let entry = pos.entry_price().to_string();
    json!({
        "e": "ACCOUNT_UPDATE",
        "E": now_ms,
        "T": u.report.exch_ms,
        "a": {
            "m": "ORDER",
            "B": [{"a": "USDT", "wb": WALLET_USDT, "cw": WALLET_USDT, "bc": "0"}],
            "P": [{
                "s": u.record.order.symbol.as_str(),
                "pa": pos.size().to_string(),
                "ep": entry,
                "bep": entry,
                "cr": "0",
                "up": pos.unrealised(mark).to_string(),
                "mt": "cross",
                "iw": "0",
                "ps": "BOTH",
            }],
        },
    })
    .to_string()
}

/// The `listenKeyExpired` event.
pub fn listen_key_expired(key: &str, now_ms: u64) -> String {
    json!({"e": "listenKeyExpired", "E": now_ms, "listenKey": key}).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_key_per_account_extended_closed_and_expired() {
        let mut k = ListenKeys::with_validity(7, Duration::from_millis(100));
        let t0 = Instant::now();
        let a = k.start("acct", t0);
        assert!(a.len() >= 60 && a.chars().all(|c| c.is_ascii_alphanumeric()));
        assert_eq!(k.start("acct", t0 + Duration::from_millis(50)), a);
        assert_ne!(k.start("other", t0), a);
        // Extended by the second start: still valid at 120 ms.
        assert!(k.is_valid(&a, t0 + Duration::from_millis(120)));
        assert_eq!(
            k.keepalive("acct", Some(&a), t0 + Duration::from_millis(140)),
            Some(a.clone())
        );
        assert_eq!(k.keepalive("acct", Some("nope"), t0), None);
        assert!(!k.is_valid(&a, t0 + Duration::from_millis(300)));
        assert_eq!(
            k.keepalive("acct", None, t0 + Duration::from_millis(300)),
            None
        );
        let b = k.start("acct", t0 + Duration::from_millis(400));
        assert_ne!(a, b, "an expired key is not handed out again");
        assert!(k.close("acct", None, t0 + Duration::from_millis(400)));
        assert!(!k.close("acct", None, t0 + Duration::from_millis(400)));
        assert!(!k.is_valid(&b, t0 + Duration::from_millis(400)));
    }
}
