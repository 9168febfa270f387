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
//! - **Instrument rules** (tick, lot step, limits, minimum notional; `exchangeInfo` /
//!   `instruments-info`, loaded at start for the configured symbols): a new order that breaks one is
//!   refused locally with the code the venue would answer (e.g. -4014, -4023, -4164; Bybit 10001,
//!   110094) and never sent — never rounded.
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
use std::sync::Arc;
use std::time::{Duration, Instant};

use mio::{Events, Poll, Token};
use qalpha_engine::clock::now_ns;
use qalpha_engine::journal::JournalTx;
use qalpha_engine::metrics::GatewayMetrics;
use qalpha_engine::order::{ClientOrderId, ExecKind, ExecReport, OrderAction, OrderCommand};
use qalpha_engine::transport::rest::RestClient;
use qalpha_engine::transport::tls::client_config;
use qalpha_engine::{Side, Symbol, Venue};
use rustls::ClientConfig;

mod from_config;
mod io;
mod serve;
mod stats;
pub use stats::{latency_histogram, GatewayStats, OrderStamp};
mod throttle;
mod venue_sync;

use super::account::{AccountUpdate, Balance, VenuePosition};
use super::conn::{Conn, FrameBuf};
use super::protocol::{Answer, Protocol};
use super::tracker::{blank, Tracker};
use crate::clock_sync::ClockOffset;
use crate::errors::{ErrorKind, RetryPolicy, VenueError};
use crate::fill::FeeSchedule;
use crate::instrument::{InstrumentRules, RuleError};
use crate::sign::Signer;

const ORDER_WS: Token = Token(1);
const PRIVATE_WS: Token = Token(2);
/// Bybit asks for a ping every 20 s on private and trade connections.
const PING_EVERY: Duration = Duration::from_secs(20);
/// Binance listenKeys live 60 min; keep alive every 30.
const LISTEN_KEY_KEEPALIVE: Duration = Duration::from_secs(30 * 60);
/// Position poll interval while the private stream is down.
const POSITIONS_EVERY: Duration = Duration::from_secs(2);
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
    /// Check each new order against the instrument's rules (tick, step, limits, min notional)
    /// before sending; rules are loaded at start for `symbols`, on first use for others.
    pub check_rules: bool,
    /// Hold requests to the venue's published rate limits (default). Off only against a venue
    /// without limits — the mock exchange in benchmarks that send faster than a real account may.
    pub client_rate_limits: bool,
    /// Keep the per-stage times of up to this many new orders sent over the WebSocket API in
    /// [`GatewayStats::order_trace`] (the latency benchmark's stage breakdown); 0: off (default).
    pub trace_orders: usize,
    /// Where the gateway thread publishes its counters, latency histograms and heartbeat for the
    /// monitor (`/metrics`) and the supervisor.
    pub metrics: Option<Arc<GatewayMetrics>>,
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
            check_rules: true,
            client_rate_limits: true,
            trace_orders: 0,
            metrics: None,
        }
    }
}

/// Why the gateway could not start.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    #[error("{venue} gateway: {why}")]
    Start { venue: &'static str, why: String },
}

/// A WebSocket request awaiting its answer.
#[derive(Clone, Copy, Debug)]
struct Pending {
    cmd: OrderCommand,
    sent: Instant,
    sent_ns: u64,
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
    /// When the command being submitted was taken off the ring (order tracing only).
    trace_dequeued_ns: u64,
    /// Instrument rules by symbol (loaded at start for the configured symbols).
    rules: HashMap<Symbol, InstrumentRules>,
    /// Client-side rate limits.
    throttle: throttle::Throttle,
    /// The venue's positions and balances (private stream, reconciled over REST).
    positions: HashMap<Symbol, VenuePosition>,
    balances: HashMap<String, Balance>,
    last_positions: Instant,
    pub stats: GatewayStats,
    /// The order journal (every command taken and report handed on), if any.
    journal: Option<JournalTx>,
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
            rules: HashMap::new(),
            throttle: throttle::Throttle::new(cfg.venue),
            positions: HashMap::new(),
            balances: HashMap::new(),
            last_positions: now,
            stats: GatewayStats::new(cfg.trace_orders),
            journal: None,
            trace_dequeued_ns: 0,
            cfg,
        };
        g.sync_clock().map_err(fail)?;
        if g.cfg.check_rules {
            let symbols = g.cfg.symbols.clone();
            g.load_rules(&symbols).map_err(fail)?;
        }
        g.arm_dead_man(true);
        if g.cfg.private_ws_url.is_some() {
            g.start_private();
            g.wait_ready(false);
        }
        let mut out = Vec::new();
        g.reconcile(true, &mut out).map_err(fail)?;
        g.refresh_positions().map_err(fail)?;
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

    /// The venue's position in `symbol` as last reported (private stream or reconciliation).
    pub fn position(&self, symbol: Symbol) -> Option<VenuePosition> {
        self.positions.get(&symbol).copied()
    }

    /// Every position the venue reported (flat ones included once seen).
    pub fn positions(&self) -> impl Iterator<Item = &VenuePosition> + '_ {
        self.positions.values()
    }

    /// Balances by asset, as last reported.
    pub fn balance(&self, asset: &str) -> Option<&Balance> {
        self.balances.get(asset)
    }

    /// Whether the order WebSocket / private stream is ready now.
    pub fn order_ws_ready(&self) -> bool {
        self.order_ws.ready
    }

    pub fn private_ready(&self) -> bool {
        self.private_ws.ready
    }

    /// The instrument rules loaded for `symbol` (at start for the configured symbols).
    pub fn rules_of(&self, symbol: Symbol) -> Option<InstrumentRules> {
        self.rules.get(&symbol).cloned()
    }

    /// Journal every command this gateway takes and every report it hands on (see
    /// [`qalpha_engine::journal`]).
    pub fn set_journal(&mut self, tx: JournalTx) {
        self.journal = Some(tx);
    }

    /// Final counters (closes connections).
    pub fn finish(mut self) -> GatewayStats {
        let reg = self.poll.registry();
        self.order_ws.fail(reg);
        self.private_ws.fail(reg);
        self.stats.tracker = self.tracker.stats;
        self.stats.clock_offset_ns = self.clock.offset_ns();
        self.stats.journal_drops = self.journal.as_ref().map_or(0, |j| j.dropped());
        self.stats
    }

    /// Handles one command; reports (and any backlog) go to `out`.
    pub fn submit(&mut self, cmd: &OrderCommand, out: &mut Vec<ExecReport>) {
        if self.cfg.trace_orders > 0 {
            self.trace_dequeued_ns = now_ns();
        }
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
            if let Err(code) = self.check_rules(&o) {
                self.stats.rule_refusals += 1;
                out.push(ExecReport {
                    reason: code,
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
        let limited = match self.cfg.client_rate_limits {
            true => self.throttle.acquire(&cmd.action, now_ns()),
            false => Ok(()),
        };
        if let Err(t) = limited {
            self.stats.throttled += 1;
            match cmd.action {
                // A new order is the strategy's to re-decide: refuse it as the venue would.
                OrderAction::New(o) => {
                    self.stats.last_error = Some(format!("order {} not sent: {t}", o.client_id));
                    self.tracker
                        .on_reject(&o.client_id, rate_limit_code(self.cfg.venue), out);
                }
                // Cancels and amends go out as soon as the window allows.
                _ => self.retry_queue.push((Instant::now() + t.wait, *cmd)),
            }
            return;
        }
        let ts = self.clock.server_ms(now_ns());
        let side = self.side_of(cmd);
        if self.cfg.via == Via::Ws && self.order_ws.ready {
            let id = self.next_req;
            if let Some(msg) =
                self.proto
                    .ws_order(&id.to_string(), cmd.symbol, &cmd.action, side, ts)
            {
                let encoded_ns = if self.cfg.trace_orders > 0 {
                    now_ns()
                } else {
                    0
                };
                self.next_req += 1;
                match self.order_ws.send(&msg) {
                    Ok(()) => {
                        self.stats.ws_requests += 1;
                        if let OrderAction::New(o) = cmd.action {
                            let written_ns = now_ns();
                            let ns = written_ns.saturating_sub(cmd.tick_recv_ns).max(1);
                            self.stats.tick_to_wire.saturating_record(ns);
                            if let Some(m) = &self.cfg.metrics {
                                m.tick_to_order.record(ns);
                            }
                            if self.stats.order_trace.len() < self.cfg.trace_orders {
                                self.stats.order_trace.push(OrderStamp {
                                    client_id: o.client_id,
                                    tick_recv_ns: cmd.tick_recv_ns,
                                    decided_ns: cmd.decided_ns,
                                    dequeued_ns: self.trace_dequeued_ns,
                                    encoded_ns,
                                    written_ns,
                                });
                            }
                        }
                        self.pending.insert(
                            id,
                            Pending {
                                cmd: *cmd,
                                sent: Instant::now(),
                                sent_ns: now_ns(),
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
            if let Some(m) = &self.cfg.metrics {
                m.tick_to_order.record(ns);
            }
        }
        let result = match self.rest_call_for(&req, Some(&cmd.action)) {
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
            if let Some(m) = &self.cfg.metrics {
                m.tick_to_answer.record(ns);
            }
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
        self.poll_serving(timeout, out, None);
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

/// The venue's code for a broken instrument rule (what the venue would answer), so a local refusal
/// reads like the venue's own; `None`: no rules for the symbol.
fn rule_code(v: Venue, e: Option<&RuleError>) -> i32 {
    match (v, e) {
        (Venue::BinanceUsdm, Some(RuleError::OffTick { .. })) => -4014,
        (Venue::BinanceUsdm, Some(RuleError::OffStep { .. })) => -4023,
        (Venue::BinanceUsdm, Some(RuleError::NotionalTooSmall { .. })) => -4164,
        (Venue::BinanceUsdm, Some(RuleError::PriceOutOfRange { .. })) => -4016,
        (Venue::BinanceUsdm, Some(RuleError::QtyOutOfRange { .. })) => -4005,
        (Venue::BinanceUsdm, _) => -1121,
        (Venue::BybitLinear, Some(RuleError::NotionalTooSmall { .. })) => 110094,
        (Venue::BybitLinear, _) => 10001,
    }
}

impl Gateway {
    /// Applies what the venue said about the account.
    fn apply_account(&mut self, u: AccountUpdate) {
        for p in u.positions {
            self.positions.insert(p.symbol, p);
        }
        for b in u.balances {
            self.balances.insert(b.asset.clone(), b);
        }
    }
}

/// The venue's order rate-limit code (what the venue would answer).
fn rate_limit_code(v: Venue) -> i32 {
    match v {
        Venue::BinanceUsdm => -1015,
        Venue::BybitLinear => 10006,
    }
}

/// The venue's "no such order" code.
fn unknown_code(v: Venue) -> i32 {
    match v {
        Venue::BinanceUsdm => -2013,
        Venue::BybitLinear => 110001,
    }
}
