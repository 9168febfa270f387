//! Binance USD-M private WebSockets on the mock: the WebSocket API for order entry (ws-fapi,
//! PROTOCOLS.md B.6) and the user data stream (B.5).
//!
//! **WebSocket API** at `/ws-fapi/v1` (`?returnRateLimits=false` drops `rateLimits`): JSON text
//! requests `{"id":…,"method":…,"params":{…}}`, answered `{"id":…,"status":…,"result":…}` or
//! `{"id":…,"status":…,"error":{"code":…,"msg":…}}` with the HTTP-equivalent status.
//! - `order.place` / `order.cancel` / `order.modify` / `order.status`: `params` are REST's plus
//!   `apiKey` and `signature` = HMAC over every other param sorted by name, joined `k=v&…`
//!   (`Signer::binance_ws`). The check is REST's own ([`verify_binance`] on that canonical string),
//!   so bad key (-2015, status 401), bad signature (-1022) and timestamp/recvWindow (-1021, against
//!   the mock's clock, which `clock-jump` moves) answer exactly as REST does; the orders then go
//!   through the REST handlers ([`super::orders_binance::ws_method`]), so both transports behave
//!   identically — the `reject` and `rate-limit` faults included (`rate-limit`: status 429 with
//!   the `-1015` error object).
//! - `userDataStream.start` / `.ping` / `.stop` (`apiKey` only, no signature): the listen keys of
//!   `POST` / `PUT` / `DELETE /fapi/v1/listenKey`.
//! - Any other method, a request that is not a JSON object, or a param that is neither a string, a
//!   number nor a boolean: status 400, code -1102 (the mock's choice of Binance's "malformed"
//!   code; the real venue words these errors differently).
//! - `rateLimits`: `REQUEST_WEIGHT` (1 per request, `order.place` 0) and, for `order.place` /
//!   `order.modify`, `ORDERS` per 10 s and per minute. Counted per connection in fixed windows (on
//!   Binance they are per account and shared with REST); never enforced.
//! - The `ack-delay` fault delays each answer (the request is already processed); every answer
//!   counts in `ws_orders`. WebSocket pings are answered with pongs by tungstenite.
//!
//! **User data stream** at `/private/ws/<listenKey>`, `/private/ws?listenKey=<k>` (optional
//! `&events=ORDER_TRADE_UPDATE/ACCOUNT_UPDATE` filter) and the legacy `/ws/<listenKey>` (one
//! all-alphanumeric segment; market streams always contain `@` or `!`, so they never collide). An
//! unknown or expired key is refused at the upgrade with HTTP 400 `{"code":-1125,…}`. Every order
//! update becomes an `ORDER_TRADE_UPDATE`, each fill is followed by an `ACCOUNT_UPDATE`
//! ([`super::private_binance`]), in the order the updates were made. When the key expires or is
//! deleted, `listenKeyExpired` is sent (within ~50 ms) and nothing more; the connection stays open
//! until the client closes it. The `drop-private=P` fault: with probability P a message is not
//! sent and the connection is cut instead (no close frame), counted in `private_drops`.
//!
//! Not implemented: `session.logon` (Ed25519), algo orders, `account.*` / `ticker.*` methods,
//! `TRADE_LITE` and the other user-stream events, the 24 h connection limit.
//!
//! Cold path: one thread per connection, a nonblocking socket polled every millisecond so a
//! connection notices `ctx.stop` promptly.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crossbeam::channel::{Receiver, RecvTimeoutError};
use serde_json::{json, Map, Value};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::auth::verify_binance;
use super::http::{accept_websocket, respond, Request};
use super::orders::{now_ns, url_decode, OrderUpdate};
use super::orders_binance::{ws_method, Params};
use super::private_binance as private;
use super::rng::Rng;
use super::server::{send, would_block, Ctx, ServerIo};

/// The WebSocket API path.
const API_PATH: &str = "/ws-fapi/v1";
/// How often a user-stream connection checks that its listen key is still valid.
const KEY_CHECK: Duration = Duration::from_millis(50);

/// Whether `path` is one of this module's WebSocket endpoints (cheap: no lookup).
pub(crate) fn handles(path: &str) -> bool {
    path == API_PATH
        || path == "/private/ws"
        || path.starts_with("/private/ws/")
        || legacy_key(path).is_some()
}

/// `/ws/<listenKey>`: a single all-alphanumeric segment (market stream names contain `@` or `!`).
fn legacy_key(path: &str) -> Option<&str> {
    let k = path.strip_prefix("/ws/")?;
    (!k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric())).then_some(k)
}

fn listen_key_of(req: &Request) -> Option<String> {
    let path = req.path();
    if path == "/private/ws" {
        return req.query("listenKey").map(url_decode);
    }
    if let Some(k) = path.strip_prefix("/private/ws/") {
        return Some(k.to_string());
    }
    legacy_key(path).map(str::to_string)
}

/// Serves one upgraded connection on a path [`handles`] accepted.
pub(crate) fn websocket(mut io: ServerIo, req: Request, ctx: &Ctx, n: u64) -> std::io::Result<()> {
    if req.path() == API_PATH {
        return api(io, &req, ctx);
    }
    let key = listen_key_of(&req).filter(|k| {
        ctx.listen_keys
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_valid(k, Instant::now())
    });
    match key {
        Some(key) => user_stream(io, &req, &key, ctx, n),
        None => respond(
            &mut io,
            400,
            "Bad Request",
            &[],
            br#"{"code":-1125,"msg":"This listenKey does not exist."}"#,
        ),
    }
}

fn flush(ws: &mut WebSocket<ServerIo>) -> std::io::Result<()> {
    match ws.flush() {
        Ok(()) => Ok(()),
        Err(e) if would_block(&e) => Ok(()),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// What the client sent, read without blocking.
enum Incoming {
    Text(String),
    Nothing,
    Closed,
}

fn read_client(ws: &mut WebSocket<ServerIo>) -> std::io::Result<Incoming> {
    loop {
        return match ws.read() {
            Ok(Message::Text(t)) => Ok(Incoming::Text(t.as_str().to_string())),
            Ok(Message::Close(_)) => Ok(Incoming::Closed),
            Ok(_) => continue, // pings: tungstenite queues the pong for the next flush
            Err(e) if would_block(&e) => Ok(Incoming::Nothing),
            Err(tungstenite::Error::ConnectionClosed) | Err(tungstenite::Error::AlreadyClosed) => {
                Ok(Incoming::Closed)
            }
            Err(e) => Err(std::io::Error::other(e.to_string())),
        };
    }
}

// ---------------------------------------------------------------------------------------------
// WebSocket API

/// A fixed-window request counter.
#[derive(Default)]
struct Window {
    bucket: u64,
    count: u64,
}

impl Window {
    fn add(&mut self, now_ms: u64, window_ms: u64, n: u64) -> u64 {
        if now_ms / window_ms != self.bucket {
            self.bucket = now_ms / window_ms;
            self.count = 0;
        }
        self.count += n;
        self.count
    }
}

/// A connection's rate-limit counters (reported, never enforced).
#[derive(Default)]
struct RateCounts {
    weight: Window,
    orders_10s: Window,
    orders_1m: Window,
}

impl RateCounts {
    fn report(&mut self, method: &str, now_ms: u64) -> Value {
        let weight = if method == "order.place" { 0 } else { 1 };
        let mut v = vec![
            json!({"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE",
            "intervalNum": 1, "limit": 2400, "count": self.weight.add(now_ms, 60_000, weight)}),
        ];
        if matches!(method, "order.place" | "order.modify") {
            v.push(
                json!({"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10,
                "limit": 300, "count": self.orders_10s.add(now_ms, 10_000, 1)}),
            );
            v.push(
                json!({"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1,
                "limit": 1200, "count": self.orders_1m.add(now_ms, 60_000, 1)}),
            );
        }
        Value::Array(v)
    }
}

/// A request's outcome: the result, or (status, error object).
type Outcome = Result<Value, (u16, Value)>;

fn malformed(what: &str) -> (u16, Value) {
    let msg = format!("Mandatory parameter '{what}' was not sent, was empty/null, or malformed.");
    (400, json!({"code": -1102, "msg": msg}))
}

fn invalid_key() -> (u16, Value) {
    (
        401,
        json!({"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."}),
    )
}

/// A REST-shaped answer as a ws-fapi outcome.
fn outcome(status: u16, body: &str) -> Outcome {
    let v = serde_json::from_str::<Value>(body).unwrap_or(Value::Null);
    if status == 200 {
        Ok(v)
    } else {
        Err((status, v))
    }
}

fn api(mut io: ServerIo, req: &Request, ctx: &Ctx) -> std::io::Result<()> {
    let with_limits = req.query("returnRateLimits") != Some("false");
    accept_websocket(&mut io, req)?;
    // Order entry has nothing to push: block on the socket (an answer goes out as soon as its
    // request is read), waking every 5 ms to notice `ctx.stop`.
    io.tcp().set_nonblocking(false)?;
    io.tcp().set_read_timeout(Some(Duration::from_millis(5)))?;
    // Under the benchmark's probe, orders are stamped as they come off the wire, not when this
    // thread is done answering the previous one.
    if ctx.hub.probe.get().is_some() {
        io = io.stamped()?;
    }
    let mut ws = WebSocket::from_raw_socket(io, Role::Server, None);
    let mut limits = RateCounts::default();
    let res = loop {
        if ctx.stop.load(Ordering::Relaxed) {
            break Ok(());
        }
        match read_client(&mut ws) {
            Ok(Incoming::Text(t)) => {
                if let Some(p) = ctx.hub.probe.get() {
                    let at = ws.get_ref().arrival_ns().unwrap_or_else(|| p.now());
                    p.order_arrived(&t, at);
                }
                let answer = answer(&t, ctx, &mut limits, with_limits);
                if let Some(d) = ctx.faults.ack_delay {
                    std::thread::sleep(d);
                }
                if let Err(e) = send(&mut ws, Message::text(answer)).and_then(|_| flush(&mut ws)) {
                    break Err(e);
                }
                ctx.counters.ws_orders.fetch_add(1, Ordering::Relaxed);
            }
            Ok(Incoming::Nothing) => {
                if let Err(e) = flush(&mut ws) {
                    break Err(e);
                }
            }
            Ok(Incoming::Closed) => break Ok(()),
            Err(e) => break Err(e),
        }
    };
    let _ = ws.close(None);
    let _ = ws.flush();
    res
}

/// Answers one ws-fapi request text.
fn answer(text: &str, ctx: &Ctx, limits: &mut RateCounts, with_limits: bool) -> String {
    let req = serde_json::from_str::<Value>(text)
        .ok()
        .filter(Value::is_object);
    let id = req
        .as_ref()
        .and_then(|v| v.get("id").cloned())
        .unwrap_or(Value::Null);
    let method = req
        .as_ref()
        .and_then(|v| v["method"].as_str())
        .unwrap_or("");
    let empty = Map::new();
    let params = req.as_ref().map(|v| match v.get("params") {
        None | Some(Value::Null) => Some(&empty),
        Some(p) => p.as_object(),
    });
    let res = match params {
        None => Err(malformed("request")),
        Some(None) => Err(malformed("params")),
        Some(Some(p)) => dispatch(method, p, ctx),
    };
    let mut out = match res {
        Ok(result) => json!({"id": id, "status": 200, "result": result}),
        Err((status, error)) => json!({"id": id, "status": status, "error": error}),
    };
    if with_limits {
        out["rateLimits"] = limits.report(method, now_ns() / 1_000_000);
    }
    out.to_string()
}

fn dispatch(method: &str, params: &Map<String, Value>, ctx: &Ctx) -> Outcome {
    match method {
        "order.place" | "order.cancel" | "order.modify" | "order.status" => {
            let p = verify(params, ctx)?;
            match ws_method(method, &p, ctx) {
                Some(a) => outcome(a.status, &a.body),
                None => Err(malformed("method")),
            }
        }
        "userDataStream.start" | "userDataStream.ping" | "userDataStream.stop" => {
            user_stream_method(method, params, ctx)
        }
        _ => {
            let msg = format!("Unknown method '{method}'.");
            Err((400, json!({"code": -1102, "msg": msg})))
        }
    }
}

/// JSON params as REST-style `(name, value)` strings (decimals may come as strings or numbers).
fn flat_params(params: &Map<String, Value>) -> Result<Vec<(String, String)>, (u16, Value)> {
    let mut out = Vec::with_capacity(params.len());
    for (k, v) in params {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => return Err(malformed(k)),
        };
        // The canonical string below is `k=v&…`: a `&` would change how it splits.
        if k.contains(['&', '=']) || s.contains('&') {
            return Err(malformed(k));
        }
        out.push((k.clone(), s));
    }
    Ok(out)
}

/// REST's signature and timestamp checks on a ws-fapi request: the params except `signature`,
/// sorted by name and joined `k=v&…`, are exactly what `Signer::binance_ws` signs and what
/// [`verify_binance`] verifies as a query string.
fn verify(params: &Map<String, Value>, ctx: &Ctx) -> Result<Params, (u16, Value)> {
    let mut pairs = flat_params(params)?;
    let Some(i) = pairs.iter().position(|(k, _)| k == "signature") else {
        return Err(malformed("signature"));
    };
    let (_, sig) = pairs.remove(i);
    pairs.sort_by(|a, b| a.0.cmp(&b.0));
    let mut query = pairs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    if !query.is_empty() {
        query.push('&');
    }
    query.push_str("signature=");
    query.push_str(&sig);
    let api_key = pairs
        .iter()
        .find(|(k, _)| k == "apiKey")
        .map(|(_, v)| v.as_str());
    match verify_binance(
        &ctx.orders.accounts,
        api_key,
        &query,
        "",
        ctx.clock_ns() / 1_000_000,
    ) {
        Ok(_) => Ok(Params(pairs)),
        Err(r) => Err(outcome(r.http_status, &r.body)
            .err()
            .unwrap_or_else(|| malformed("signature"))),
    }
}

/// `userDataStream.start` / `.ping` / `.stop`: `apiKey` only (plus an optional `listenKey`).
fn user_stream_method(method: &str, params: &Map<String, Value>, ctx: &Ctx) -> Outcome {
    let api_key = params.get("apiKey").and_then(Value::as_str).unwrap_or("");
    if !ctx.orders.accounts.iter().any(|s| s.api_key() == api_key) {
        return Err(invalid_key());
    }
    let named = params.get("listenKey").and_then(Value::as_str);
    let unknown = || {
        (
            400,
            json!({"code": -1125, "msg": "This listenKey does not exist."}),
        )
    };
    let mut keys = ctx.listen_keys.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    match method {
        "userDataStream.start" => Ok(json!({"listenKey": keys.start(api_key, now)})),
        "userDataStream.ping" => keys
            .keepalive(api_key, named, now)
            .map(|k| json!({"listenKey": k}))
            .ok_or_else(unknown),
        _ => {
            if keys.close(api_key, named, now) {
                Ok(json!({}))
            } else {
                Err(unknown())
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// User data stream

fn user_stream(
    mut io: ServerIo,
    req: &Request,
    key: &str,
    ctx: &Ctx,
    n: u64,
) -> std::io::Result<()> {
    let events: Option<Vec<String>> = req
        .query("events")
        .map(|e| url_decode(e).split('/').map(str::to_string).collect());
    // Subscribe before the 101 goes out: every update made after the client sees the upgrade is
    // delivered.
    let (sub, rx) = ctx.hub.subscribe_private();
    let res = (|| {
        accept_websocket(&mut io, req)?;
        io.tcp().set_nonblocking(true)?;
        let mut ws = WebSocket::from_raw_socket(io, Role::Server, None);
        let mut stream = UserStream {
            key,
            ctx,
            events,
            rng: Rng::new(ctx.seed ^ (n + 1).wrapping_mul(0x5851_F42D_4C95_7F2D)),
        };
        let r = stream.run(&mut ws, &rx);
        if !matches!(r, Ok(Flow::Cut)) {
            let _ = ws.close(None);
            let _ = ws.flush();
        }
        r.map(|_| ())
    })();
    ctx.hub.unsubscribe_private(sub);
    res
}

/// How a user-stream connection ended.
enum Flow {
    /// Closed by the client or the mock's stop.
    Done,
    /// Cut by the `drop-private` fault: no close frame.
    Cut,
}

struct UserStream<'a> {
    key: &'a str,
    ctx: &'a Ctx,
    /// `events=` filter (None = all).
    events: Option<Vec<String>>,
    rng: Rng,
}

impl UserStream<'_> {
    fn run(
        &mut self,
        ws: &mut WebSocket<ServerIo>,
        rx: &Receiver<std::sync::Arc<OrderUpdate>>,
    ) -> std::io::Result<Flow> {
        let ctx = self.ctx;
        let mut expired = false;
        let mut checked = Instant::now();
        loop {
            if ctx.stop.load(Ordering::Relaxed) {
                return Ok(Flow::Done);
            }
            if !expired && checked.elapsed() >= KEY_CHECK {
                checked = Instant::now();
                let valid = ctx
                    .listen_keys
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .is_valid(self.key, checked);
                if !valid {
                    expired = true;
                    let msg = private::listen_key_expired(self.key, now_ns() / 1_000_000);
                    if !self.deliver(ws, msg)? {
                        return Ok(Flow::Cut);
                    }
                }
            }
            let mut next = match rx.recv_timeout(Duration::from_millis(1)) {
                Ok(u) => Some(u),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => return Ok(Flow::Done),
            };
            while let Some(u) = next {
                // After expiry the updates are read and discarded: no events on a dead key.
                if !expired {
                    for msg in self.messages(&u) {
                        if !self.deliver(ws, msg)? {
                            return Ok(Flow::Cut);
                        }
                    }
                }
                next = rx.try_recv().ok();
            }
            flush(ws)?;
            loop {
                match read_client(ws)? {
                    Incoming::Text(_) => {} // the user stream takes no requests
                    Incoming::Nothing => break,
                    Incoming::Closed => return Ok(Flow::Done),
                }
            }
        }
    }

    fn wants(&self, event: &str) -> bool {
        self.events
            .as_ref()
            .is_none_or(|e| e.iter().any(|x| x == event))
    }

    /// The events of one update, in sending order.
    fn messages(&self, u: &OrderUpdate) -> Vec<String> {
        let now_ms = now_ns() / 1_000_000;
        let mut out = Vec::with_capacity(2);
        if self.wants("ORDER_TRADE_UPDATE") {
            out.extend(private::order_trade_update(u, now_ms));
        }
        if private::is_fill(u) && self.wants("ACCOUNT_UPDATE") {
            let symbol = u.record.order.symbol;
            let mark = self
                .ctx
                .hub
                .with_symbol(symbol.as_str(), |s| {
                    s.map(|s| u.position.mark_price(&s.book))
                })
                .unwrap_or_else(|| u.position.entry_price());
            out.push(private::account_update(u, mark, now_ms));
        }
        out
    }

    /// Sends one message, or (the `drop-private` fault) drops it and reports that the connection
    /// is to be cut: `Ok(false)`.
    fn deliver(&mut self, ws: &mut WebSocket<ServerIo>, msg: String) -> std::io::Result<bool> {
        let c = &self.ctx.counters;
        if self.rng.chance(self.ctx.faults.drop_private) {
            c.private_drops.fetch_add(1, Ordering::Relaxed);
            return Ok(false);
        }
        send(ws, Message::text(msg))?;
        c.private_sent.fetch_add(1, Ordering::Relaxed);
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let key = "a".repeat(64);
        assert!(handles("/ws-fapi/v1"));
        assert!(handles("/private/ws"));
        assert!(handles(&format!("/private/ws/{key}")));
        assert!(handles(&format!("/ws/{key}")));
        assert!(!handles("/ws/btcusdt@depth"));
        assert!(!handles("/ws/!bookTicker"));
        assert!(!handles("/ws/btcusdt@depth/btcusdt@trade"));
        assert!(!handles("/ws"));
        assert!(!handles("/ws/"));
        assert!(!handles("/stream"));
    }

    #[test]
    fn params_flatten_and_refuse_odd_values() {
        let p: Map<String, Value> =
            serde_json::from_str(r#"{"price":"1.5","timestamp":17,"reduceOnly":true}"#).unwrap();
        let mut f = flat_params(&p).unwrap();
        f.sort();
        assert_eq!(
            f,
            vec![
                ("price".to_string(), "1.5".to_string()),
                ("reduceOnly".into(), "true".into()),
                ("timestamp".into(), "17".into())
            ]
        );
        let bad: Map<String, Value> = serde_json::from_str(r#"{"symbol":["x"]}"#).unwrap();
        assert_eq!(flat_params(&bad).unwrap_err().1["code"], -1102);
        let amp: Map<String, Value> =
            serde_json::from_str(r#"{"symbol":"X&timestamp=1"}"#).unwrap();
        assert!(flat_params(&amp).is_err());
    }

    #[test]
    fn rate_windows_reset() {
        let mut w = Window::default();
        assert_eq!(w.add(10_000, 10_000, 1), 1);
        assert_eq!(w.add(19_999, 10_000, 1), 2);
        assert_eq!(w.add(20_000, 10_000, 1), 1);
    }
}
