//! Bybit v5 private WebSockets on the mock (PROTOCOLS.md C.2, C.4, C.7, C.9): the Trade WS
//! (`/v5/trade`, order entry) and the private stream (`/v5/private`: `order`, `execution`,
//! `execution.fast`, `position`, `wallet`, `dcp`).
//!
//! **Auth** (both): `{"req_id"|"reqId":…,"op":"auth","args":[apiKey, expires, signature]}` with
//! `signature = hex(HMAC_SHA256(secret, "GET/realtime" + expires))` and `expires` (ms) in the
//! future. Failures: 10003 unknown key, 10004 bad signature, 10001 malformed or expired, 20001
//! already authenticated (the private stream answers `success:false` with that text in `ret_msg`).
//!
//! **Trade WS**: `order.create` / `order.amend` / `order.cancel` with one `args` item, the REST
//! body, handled by the same code as REST ([`super::orders_bybit::trade_op`]), answered with the
//! C.7 response (`reqId`, `retCode`, `retMsg`, `op`, `data:{orderId, orderLinkId}`, `retExtInfo`,
//! `header{X-Bapi-Limit…, Traceid, Timenow}`, `connId`). Checks, in this order: unknown op → 10404
//! (the batch ops are not implemented and answer 10404 too); not authenticated → 10003 ("please
//! auth first": Bybit's exact text is undocumented); `reqId` over 36 characters → 10001; `reqId`
//! already used on this connection → 20006; `args` not exactly one item → 10001; missing
//! `X-BAPI-TIMESTAMP` → 10001, outside `now − recvWindow ≤ ts < now + 1000` → 10002 (`now`, like
//! auth's `expires` check and the header's `Timenow`, is the mock's clock, which `clock-jump`
//! moves). The rate-limit header reports a per-connection, per-op 10/s window but never refuses by
//! itself; the `rate-limit=P` fault refuses `order.create` with 10006 "Too many visits!" (through
//! the REST code, like `reject`). `ack-delay` delays each order answer; `{"op":"ping"}` →
//! `op:"pong"`.
//!
//! **Private stream**: `subscribe` / `unsubscribe` after auth (before it: `success:false`); topics
//! `order`, `execution`, `execution.fast`, `position` (or their per-category forms `order.linear`
//! …; mixing the two forms in one request is refused, as on Bybit), `wallet`, `dcp` (also
//! `dcp.future`; `dcp.spot` / `dcp.option` are accepted and do nothing). Each
//! [`OrderUpdate`] becomes, for the topics subscribed: `execution` (+ `execution.fast`) for a
//! fill, `order`, `position` (every create, amend, cancel and fill, as on Bybit), and `wallet`
//! after a fill (see [`super::private_bybit`] for the fields and what is not modelled). Only linear
//! is traded: `order.spot` etc. are accepted and never delivered. Messages are sent in update
//! order; no snapshot on subscribe.
//!
//! **Disconnection protection**: subscribing to `dcp` counts the connection as protecting the
//! account (`DeadMan::dcp_connected`); when it ends, however it ends, `dcp_disconnected` starts the
//! window set by `POST /v5/order/disconnected-cancel-all`. No window set → nothing fires (Bybit's
//! 10 s default is not applied). Unsubscribing `dcp` withdraws the connection without starting the
//! window. The mock pushes no `dcp` messages.
//!
//! **Fault** `drop-private=P`: each private-topic message is, with probability P (per-connection
//! [`Rng`] from the seed and the connection number), not sent, and the connection is closed.
//!
//! Simplifications: no `max_active_time` / idle timeout, no connection limits, one account.
//! Cold path: one thread per connection, `serde_json`.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use crossbeam::channel::{Receiver, RecvTimeoutError};
use serde_json::{json, Value};
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::http::{accept_websocket, respond, Request};
use super::orders::{now_ns, OrderUpdate};
use super::orders_bybit::trade_op;
use super::private_bybit as msg;
use super::rng::Rng;
use super::server::{send, would_block, Ctx, ServerIo};

type Ws = WebSocket<ServerIo>;

const TRADE_PATH: &str = "/v5/trade";
const PRIVATE_PATH: &str = "/v5/private";
/// Per-UID order-entry limit per op (C.8), reported in the response header.
const OPS_PER_SECOND: u32 = 10;

pub(crate) fn handles(path: &str) -> bool {
    path == TRADE_PATH || path == PRIVATE_PATH
}

pub(crate) fn websocket(mut io: ServerIo, req: Request, ctx: &Ctx, n: u64) -> std::io::Result<()> {
    let trade = req.path() == TRADE_PATH;
    if !handles(req.path()) {
        return respond(&mut io, 404, "Not Found", &[], b"{}");
    }
    accept_websocket(&mut io, &req)?;
    if trade {
        // Order entry has nothing to push: block on the socket (answers go out at once), waking
        // now and then to notice `ctx.stop`.
        io.tcp().set_nonblocking(false)?;
        io.tcp().set_read_timeout(Some(Duration::from_millis(5)))?;
        let mut ws = WebSocket::from_raw_socket(io, Role::Server, None);
        let mut s = TradeSession {
            conn_id: format!("mock-trade-{n}"),
            authed: false,
            seen: HashSet::new(),
            limits: HashMap::new(),
        };
        let res = run(&mut ws, ctx, &mut s);
        close(&mut ws);
        res
    } else {
        io.tcp().set_nonblocking(true)?;
        let (id, rx) = ctx.hub.subscribe_private();
        let mut ws = WebSocket::from_raw_socket(io, Role::Server, None);
        let mut s = PrivateSession {
            conn_id: format!("mock-private-{n}"),
            authed: false,
            topics: HashSet::new(),
            dcp: DcpGuard { ctx, armed: false },
            rx,
            rng: Rng::new(ctx.seed ^ (n + 1).wrapping_mul(0xD1B5_4A32_D192_ED03)),
        };
        let res = run(&mut ws, ctx, &mut s);
        ctx.hub.unsubscribe_private(id);
        close(&mut ws);
        res // `s.dcp` is dropped here: the connection no longer protects the account
    }
}

fn close(ws: &mut Ws) {
    let _ = ws.close(None);
    let _ = ws.flush();
}

/// Whether the loop goes on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Close,
}

/// One kind of connection: what it does with a client message, and between reads.
trait Session {
    fn on_text(&mut self, ws: &mut Ws, text: &str, ctx: &Ctx) -> std::io::Result<Flow>;
    fn poll(&mut self, ws: &mut Ws, ctx: &Ctx) -> std::io::Result<Flow>;
}

fn flush(ws: &mut Ws) -> std::io::Result<()> {
    match ws.flush() {
        Ok(()) => Ok(()),
        Err(e) if would_block(&e) => Ok(()),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

fn idle(e: &tungstenite::Error) -> bool {
    would_block(e)
        || matches!(e, tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::TimedOut)
}

/// The connection loop: never blocks longer than a few milliseconds, ends on `ctx.stop`.
fn run(ws: &mut Ws, ctx: &Ctx, s: &mut impl Session) -> std::io::Result<()> {
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if s.poll(ws, ctx)? == Flow::Close {
            return Ok(());
        }
        flush(ws)?;
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => {
                    if s.on_text(ws, t.as_str(), ctx)? == Flow::Close {
                        return Ok(());
                    }
                    flush(ws)?;
                }
                Ok(Message::Close(_)) => return Ok(()),
                Ok(_) => {} // WebSocket pings are answered by tungstenite on the next flush
                Err(e) if idle(&e) => break,
                Err(tungstenite::Error::ConnectionClosed)
                | Err(tungstenite::Error::AlreadyClosed) => return Ok(()),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        }
    }
}

fn now_ms() -> u64 {
    now_ns() / 1_000_000
}

/// `reqId` / `req_id` as a string (a number is accepted and echoed as text).
fn req_id(v: &Value) -> Option<String> {
    let r = v.get("reqId").or_else(|| v.get("req_id"))?;
    match r {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Checks an `auth` request's `[apiKey, expires, signature]`: `Err((retCode, message))`.
fn check_auth(ctx: &Ctx, v: &Value) -> Result<(), (i32, &'static str)> {
    let args = v["args"].as_array().map(Vec::as_slice).unwrap_or(&[]);
    let [key, expires, sig] = args else {
        return Err((
            10001,
            "Params Error: args must be [apiKey, expires, signature]",
        ));
    };
    let expires = expires
        .as_u64()
        .or_else(|| expires.as_str().and_then(|s| s.parse().ok()));
    let (Some(key), Some(expires), Some(sig)) = (key.as_str(), expires, sig.as_str()) else {
        return Err((
            10001,
            "Params Error: args must be [apiKey, expires, signature]",
        ));
    };
    let Some(signer) = ctx.orders.accounts.iter().find(|s| s.api_key() == key) else {
        return Err((10003, "API key is invalid."));
    };
    if !sig.eq_ignore_ascii_case(&signer.bybit_ws_auth(expires)) {
        return Err((
            10004,
            "Error sign, please check your signature generation algorithm.",
        ));
    }
    if expires <= ctx.clock_ns() / 1_000_000 {
        return Err((10001, "Params Error: expires is in the past"));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Trade WS

struct TradeSession {
    conn_id: String,
    authed: bool,
    /// `reqId`s used on this connection (20006 on reuse).
    seen: HashSet<String>,
    /// Per op: start of the current 1 s window (ms) and requests in it.
    limits: HashMap<String, (u64, u32)>,
}

const ORDER_OPS: [&str; 3] = ["order.create", "order.amend", "order.cancel"];

impl TradeSession {
    fn reply(&self, ws: &mut Ws, mut v: Value, req_id: &Option<String>) -> std::io::Result<()> {
        if let (Some(o), Some(r)) = (v.as_object_mut(), req_id) {
            o.insert("reqId".into(), r.clone().into());
        }
        if let Some(o) = v.as_object_mut() {
            o.insert("connId".into(), self.conn_id.clone().into());
        }
        send(ws, Message::text(v.to_string()))
    }

    /// The C.7 response header, counting this request in its op's 1 s window.
    fn header(&mut self, op: &str, ctx: &Ctx) -> Value {
        let now = ctx.clock_ns() / 1_000_000;
        let w = self.limits.entry(op.to_string()).or_insert((now, 0));
        if now >= w.0 + 1000 {
            *w = (now, 0);
        }
        w.1 += 1;
        json!({
            "X-Bapi-Limit": OPS_PER_SECOND.to_string(),
            "X-Bapi-Limit-Status": OPS_PER_SECOND.saturating_sub(w.1).to_string(),
            "X-Bapi-Limit-Reset-Timestamp": (w.0 + 1000).to_string(),
            "Traceid": format!("{:032x}", now_ns() as u128 * 0x9E37_79B9_7F4A_7C15),
            "Timenow": now.to_string(),
        })
    }

    fn order_request(&mut self, v: &Value, op: &str, ctx: &Ctx) -> (i32, String, Value) {
        let fail = |code: i32, m: &str| (code, m.to_string(), json!({}));
        if !ORDER_OPS.contains(&op) {
            return fail(10404, &format!("op {op:?} is not supported"));
        }
        if !self.authed {
            return fail(10003, "please auth first");
        }
        if let Some(r) = req_id(v) {
            if r.len() > 36 {
                return fail(10001, "Params Error: reqId is longer than 36 characters");
            }
            if !self.seen.insert(r) {
                return fail(20006, "reqId is duplicate");
            }
        }
        let args = v["args"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let [item] = args else {
            return fail(10001, "Params Error: args must hold exactly one order");
        };
        let h = &v["header"];
        let field = |k: &str| {
            let f = &h[k];
            f.as_u64()
                .or_else(|| f.as_str().and_then(|s| s.parse().ok()))
        };
        let Some(ts) = field("X-BAPI-TIMESTAMP") else {
            return fail(10001, "Params Error: header X-BAPI-TIMESTAMP is required");
        };
        let window = field("X-BAPI-RECV-WINDOW").unwrap_or(5000);
        let now = ctx.clock_ns() / 1_000_000;
        // server_time − recv_window ≤ timestamp < server_time + 1000 (C.5)
        if ts >= now + 1000 || now.saturating_sub(window) > ts {
            return fail(10002, "The request time exceeds the time window range.");
        }
        match trade_op(op, item, ctx) {
            Some(Ok(data)) => (0, "OK".into(), data),
            Some(Err(r)) => (r.code, r.msg, json!({})),
            None => fail(10404, &format!("op {op:?} is not supported")),
        }
    }
}

impl Session for TradeSession {
    fn on_text(&mut self, ws: &mut Ws, text: &str, ctx: &Ctx) -> std::io::Result<Flow> {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            let r = json!({"retCode": 10001, "retMsg": "Params Error: invalid JSON", "op": ""});
            self.reply(ws, r, &None)?;
            return Ok(Flow::Continue);
        };
        let rid = req_id(&v);
        let op = v["op"].as_str().unwrap_or("").to_string();
        match op.as_str() {
            "ping" => {
                let r = json!({"retCode": 0, "retMsg": "OK", "op": "pong",
                    "data": [now_ms().to_string()]});
                self.reply(ws, r, &rid)?;
            }
            "auth" => {
                let (code, m) = if self.authed {
                    (
                        20001,
                        "Repeat auth: this connection is already authenticated",
                    )
                } else {
                    match check_auth(ctx, &v) {
                        Ok(()) => {
                            self.authed = true;
                            (0, "OK")
                        }
                        Err(e) => e,
                    }
                };
                self.reply(
                    ws,
                    json!({"retCode": code, "retMsg": m, "op": "auth"}),
                    &rid,
                )?;
            }
            _ => {
                let (code, m, data) = self.order_request(&v, &op, ctx);
                if let Some(d) = ctx.faults.ack_delay {
                    std::thread::sleep(d);
                }
                let r = json!({
                    "retCode": code,
                    "retMsg": m,
                    "op": op,
                    "data": data,
                    "retExtInfo": {},
                    "header": self.header(&op, ctx),
                });
                self.reply(ws, r, &rid)?;
                ctx.counters.ws_orders.fetch_add(1, Ordering::Relaxed);
            }
        }
        Ok(Flow::Continue)
    }

    fn poll(&mut self, _ws: &mut Ws, _ctx: &Ctx) -> std::io::Result<Flow> {
        Ok(Flow::Continue)
    }
}

// ---------------------------------------------------------------------------------------------
// Private stream

/// Keeps `DeadMan`'s count of `dcp` connections right however the connection ends.
struct DcpGuard<'a> {
    ctx: &'a Ctx,
    armed: bool,
}

impl DcpGuard<'_> {
    fn arm(&mut self) {
        if !self.armed {
            self.armed = true;
            self.lock().dcp_connected();
        }
    }

    /// `dcp` unsubscribed: the connection stops protecting the account without starting the window.
    fn withdraw(&mut self) {
        if self.armed {
            self.armed = false;
            let mut d = self.lock();
            d.dcp_connections = d.dcp_connections.saturating_sub(1);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, super::deadman::DeadMan> {
        self.ctx.deadman.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Drop for DcpGuard<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.lock().dcp_disconnected();
        }
    }
}

const CATEGORISED_TOPICS: [&str; 4] = ["order", "execution", "execution.fast", "position"];
const CATEGORIES: [&str; 4] = ["linear", "inverse", "option", "spot"];
const OTHER_TOPICS: [&str; 5] = ["wallet", "dcp", "dcp.future", "dcp.spot", "dcp.option"];

/// How a topic name is written: all-in-one, per category, or neither (`wallet`, `dcp…`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum TopicForm {
    AllInOne,
    PerCategory,
    Other,
}

fn topic_form(t: &str) -> Option<TopicForm> {
    if CATEGORISED_TOPICS.contains(&t) {
        return Some(TopicForm::AllInOne);
    }
    if OTHER_TOPICS.contains(&t) {
        return Some(TopicForm::Other);
    }
    let (base, cat) = t.rsplit_once('.')?;
    (CATEGORISED_TOPICS.contains(&base) && CATEGORIES.contains(&cat))
        .then_some(TopicForm::PerCategory)
}

fn is_dcp(t: &str) -> bool {
    t == "dcp" || t == "dcp.future"
}

struct PrivateSession<'a> {
    conn_id: String,
    authed: bool,
    topics: HashSet<String>,
    dcp: DcpGuard<'a>,
    rx: Receiver<Arc<OrderUpdate>>,
    /// Draws for `drop-private`.
    rng: Rng,
}

impl PrivateSession<'_> {
    fn ack(&self, op: &str, rid: &Option<String>, err: Option<&str>) -> Value {
        let mut v = json!({
            "success": err.is_none(),
            "ret_msg": err.unwrap_or(""),
            "conn_id": self.conn_id,
            "op": op,
        });
        if let (Some(o), Some(r)) = (v.as_object_mut(), rid) {
            o.insert("req_id".into(), r.clone().into());
        }
        v
    }

    /// The topic name to deliver `base` under on this connection, if subscribed.
    fn topic(&self, base: &str) -> Option<String> {
        if self.topics.contains(base) {
            return Some(base.to_string());
        }
        let per = format!("{base}.linear");
        self.topics.contains(&per).then_some(per)
    }

    fn subscribe(&mut self, v: &Value) -> Result<(), String> {
        if !self.authed {
            return Err("Request not authorized: send auth first".into());
        }
        let args = v["args"].as_array().map(Vec::as_slice).unwrap_or(&[]);
        let mut forms = Vec::with_capacity(args.len());
        let mut bad = Vec::new();
        for a in args {
            match a.as_str().and_then(|t| Some((t, topic_form(t)?))) {
                Some((t, f)) => forms.push((t.to_string(), f)),
                None => bad.push(a.to_string()),
            }
        }
        if !bad.is_empty() || forms.is_empty() {
            return Err(format!("Invalid topic: [{}]", bad.join(",")));
        }
        let has = |f| forms.iter().any(|(_, g)| *g == f);
        if has(TopicForm::AllInOne) && has(TopicForm::PerCategory) {
            return Err(
                "Invalid topics: all-in-one and per-category topics cannot be mixed in one request"
                    .into(),
            );
        }
        for (t, _) in forms {
            if is_dcp(&t) {
                self.dcp.arm();
            }
            self.topics.insert(t);
        }
        Ok(())
    }

    fn unsubscribe(&mut self, v: &Value) {
        for t in v["args"].as_array().into_iter().flatten() {
            if let Some(t) = t.as_str() {
                self.topics.remove(t);
            }
        }
        if !self.topics.iter().any(|t| is_dcp(t)) {
            self.dcp.withdraw();
        }
    }

    /// The messages one update produces on this connection, in sending order.
    fn messages(&self, u: &OrderUpdate, ctx: &Ctx) -> Vec<String> {
        let mut out = Vec::new();
        let exec = self.topic("execution");
        let fast = self.topic("execution.fast");
        let position = self.topic("position");
        let view = if exec.is_some() || position.is_some() {
            msg::symbol_view(ctx, u.record.order.symbol.as_str(), &u.position)
        } else {
            msg::SymbolView::default()
        };
        if let Some(t) = exec {
            out.extend(msg::execution_message(u, &t, view.mark));
        }
        if let Some(t) = fast {
            out.extend(msg::execution_fast_message(u, &t));
        }
        if let Some(t) = self.topic("order") {
            out.push(msg::order_message(u, &t));
        }
        if let Some(t) = position {
            out.push(msg::position_message(u, &t, view));
        }
        let fill = matches!(
            u.report.kind,
            qalpha_engine::order::ExecKind::PartialFill | qalpha_engine::order::ExecKind::Fill
        );
        if fill && self.topics.contains("wallet") {
            out.push(msg::wallet_message(u.seq, msg::account_view(ctx)));
        }
        out
    }

    fn deliver(&mut self, ws: &mut Ws, u: &OrderUpdate, ctx: &Ctx) -> std::io::Result<Flow> {
        for m in self.messages(u, ctx) {
            if self.rng.chance(ctx.faults.drop_private) {
                ctx.counters.private_drops.fetch_add(1, Ordering::Relaxed);
                return Ok(Flow::Close);
            }
            send(ws, Message::text(m))?;
            ctx.counters.private_sent.fetch_add(1, Ordering::Relaxed);
        }
        Ok(Flow::Continue)
    }
}

impl Session for PrivateSession<'_> {
    fn on_text(&mut self, ws: &mut Ws, text: &str, ctx: &Ctx) -> std::io::Result<Flow> {
        let Ok(v) = serde_json::from_str::<Value>(text) else {
            let r = self.ack("", &None, Some("Invalid JSON"));
            send(ws, Message::text(r.to_string()))?;
            return Ok(Flow::Continue);
        };
        let rid = req_id(&v);
        let op = v["op"].as_str().unwrap_or("").to_string();
        let reply = match op.as_str() {
            "ping" => {
                let mut r = json!({"op": "pong", "args": [now_ms().to_string()],
                    "conn_id": self.conn_id});
                if let (Some(o), Some(id)) = (r.as_object_mut(), &rid) {
                    o.insert("req_id".into(), id.clone().into());
                }
                r
            }
            "auth" => {
                let res = if self.authed {
                    Err((
                        20001,
                        "Repeat auth: this connection is already authenticated",
                    ))
                } else {
                    check_auth(ctx, &v)
                };
                self.authed |= res.is_ok();
                let err = res.err().map(|(code, m)| format!("{m} (retCode {code})"));
                self.ack("auth", &rid, err.as_deref())
            }
            "subscribe" => {
                let err = self.subscribe(&v).err();
                self.ack("subscribe", &rid, err.as_deref())
            }
            "unsubscribe" => {
                self.unsubscribe(&v);
                self.ack("unsubscribe", &rid, None)
            }
            _ => self.ack(&op, &rid, Some("unknown op")),
        };
        send(ws, Message::text(reply.to_string()))?;
        Ok(Flow::Continue)
    }

    fn poll(&mut self, ws: &mut Ws, ctx: &Ctx) -> std::io::Result<Flow> {
        let first = match self.rx.recv_timeout(Duration::from_micros(500)) {
            Ok(u) => u,
            Err(RecvTimeoutError::Timeout) => return Ok(Flow::Continue),
            Err(RecvTimeoutError::Disconnected) => return Ok(Flow::Close),
        };
        if self.deliver(ws, &first, ctx)? == Flow::Close {
            return Ok(Flow::Close);
        }
        // Drain what is already queued before looking at the client side.
        for _ in 0..1024 {
            match self.rx.try_recv() {
                Ok(u) => {
                    if self.deliver(ws, &u, ctx)? == Flow::Close {
                        return Ok(Flow::Close);
                    }
                }
                Err(_) => break,
            }
        }
        Ok(Flow::Continue)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_forms() {
        assert_eq!(topic_form("order"), Some(TopicForm::AllInOne));
        assert_eq!(topic_form("execution.fast"), Some(TopicForm::AllInOne));
        assert_eq!(
            topic_form("execution.fast.linear"),
            Some(TopicForm::PerCategory)
        );
        assert_eq!(topic_form("order.linear"), Some(TopicForm::PerCategory));
        assert_eq!(topic_form("wallet"), Some(TopicForm::Other));
        assert_eq!(topic_form("dcp"), Some(TopicForm::Other));
        assert_eq!(topic_form("order.nonsense"), None);
        assert_eq!(topic_form("orderbook.50.BTCUSDT"), None);
        assert!(handles("/v5/trade") && handles("/v5/private") && !handles("/v5/public/linear"));
    }
}
