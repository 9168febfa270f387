//! The mock's listener and per-connection protocol handling (one thread per connection: this is
//! test infrastructure on loopback, written for clarity over scale).
//!
//! Binance USD-M: WebSocket paths `/stream?streams=…`, `/ws/<s>/<s>`, and their routed forms under
//! `/public` and `/market` (a stream on the wrong route is silently not delivered, as on Binance since
//! 2026-04-23); live `SUBSCRIBE` / `UNSUBSCRIBE` / `LIST_SUBSCRIPTIONS` answered `{"result":…,"id":…}`;
//! REST `GET /fapi/v1/depth` (weight 2–20 by limit, `X-MBX-USED-WEIGHT-1M`, 429 over 2400/min) and
//! `/fapi/v1/time`. Bybit v5: `/v5/public/linear` with `subscribe` acks, an order-book snapshot on
//! subscribe then deltas, `ping` → `pong`; REST `GET /v5/market/orderbook` and `/v5/market/time`.
//! Order-entry paths are handed to [`super::orders`].

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crossbeam::channel::RecvTimeoutError;
use qalpha_engine::event::Venue;
use rustls::{ServerConfig, ServerConnection, StreamOwned};
use tungstenite::protocol::frame::coding::{Data, OpCode};
use tungstenite::protocol::frame::Frame;
use tungstenite::protocol::Role;
use tungstenite::{Message, WebSocket};

use super::faults::FaultSpec;
use super::http::{accept_websocket, next_request, respond, set_last_response, Request};
use super::market::{binance_route_of, binance_stream_key, Hub};
use super::rng::Rng;
use super::stamped::StampedTcp;

/// Plain or TLS server stream.
pub enum ServerIo {
    // (the TLS variant is boxed: a rustls connection is large)
    Plain(TcpStream),
    Tls(Box<StreamOwned<ServerConnection, TcpStream>>),
    /// TLS over a socket read by a stamping thread (the benchmark's order API).
    TlsStamped(Box<StreamOwned<ServerConnection, StampedTcp>>),
}

impl ServerIo {
    pub(crate) fn tcp(&self) -> &TcpStream {
        match self {
            ServerIo::Plain(s) => s,
            ServerIo::Tls(s) => &s.sock,
            ServerIo::TlsStamped(s) => s.sock.tcp(),
        }
    }

    /// The same connection with its reads stamped by a thread of their own ([`StampedTcp`]);
    /// plain connections stay as they are.
    pub(crate) fn stamped(self) -> std::io::Result<ServerIo> {
        match self {
            ServerIo::Tls(s) => {
                let StreamOwned { conn, sock } = *s;
                Ok(ServerIo::TlsStamped(Box::new(StreamOwned::new(
                    conn,
                    StampedTcp::spawn(sock)?,
                ))))
            }
            other => Ok(other),
        }
    }

    /// When the bytes last read came off the wire, for a stamped connection.
    pub(crate) fn arrival_ns(&self) -> Option<u64> {
        match self {
            ServerIo::TlsStamped(s) => Some(s.sock.last_ns()),
            _ => None,
        }
    }
}

impl Read for ServerIo {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self {
            ServerIo::Plain(s) => s.read(buf),
            ServerIo::Tls(s) => s.read(buf),
            ServerIo::TlsStamped(s) => s.read(buf),
        }
    }
}

impl Write for ServerIo {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self {
            ServerIo::Plain(s) => s.write(buf),
            ServerIo::Tls(s) => s.write(buf),
            ServerIo::TlsStamped(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            ServerIo::Plain(s) => s.flush(),
            ServerIo::Tls(s) => flush_tls(s),
            ServerIo::TlsStamped(s) => flush_tls(s),
        }
    }
}

/// Flushes the plaintext and writes out every TLS record waiting.
fn flush_tls<S: Read + Write>(s: &mut StreamOwned<ServerConnection, S>) -> std::io::Result<()> {
    s.flush()?;
    while s.conn.wants_write() {
        s.conn.write_tls(&mut s.sock)?;
    }
    Ok(())
}

/// Counters the tests read.
#[derive(Debug, Default)]
pub struct MockCounters {
    pub connections: AtomicU64,
    pub rest_requests: AtomicU64,
    pub frames_sent: AtomicU64,
    pub dropped_diffs: AtomicU64,
    pub duplicated: AtomicU64,
    pub reordered: AtomicU64,
    pub malformed: AtomicU64,
    pub fragmented: AtomicU64,
    pub disconnects: AtomicU64,
    pub silenced: AtomicU64,
    /// Private-stream connections closed by the `drop-private` fault.
    pub private_drops: AtomicU64,
    /// Private-stream messages sent.
    pub private_sent: AtomicU64,
    /// WebSocket order-entry requests answered (ws-fapi, Bybit Trade WS).
    pub ws_orders: AtomicU64,
    /// Dead-man switches that fired.
    pub deadman_fired: AtomicU64,
    /// REST depth snapshots answered with an error by `snapshot-fail`.
    pub snapshot_faults: AtomicU64,
    /// Oversize messages sent by `oversize`.
    pub oversized: AtomicU64,
    /// TLS handshakes refused by `tls-fail`.
    pub tls_failures: AtomicU64,
}

/// Shared by all connection threads.
pub struct Ctx {
    pub venue: Venue,
    pub hub: Arc<Hub>,
    pub tls: Option<Arc<ServerConfig>>,
    pub faults: FaultSpec,
    pub started: Instant,
    pub stop: Arc<AtomicBool>,
    pub counters: Arc<MockCounters>,
    pub seed: u64,
    /// REST weight used in the current minute (Binance accounting).
    pub weight: Mutex<(Instant, u32)>,
    /// Order entry: accounts and fault draws.
    pub orders: super::orders::OrderDesk,
    /// Armed dead-man switches (Binance countdownCancelAll, Bybit disconnection protection).
    pub deadman: Mutex<super::deadman::DeadMan>,
    /// Binance user-data-stream listen keys (REST `/fapi/v1/listenKey`, ws-fapi `userDataStream.*`).
    pub listen_keys: Mutex<super::private_binance::ListenKeys>,
    /// Depth snapshots requested (the draw index of `snapshot-fail`).
    pub snapshot_draws: AtomicU64,
}

impl Ctx {
    /// The mock's clock (ns since the epoch) for time checks: the real one plus any `clock-jump`.
    pub fn clock_ns(&self) -> u64 {
        qalpha_engine::clock::now_ns()
            + self.faults.clock_ahead(self.started.elapsed()).as_nanos() as u64
    }
}

/// Accepts connections until `ctx.stop`.
pub fn serve(listener: TcpListener, ctx: Arc<Ctx>) {
    listener.set_nonblocking(true).ok();
    while !ctx.stop.load(Ordering::Relaxed) {
        match listener.accept() {
            Ok((sock, _)) => {
                sock.set_nonblocking(false).ok();
                sock.set_nodelay(true).ok();
                let ctx = ctx.clone();
                let n = ctx.counters.connections.fetch_add(1, Ordering::Relaxed);
                let _ = std::thread::Builder::new()
                    .name(format!("mock-conn-{n}"))
                    .spawn(move || {
                        if let Err(e) = handle(sock, &ctx, n) {
                            tracing::debug!("mock connection {n}: {e}");
                        }
                    });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => {
                tracing::warn!("mock accept: {e}");
                std::thread::sleep(Duration::from_millis(10));
            }
        }
    }
}

/// Serves one connection: REST requests kept alive until the client asks to close, the
/// connection idles out or the mock stops (see [`super::http`]); or one WebSocket upgrade.
fn handle(mut sock: TcpStream, ctx: &Ctx, n: u64) -> std::io::Result<()> {
    let mut io = match &ctx.tls {
        Some(_)
            if Rng::new(ctx.seed ^ (n + 1).wrapping_mul(0xC2B2_AE3D_27D4_EB4F))
                .chance(ctx.faults.tls_fail) =>
        {
            return refuse_tls(&mut sock, ctx);
        }
        Some(cfg) => {
            let conn = ServerConnection::new(cfg.clone()).map_err(std::io::Error::other)?;
            ServerIo::Tls(Box::new(StreamOwned::new(conn, sock)))
        }
        None => ServerIo::Plain(sock),
    };
    while let Some(req) = next_request(&mut io, &ctx.stop)? {
        if req.is_websocket_upgrade() {
            // An upgrade never returns to REST: a refusal written there is the last response.
            set_last_response(true);
            return websocket(io, req, ctx, n);
        }
        ctx.counters.rest_requests.fetch_add(1, Ordering::Relaxed);
        let close = req.wants_close();
        set_last_response(close);
        super::rest_market::rest(&mut io, &req, ctx)?;
        if close {
            break;
        }
    }
    Ok(())
}

/// The `tls-fail` fault: read the ClientHello, answer a fatal `handshake_failure` alert (TLS 1.2
/// record framing, as servers send it before a version is agreed) and close.
fn refuse_tls(sock: &mut TcpStream, ctx: &Ctx) -> std::io::Result<()> {
    ctx.counters.tls_failures.fetch_add(1, Ordering::Relaxed);
    sock.set_read_timeout(Some(Duration::from_secs(2)))?;
    let mut hello = [0u8; 4096];
    let _ = sock.read(&mut hello)?;
    // Alert record: content type 21, version 3.3, length 2, level fatal (2), handshake_failure (40).
    sock.write_all(&[21, 3, 3, 0, 2, 2, 40])?;
    let _ = sock.shutdown(std::net::Shutdown::Both);
    Ok(())
}

/// The `oversize` fault's message: valid JSON, larger than any client should buffer (9 MiB).
fn oversize_message() -> String {
    let mut m = String::with_capacity(9 << 20);
    m.push_str("{\"pad\":\"");
    m.extend(std::iter::repeat_n('x', (9 << 20) - 12));
    m.push_str("\"}");
    m
}

/// A connection's subscriptions.
struct Subs {
    /// Binance: (stream key, name as requested); Bybit: (topic, snapshot u).
    items: Vec<(String, String, u64)>,
    combined: bool,
    route: Option<&'static str>,
}

impl Subs {
    fn binance_add(&mut self, name: &str) -> bool {
        if let Some(r) = self.route {
            if binance_route_of(name) != r {
                return false; // wrong route: accepted, never delivered (as on Binance)
            }
        }
        let key = binance_stream_key(name);
        if !self.items.iter().any(|i| i.0 == key) {
            self.items.push((key, name.to_string(), 0));
        }
        true
    }
}

fn websocket(mut io: ServerIo, req: Request, ctx: &Ctx, n: u64) -> std::io::Result<()> {
    let path = req.path().to_string();
    match ctx.venue {
        Venue::BinanceUsdm if super::ws_binance::handles(&path) => {
            return super::ws_binance::websocket(io, req, ctx, n)
        }
        Venue::BybitLinear if super::ws_bybit::handles(&path) => {
            return super::ws_bybit::websocket(io, req, ctx, n)
        }
        _ => {}
    }
    let mut subs = Subs {
        items: Vec::new(),
        combined: false,
        route: None,
    };
    match ctx.venue {
        Venue::BinanceUsdm => {
            let (route, rest) = if let Some(r) = path.strip_prefix("/public") {
                (Some("public"), r)
            } else if let Some(r) = path.strip_prefix("/market") {
                (Some("market"), r)
            } else {
                (Some("public"), path.as_str()) // legacy unrouted URLs get /public data only
            };
            subs.route = route;
            if rest == "/stream" {
                subs.combined = true;
                for s in req
                    .query("streams")
                    .unwrap_or("")
                    .split('/')
                    .filter(|s| !s.is_empty())
                {
                    subs.binance_add(s);
                }
            } else if let Some(list) = rest.strip_prefix("/ws") {
                for s in list.split('/').filter(|s| !s.is_empty()) {
                    subs.binance_add(s);
                }
            } else {
                return respond(&mut io, 404, "Not Found", &[], b"{}");
            }
        }
        Venue::BybitLinear => {
            if path != "/v5/public/linear" {
                return respond(&mut io, 404, "Not Found", &[], b"{}");
            }
        }
    }
    accept_websocket(&mut io, &req)?;
    io.tcp().set_nonblocking(true)?;
    let (sub_id, rx) = ctx.hub.subscribe();
    if !subs.items.is_empty() {
        ctx.hub.has_subscriber.store(true, Ordering::Release);
    }
    let mut ws = WebSocket::from_raw_socket(io, Role::Server, None);
    let res = pump(&mut ws, &rx, &mut subs, ctx, n);
    ctx.hub.unsubscribe(sub_id);
    let _ = ws.close(None);
    let _ = ws.flush();
    res
}

pub(crate) fn would_block(e: &tungstenite::Error) -> bool {
    matches!(e, tungstenite::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock)
}

pub(crate) fn send(ws: &mut WebSocket<ServerIo>, msg: Message) -> std::io::Result<()> {
    match ws.write(msg) {
        Ok(()) => Ok(()),
        Err(e) if would_block(&e) => Ok(()),
        Err(e) => Err(std::io::Error::other(e.to_string())),
    }
}

/// The per-connection loop: deliver tape frames (with faults), answer client messages.
fn pump(
    ws: &mut WebSocket<ServerIo>,
    rx: &crossbeam::channel::Receiver<Arc<super::market::TapeFrame>>,
    subs: &mut Subs,
    ctx: &Ctx,
    n: u64,
) -> std::io::Result<()> {
    let opened = Instant::now();
    let mut rng = Rng::new(ctx.seed ^ (n + 1).wrapping_mul(0x9E37_79B9));
    let mut held: Option<(String, String)> = None;
    let mut silenced = false;
    // Probe keys of the frames written since the last flush (latency benchmark only).
    let mut keys: Vec<u64> = Vec::new();
    let probe = ctx.hub.probe.get().cloned();
    let f = &ctx.faults;
    loop {
        if ctx.stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        if let Some(every) = f.disconnect_every {
            if opened.elapsed() >= every {
                ctx.counters.disconnects.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        let silent = f.ping_timeout && opened.elapsed() >= Duration::from_secs(5);
        if silent {
            // Half-dead connection: open, but nothing in either direction.
            if !silenced {
                silenced = true;
                ctx.counters.silenced.fetch_add(1, Ordering::Relaxed);
            }
            std::thread::sleep(Duration::from_millis(10));
            while rx.try_recv().is_ok() {}
            continue;
        }
        let stalled = f
            .stall
            .is_some_and(|(d, at)| ctx.started.elapsed() >= at && ctx.started.elapsed() < at + d);
        if !stalled {
            match rx.recv_timeout(Duration::from_micros(500)) {
                Ok(frame) => {
                    deliver(ws, &frame, subs, ctx, &mut rng, &mut held, &mut keys)?;
                    // Drain what is already queued before looking at the client side.
                    for _ in 0..4096 {
                        match rx.try_recv() {
                            Ok(next) => {
                                deliver(ws, &next, subs, ctx, &mut rng, &mut held, &mut keys)?
                            }
                            Err(_) => break,
                        }
                    }
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(()),
            }
        } else {
            std::thread::sleep(Duration::from_millis(1));
        }
        let flushed_at = probe.as_ref().map(|p| p.now());
        match ws.flush() {
            Ok(()) => {}
            Err(e) if would_block(&e) => {}
            Err(e) => return Err(std::io::Error::other(e.to_string())),
        }
        if let (Some(p), Some(t)) = (&probe, flushed_at) {
            p.frames_sent(&mut keys, t);
        }
        // Client messages.
        loop {
            match ws.read() {
                Ok(Message::Text(t)) => on_client_text(ws, t.as_str(), subs, ctx)?,
                Ok(Message::Close(_)) => return Ok(()),
                Ok(_) => {} // pings are answered by tungstenite on the next flush
                Err(e) if would_block(&e) => break,
                Err(tungstenite::Error::ConnectionClosed)
                | Err(tungstenite::Error::AlreadyClosed) => return Ok(()),
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        }
    }
}

fn wanted(frame: &super::market::TapeFrame, subs: &Subs) -> Option<(String, u64)> {
    subs.items
        .iter()
        .find(|i| i.0 == frame.key)
        .map(|i| (i.1.clone(), i.2))
}

fn deliver(
    ws: &mut WebSocket<ServerIo>,
    frame: &super::market::TapeFrame,
    subs: &mut Subs,
    ctx: &Ctx,
    rng: &mut Rng,
    held: &mut Option<(String, String)>,
    keys: &mut Vec<u64>,
) -> std::io::Result<()> {
    let Some((name, snap_u)) = wanted(frame, subs) else {
        return Ok(());
    };
    let text = match ctx.venue {
        Venue::BinanceUsdm if subs.combined => {
            format!("{{\"stream\":\"{name}\",\"data\":{}}}", frame.body)
        }
        Venue::BinanceUsdm => frame.body.clone(),
        Venue::BybitLinear => {
            if frame.is_diff && frame.topic_u <= snap_u {
                return Ok(()); // already inside this subscriber's snapshot
            }
            if !frame.is_diff && frame.topic_u < snap_u {
                // A snapshot behind this subscriber's: the service restarted (`u` back to 1).
                if let Some(i) = subs.items.iter_mut().find(|i| i.0 == frame.key) {
                    i.2 = frame.topic_u;
                }
            }
            frame.body.clone()
        }
    };
    let f = &ctx.faults;
    let c = &ctx.counters;
    if frame.is_diff && rng.chance(f.drop_diff) {
        c.dropped_diffs.fetch_add(1, Ordering::Relaxed);
        return Ok(());
    }
    // Reorder within a stream: hold this frame back until the next frame of the same stream is sent.
    if rng.chance(f.reorder) && held.is_none() {
        c.reordered.fetch_add(1, Ordering::Relaxed);
        *held = Some((frame.key.clone(), text));
        return Ok(());
    }
    let copies = if rng.chance(f.duplicate) {
        c.duplicated.fetch_add(1, Ordering::Relaxed);
        2
    } else {
        1
    };
    if rng.chance(f.oversize) {
        c.oversized.fetch_add(1, Ordering::Relaxed);
        send(ws, Message::text(oversize_message()))?;
    }
    for _ in 0..copies {
        if rng.chance(f.malformed) {
            c.malformed.fetch_add(1, Ordering::Relaxed);
            let cut = text.len() / 2;
            let cut = (0..=cut)
                .rev()
                .find(|i| text.is_char_boundary(*i))
                .unwrap_or(0);
            send(ws, Message::text(text[..cut].to_string()))?;
        } else if rng.chance(f.fragment) && text.len() > 8 {
            c.fragmented.fetch_add(1, Ordering::Relaxed);
            let b = text.as_bytes();
            let (a, rest) = b.split_at(b.len() / 3);
            let (m, z) = rest.split_at(rest.len() / 2);
            send(
                ws,
                Message::Frame(Frame::message(a.to_vec(), OpCode::Data(Data::Text), false)),
            )?;
            send(
                ws,
                Message::Frame(Frame::message(
                    m.to_vec(),
                    OpCode::Data(Data::Continue),
                    false,
                )),
            )?;
            send(
                ws,
                Message::Frame(Frame::message(
                    z.to_vec(),
                    OpCode::Data(Data::Continue),
                    true,
                )),
            )?;
        } else {
            if ctx.hub.probe.get().is_some() {
                keys.extend(super::probe::frame_key(&text));
            }
            send(ws, Message::text(text.clone()))?;
        }
        c.frames_sent.fetch_add(1, Ordering::Relaxed);
    }
    if held.as_ref().is_some_and(|(k, _)| *k == frame.key) {
        if let Some((_, h)) = held.take() {
            send(ws, Message::text(h))?;
            c.frames_sent.fetch_add(1, Ordering::Relaxed);
        }
    }
    Ok(())
}

fn on_client_text(
    ws: &mut WebSocket<ServerIo>,
    text: &str,
    subs: &mut Subs,
    ctx: &Ctx,
) -> std::io::Result<()> {
    let Ok(v) = serde_json::from_str::<serde_json::Value>(text) else {
        return send(ws, Message::text(r#"{"code":3,"msg":"Invalid JSON"}"#));
    };
    match ctx.venue {
        Venue::BinanceUsdm => {
            let id = v.get("id").cloned().unwrap_or(serde_json::Value::Null);
            let params: Vec<String> = v["params"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|p| p.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            match v["method"].as_str() {
                Some("SUBSCRIBE") => {
                    for p in &params {
                        subs.binance_add(p);
                    }
                    ctx.hub.has_subscriber.store(true, Ordering::Release);
                    send(
                        ws,
                        Message::text(format!("{{\"result\":null,\"id\":{id}}}")),
                    )
                }
                Some("UNSUBSCRIBE") => {
                    subs.items
                        .retain(|i| !params.iter().any(|p| binance_stream_key(p) == i.0));
                    send(
                        ws,
                        Message::text(format!("{{\"result\":null,\"id\":{id}}}")),
                    )
                }
                Some("LIST_SUBSCRIPTIONS") => {
                    let names: Vec<String> =
                        subs.items.iter().map(|i| format!("\"{}\"", i.1)).collect();
                    send(
                        ws,
                        Message::text(format!("{{\"result\":[{}],\"id\":{id}}}", names.join(","))),
                    )
                }
                _ => send(
                    ws,
                    Message::text(format!(
                        "{{\"code\":2,\"msg\":\"Invalid request: unknown method\",\"id\":{id}}}"
                    )),
                ),
            }
        }
        Venue::BybitLinear => {
            let req_id = v["req_id"].as_str().unwrap_or("").to_string();
            match v["op"].as_str() {
                Some("ping") => send(
                    ws,
                    Message::text(format!(
                        "{{\"success\":true,\"ret_msg\":\"pong\",\"conn_id\":\"mock\",\"req_id\":\"{req_id}\",\"op\":\"ping\"}}"
                    )),
                ),
                Some("subscribe") => {
                    let topics: Vec<String> = v["args"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
                        .unwrap_or_default();
                    let mut snapshots = Vec::new();
                    let mut bad = Vec::new();
                    for t in &topics {
                        let parts: Vec<&str> = t.split('.').collect();
                        let valid = match parts.as_slice() {
                            ["orderbook", d, _] => ["1", "50", "200", "500", "1000"].contains(d),
                            ["publicTrade", _] | ["tickers", _] | ["allLiquidation", _] => true,
                            _ => false,
                        };
                        if !valid {
                            bad.push(t.clone());
                            continue;
                        }
                        let mut snap_u = 0;
                        if let ["orderbook", d, sym] = parts.as_slice() {
                            let depth: usize = d.parse().unwrap_or(50);
                            if let Some((frame, u)) = bybit_snapshot(ctx, t, sym, depth) {
                                snapshots.push(frame);
                                snap_u = u;
                            }
                        }
                        subs.items.retain(|i| i.0 != *t);
                        subs.items.push((t.clone(), t.clone(), snap_u));
                    }
                    ctx.hub.has_subscriber.store(true, Ordering::Release);
                    let ack = if bad.is_empty() {
                        format!("{{\"success\":true,\"ret_msg\":\"\",\"conn_id\":\"mock\",\"req_id\":\"{req_id}\",\"op\":\"subscribe\"}}")
                    } else {
                        format!(
                            "{{\"success\":false,\"ret_msg\":\"Invalid topic: [{}]\",\"conn_id\":\"mock\",\"req_id\":\"{req_id}\",\"op\":\"subscribe\"}}",
                            bad.join(",")
                        )
                    };
                    send(ws, Message::text(ack))?;
                    for s in snapshots {
                        send(ws, Message::text(s))?;
                    }
                    Ok(())
                }
                Some("unsubscribe") => {
                    let topics: Vec<String> = v["args"]
                        .as_array()
                        .map(|a| a.iter().filter_map(|p| p.as_str().map(str::to_string)).collect())
                        .unwrap_or_default();
                    subs.items.retain(|i| !topics.contains(&i.0));
                    send(
                        ws,
                        Message::text(format!(
                            "{{\"success\":true,\"ret_msg\":\"\",\"conn_id\":\"mock\",\"req_id\":\"{req_id}\",\"op\":\"unsubscribe\"}}"
                        )),
                    )
                }
                _ => send(
                    ws,
                    Message::text(format!(
                        "{{\"success\":false,\"ret_msg\":\"unknown op\",\"conn_id\":\"mock\",\"req_id\":\"{req_id}\",\"op\":\"\"}}"
                    )),
                ),
            }
        }
    }
}

/// A Bybit order-book snapshot for a new subscriber, at the topic's current `u`.
fn bybit_snapshot(ctx: &Ctx, topic: &str, symbol: &str, depth: usize) -> Option<(String, u64)> {
    ctx.hub.with_symbol(symbol, |s| {
        let s = s?;
        let u = s.topic_u.get(topic).copied().unwrap_or(0);
        let frame = format!(
            "{{\"topic\":\"{topic}\",\"type\":\"snapshot\",\"ts\":{},\"data\":{{\"s\":\"{symbol}\",\"b\":{},\"a\":{},\"u\":{u},\"seq\":{}}},\"cts\":{}}}",
            s.last_ms,
            s.book.levels_json(true, depth),
            s.book.levels_json(false, depth),
            s.seq,
            s.last_ms
        );
        Some((frame, u))
    })
}
