//! The gateway thread: order commands from the strategy's ring → the venue, execution reports back.
//!
//! - **Order entry** over the venue's WebSocket API (Binance ws-fapi, Bybit Trade WS) when
//!   `via = ws` and the connection is ready, else over REST (keep-alive HTTPS) — the **fallback**
//!   while the WebSocket is down or for calls it has no method for (cancel-all). Every request is
//!   stamped with the server-time offset measured at start and re-measured after a -1021 / 10002.
//! - **Answers and errors**: each venue error is typed ([`crate::errors`]) and handled by its retry
//!   policy: timestamp → re-sync the clock and resend once; rate limit → resend once after the
//!   venue's back-off; unknown fate (5xx, timeout, duplicate id) → query the order and adopt what the
//!   venue says; credentials/ban → halt new orders; anything else → reject. A resend reuses the
//!   client order id, so the venue itself refuses a second placement.
//! - **Private stream** (Binance user data via listenKey, Bybit `order`/`execution`): fills and state
//!   changes as they happen. When it drops, it reconnects with backoff; until it is back the gateway
//!   polls open orders every `reconcile_every`, and on every (re)connect it **reconciles**: open
//!   orders of each symbol, and a query for each order it believes open that the venue no longer
//!   lists. Every source goes through the [`Tracker`], which keys fills on the cumulative quantity,
//!   so nothing is reported twice and nothing missed stays missing.
//! - **At start**: clock sync, private stream, reconciliation of the configured symbols — open orders
//!   found at the venue are adopted (their ids are never reused) and reported as acknowledgements.
//! - **Dead-man switch** (when `dead_man_ms` is set — live mode): Binance `countdownCancelAll` per
//!   symbol, refreshed every third of the countdown; Bybit disconnection protection with the private
//!   stream subscribed to `dcp`.
//!
//! Blocking REST calls run on this thread: they are the fallback and reconciliation paths, never the
//! WebSocket fast path. Tick-to-wire is stamped right after the order's bytes were handed to the
//! socket.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use mio::{Events, Poll, Token};
use qalpha_engine::clock::now_ns;
use qalpha_engine::order::{ClientOrderId, ExecKind, ExecReport, OrderAction, OrderCommand};
use qalpha_engine::ring::{Consumer, Producer};
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::transport::rest::RestClient;
use qalpha_engine::transport::tls::client_config;
use qalpha_engine::transport::ws::Progress;
use qalpha_engine::{Side, Symbol, Venue};
use rustls::ClientConfig;

use super::conn::{Conn, FrameBuf};
use super::protocol::{Answer, Protocol, WsMessage};
use super::request::{Method, SignedRequest};
use super::tracker::{blank, Tracker, TrackerStats};
use crate::clock_sync::{ClockOffset, TimeSample};
use crate::errors::{ErrorKind, RetryPolicy, VenueError};
use crate::fill::FeeSchedule;
use crate::sign::Signer;

const ORDER_WS: Token = Token(1);
const PRIVATE_WS: Token = Token(2);
/// Bybit asks for a ping every 20 s on private and trade connections.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Binance listenKeys live 60 min; keep alive every 30.
const LISTEN_KEY_KEEPALIVE: Duration = Duration::from_secs(30 * 60);
/// A connection that is not ready this long after it started is dropped and retried.
const HANDSHAKE_DEADLINE: Duration = Duration::from_secs(5);

/// How orders are sent.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    Ws,
    Rest,
}

/// Where and as whom the gateway trades.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    pub venue: Venue,
    /// REST base (`https://fapi.binance.com`).
    pub rest_url: String,
    /// Order WebSocket (`wss://ws-fapi.binance.com/ws-fapi/v1`, `wss://stream.bybit.com/v5/trade`).
    pub order_ws_url: Option<String>,
    /// Private stream: Binance base to which `/ws/<listenKey>` is added
    /// (`wss://fstream.binance.com/private`); Bybit the full URL (`wss://stream.bybit.com/v5/private`).
    /// `None`: no stream, the gateway polls open orders instead.
    pub private_ws_url: Option<String>,
    pub ca_file: Option<PathBuf>,
    pub signer: Signer,
    pub via: Via,
    /// Symbols reconciled at start (open orders adopted) and covered by the dead-man switch.
    pub symbols: Vec<Symbol>,
    /// Arms the venue's dead-man switch with this window (live mode).
    pub dead_man_ms: Option<u64>,
    /// An order request unanswered this long is reconciled by a query.
    pub ack_timeout: Duration,
    /// Open-order poll interval while the private stream is down (or absent).
    pub reconcile_every: Duration,
    /// Fees charged on fills learnt from queries (which carry none).
    pub fees: FeeSchedule,
    pub rest_timeout: Duration,
}

impl GatewayConfig {
    /// Defaults for `venue` at `rest_url`: REST only, no private stream, 3 s ack timeout.
    pub fn new(venue: Venue, rest_url: &str, signer: Signer) -> Self {
        Self {
            venue,
            rest_url: rest_url.trim_end_matches('/').to_string(),
            order_ws_url: None,
            private_ws_url: None,
            ca_file: None,
            signer,
            via: Via::Rest,
            symbols: Vec::new(),
            dead_man_ms: None,
            ack_timeout: Duration::from_secs(3),
            reconcile_every: Duration::from_millis(250),
            fees: match venue {
                Venue::BinanceUsdm => FeeSchedule::BINANCE_USDM_REGULAR,
                Venue::BybitLinear => FeeSchedule::BYBIT_LINEAR_VIP0,
            },
            rest_timeout: Duration::from_secs(5),
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{venue} gateway: {why}")]
    Start { venue: &'static str, why: String },
}

/// What the gateway counted.
#[derive(Clone, Debug)]
pub struct GatewayStats {
    pub orders: u64,
    pub cancels: u64,
    pub amends: u64,
    pub cancel_alls: u64,
    /// Requests sent over the WebSocket API / over REST.
    pub ws_requests: u64,
    pub rest_requests: u64,
    /// Order requests that went over REST because the WebSocket was not ready.
    pub rest_fallbacks: u64,
    /// Reconnects of the order WebSocket and the private stream (after the first connection).
    pub order_ws_reconnects: u64,
    pub private_reconnects: u64,
    /// Reconciliation passes (start, after reconnects, polls while the stream is down).
    pub reconciliations: u64,
    /// Requests resent under a retry policy (clock re-sync, rate limit).
    pub retries: u64,
    /// Requests whose answer did not come within `ack_timeout`.
    pub ack_timeouts: u64,
    pub transport_errors: u64,
    pub venue_errors: u64,
    /// Private-stream messages that could not be read.
    pub bad_private: u64,
    pub dead_man_refreshes: u64,
    /// New orders refused locally because trading is halted (credentials, ban).
    pub halted_refusals: u64,
    pub halted: bool,
    pub tracker: TrackerStats,
    /// Tick `recv_ns` → the order's bytes handed to the socket (WS) or the request sent (REST), ns.
    pub tick_to_wire: Histogram<u64>,
    /// Tick → the venue's answer processed, ns.
    pub tick_to_answer: Histogram<u64>,
    pub clock_offset_ns: i64,
    pub last_error: Option<String>,
}

/// A latency histogram, 1 ns … 60 s at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

/// A WebSocket request awaiting its answer.
#[derive(Clone, Copy, Debug)]
struct Pending {
    cmd: OrderCommand,
    sent: Instant,
    retried: bool,
}

/// The gateway (one venue, one account).
pub struct Gateway {
    cfg: GatewayConfig,
    proto: Protocol,
    rest: RestClient,
    tls: Option<Arc<ClientConfig>>,
    clock: ClockOffset,
    tracker: Tracker,
    poll: Poll,
    events: Events,
    order_ws: Conn,
    private_ws: Conn,
    listen_key: Option<String>,
    last_keepalive: Instant,
    pending: HashMap<u64, Pending>,
    next_req: u64,
    retry_queue: Vec<(Instant, OrderCommand)>,
    frames: FrameBuf,
    last_reconcile: Instant,
    last_dead_man: Instant,
    /// Reports produced outside a command (start-up reconciliation), handed out by the next call.
    backlog: Vec<ExecReport>,
    pub stats: GatewayStats,
}

impl Gateway {
    /// Connects: clock sync, private stream, start-up reconciliation, order WebSocket, dead-man
    /// switch. Fails only when the venue's REST API is unusable (no clock, no open orders).
    pub fn connect(cfg: GatewayConfig) -> Result<Self, GatewayError> {
        let venue = cfg.venue.name();
        let fail = |why: String| GatewayError::Start { venue, why };
        let tls = if cfg.rest_url.starts_with("https://")
            || cfg
                .order_ws_url
                .as_deref()
                .is_some_and(|u| u.starts_with("wss://"))
            || cfg
                .private_ws_url
                .as_deref()
                .is_some_and(|u| u.starts_with("wss://"))
        {
            Some(client_config(cfg.ca_file.as_deref()).map_err(|e| fail(e.to_string()))?)
        } else {
            None
        };
        let rest = RestClient::new(&cfg.rest_url, tls.clone(), cfg.rest_timeout)
            .map_err(|e| fail(e.to_string()))?;
        let poll = Poll::new().map_err(|e| fail(format!("mio poll: {e}")))?;
        let now = Instant::now();
        let mut g = Self {
            proto: Protocol::new(cfg.venue, cfg.signer.clone()),
            tracker: Tracker::new(cfg.venue, cfg.fees),
            rest,
            tls,
            clock: ClockOffset::default(),
            poll,
            events: Events::with_capacity(64),
            order_ws: Conn::new("order-ws", ORDER_WS),
            private_ws: Conn::new("private-ws", PRIVATE_WS),
            listen_key: None,
            last_keepalive: now,
            pending: HashMap::new(),
            next_req: 1,
            retry_queue: Vec::new(),
            frames: FrameBuf::default(),
            last_reconcile: now,
            last_dead_man: now,
            backlog: Vec::new(),
            stats: GatewayStats {
                orders: 0,
                cancels: 0,
                amends: 0,
                cancel_alls: 0,
                ws_requests: 0,
                rest_requests: 0,
                rest_fallbacks: 0,
                order_ws_reconnects: 0,
                private_reconnects: 0,
                reconciliations: 0,
                retries: 0,
                ack_timeouts: 0,
                transport_errors: 0,
                venue_errors: 0,
                bad_private: 0,
                dead_man_refreshes: 0,
                halted_refusals: 0,
                halted: false,
                tracker: TrackerStats::default(),
                tick_to_wire: latency_histogram(),
                tick_to_answer: latency_histogram(),
                clock_offset_ns: 0,
                last_error: None,
            },
            cfg,
        };
        g.sync_clock().map_err(fail)?;
        g.arm_dead_man(true);
        if g.cfg.private_ws_url.is_some() {
            g.start_private();
            g.wait_ready(false);
        }
        let mut out = Vec::new();
        g.reconcile(true, &mut out).map_err(fail)?;
        g.backlog = out;
        if g.cfg.via == Via::Ws && g.cfg.order_ws_url.is_some() {
            g.start_order_ws();
            g.wait_ready(true);
        }
        Ok(g)
    }

    /// Orders the gateway believes open.
    pub fn open_orders(&self) -> impl Iterator<Item = &super::tracker::Tracked> + '_ {
        self.tracker.open()
    }

    /// Whether the order WebSocket / private stream is ready now.
    pub fn order_ws_ready(&self) -> bool {
        self.order_ws.ready
    }

    pub fn private_ready(&self) -> bool {
        self.private_ws.ready
    }

    /// Serves commands until the ring is closed and empty (or `stop`), pushing reports; returns the
    /// counters.
    pub fn run(
        mut self,
        cmds: &mut Consumer<OrderCommand>,
        reports: &mut Producer<ExecReport>,
        wait: WaitMode,
        stop: &AtomicBool,
    ) -> GatewayStats {
        let mut out = Vec::with_capacity(16);
        let mut spins = 0u32;
        loop {
            let mut busy = false;
            while let Ok(cmd) = cmds.pop() {
                busy = true;
                self.submit(&cmd, &mut out);
            }
            if cmds.is_abandoned() && self.pending.is_empty() {
                break;
            }
            if stop.load(Ordering::Relaxed) && self.pending.is_empty() {
                break;
            }
            // Never block in the poll: commands arrive on the ring, which the poll cannot see.
            // Idle waiting is the thread's wait mode (park: spin briefly, then 50 µs naps).
            self.poll_io(Some(Duration::ZERO), &mut out);
            if out.is_empty() && !busy {
                wait.idle(&mut spins);
            } else {
                spins = 0;
            }
            for r in out.drain(..) {
                reports.push(r);
            }
        }
        self.finish()
    }

    /// Final counters (closes connections).
    pub fn finish(mut self) -> GatewayStats {
        let reg = self.poll.registry();
        self.order_ws.fail(reg);
        self.private_ws.fail(reg);
        self.stats.tracker = self.tracker.stats;
        self.stats.clock_offset_ns = self.clock.offset_ns();
        self.stats
    }

    /// Handles one command; reports (and any backlog) go to `out`.
    pub fn submit(&mut self, cmd: &OrderCommand, out: &mut Vec<ExecReport>) {
        out.append(&mut self.backlog);
        if let OrderAction::New(o) = cmd.action {
            if self.stats.halted {
                self.stats.halted_refusals += 1;
                out.push(ExecReport {
                    reason: -1,
                    ..blank(&o, ExecKind::Rejected)
                });
                return;
            }
            if !self.tracker.register(o) {
                let code = match o.venue {
                    Venue::BinanceUsdm => -4116,
                    Venue::BybitLinear => 110072,
                };
                out.push(ExecReport {
                    reason: code,
                    ..blank(&o, ExecKind::Rejected)
                });
                return;
            }
            self.stats.orders += 1;
        }
        match cmd.action {
            OrderAction::Cancel { .. } => self.stats.cancels += 1,
            OrderAction::Amend { .. } => self.stats.amends += 1,
            OrderAction::CancelAll => self.stats.cancel_alls += 1,
            OrderAction::New(_) => {}
        }
        self.send(cmd, false, out);
    }

    /// The side of the order an action refers to (amends need it on Binance).
    fn side_of(&self, cmd: &OrderCommand) -> Side {
        match cmd.action {
            OrderAction::New(o) => o.side,
            OrderAction::Cancel { client_id } | OrderAction::Amend { client_id, .. } => self
                .tracker
                .get(&client_id)
                .map_or(Side::Buy, |t| t.order.side),
            OrderAction::CancelAll => Side::Buy,
        }
    }

    fn send(&mut self, cmd: &OrderCommand, retried: bool, out: &mut Vec<ExecReport>) {
        let ts = self.clock.server_ms(now_ns());
        let side = self.side_of(cmd);
        if self.cfg.via == Via::Ws && self.order_ws.ready {
            let id = self.next_req;
            if let Some(msg) =
                self.proto
                    .ws_order(&id.to_string(), cmd.symbol, &cmd.action, side, ts)
            {
                self.next_req += 1;
                match self.order_ws.send(&msg) {
                    Ok(()) => {
                        self.stats.ws_requests += 1;
                        if matches!(cmd.action, OrderAction::New(_)) {
                            let ns = now_ns().saturating_sub(cmd.tick_recv_ns).max(1);
                            self.stats.tick_to_wire.saturating_record(ns);
                        }
                        self.pending.insert(
                            id,
                            Pending {
                                cmd: *cmd,
                                sent: Instant::now(),
                                retried,
                            },
                        );
                        return;
                    }
                    Err(e) => {
                        // Whether the bytes left is unknown: the order's fate is settled by a query.
                        self.note_transport(&e.to_string());
                        self.order_ws_down(out);
                        if let Some(c) = client_of(cmd) {
                            self.query_order(cmd.symbol, c, out);
                        }
                        return;
                    }
                }
            }
        } else if self.cfg.via == Via::Ws && matches!(cmd.action, OrderAction::New(_)) {
            self.stats.rest_fallbacks += 1;
        }
        let req = self.proto.rest_order(cmd.symbol, &cmd.action, side, ts);
        if matches!(cmd.action, OrderAction::New(_)) {
            let ns = now_ns().saturating_sub(cmd.tick_recv_ns).max(1);
            self.stats.tick_to_wire.saturating_record(ns);
        }
        let result = match self.rest_call(&req) {
            Ok((status, body)) => self.proto.parse_rest(status, &body),
            Err(()) => {
                // No answer: the fate is unknown; ask the venue.
                if let Some(c) = client_of(cmd) {
                    self.query_order(cmd.symbol, c, out);
                }
                return;
            }
        };
        self.on_answer(cmd, retried, result, out);
    }

    /// What to do with an order request's answer.
    fn on_answer(
        &mut self,
        cmd: &OrderCommand,
        retried: bool,
        result: Result<Answer, VenueError>,
        out: &mut Vec<ExecReport>,
    ) {
        if matches!(cmd.action, OrderAction::New(_)) {
            let ns = now_ns().saturating_sub(cmd.tick_recv_ns).max(1);
            self.stats.tick_to_answer.saturating_record(ns);
        }
        let is_new = matches!(cmd.action, OrderAction::New(_));
        match result {
            Ok(Answer::Order(s)) => self.tracker.on_snapshot(&s, is_new, out),
            Ok(Answer::Accepted { venue_order_id, .. }) => {
                if let OrderAction::New(o) = cmd.action {
                    let r = ExecReport {
                        venue_order_id,
                        leaves_qty: o.qty,
                        ..blank(&o, ExecKind::Ack)
                    };
                    self.tracker.on_report(&r, out);
                }
            }
            Ok(Answer::Done) => {
                if cmd.action == OrderAction::CancelAll {
                    // The cancels arrive on the private stream; without one, ask now.
                    if !self.private_ws.ready {
                        let _ = self.reconcile(false, out);
                    }
                }
            }
            Err(e) => self.on_error(cmd, retried, e, out),
        }
    }

    fn on_error(
        &mut self,
        cmd: &OrderCommand,
        retried: bool,
        e: VenueError,
        out: &mut Vec<ExecReport>,
    ) {
        self.stats.venue_errors += 1;
        if !matches!(
            e.kind,
            ErrorKind::PostOnlyWouldTake | ErrorKind::UnknownOrder
        ) {
            tracing::warn!("{e}");
            self.stats.last_error = Some(e.to_string());
        }
        let client = client_of(cmd);
        match e.retry_policy() {
            RetryPolicy::AfterClockSync if !retried => {
                self.stats.retries += 1;
                // The old samples describe the clock before it moved: start over.
                self.clock = ClockOffset::default();
                let _ = self.sync_clock();
                self.send(cmd, true, out);
            }
            RetryPolicy::After(d) if !retried => {
                self.stats.retries += 1;
                self.retry_queue.push((Instant::now() + d, *cmd));
            }
            RetryPolicy::Halt => {
                self.stats.halted = true;
                tracing::error!("{}: trading halted: {e}", self.cfg.venue.name());
                if let (Some(c), true) = (client, matches!(cmd.action, OrderAction::New(_))) {
                    self.tracker.on_reject(&c, e.code as i32, out);
                }
            }
            RetryPolicy::Reconcile => {
                if let Some(c) = client {
                    self.query_order(cmd.symbol, c, out);
                }
            }
            _ => match (cmd.action, client) {
                (OrderAction::New(_), Some(c)) => self.tracker.on_reject(&c, e.code as i32, out),
                // A cancel or amend that failed (often: the order filled meanwhile) — ask.
                (_, Some(c)) => self.query_order(cmd.symbol, c, out),
                _ => {}
            },
        }
    }

    /// Drives the sockets and timers once (`timeout` for the poll).
    pub fn poll_io(&mut self, timeout: Option<Duration>, out: &mut Vec<ExecReport>) {
        out.append(&mut self.backlog);
        if let Err(e) = self.poll.poll(&mut self.events, timeout) {
            if e.kind() != std::io::ErrorKind::Interrupted {
                self.note_transport(&format!("poll: {e}"));
            }
        }
        self.drive_order_ws(out);
        self.drive_private(out);
        self.timers(out);
    }

    fn drive_order_ws(&mut self, out: &mut Vec<ExecReport>) {
        if !self.order_ws.is_up() {
            return;
        }
        self.frames.clear();
        let res = self.order_ws.drive(&mut self.frames);
        for i in 0..self.frames.len() {
            let msg = self.proto.parse_ws(self.frames.get(i).1);
            match msg {
                WsMessage::Auth(Ok(())) => self.order_ws.set_ready(),
                WsMessage::Auth(Err(e)) => {
                    self.stats.last_error = Some(format!("order WebSocket auth: {e}"));
                    self.stats.halted = e.retry_policy() == RetryPolicy::Halt;
                }
                WsMessage::Answer { id, result } => {
                    let Some(p) = id.parse().ok().and_then(|id: u64| self.pending.remove(&id))
                    else {
                        continue;
                    };
                    self.on_answer(&p.cmd, p.retried, result, out);
                }
                WsMessage::Other => {}
            }
        }
        match res {
            Ok(Progress::Opened) => {
                if self.order_ws.opened > 1 {
                    self.stats.order_ws_reconnects += 1;
                }
                match self.proto.ws_auth(self.clock.server_ms(now_ns()) + 10_000) {
                    Some(auth) => {
                        if self.order_ws.send(&auth).is_err() {
                            self.order_ws_down(out);
                        }
                    }
                    None => self.order_ws.set_ready(),
                }
            }
            Ok(_) => {}
            Err(e) => {
                self.note_transport(&e.to_string());
                self.order_ws_down(out);
            }
        }
    }

    fn drive_private(&mut self, out: &mut Vec<ExecReport>) {
        if !self.private_ws.is_up() {
            return;
        }
        self.frames.clear();
        let res = self.private_ws.drive(&mut self.frames);
        let mut expired = false;
        let mut became_ready = false;
        for i in 0..self.frames.len() {
            let (t, f) = self.frames.get(i);
            if self.cfg.venue == Venue::BybitLinear && !self.private_ws.ready {
                match self.proto.parse_ws(f) {
                    WsMessage::Auth(Err(e)) => {
                        self.stats.last_error = Some(format!("private stream auth: {e}"));
                        continue;
                    }
                    WsMessage::Auth(Ok(())) => continue,
                    _ => {}
                }
                if let Some(ok) = self.proto.private_subscribed(f) {
                    if ok {
                        became_ready = true;
                    } else {
                        self.stats.last_error = Some("private subscription refused".into());
                    }
                    continue;
                }
            }
            let mut reports = Vec::new();
            match self.proto.parse_private(f, t, &mut reports) {
                Ok(true) => {}
                Ok(false) => expired = true,
                Err(e) => {
                    self.stats.bad_private += 1;
                    tracing::warn!("{}: unreadable private message: {e}", self.cfg.venue.name());
                }
            }
            for r in &reports {
                self.tracker.on_report(r, out);
            }
        }
        if became_ready {
            self.private_ready_now(out);
        }
        match res {
            Ok(Progress::Opened) => {
                if self.private_ws.opened > 1 {
                    self.stats.private_reconnects += 1;
                }
                let auth = self.proto.ws_auth(self.clock.server_ms(now_ns()) + 10_000);
                let sub = self.proto.private_subscribe(self.cfg.dead_man_ms.is_some());
                match (auth, sub) {
                    (Some(a), Some(s)) => {
                        if self
                            .private_ws
                            .send(&a)
                            .and_then(|_| self.private_ws.send(&s))
                            .is_err()
                        {
                            self.private_down();
                        }
                    }
                    _ => self.private_ready_now(out),
                }
            }
            Ok(_) if expired => {
                self.listen_key = None;
                self.private_down();
            }
            Ok(_) => {}
            Err(e) => {
                self.note_transport(&e.to_string());
                self.private_down();
            }
        }
    }

    /// The private stream is (again) delivering: reconcile what may have been missed.
    fn private_ready_now(&mut self, out: &mut Vec<ExecReport>) {
        self.private_ws.set_ready();
        if self.private_ws.opened > 1 || self.tracker.has_open() {
            let _ = self.reconcile(false, out);
        }
    }

    fn order_ws_down(&mut self, out: &mut Vec<ExecReport>) {
        self.order_ws.fail(self.poll.registry());
        // Requests in flight on the lost connection: their fate is unknown — ask.
        let lost: Vec<Pending> = self.pending.drain().map(|(_, p)| p).collect();
        for p in lost {
            if let Some(c) = client_of(&p.cmd) {
                self.query_order(p.cmd.symbol, c, out);
            }
        }
    }

    fn private_down(&mut self) {
        self.private_ws.fail(self.poll.registry());
    }

    fn timers(&mut self, out: &mut Vec<ExecReport>) {
        let now = Instant::now();
        // Reconnects.
        if self.cfg.via == Via::Ws && self.cfg.order_ws_url.is_some() && self.order_ws.due(now) {
            self.start_order_ws();
        }
        if self.cfg.private_ws_url.is_some() && self.private_ws.due(now) {
            self.start_private();
        }
        for c in [&mut self.order_ws, &mut self.private_ws] {
            if c.is_up() && !c.ready && now.duration_since(c.started) > HANDSHAKE_DEADLINE {
                c.fail(self.poll.registry());
            }
        }
        // Answers overdue: reconcile those orders.
        let overdue: Vec<u64> = self
            .pending
            .iter()
            .filter(|(_, p)| now.duration_since(p.sent) > self.cfg.ack_timeout)
            .map(|(id, _)| *id)
            .collect();
        for id in overdue {
            if let Some(p) = self.pending.remove(&id) {
                self.stats.ack_timeouts += 1;
                if let Some(c) = client_of(&p.cmd) {
                    self.query_order(p.cmd.symbol, c, out);
                }
            }
        }
        // Delayed retries (rate limits).
        if !self.retry_queue.is_empty() {
            let due: Vec<OrderCommand> = {
                let (due, keep): (Vec<_>, Vec<_>) =
                    self.retry_queue.drain(..).partition(|(at, _)| *at <= now);
                self.retry_queue = keep;
                due.into_iter().map(|(_, c)| c).collect()
            };
            for c in due {
                self.send(&c, true, out);
            }
        }
        // Polling while the private stream is not delivering.
        if !self.private_ws.ready
            && self.tracker.has_open()
            && now.duration_since(self.last_reconcile) >= self.cfg.reconcile_every
        {
            let _ = self.reconcile(false, out);
        }
        // Keep-alives.
        for c in [&mut self.order_ws, &mut self.private_ws] {
            if self.cfg.venue == Venue::BybitLinear
                && c.ready
                && now.duration_since(c.last_ping) >= PING_EVERY
            {
                c.last_ping = now;
                let _ = c.send(r#"{"op":"ping"}"#);
            }
        }
        if self.listen_key.is_some()
            && now.duration_since(self.last_keepalive) >= LISTEN_KEY_KEEPALIVE
        {
            self.last_keepalive = now;
            if let Some(req) = self.proto.listen_key(Method::Put) {
                if self.rest_call(&req).map(|(s, _)| s >= 400).unwrap_or(true) {
                    self.listen_key = None; // expired: a new one on the next connect
                    self.private_down();
                }
            }
        }
        self.arm_dead_man(false);
    }

    fn start_order_ws(&mut self) {
        let Some(url) = self.cfg.order_ws_url.clone() else {
            return;
        };
        if let Err(e) = self
            .order_ws
            .start(&url, self.tls.as_ref(), self.poll.registry())
        {
            self.note_transport(&e.to_string());
        }
    }

    fn start_private(&mut self) {
        let Some(base) = self.cfg.private_ws_url.clone() else {
            return;
        };
        let url = match self.cfg.venue {
            Venue::BybitLinear => base,
            Venue::BinanceUsdm => {
                if self.listen_key.is_none() {
                    self.listen_key = self.new_listen_key();
                    self.last_keepalive = Instant::now();
                }
                let Some(k) = &self.listen_key else {
                    self.private_ws.fail(self.poll.registry());
                    return;
                };
                format!("{}/ws/{k}", base.trim_end_matches('/'))
            }
        };
        if let Err(e) = self
            .private_ws
            .start(&url, self.tls.as_ref(), self.poll.registry())
        {
            self.note_transport(&e.to_string());
        }
    }

    fn new_listen_key(&mut self) -> Option<String> {
        let req = self.proto.listen_key(Method::Post)?;
        let (status, body) = self.rest_call(&req).ok()?;
        let v: serde_json::Value = serde_json::from_slice(&body).ok()?;
        match v["listenKey"].as_str() {
            Some(k) if status < 400 => Some(k.to_string()),
            _ => {
                self.stats.last_error = Some(format!(
                    "listenKey: HTTP {status}: {}",
                    String::from_utf8_lossy(&body)
                ));
                None
            }
        }
    }

    /// Blocks (bounded) until the order WebSocket or the private stream is ready (start-up only).
    fn wait_ready(&mut self, order: bool) {
        let deadline = Instant::now() + HANDSHAKE_DEADLINE;
        let mut out = Vec::new();
        while Instant::now() < deadline {
            let c = if order {
                &self.order_ws
            } else {
                &self.private_ws
            };
            if c.ready || !c.is_up() {
                break;
            }
            self.poll_io(Some(Duration::from_millis(5)), &mut out);
        }
        self.backlog.append(&mut out);
    }

    /// Adopts what the venue says about every order we believe open (and, at start, every open
    /// order of the configured symbols).
    fn reconcile(&mut self, at_start: bool, out: &mut Vec<ExecReport>) -> Result<(), String> {
        self.last_reconcile = Instant::now();
        self.stats.reconciliations += 1;
        let mut symbols: Vec<Symbol> = self.tracker.open().map(|t| t.order.symbol).collect();
        if at_start {
            symbols.extend(self.cfg.symbols.iter().copied());
        }
        symbols.sort_unstable_by(|a, b| a.as_str().cmp(b.as_str()));
        symbols.dedup();
        for symbol in symbols {
            let ts = self.clock.server_ms(now_ns());
            let req = self.proto.rest_open_orders(symbol, ts);
            let (status, body) = self.rest_call(&req).map_err(|()| {
                self.stats
                    .last_error
                    .clone()
                    .unwrap_or_else(|| "open orders: no answer".into())
            })?;
            let listed = self
                .proto
                .parse_orders(status, &body)
                .map_err(|e| e.to_string())?;
            for s in &listed {
                if self.tracker.get(&s.client_id).is_some() {
                    self.tracker.on_snapshot(s, false, out);
                } else if at_start {
                    self.tracker.adopt(s, out);
                }
            }
            let gone: Vec<ClientOrderId> = self
                .tracker
                .open()
                .filter(|t| t.order.symbol == symbol)
                .filter(|t| !listed.iter().any(|s| s.client_id == t.order.client_id))
                .map(|t| t.order.client_id)
                .collect();
            for id in gone {
                self.query_order(symbol, id, out);
            }
        }
        Ok(())
    }

    /// Queries one order and adopts the answer; an order the venue does not know is settled.
    fn query_order(&mut self, symbol: Symbol, id: ClientOrderId, out: &mut Vec<ExecReport>) {
        // Requests still in flight on the WebSocket will be answered there; a request waiting out
        // a back-off has not reached the venue yet (its absence there means nothing).
        if self.pending.values().any(|p| client_of(&p.cmd) == Some(id))
            || self
                .retry_queue
                .iter()
                .any(|(_, c)| client_of(c) == Some(id))
        {
            return;
        }
        let ts = self.clock.server_ms(now_ns());
        let req = self.proto.rest_query_order(symbol, id, ts);
        let Ok((status, body)) = self.rest_call(&req) else {
            return;
        };
        match self.proto.parse_orders(status, &body) {
            Ok(list) => match list.iter().find(|s| s.client_id == id) {
                Some(s) => self.tracker.on_snapshot(s, false, out),
                None => self
                    .tracker
                    .on_unknown_at_venue(&id, unknown_code(self.cfg.venue), out),
            },
            Err(e) if e.kind == ErrorKind::UnknownOrder => {
                self.tracker.on_unknown_at_venue(&id, e.code as i32, out)
            }
            Err(e) => {
                self.stats.venue_errors += 1;
                self.stats.last_error = Some(e.to_string());
            }
        }
    }

    fn sync_clock(&mut self) -> Result<(), String> {
        let path = self.proto.time_path();
        for _ in 0..2 {
            let sent_ns = now_ns();
            let r = self
                .rest
                .send("GET", path, &[], b"")
                .map_err(|e| format!("server time: {e}"))?;
            let recv_ns = now_ns();
            let server_ms = self.proto.parse_time(&r.body).ok_or_else(|| {
                format!("{path}: no server time in the answer (HTTP {})", r.status)
            })?;
            self.clock.add(TimeSample {
                sent_ns,
                server_ms,
                recv_ns,
            });
        }
        self.stats.clock_offset_ns = self.clock.offset_ns();
        Ok(())
    }

    /// Arms (at start) or refreshes the dead-man switch.
    fn arm_dead_man(&mut self, first: bool) {
        let Some(ms) = self.cfg.dead_man_ms else {
            return;
        };
        let due = match self.cfg.venue {
            Venue::BinanceUsdm => {
                first || self.last_dead_man.elapsed() >= Duration::from_millis(ms / 3)
            }
            // Bybit's window is account state: set once; the `dcp` subscription keeps it alive.
            Venue::BybitLinear => first,
        };
        if !due {
            return;
        }
        self.last_dead_man = Instant::now();
        let symbols: Vec<Symbol> = match self.cfg.venue {
            Venue::BinanceUsdm => self.cfg.symbols.clone(),
            Venue::BybitLinear => self.cfg.symbols.first().copied().into_iter().collect(),
        };
        for s in symbols {
            let req = self.proto.dead_man(s, ms, self.clock.server_ms(now_ns()));
            match self.rest_call(&req) {
                Ok((status, body)) if self.proto.parse_rest(status, &body).is_ok() => {
                    self.stats.dead_man_refreshes += 1
                }
                Ok((status, body)) => {
                    self.stats.last_error = Some(format!(
                        "dead-man switch: HTTP {status}: {}",
                        String::from_utf8_lossy(&body)
                    ))
                }
                Err(()) => {}
            }
        }
    }

    /// One REST exchange: (status, body), or `Err` after counting a transport failure.
    fn rest_call(&mut self, req: &SignedRequest) -> Result<(u16, Vec<u8>), ()> {
        self.stats.rest_requests += 1;
        match self.rest.send(
            req.method.as_str(),
            &req.target(),
            &req.headers,
            req.body.as_bytes(),
        ) {
            Ok(r) => Ok((r.status, r.body)),
            Err(e) => {
                self.note_transport(&e.to_string());
                Err(())
            }
        }
    }

    fn note_transport(&mut self, why: &str) {
        self.stats.transport_errors += 1;
        tracing::warn!("{} gateway: {why}", self.cfg.venue.name());
        self.stats.last_error = Some(why.to_string());
    }
}

/// The client id an action refers to.
fn client_of(cmd: &OrderCommand) -> Option<ClientOrderId> {
    match cmd.action {
        OrderAction::New(o) => Some(o.client_id),
        OrderAction::Cancel { client_id } | OrderAction::Amend { client_id, .. } => Some(client_id),
        OrderAction::CancelAll => None,
    }
}

/// The venue's "no such order" code.
fn unknown_code(v: Venue) -> i32 {
    match v {
        Venue::BinanceUsdm => -2013,
        Venue::BybitLinear => 110001,
    }
}
