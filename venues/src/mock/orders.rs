//! The mock exchange, order-entry side over REST: Binance USD-M `/fapi/v1/order` (new, cancel,
//! amend, query), `/fapi/v1/allOpenOrders`, `/fapi/v1/openOrders`, and Bybit v5
//! `/v5/order/create|cancel|amend|cancel-all` and `/v5/order/realtime`, and each venue's position
//! query (`/fapi/v2/positionRisk`, `/v5/position/list`, see [`super::positions`]) — with the
//! venues' real bodies and error codes (PROTOCOLS.md B.2, B.3, B.7, C.5, C.6, C.9).
//!
//! Every request is authenticated by [`super::auth`] against the mock's accounts (by default one
//! test account, [`TEST_API_KEY`] / [`TEST_API_SECRET`]). Orders are matched by the one fill model
//! (`crate::fill::FillModel<RiskAverse>`) against the book the mock is serving: each symbol's
//! [`SymbolOrders`] lives in the hub's `SymbolState`, next to the book, so a book change, a trade
//! print and an order submission are all applied under the same hub lock, in tape order. The tape
//! feeds it every changed level ([`SymbolOrders::on_book_level`]) and every matching-engine trade
//! ([`SymbolOrders::on_trade`]); open-order queries answer from the model's records.
//!
//! Deliberate simplifications: one account per mock (all accounts share the orders), no margin or
//! position limits (the `reject=P` fault stands in for "insufficient margin"), and a new order's
//! answer always shows its state after matching (what Binance returns with
//! `newOrderRespType=RESULT`; the real default `ACK` may still say `NEW` for an order that filled).
//!
//! Cold path: plain allocation, one thread per connection, JSON built with `serde_json`.

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use qalpha_engine::order::{ClientOrderId, ExecKind, ExecReport, NewOrder};
use qalpha_engine::{Price, Qty, Side, Venue};

use super::book::ExchangeBook;
use super::http::{respond, Request};
use super::positions::Position;
use super::rng::Rng;
use super::server::{Ctx, ServerIo};
use crate::fill::{FeeSchedule, FillModel, RejectReason, RiskAverse};
use crate::sign::Signer;

/// API key of the mock's default test account.
pub const TEST_API_KEY: &str = "qa-test-key";
/// API secret of the mock's default test account.
pub const TEST_API_SECRET: &str = "qa-test-secret";

/// The accounts a mock accepts when none are configured: `qa-test-key` / `qa-test-secret`.
pub fn default_accounts() -> Vec<Signer> {
    vec![Signer::new(TEST_API_KEY, TEST_API_SECRET)]
}

/// Orders kept per symbol for queries; the oldest closed ones are forgotten beyond this.
const KEPT_ORDERS: usize = 10_000;
/// Largest request body read (an order body is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// An order's state as the venue reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrderStatus {
    New,
    PartiallyFilled,
    Filled,
    Canceled,
    /// Ended by the venue: IOC/FOK/market remainder, reduce-only with nothing to reduce, Bybit
    /// post-only that would take.
    Expired,
}

/// One order the mock has accepted, as queries report it.
#[derive(Clone, Copy, Debug)]
pub struct OrderRecord {
    /// As submitted; price and quantity replaced by amends.
    pub order: NewOrder,
    /// The fill model's per-symbol venue order id (Binance `orderId`; Bybit's UUID is derived).
    pub order_id: u64,
    pub status: OrderStatus,
    pub cum_qty: Qty,
    /// Σ price × quantity of the fills, in raw `10^-16` quote units (exact).
    pub notional_raw: i128,
    /// Σ fees (positive = paid), `10^-8` quote units.
    pub fee: Qty,
    /// Venue code of why the venue ended it (0 = none).
    pub reason: i32,
    pub created_ms: u64,
    pub updated_ms: u64,
}

impl OrderRecord {
    pub fn is_open(&self) -> bool {
        matches!(self.status, OrderStatus::New | OrderStatus::PartiallyFilled)
    }

    /// Filled notional in quote units (`cumQuote`, Bybit `cumExecValue`), truncated to 10^-8.
    pub fn cum_quote(&self) -> Qty {
        Qty((self.notional_raw / 100_000_000).clamp(0, i64::MAX as i128) as i64)
    }

    /// Volume-weighted fill price (0 before any fill), truncated to 10^-8.
    pub fn avg_price(&self) -> Price {
        if self.cum_qty.raw() <= 0 {
            return Price::ZERO;
        }
        Price((self.notional_raw / self.cum_qty.raw() as i128).clamp(0, i64::MAX as i128) as i64)
    }

    pub fn leaves_qty(&self) -> Qty {
        if self.is_open() {
            Qty(self.order.qty.raw() - self.cum_qty.raw())
        } else {
            Qty::ZERO
        }
    }
}

/// One change to one of our orders, for the private streams (Binance `ORDER_TRADE_UPDATE` /
/// `ACCOUNT_UPDATE`, Bybit `order` / `execution` / `position`): what happened, the order after it,
/// and the symbol's position after it.
#[derive(Clone, Copy, Debug)]
pub struct OrderUpdate {
    /// The fill model's report: kind, last fill price/quantity, fee, maker flag, times.
    pub report: ExecReport,
    /// The order's record after this report.
    pub record: OrderRecord,
    /// The symbol's position after this report.
    pub position: Position,
    /// Per-mock sequence of updates (Binance trade id `t` for fills, Bybit `seq`); starts at 1.
    pub seq: u64,
}

/// A symbol's simulated orders: the fill model and the records queries answer from. Lives in the
/// hub's per-symbol state, so it changes under the same lock as the book.
#[derive(Clone, Debug, Default)]
pub struct SymbolOrders {
    /// Created on the first order (it needs the venue and symbol).
    model: Option<FillModel<RiskAverse>>,
    records: Vec<OrderRecord>,
    /// Net position and entry cost, moved by the same fills as the records.
    position: Position,
    /// Updates not yet handed to the private streams (drained by the hub when its lock is released).
    outbox: Vec<OrderUpdate>,
}

fn fees_for(venue: Venue) -> FeeSchedule {
    match venue {
        Venue::BinanceUsdm => FeeSchedule::BINANCE_USDM_REGULAR,
        Venue::BybitLinear => FeeSchedule::BYBIT_LINEAR_VIP0,
    }
}

/// Applies execution reports to the records (the latest record of each client id) and the fills
/// to the position, queueing one [`OrderUpdate`] per report for the private streams.
fn apply_reports(
    records: &mut [OrderRecord],
    position: &mut Position,
    outbox: &mut Vec<OrderUpdate>,
    reports: &[ExecReport],
) {
    for r in reports {
        apply_one(records, position, r);
        if let Some(rec) = records
            .iter()
            .rev()
            .find(|o| o.order.client_id == r.client_id)
        {
            outbox.push(OrderUpdate {
                report: *r,
                record: *rec,
                position: *position,
                seq: 0,
            });
        }
    }
}

fn apply_one(records: &mut [OrderRecord], position: &mut Position, r: &ExecReport) {
    if matches!(r.kind, ExecKind::PartialFill | ExecKind::Fill) {
        position.on_fill(r.side, r.last_px, r.last_qty, r.exch_ms);
    }
    let Some(rec) = records
        .iter_mut()
        .rev()
        .find(|o| o.order.client_id == r.client_id)
    else {
        return;
    };
    rec.updated_ms = r.exch_ms;
    match r.kind {
        ExecKind::Ack | ExecKind::Rejected | ExecKind::Amended => {}
        ExecKind::PartialFill | ExecKind::Fill => {
            rec.cum_qty = r.cum_qty;
            rec.notional_raw += r.last_px.raw() as i128 * r.last_qty.raw() as i128;
            rec.fee = Qty(rec.fee.raw().saturating_add(r.fee.raw()));
            rec.status = if r.kind == ExecKind::Fill {
                OrderStatus::Filled
            } else {
                OrderStatus::PartiallyFilled
            };
        }
        ExecKind::Canceled => rec.status = OrderStatus::Canceled,
        ExecKind::Expired => {
            rec.status = OrderStatus::Expired;
            rec.reason = r.reason;
        }
    }
}

impl SymbolOrders {
    /// Takes the updates queued since the last call (oldest first).
    pub(crate) fn take_updates(&mut self) -> Vec<OrderUpdate> {
        std::mem::take(&mut self.outbox)
    }

    /// The venue's displayed size at `px` on `side` changed to `qty` (0 = level gone).
    pub fn on_book_level(&mut self, side: Side, px: Price, qty: Qty) {
        if let Some(m) = self.model.as_mut() {
            m.on_book_level(side, px, qty);
        }
    }

    /// [`Self::on_book_level`] for each `["price","qty"]` of a venue frame's level array.
    pub fn on_levels_json(&mut self, side: Side, levels: &serde_json::Value) {
        if self.model.is_none() {
            return;
        }
        for l in levels.as_array().map(Vec::as_slice).unwrap_or_default() {
            let px = l.get(0).and_then(|v| v.as_str()).map(Price::parse);
            let qty = l.get(1).and_then(|v| v.as_str()).map(Qty::parse);
            if let (Some(Ok(px)), Some(Ok(qty))) = (px, qty) {
                self.on_book_level(side, px, qty);
            }
        }
    }

    /// A matching-engine trade print (not insurance-fund / ADL): fills resting orders it reaches.
    pub fn on_trade(&mut self, px: Price, qty: Qty, aggressor: Side, now_ns: u64) {
        if let Some(m) = self.model.as_mut() {
            let reports = m.on_trade(px, qty, aggressor, now_ns);
            apply_reports(
                &mut self.records,
                &mut self.position,
                &mut self.outbox,
                reports,
            );
        }
    }

    /// A new order against `book`: the record after matching, or the venue's reject code.
    pub fn submit(
        &mut self,
        o: NewOrder,
        book: &ExchangeBook,
        now_ns: u64,
    ) -> Result<OrderRecord, i32> {
        // Bybit: an orderLinkId must be unique among all orders, not only open ones.
        if o.venue == Venue::BybitLinear
            && self
                .records
                .iter()
                .any(|r| r.order.client_id == o.client_id)
        {
            return Err(RejectReason::DuplicateClientId.code(o.venue));
        }
        let model = self.model.get_or_insert_with(|| {
            FillModel::new(o.venue, o.symbol, fees_for(o.venue), RiskAverse)
        });
        let reports = model.submit(o, book, now_ns);
        let Some(first) = reports.first() else {
            return Err(RejectReason::WrongInstrument.code(o.venue));
        };
        if first.kind == ExecKind::Rejected {
            return Err(first.reason);
        }
        let ms = now_ns / 1_000_000;
        if self.records.len() >= KEPT_ORDERS {
            if let Some(i) = self.records.iter().position(|r| !r.is_open()) {
                self.records.remove(i);
            }
        }
        self.records.push(OrderRecord {
            order: o,
            order_id: first.venue_order_id,
            status: OrderStatus::New,
            cum_qty: Qty::ZERO,
            notional_raw: 0,
            fee: Qty::ZERO,
            reason: 0,
            created_ms: ms,
            updated_ms: ms,
        });
        apply_reports(
            &mut self.records,
            &mut self.position,
            &mut self.outbox,
            reports,
        );
        self.records.last().copied().ok_or(0)
    }

    /// The latest record matching a client id or an order id.
    pub fn find(&self, client_id: Option<&str>, order_id: Option<u64>) -> Option<&OrderRecord> {
        self.records.iter().rev().find(|r| {
            client_id.is_some_and(|c| r.order.client_id.as_str() == c)
                || order_id.is_some_and(|i| r.order_id == i)
        })
    }

    /// Open orders, oldest first.
    pub fn open(&self) -> impl Iterator<Item = &OrderRecord> + '_ {
        self.records.iter().filter(|r| r.is_open())
    }

    /// The position our fills built (flat before the first order).
    pub fn position(&self) -> Position {
        debug_assert_eq!(
            self.model.as_ref().map_or(Qty::ZERO, FillModel::position),
            self.position.size(),
            "the position ledger and the fill model disagree on the size"
        );
        self.position
    }

    /// Every record, oldest first.
    pub fn all(&self) -> &[OrderRecord] {
        &self.records
    }

    /// Cancels an open order by client id.
    pub fn cancel(
        &mut self,
        venue: Venue,
        client_id: ClientOrderId,
        now_ns: u64,
    ) -> Result<OrderRecord, i32> {
        let unknown = RejectReason::UnknownOrder.code(venue);
        let model = self.model.as_mut().ok_or(unknown)?;
        let reports = model.cancel(client_id, now_ns).map_err(|r| r.code(venue))?;
        apply_reports(
            &mut self.records,
            &mut self.position,
            &mut self.outbox,
            reports,
        );
        self.find(Some(client_id.as_str()), None)
            .copied()
            .ok_or(unknown)
    }

    /// Changes an open order's price and quantity (loses queue priority; may fill or cancel).
    pub fn amend(
        &mut self,
        venue: Venue,
        client_id: ClientOrderId,
        price: Price,
        qty: Qty,
        book: &ExchangeBook,
        now_ns: u64,
    ) -> Result<OrderRecord, i32> {
        let unknown = RejectReason::UnknownOrder.code(venue);
        let model = self.model.as_mut().ok_or(unknown)?;
        let reports = model
            .amend(client_id, price, qty, book, now_ns)
            .map_err(|r| r.code(venue))?;
        let amended = reports.iter().any(|r| r.kind == ExecKind::Amended);
        if let Some(rec) = self
            .records
            .iter_mut()
            .rev()
            .find(|r| r.order.client_id == client_id)
        {
            if amended {
                rec.order.price = price;
                rec.order.qty = qty;
            }
        }
        apply_reports(
            &mut self.records,
            &mut self.position,
            &mut self.outbox,
            reports,
        );
        self.find(Some(client_id.as_str()), None)
            .copied()
            .ok_or(unknown)
    }

    /// Cancels every open order; returns the canceled records.
    pub fn cancel_all(&mut self, now_ns: u64) -> Vec<OrderRecord> {
        let Some(model) = self.model.as_mut() else {
            return Vec::new();
        };
        let reports = model.cancel_all(now_ns);
        let ids: Vec<ClientOrderId> = reports.iter().map(|r| r.client_id).collect();
        apply_reports(
            &mut self.records,
            &mut self.position,
            &mut self.outbox,
            reports,
        );
        ids.iter()
            .filter_map(|c| self.find(Some(c.as_str()), None).copied())
            .collect()
    }
}

/// Order-entry state shared by the mock's connections.
#[derive(Debug)]
pub struct OrderDesk {
    pub accounts: Vec<Signer>,
    /// Draws for the `reject=P` fault.
    rng: Mutex<Rng>,
    /// For client ids the venue generates when the request has none.
    next_generated: AtomicU64,
}

impl OrderDesk {
    pub fn new(accounts: Vec<Signer>, seed: u64) -> Self {
        Self {
            accounts,
            rng: Mutex::new(Rng::new(seed ^ 0x0bad_cafe)),
            next_generated: AtomicU64::new(1),
        }
    }

    /// Whether the `reject=P` fault refuses this new order.
    pub(crate) fn reject_fault(&self, p: f64) -> bool {
        p > 0.0 && self.rng.lock().unwrap_or_else(|e| e.into_inner()).chance(p)
    }

    /// A venue-generated client id for an order sent without one.
    pub(crate) fn generated_client_id(&self) -> ClientOrderId {
        let n = self.next_generated.fetch_add(1, Ordering::Relaxed);
        ClientOrderId::parse(&format!("mock-{n}")).unwrap_or_default()
    }
}

/// The current time in ns (the mock's clock is the server clock).
pub(crate) fn now_ns() -> u64 {
    qalpha_engine::clock::now_ns()
}

/// Whether `path` is an order-entry endpoint of `venue`, or one of its instrument descriptions
/// ([`super::instruments`]), which are served alongside.
pub fn handles(venue: Venue, path: &str) -> bool {
    match venue {
        Venue::BinanceUsdm => matches!(
            path,
            "/fapi/v1/order"
                | "/fapi/v1/listenKey"
                | "/fapi/v1/countdownCancelAll"
                | "/fapi/v1/allOpenOrders"
                | "/fapi/v1/openOrders"
                | "/fapi/v2/positionRisk"
                | "/fapi/v1/exchangeInfo"
        ),
        Venue::BybitLinear => matches!(
            path,
            "/v5/order/create"
                | "/v5/order/cancel"
                | "/v5/order/amend"
                | "/v5/order/cancel-all"
                | "/v5/order/disconnected-cancel-all"
                | "/v5/order/realtime"
                | "/v5/position/list"
                | "/v5/market/instruments-info"
        ),
    }
}

/// An answer: HTTP status and JSON body.
pub(crate) struct Answer {
    pub status: u16,
    pub body: String,
}

impl Answer {
    pub fn ok(body: String) -> Self {
        Self { status: 200, body }
    }
}

/// Reads the request body (`Content-Length` bytes).
fn read_body(io: &mut ServerIo, req: &Request) -> std::io::Result<String> {
    let len = req
        .header("content-length")
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(0);
    if len > MAX_BODY {
        return Err(std::io::Error::other("request body too large"));
    }
    let mut buf = vec![0u8; len];
    io.read_exact(&mut buf)?;
    String::from_utf8(buf).map_err(|_| std::io::Error::other("request body is not UTF-8"))
}

/// Serves one order-entry request (see [`handles`]), with the `ack-delay` fault.
pub fn serve(io: &mut ServerIo, req: &Request, ctx: &Ctx) -> std::io::Result<()> {
    let body = read_body(io, req)?;
    // Instrument descriptions are public (unsigned) and answered by their own module.
    if super::instruments::handles(ctx.venue, req.path()) {
        return super::instruments::serve(io, req, ctx);
    }
    let answer = match ctx.venue {
        Venue::BinanceUsdm => super::orders_binance::handle(req, &body, ctx),
        Venue::BybitLinear => super::orders_bybit::handle(req, &body, ctx),
    };
    if let Some(d) = ctx.faults.ack_delay {
        std::thread::sleep(d);
    }
    let reason = match answer.status {
        200 => "OK",
        401 => "Unauthorized",
        404 => "Not Found",
        _ => "Bad Request",
    };
    respond(io, answer.status, reason, &[], answer.body.as_bytes())
}

/// Minimal `%XX` / `+` decoding of a form value (client ids may carry `:` or `/`).
pub(crate) fn url_decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' if i + 2 < b.len() => {
                let hex = std::str::from_utf8(&b[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(v) => {
                        out.push(v);
                        i += 3;
                        continue;
                    }
                    Err(_) => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            c => out.push(c),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_engine::order::{OrderType, TimeInForce};
    use qalpha_engine::Symbol;

    fn book() -> ExchangeBook {
        let mut b = ExchangeBook::default();
        b.set(true, Price::from_units(100), Qty::from_units(1));
        b.set(false, Price::from_units(101), Qty::from_units(1));
        b.set(false, Price::from_units(102), Qty::from_units(2));
        b
    }

    fn order(venue: Venue, id: &str, side: Side, px: i64, qty: i64, tif: TimeInForce) -> NewOrder {
        NewOrder {
            venue,
            symbol: Symbol::parse("BTCUSDT").unwrap(),
            client_id: ClientOrderId::parse(id).unwrap(),
            side,
            order_type: OrderType::Limit,
            tif,
            price: Price::from_units(px),
            qty: Qty::from_units(qty),
            reduce_only: false,
        }
    }

    #[test]
    fn records_follow_the_fill_model() {
        let b = book();
        let mut s = SymbolOrders::default();
        let v = Venue::BinanceUsdm;
        let r = s
            .submit(
                order(v, "a", Side::Buy, 99, 1, TimeInForce::Gtc),
                &b,
                1_000_000,
            )
            .unwrap();
        assert_eq!((r.status, r.order_id), (OrderStatus::New, 1));
        assert_eq!(s.open().count(), 1);
        // Duplicate among open orders: -4116.
        assert_eq!(
            s.submit(order(v, "a", Side::Buy, 98, 1, TimeInForce::Gtc), &b, 2)
                .unwrap_err(),
            -4116
        );
        // Marketable IOC for 2 takes 1 @ 101 and 1 @ 102: avg 101.5, taker fee 500 ppm.
        let r = s
            .submit(order(v, "b", Side::Buy, 102, 2, TimeInForce::Ioc), &b, 3)
            .unwrap();
        assert_eq!(r.status, OrderStatus::Filled);
        assert_eq!(r.avg_price(), Price::parse("101.5").unwrap());
        assert_eq!(r.cum_quote(), Qty::from_units(203));
        assert_eq!(r.fee, Qty::parse("0.1015").unwrap());
        let pos = s.position();
        assert_eq!(
            (pos.size(), pos.entry_price()),
            (Qty::from_units(2), Price::parse("101.5").unwrap())
        );
        // A trade print at 99 sweeping through fills the resting bid (maker).
        s.on_trade(Price::from_units(98), Qty::from_units(5), Side::Sell, 4);
        let a = *s.find(Some("a"), None).unwrap();
        assert_eq!(a.status, OrderStatus::Filled);
        // Long 2 @ 101.5 plus 1 @ 99: entry (203 + 99) / 3, truncated to 10^-8.
        let pos = s.position();
        assert_eq!(
            (pos.size(), pos.entry_price()),
            (Qty::from_units(3), Price::parse("100.66666666").unwrap())
        );
        assert_eq!(s.cancel(v, a.order.client_id, 5).unwrap_err(), -2011);
        // Post-only crossing (on a fresh book: the IOC above took the asks): Binance refuses,
        // Bybit accepts then expires it.
        assert_eq!(
            SymbolOrders::default()
                .submit(
                    order(v, "c", Side::Buy, 101, 1, TimeInForce::PostOnly),
                    &b,
                    6
                )
                .unwrap_err(),
            -5022
        );
        let mut y = SymbolOrders::default();
        let r = y
            .submit(
                order(
                    Venue::BybitLinear,
                    "c",
                    Side::Buy,
                    101,
                    1,
                    TimeInForce::PostOnly,
                ),
                &b,
                6,
            )
            .unwrap();
        assert_eq!(r.status, OrderStatus::Expired);
        // Bybit: an orderLinkId is never reusable.
        assert_eq!(
            y.submit(
                order(Venue::BybitLinear, "c", Side::Buy, 90, 1, TimeInForce::Gtc),
                &b,
                7
            )
            .unwrap_err(),
            110072
        );
    }

    #[test]
    fn amend_and_cancel_all() {
        let b = book();
        let mut s = SymbolOrders::default();
        let v = Venue::BinanceUsdm;
        for (i, id) in ["x", "y"].iter().enumerate() {
            s.submit(
                order(v, id, Side::Buy, 90 + i as i64, 1, TimeInForce::Gtc),
                &b,
                1,
            )
            .unwrap();
        }
        let x = ClientOrderId::parse("x").unwrap();
        let r = s
            .amend(v, x, Price::from_units(95), Qty::from_units(3), &b, 2)
            .unwrap();
        assert_eq!(
            (r.order.price, r.order.qty),
            (Price::from_units(95), Qty::from_units(3))
        );
        assert_eq!(r.status, OrderStatus::New);
        let gone = s.cancel_all(3);
        assert_eq!(gone.len(), 2);
        assert!(gone.iter().all(|r| r.status == OrderStatus::Canceled));
        assert_eq!(s.open().count(), 0);
    }

    #[test]
    fn url_decoding() {
        assert_eq!(url_decode("a%3Ab%2Fc"), "a:b/c");
        assert_eq!(url_decode("abc%"), "abc%");
        assert_eq!(url_decode("a+b"), "a b");
    }
}
