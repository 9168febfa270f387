//! One-shot WebSocket order entry for the operator commands (`qalpha order --via ws`,
//! `qalpha cancel --via ws`): connect to the venue's order WebSocket (Binance ws-fapi, Bybit Trade
//! WS), authenticate where the venue needs it (Bybit `auth`), send one request, and return the
//! venue's answer — Binance's `result` (the order object), Bybit's whole answer — or the venue's
//! error naming its code and message.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use mio::{Events, Poll, Token};
use qalpha_engine::transport::tls::client_config;
use qalpha_engine::Venue;
use qalpha_venues::gateway::conn::{Conn, FrameBuf};
use qalpha_venues::gateway::protocol::{Protocol, WsMessage};
use qalpha_venues::sign::Signer;
use serde_json::Value;

const TIMEOUT: Duration = Duration::from_secs(10);

/// Sends the message `build(request_id)` and returns the venue's answer as JSON text.
pub fn exchange(
    venue: Venue,
    url: &str,
    ca_file: Option<&Path>,
    signer: &Signer,
    auth_expires_ms: u64,
    build: impl FnOnce(&str) -> Option<String>,
) -> Result<String> {
    let proto = Protocol::new(venue, signer.clone());
    let tls = if url.starts_with("wss://") {
        Some(client_config(ca_file)?)
    } else {
        None
    };
    let mut poll = Poll::new().context("mio poll")?;
    let mut events = Events::with_capacity(8);
    let mut conn = Conn::new("order-ws", Token(1));
    conn.start(url, tls.as_ref(), poll.registry())
        .with_context(|| format!("connect {url}"))?;
    let mut frames = FrameBuf::default();
    let deadline = Instant::now() + TIMEOUT;
    let mut sent = false;
    let mut authed = venue == Venue::BinanceUsdm;
    let mut open = false;
    let mut build = Some(build);
    let id = "1";
    while Instant::now() < deadline {
        poll.poll(&mut events, Some(Duration::from_millis(20)))
            .context("mio poll")?;
        frames.clear();
        let p = conn
            .drive(&mut frames)
            .with_context(|| format!("WebSocket {url}"))?;
        if p == qalpha_engine::transport::ws::Progress::Opened {
            open = true;
            if let Some(a) = proto.ws_auth(auth_expires_ms) {
                conn.send(&a)?;
            }
        }
        for i in 0..frames.len() {
            let f = frames.get(i).1;
            match proto.parse_ws(f) {
                WsMessage::Auth(Ok(())) => authed = true,
                WsMessage::Auth(Err(e)) => bail!(e),
                WsMessage::Answer { id: got, result } if got == id && sent => {
                    if let Err(e) = result {
                        bail!(e);
                    }
                    let v: Value = serde_json::from_slice(f).unwrap_or(Value::Null);
                    return Ok(match venue {
                        Venue::BinanceUsdm => v["result"].to_string(),
                        Venue::BybitLinear => v.to_string(),
                    });
                }
                _ => {}
            }
        }
        if open && authed && !sent {
            let f = build
                .take()
                .ok_or_else(|| anyhow!("request already sent"))?;
            let msg = f(id)
                .ok_or_else(|| anyhow!("{} has no WebSocket method for this", venue.name()))?;
            conn.send(&msg)?;
            sent = true;
        }
    }
    bail!("{url}: no answer within {} s", TIMEOUT.as_secs())
}
