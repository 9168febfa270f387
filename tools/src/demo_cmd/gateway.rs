//! The demo's order gateway thread: [`OrderCommand`]s from the strategy's ring → signed Binance
//! USD-M REST requests to the mock exchange → [`ExecReport`]s on the ring back to the strategy.
//!
//! - Requests are built by the gateway encoders (`qalpha_venues::gateway::binance`), signed with the
//!   mock's test account and timestamped with the server-time offset measured at start
//!   (`GET /fapi/v1/time`). Errors are typed by `qalpha_venues::errors::parse_binance`.
//! - Each answer is a Binance order object (B.2): `status`, `executedQty`, `cumQuote`, `avgPrice`.
//!   The gateway keeps the last cumulative quantity and quote it saw per order, so every increase of
//!   `executedQty` becomes exactly one fill report, whichever request revealed it.
//! - **Stand-in for the private stream** (the user-data stream does not exist yet): while it knows of
//!   resting orders, the gateway polls `GET /fapi/v1/openOrders` every `poll_every` (250 ms by
//!   default) to learn fills of resting orders, and queries `GET /fapi/v1/order` for each tracked
//!   order that left the open list (filled or ended by the venue).
//! - Fees: the REST order object carries no commission, so each fill's fee is computed from the
//!   mock's schedule (Binance USD-M regular tier, maker 0.02 %, taker 0.05 %): fills that arrive after
//!   the order rested, and every fill of a post-only order, are maker fills.
//!
//! Cold path for now: the REST transport opens one TLS connection per request (`Connection: close`)
//! and allocates. Tick-to-order is therefore stamped when the signed request is handed to the
//! transport (the blocking transport does not expose the moment its bytes are written); the full
//! tick → venue answer time is kept as well.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use hdrhistogram::Histogram;
use qalpha_engine::clock::now_ns;
use qalpha_engine::order::{ClientOrderId, ExecKind, ExecReport, NewOrder, OrderAction};
use qalpha_engine::order::{OrderCommand, TimeInForce};
use qalpha_engine::ring::{Consumer, Producer};
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::transport::{rest, TransportError};
use qalpha_engine::{Price, Qty, Symbol, Venue, FIXED_SCALE};
use qalpha_venues::clock_sync::{parse_binance_time, ClockOffset, TimeSample};
use qalpha_venues::errors::{parse_binance, ErrorKind};
use qalpha_venues::fill::FeeSchedule;
use qalpha_venues::gateway::{binance, Method, SignedRequest};
use qalpha_venues::sign::Signer;
use serde_json::Value;

/// How long one REST request may take.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The mock's fee schedule for Binance USD-M (what its fill model charges).
const FEES: FeeSchedule = FeeSchedule::BINANCE_USDM_REGULAR;

/// Where and as whom the gateway trades.
#[derive(Clone, Debug)]
pub struct GatewayConfig {
    /// REST base URL (`https://127.0.0.1:PORT`).
    pub base: String,
    /// CA to trust (the mock's `ca.pem`).
    pub ca_file: Option<PathBuf>,
    pub signer: Signer,
    /// Open-order poll interval (the private-stream stand-in).
    pub poll_every: Duration,
}

/// What the gateway counted.
#[derive(Clone, Debug)]
pub struct GatewayStats {
    /// New orders sent.
    pub orders: u64,
    /// Cancels sent.
    pub cancels: u64,
    /// Open-order polls and per-order queries.
    pub polls: u64,
    pub queries: u64,
    /// New orders whose client id had been sent before (refused, not sent).
    pub duplicate_orders: u64,
    /// Requests that failed below HTTP (connect, TLS, timeout).
    pub transport_errors: u64,
    /// Venue errors by class (rejects of new orders included).
    pub venue_errors: u64,
    /// Tick `recv_ns` → signed request handed to the transport, ns.
    pub tick_to_order: Histogram<u64>,
    /// Tick `recv_ns` → the venue's answer parsed, ns.
    pub tick_to_answer: Histogram<u64>,
    /// Server − local clock, ns, from the start-up sync.
    pub clock_offset_ns: i64,
    pub last_error: Option<String>,
}

/// What the gateway knows of one order it sent.
#[derive(Clone, Copy, Debug)]
struct Tracked {
    order: NewOrder,
    cum_qty: Qty,
    cum_quote: Qty,
    /// Still resting as far as the venue last said.
    open: bool,
}

/// The gateway: transport, keys, clock and the orders it tracks.
pub struct Gateway {
    base: String,
    http: Transport,
    signer: Signer,
    clock: ClockOffset,
    poll_every: Duration,
    tracked: HashMap<ClientOrderId, Tracked>,
    sent: HashSet<ClientOrderId>,
    last_poll: Instant,
    stats: GatewayStats,
}

/// One HTTP exchange: method, URL, headers, body (the TLS configuration is captured inside).
type Transport = Box<
    dyn Fn(&str, &str, &[(String, String)], &[u8]) -> Result<rest::HttpResponse, TransportError>
        + Send,
>;

fn histogram() -> Histogram<u64> {
    // 1 ns … 60 s at 3 significant digits; the bounds are constants, so this cannot fail.
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

impl Gateway {
    /// Builds the TLS configuration and measures the server-time offset (`GET /fapi/v1/time`).
    pub fn connect(cfg: &GatewayConfig) -> Result<Self> {
        let base = cfg.base.trim_end_matches('/').to_string();
        let tls = if base.starts_with("https://") {
            Some(qalpha_engine::transport::tls::client_config(
                cfg.ca_file.as_deref(),
            )?)
        } else {
            None
        };
        let http: Transport = Box::new(move |method, url, headers, body| {
            rest::request(method, url, headers, body, tls.as_ref(), TIMEOUT)
        });
        let mut g = Self {
            base,
            http,
            signer: cfg.signer.clone(),
            clock: ClockOffset::default(),
            poll_every: cfg.poll_every,
            tracked: HashMap::new(),
            sent: HashSet::new(),
            last_poll: Instant::now(),
            stats: GatewayStats {
                orders: 0,
                cancels: 0,
                polls: 0,
                queries: 0,
                duplicate_orders: 0,
                transport_errors: 0,
                venue_errors: 0,
                tick_to_order: histogram(),
                tick_to_answer: histogram(),
                clock_offset_ns: 0,
                last_error: None,
            },
        };
        let url = format!("{}/fapi/v1/time", g.base);
        let sent_ns = now_ns();
        let r =
            (g.http)("GET", &url, &[], b"").with_context(|| format!("server time from {url}"))?;
        let recv_ns = now_ns();
        let server_ms = parse_binance_time(&r.body)
            .ok_or_else(|| anyhow!("{url}: no server time in the answer (HTTP {})", r.status))?;
        g.clock.add(TimeSample {
            sent_ns,
            server_ms,
            recv_ns,
        });
        g.stats.clock_offset_ns = g.clock.offset_ns();
        Ok(g)
    }

    /// Serves commands until the strategy's ring is closed and empty; returns the counters.
    pub fn run(
        mut self,
        cmds: &mut Consumer<OrderCommand>,
        reports: &mut Producer<ExecReport>,
        wait: WaitMode,
        stop: &AtomicBool,
    ) -> GatewayStats {
        let mut out = Vec::with_capacity(8);
        let mut spins = 0u32;
        loop {
            match cmds.pop() {
                Ok(cmd) => {
                    spins = 0;
                    self.on_command(&cmd, &mut out);
                }
                Err(_) if cmds.is_abandoned() => break,
                Err(_) => {
                    let resting = self.tracked.values().any(|t| t.open);
                    if resting
                        && self.last_poll.elapsed() >= self.poll_every
                        && !stop.load(Ordering::Relaxed)
                    {
                        self.poll(&mut out);
                    } else {
                        wait.idle(&mut spins);
                    }
                }
            }
            for r in out.drain(..) {
                reports.push(r);
            }
        }
        self.stats
    }

    fn on_command(&mut self, cmd: &OrderCommand, out: &mut Vec<ExecReport>) {
        match cmd.action {
            OrderAction::New(o) => self.new_order(cmd, o, out),
            OrderAction::Cancel { client_id } => {
                let req = binance::rest_cancel(&self.signer, cmd.symbol, client_id, self.ts());
                self.stats.cancels += 1;
                match self.send(&req) {
                    Ok(v) => self.adopt(client_id, &v, false, out),
                    // Already filled or ended (or the fate is unknown): ask the venue.
                    Err(_) => self.query(cmd.symbol, client_id, out),
                }
            }
            // The demo's strategy only places and cancels.
            OrderAction::Amend { .. } | OrderAction::CancelAll => {}
        }
    }

    fn new_order(&mut self, cmd: &OrderCommand, o: NewOrder, out: &mut Vec<ExecReport>) {
        if !self.sent.insert(o.client_id) {
            // Never send a client id twice: a resend could open a second position.
            self.stats.duplicate_orders += 1;
            out.push(report(&o, ExecKind::Rejected, -4116));
            return;
        }
        let req = binance::rest_new_order(&self.signer, &o, self.ts());
        self.tracked.insert(
            o.client_id,
            Tracked {
                order: o,
                cum_qty: Qty::ZERO,
                cum_quote: Qty::ZERO,
                open: true,
            },
        );
        self.stats.orders += 1;
        let handed = now_ns();
        self.stats
            .tick_to_order
            .saturating_record(handed.saturating_sub(cmd.tick_recv_ns).max(1));
        let answer = self.send(&req);
        self.stats
            .tick_to_answer
            .saturating_record(now_ns().saturating_sub(cmd.tick_recv_ns).max(1));
        match answer {
            Ok(v) => self.adopt(o.client_id, &v, true, out),
            Err(SendError::Venue(code, kind)) if kind != ErrorKind::Unknown => {
                if let Some(t) = self.tracked.get_mut(&o.client_id) {
                    t.open = false;
                }
                out.push(report(&o, ExecKind::Rejected, code));
            }
            // The order's fate is unknown: adopt whatever the venue has.
            Err(_) => self.query(o.symbol, o.client_id, out),
        }
    }

    /// Polls the open orders; tracked orders that left the list are queried one by one.
    fn poll(&mut self, out: &mut Vec<ExecReport>) {
        self.last_poll = Instant::now();
        self.stats.polls += 1;
        let symbols: HashSet<Symbol> = self
            .tracked
            .values()
            .filter(|t| t.open)
            .map(|t| t.order.symbol)
            .collect();
        for symbol in symbols {
            let req = self.signed_get("/fapi/v1/openOrders", &[("symbol", symbol.to_string())]);
            let Ok(list) = self.send(&req) else { continue };
            let mut seen = HashSet::new();
            for v in list.as_array().map(Vec::as_slice).unwrap_or_default() {
                let Some(id) = v["clientOrderId"].as_str().and_then(ClientOrderId::parse) else {
                    continue;
                };
                if self.tracked.contains_key(&id) {
                    seen.insert(id);
                    self.adopt(id, v, false, out);
                }
            }
            let gone: Vec<ClientOrderId> = self
                .tracked
                .iter()
                .filter(|(id, t)| t.open && t.order.symbol == symbol && !seen.contains(*id))
                .map(|(id, _)| *id)
                .collect();
            for id in gone {
                self.query(symbol, id, out);
            }
        }
    }

    /// `GET /fapi/v1/order` by client id; an order the venue does not know was never placed.
    fn query(&mut self, symbol: Symbol, id: ClientOrderId, out: &mut Vec<ExecReport>) {
        self.stats.queries += 1;
        let req = self.signed_get(
            "/fapi/v1/order",
            &[
                ("symbol", symbol.to_string()),
                ("origClientOrderId", id.to_string()),
            ],
        );
        match self.send(&req) {
            Ok(v) => self.adopt(id, &v, false, out),
            Err(SendError::Venue(code, ErrorKind::UnknownOrder)) => {
                if let Some(t) = self.tracked.get_mut(&id) {
                    t.open = false;
                    out.push(report(&t.order, ExecKind::Rejected, code));
                }
            }
            Err(_) => {}
        }
    }

    /// Adopts what an order object says about a tracked order.
    fn adopt(
        &mut self,
        id: ClientOrderId,
        v: &Value,
        answer_to_new: bool,
        out: &mut Vec<ExecReport>,
    ) {
        if let Some(t) = self.tracked.get_mut(&id) {
            apply_order_object(t, v, answer_to_new, out);
        }
    }

    fn ts(&self) -> u64 {
        self.clock.server_ms(now_ns())
    }

    fn signed_get(&self, path: &str, params: &[(&str, String)]) -> SignedRequest {
        let mut query = params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&");
        query.push_str(&format!(
            "&recvWindow={}&timestamp={}",
            binance::RECV_WINDOW_MS,
            self.ts()
        ));
        let sig = self.signer.binance_rest(&query, "");
        SignedRequest {
            method: Method::Get,
            path: path.into(),
            query: format!("{query}&signature={sig}"),
            body: String::new(),
            headers: vec![("X-MBX-APIKEY".into(), self.signer.api_key().into())],
        }
    }

    /// One request; the parsed JSON on success, the venue's typed error otherwise.
    fn send(&mut self, req: &SignedRequest) -> Result<Value, SendError> {
        let url = format!("{}{}", self.base, req.target());
        let r = match (self.http)(req.method.as_str(), &url, &req.headers, req.body.as_bytes()) {
            Ok(r) => r,
            Err(e) => {
                self.stats.transport_errors += 1;
                self.stats.last_error = Some(e.to_string());
                return Err(SendError::Transport);
            }
        };
        if let Some(e) = parse_binance(r.status, &r.body) {
            self.stats.venue_errors += 1;
            // Post-only refusals and cancels that lost the race to a fill are routine here.
            if !matches!(
                e.kind,
                ErrorKind::PostOnlyWouldTake | ErrorKind::UnknownOrder
            ) {
                self.stats.last_error = Some(e.to_string());
            }
            return Err(SendError::Venue(e.code as i32, e.kind));
        }
        serde_json::from_slice(&r.body).map_err(|e| {
            self.stats.last_error = Some(format!("{url}: answer is not JSON: {e}"));
            SendError::Transport
        })
    }
}

/// Why a request did not return an order object.
enum SendError {
    /// No usable answer (connect, TLS, timeout, not JSON): the fate is unknown.
    Transport,
    /// The venue's error code and its class.
    Venue(i32, ErrorKind),
}

/// Turns an order object into the reports of what changed since the gateway last looked.
fn apply_order_object(t: &mut Tracked, v: &Value, answer_to_new: bool, out: &mut Vec<ExecReport>) {
    let recv_ns = now_ns();
    let status = v["status"].as_str().unwrap_or("");
    let cum = dec_qty(&v["executedQty"]);
    let quote = dec_qty(&v["cumQuote"]);
    let exch_ms = v["updateTime"].as_u64().unwrap_or(0);
    let mut base = report(&t.order, ExecKind::Ack, 0);
    base.venue_order_id = v["orderId"].as_u64().unwrap_or(0);
    base.exch_ms = exch_ms;
    base.recv_ns = recv_ns;
    if answer_to_new {
        out.push(base);
    }
    let open = matches!(status, "NEW" | "PARTIALLY_FILLED");
    if cum > t.cum_qty {
        let dq = cum.raw() - t.cum_qty.raw();
        let dquote = quote.raw() - t.cum_quote.raw();
        // The fill's price from the change in quote; the average price for a first fill
        // when the quote is missing.
        let px = if dquote > 0 {
            Price((dquote as i128 * FIXED_SCALE as i128 / dq as i128) as i64)
        } else {
            Some(dec_price(&v["avgPrice"]))
                .filter(|p| p.raw() > 0)
                .unwrap_or(t.order.price)
        };
        let is_maker = t.order.tif == TimeInForce::PostOnly || !answer_to_new;
        out.push(ExecReport {
            kind: if status == "FILLED" {
                ExecKind::Fill
            } else {
                ExecKind::PartialFill
            },
            last_px: px,
            last_qty: Qty(dq),
            cum_qty: cum,
            leaves_qty: if open {
                Qty(t.order.qty.raw() - cum.raw())
            } else {
                Qty::ZERO
            },
            fee: FEES.fee(px, Qty(dq), is_maker),
            is_maker,
            ..base
        });
        t.cum_qty = cum;
        t.cum_quote = quote;
    }
    let end = match status {
        "CANCELED" => Some(ExecKind::Canceled),
        "EXPIRED" | "EXPIRED_IN_MATCH" => Some(ExecKind::Expired),
        "REJECTED" => Some(ExecKind::Rejected),
        _ => None,
    };
    if let Some(kind) = end {
        if t.open {
            out.push(ExecReport {
                kind,
                cum_qty: cum,
                ..base
            });
        }
    }
    t.open = open;
}

/// A report about `o` with no fill.
fn report(o: &NewOrder, kind: ExecKind, reason: i32) -> ExecReport {
    ExecReport {
        venue: Venue::BinanceUsdm,
        symbol: o.symbol,
        client_id: o.client_id,
        venue_order_id: 0,
        kind,
        side: o.side,
        last_px: Price::ZERO,
        last_qty: Qty::ZERO,
        cum_qty: Qty::ZERO,
        leaves_qty: Qty::ZERO,
        fee: Qty::ZERO,
        is_maker: false,
        reason,
        exch_ms: 0,
        recv_ns: now_ns(),
    }
}

fn dec_qty(v: &Value) -> Qty {
    v.as_str()
        .and_then(|s| Qty::parse(s).ok())
        .unwrap_or(Qty::ZERO)
}

fn dec_price(v: &Value) -> Price {
    v.as_str()
        .and_then(|s| Price::parse(s).ok())
        .unwrap_or(Price::ZERO)
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_engine::order::OrderType;
    use qalpha_engine::Side;

    fn tracked() -> Tracked {
        Tracked {
            order: NewOrder {
                venue: Venue::BinanceUsdm,
                symbol: Symbol::parse("BTCUSDT").unwrap(),
                client_id: ClientOrderId::parse("qa-t-1").unwrap(),
                side: Side::Buy,
                order_type: OrderType::Limit,
                tif: TimeInForce::PostOnly,
                price: Price::parse("28000.1").unwrap(),
                qty: Qty::parse("0.003").unwrap(),
                reduce_only: false,
            },
            cum_qty: Qty::ZERO,
            cum_quote: Qty::ZERO,
            open: true,
        }
    }

    fn object(status: &str, executed: &str, quote: &str) -> Value {
        serde_json::json!({"orderId": 7, "status": status, "executedQty": executed,
            "cumQuote": quote, "avgPrice": "0", "updateTime": 1})
    }

    #[test]
    fn each_increase_of_executed_qty_is_one_fill() {
        let mut t = tracked();
        let mut out = Vec::new();
        apply_order_object(&mut t, &object("NEW", "0", "0"), true, &mut out);
        assert_eq!(
            out.iter().map(|r| r.kind).collect::<Vec<_>>(),
            [ExecKind::Ack]
        );
        out.clear();
        let part = object("PARTIALLY_FILLED", "0.001", "28.0001");
        apply_order_object(&mut t, &part, false, &mut out);
        // The same state seen again (a later poll) reports nothing new.
        apply_order_object(&mut t, &part, false, &mut out);
        assert_eq!(out.len(), 1);
        let f = out[0];
        assert_eq!(
            (f.kind, f.last_px, f.last_qty, f.leaves_qty),
            (
                ExecKind::PartialFill,
                Price::parse("28000.1").unwrap(),
                Qty::parse("0.001").unwrap(),
                Qty::parse("0.002").unwrap()
            )
        );
        // Maker fee at 0.02 %: 28.0001 × 0.0002 = 0.00560002.
        assert_eq!(
            (f.fee, f.is_maker),
            (Qty::parse("0.00560002").unwrap(), true)
        );
        out.clear();
        // Cancelled after a second fill: the fill, then the cancel, once.
        let end = object("CANCELED", "0.002", "56.0002");
        apply_order_object(&mut t, &end, false, &mut out);
        apply_order_object(&mut t, &end, false, &mut out);
        assert_eq!(
            out.iter().map(|r| r.kind).collect::<Vec<_>>(),
            [ExecKind::PartialFill, ExecKind::Canceled]
        );
        assert!(!t.open);
    }
}
