//! Order-entry encoding and private-stream decoding for both venues — the pure, socket-free half of
//! the gateways (the gateway thread adds transport, retries and reconciliation on top).
//!
//! - [`request`]: a signed request (REST or WebSocket API message) ready to send.
//! - [`binance`]: `POST/DELETE/PUT /fapi/v1/order` query strings and `order.place/cancel/modify`
//!   WebSocket API messages, HMAC-signed (PROTOCOLS.md B.1, B.2, B.6); `ORDER_TRADE_UPDATE` →
//!   [`ExecReport`](qalpha_engine::order::ExecReport).
//! - [`bybit`]: `/v5/order/create|cancel|amend|cancel-all` JSON bodies with signed headers, and the
//!   Trade WebSocket's `order.create…` messages (C.5–C.7); private `order` and `execution` topics →
//!   execution reports.

pub mod account;
pub mod binance;
pub mod bybit;
pub mod conn;
pub mod json;
pub mod protocol;
pub mod request;
pub mod session;
pub mod snapshot;
pub mod tracker;
pub mod used_ids;

pub use request::{Method, SignedRequest};

/// 64-bit FNV-1a of a venue's string order id (Bybit's UUIDs), for the fixed-size reports.
pub fn hash_order_id(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.as_bytes() {
        h ^= *b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}
