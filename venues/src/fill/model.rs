//! The fill model: price-time matching of *our* orders against a venue's displayed book and its
//! trade prints — the one implementation behind paper trading, backtests and the mock exchange.
//!
//! It keeps only our simulated orders; the book is read through [`BookView`] and never modified,
//! because the market we replay (or watch live) never saw our orders. What it decides:
//!
//! - **Entry** ([`FillModel::submit`]). Checks first, each refusal a `Rejected` report carrying the
//!   venue's code ([`RejectReason`]). A post-only order that would cross is refused (Binance -5022;
//!   Bybit accepts it and cancels it on its stream, so there: Ack, then Expired with the reason's
//!   code). A marketable limit or market order then takes liquidity level by level, best first,
//!   from the displayed size up to its limit: one fill report per level, taker fee. The remainder
//!   of an IOC / market order expires; FOK fills completely or expires untouched; a GTC / post-only
//!   remainder rests, behind the whole displayed size at its price (see [`super::queue`]).
//! - **Taken liquidity** is remembered per level until the venue reports that level again, so two
//!   of our orders in the same instant cannot both take the same displayed size (see
//!   [`super::taken`]).
//! - **Resting fills** ([`FillModel::on_trade`]). A print fills our orders on the side it hit:
//!   orders priced *through* the print (a bid above a sell print) fill at their own price up to the
//!   print's quantity — the level was swept; orders *at* the print's price fill only with what is
//!   left of the print once the queue ahead is consumed. Better prices first, then time priority;
//!   one print never fills us for more than its own quantity. Maker fee.
//! - **Queue updates** ([`FillModel::on_book_level`] per changed level, or
//!   [`FillModel::sync_with_book`] for a driver that only sees the book) go to the [`QueueModel`];
//!   they never fill. A book that moves through a resting order without a print does not fill it
//!   (conservative; the print normally follows within milliseconds).
//! - **Amend** loses time priority, as on Binance (`PUT /fapi/v1/order`: "the order goes to the
//!   back of the queue"); an amend to a quantity at or below the filled quantity, or of a post-only
//!   order to a price that would cross, cancels the order (Binance's rule, PROTOCOLS.md B.3).
//! - **Reduce-only.** Refused at entry when it could only open or increase the position (Binance
//!   -2022, Bybit 110017); accepted otherwise, and never filled past flat: each fill is capped at
//!   the position's size, and as soon as the position it reduces is gone (flat, or flipped by
//!   another order) the remainder expires. That is Binance's behaviour (reduce-only orders are
//!   cancelled when the position closes); Bybit instead trims the quantity to the position at entry
//!   — the effect on the position is the same, and keeping the original quantity keeps every report
//!   consistent with `OrderState`, which knows the order by its submitted quantity.
//! - **Not modelled:** self-trade prevention (our orders never match each other), latency (the
//!   caller delays commands and reports), price protection and instrument filters (checked by
//!   `crate::instrument` before an order is sent), funding and margin.
//!
//! Reports are `qalpha_engine::order::ExecReport`s with exact `cum_qty` / `leaves_qty` / `fee`, in
//! the order a venue would send them (Ack before fills, a terminal report last), so
//! `OrderState::apply` consumes them unchanged. Output: each call returns a slice of a buffer the
//! model reuses, so after warm-up (open orders and reports within their reserved capacity) nothing
//! is allocated and no input — zero, negative or absurd quantities and prices — can panic.
//! Deterministic: the same inputs give the same reports, byte for byte.

use qalpha_engine::book_view::{at_least_as_good, BookView};
use qalpha_engine::order::{ClientOrderId, ExecKind, ExecReport, NewOrder, OrderType, TimeInForce};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};

use super::fees::FeeSchedule;
use super::queue::{QueueModel, QueuePos};
use super::reject::RejectReason;
use super::taken::TakenLiquidity;

/// Open orders (and reports per call) reserved up front.
const RESERVED_ORDERS: usize = 256;

/// One of our orders, live in the simulation.
#[derive(Clone, Copy, Debug)]
struct SimOrder {
    /// As submitted, with price and quantity replaced by amends.
    order: NewOrder,
    venue_order_id: u64,
    /// Time priority: lower is earlier. Renewed by an amend.
    priority: u64,
    cum: Qty,
    queue: QueuePos,
    /// Terminal; removed from the book at the end of the call.
    closed: bool,
}

impl SimOrder {
    fn leaves(&self) -> Qty {
        Qty(self.order.qty.raw() - self.cum.raw())
    }
}

/// A read-only view of one of our open orders.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct OpenOrder {
    pub client_id: ClientOrderId,
    pub venue_order_id: u64,
    pub side: Side,
    pub price: Price,
    pub qty: Qty,
    pub cum_qty: Qty,
    pub leaves_qty: Qty,
    /// Displayed quantity the queue model puts ahead of the order at its price.
    pub queue_ahead: Qty,
    pub reduce_only: bool,
}

/// Matches our orders for one venue and symbol; `Q` decides how resting orders' queues advance.
#[derive(Clone, Debug)]
pub struct FillModel<Q: QueueModel> {
    venue: Venue,
    symbol: Symbol,
    queue: Q,
    fees: FeeSchedule,
    /// Resting orders in time priority (an amended order re-enters at the end, as at the venue).
    resting: Vec<SimOrder>,
    taken: TakenLiquidity,
    /// Net position in base units (+ long), moved by every fill; reduce-only orders are held to it.
    position: Qty,
    next_venue_order_id: u64,
    next_priority: u64,
    reports: Vec<ExecReport>,
    /// Indices of the orders a print can reach, reused across calls.
    scratch: Vec<usize>,
}

fn opposite(side: Side) -> Side {
    match side {
        Side::Buy => Side::Sell,
        Side::Sell => Side::Buy,
    }
}

impl<Q: QueueModel> FillModel<Q> {
    /// A model for `venue` / `symbol`, flat, with no orders.
    pub fn new(venue: Venue, symbol: Symbol, fees: FeeSchedule, queue: Q) -> Self {
        Self {
            venue,
            symbol,
            queue,
            fees,
            resting: Vec::with_capacity(RESERVED_ORDERS),
            taken: TakenLiquidity::default(),
            position: Qty::ZERO,
            next_venue_order_id: 1,
            next_priority: 1,
            reports: Vec::with_capacity(RESERVED_ORDERS),
            scratch: Vec::with_capacity(RESERVED_ORDERS),
        }
    }

    pub fn venue(&self) -> Venue {
        self.venue
    }

    pub fn symbol(&self) -> Symbol {
        self.symbol
    }

    pub fn fees(&self) -> FeeSchedule {
        self.fees
    }

    /// Net position (base units, + long) from the fills so far and [`FillModel::set_position`].
    pub fn position(&self) -> Qty {
        self.position
    }

    /// Sets the position (start of a run, or the venue's figure after reconciliation). Resting
    /// reduce-only orders that no longer reduce it expire; their reports are returned.
    pub fn set_position(&mut self, position: Qty, now_ns: u64) -> &[ExecReport] {
        self.reports.clear();
        self.position = position;
        self.expire_stale_reduce_only(now_ns);
        &self.reports
    }

    /// Our open orders, oldest (in time priority) first.
    pub fn open_orders(&self) -> impl Iterator<Item = OpenOrder> + '_ {
        self.resting.iter().map(|o| OpenOrder {
            client_id: o.order.client_id,
            venue_order_id: o.venue_order_id,
            side: o.order.side,
            price: o.order.price,
            qty: o.order.qty,
            cum_qty: o.cum,
            leaves_qty: o.leaves(),
            queue_ahead: o.queue.ahead,
            reduce_only: o.order.reduce_only,
        })
    }

    /// One open order by client id.
    pub fn open_order(&self, client_id: ClientOrderId) -> Option<OpenOrder> {
        self.open_orders().find(|o| o.client_id == client_id)
    }

    /// A new order against `book` at `now_ns`: Rejected, or Ack followed by any immediate fills and
    /// an Expired remainder (IOC, FOK, market, reduce-only with nothing left to reduce).
    pub fn submit(&mut self, o: NewOrder, book: &impl BookView, now_ns: u64) -> &[ExecReport] {
        self.reports.clear();
        let refused = self.check_new(&o, book).err();
        if let Some(reason) = refused.filter(|r| !r.ends_accepted_order(self.venue)) {
            let mut r = self.report_base(&o, 0, now_ns);
            r.kind = ExecKind::Rejected;
            r.reason = reason.code(self.venue);
            self.reports.push(r);
            return &self.reports;
        }
        let mut sim = SimOrder {
            order: o,
            venue_order_id: self.next_venue_order_id,
            priority: self.take_priority(),
            cum: Qty::ZERO,
            queue: QueuePos::default(),
            closed: false,
        };
        self.next_venue_order_id += 1;
        self.push_status(&sim, ExecKind::Ack, sim.leaves(), now_ns);
        if let Some(reason) = refused {
            self.expire(&mut sim, now_ns);
            if let Some(last) = self.reports.last_mut() {
                last.reason = reason.code(self.venue);
            }
            return &self.reports;
        }
        self.execute(&mut sim, book, now_ns);
        self.expire_stale_reduce_only(now_ns);
        &self.reports
    }

    /// Cancels an open order. An order that is not open is refused without touching anything.
    pub fn cancel(
        &mut self,
        client_id: ClientOrderId,
        now_ns: u64,
    ) -> Result<&[ExecReport], RejectReason> {
        self.reports.clear();
        let i = self.find(client_id).ok_or(RejectReason::UnknownOrder)?;
        let sim = self.resting.remove(i);
        self.push_status(&sim, ExecKind::Canceled, Qty::ZERO, now_ns);
        Ok(&self.reports)
    }

    /// Cancels every open order, oldest first.
    pub fn cancel_all(&mut self, now_ns: u64) -> &[ExecReport] {
        self.reports.clear();
        let mut resting = std::mem::take(&mut self.resting);
        for sim in &resting {
            self.push_status(sim, ExecKind::Canceled, Qty::ZERO, now_ns);
        }
        resting.clear();
        self.resting = resting;
        &self.reports
    }

    /// Changes an open order's price and quantity (both, as Binance requires). The order goes to
    /// the back of the queue at its (new) price and, if the new price crosses, takes liquidity like
    /// a new order. A new quantity at or below the filled quantity, or a post-only price that would
    /// cross, cancels the order. Invalid values or an order that is not open are refused untouched.
    pub fn amend(
        &mut self,
        client_id: ClientOrderId,
        price: Price,
        qty: Qty,
        book: &impl BookView,
        now_ns: u64,
    ) -> Result<&[ExecReport], RejectReason> {
        self.reports.clear();
        let i = self.find(client_id).ok_or(RejectReason::UnknownOrder)?;
        if qty.raw() <= 0 {
            return Err(RejectReason::NonPositiveQty);
        }
        if price.raw() <= 0 {
            return Err(RejectReason::NonPositivePrice);
        }
        let mut sim = self.resting.remove(i);
        let post_only_crosses =
            sim.order.tif == TimeInForce::PostOnly && self.would_take(sim.order.side, price, book);
        if qty <= sim.cum || post_only_crosses {
            self.push_status(&sim, ExecKind::Canceled, Qty::ZERO, now_ns);
            return Ok(&self.reports);
        }
        sim.order.price = price;
        sim.order.qty = qty;
        sim.priority = self.take_priority();
        self.push_status(&sim, ExecKind::Amended, sim.leaves(), now_ns);
        self.execute(&mut sim, book, now_ns);
        self.expire_stale_reduce_only(now_ns);
        Ok(&self.reports)
    }

    /// A print of `qty` at `px` whose aggressor was `aggressor` (Binance trade `m` = buyer is maker
    /// → aggressor Sell; Bybit `S` is the taker's side). Only the venue's normal matching prints
    /// belong here (Binance `X == "MARKET"`), not insurance-fund or ADL trades, which never touched
    /// the book. Returns the fills of our resting orders it caused.
    pub fn on_trade(&mut self, px: Price, qty: Qty, aggressor: Side, now_ns: u64) -> &[ExecReport] {
        self.reports.clear();
        if px.raw() <= 0 || qty.raw() <= 0 {
            return &self.reports;
        }
        let side = opposite(aggressor);
        let mut reached = std::mem::take(&mut self.scratch);
        reached.clear();
        for (i, o) in self.resting.iter().enumerate() {
            if o.order.side == side && at_least_as_good(side, o.order.price, px) {
                reached.push(i);
            }
        }
        let resting = &self.resting;
        reached.sort_unstable_by(|&a, &b| {
            let (a, b) = (&resting[a], &resting[b]);
            let by_price = match side {
                Side::Buy => b.order.price.cmp(&a.order.price),
                Side::Sell => a.order.price.cmp(&b.order.price),
            };
            by_price.then(a.priority.cmp(&b.priority))
        });
        // `left`: the print's quantity not yet given to our orders. `ours_at_px`: what our earlier
        // orders at the print's own price took, so a later one of ours sees only the rest of the
        // print passing its queue.
        let mut left = qty;
        let mut ours_at_px = Qty::ZERO;
        for &i in &reached {
            let cap = self.reduce_cap(&self.resting[i]);
            let mut sim = self.resting[i];
            let can = sim.leaves().min(cap).min(left);
            let fill = if sim.order.price == px {
                let passing = Qty(qty.raw() - ours_at_px.raw());
                let reach = self.queue.on_trade(&mut sim.queue, passing);
                reach.min(can)
            } else {
                // The print is through our price: the whole level there was swept.
                sim.queue.ahead = Qty::ZERO;
                can
            };
            if fill.raw() > 0 {
                if sim.order.price == px {
                    ours_at_px = Qty(ours_at_px.raw() + fill.raw());
                }
                left = Qty(left.raw() - fill.raw());
                // A resting order fills at its own price, whatever the print's.
                let own_px = sim.order.price;
                self.fill(&mut sim, own_px, fill, true, now_ns);
            }
            self.resting[i] = sim;
        }
        self.scratch = reached;
        self.resting.retain(|o| !o.closed);
        self.expire_stale_reduce_only(now_ns);
        &self.reports
    }

    /// The venue's displayed size at `px` on `side` (`Buy` = bids) is now `new_qty` (zero = level
    /// gone). Advances the queues of our orders resting there and forgets what we took from that
    /// level. Never fills.
    pub fn on_book_level(&mut self, side: Side, px: Price, new_qty: Qty) {
        let new_qty = new_qty.max(Qty::ZERO);
        self.taken.forget_level(side, px);
        for o in self.resting.iter_mut() {
            if o.order.side == side && o.order.price == px {
                self.queue.on_level(&mut o.queue, new_qty);
            }
        }
    }

    /// For drivers that hold the book but not its individual level changes (paper trading reading
    /// the feed's `OrderBook` from the strategy thread): brings every resting order's queue and
    /// the taken-liquidity memory up to date with `book`, as [`Self::on_book_level`] would for
    /// each level that changed. Call it after every book update; it costs one `qty_at` per open
    /// order and per remembered take. A level that changed and changed back in between is missed
    /// — the price of not seeing the diffs.
    pub fn sync_with_book(&mut self, book: &impl BookView) {
        self.taken.sync(book);
        for o in self.resting.iter_mut() {
            let displayed = book.qty_at(o.order.side, o.order.price).max(Qty::ZERO);
            // Only real changes: an unchanged level must not reset what trades already explain.
            if displayed != o.queue.level_qty {
                self.queue.on_level(&mut o.queue, displayed);
            }
        }
    }

    fn check_new(&self, o: &NewOrder, book: &impl BookView) -> Result<(), RejectReason> {
        if o.venue != self.venue || o.symbol != self.symbol {
            return Err(RejectReason::WrongInstrument);
        }
        if o.qty.raw() <= 0 {
            return Err(RejectReason::NonPositiveQty);
        }
        match o.order_type {
            OrderType::Market if o.tif == TimeInForce::PostOnly => {
                return Err(RejectReason::InvalidTimeInForce)
            }
            OrderType::Limit if o.price.raw() <= 0 => return Err(RejectReason::NonPositivePrice),
            _ => {}
        }
        if self.find(o.client_id).is_some() {
            return Err(RejectReason::DuplicateClientId);
        }
        if o.reduce_only && self.reduce_cap_for(o.side).raw() == 0 {
            return Err(RejectReason::ReduceOnlyWouldIncrease);
        }
        if o.tif == TimeInForce::PostOnly && self.would_take(o.side, o.price, book) {
            return Err(RejectReason::PostOnlyWouldTake);
        }
        Ok(())
    }

    /// Takes what it can (unless post-only), then expires or rests the remainder.
    fn execute(&mut self, sim: &mut SimOrder, book: &impl BookView, now_ns: u64) {
        let market = sim.order.order_type == OrderType::Market;
        let limit = (!market).then_some(sim.order.price);
        let tif = sim.order.tif;
        if tif == TimeInForce::Fok && self.fillable(sim, book, limit) < sim.leaves() {
            self.expire(sim, now_ns);
            return;
        }
        if tif != TimeInForce::PostOnly {
            self.take(sim, book, limit, now_ns);
        }
        if sim.closed {
            return;
        }
        let immediate_only = market || matches!(tif, TimeInForce::Ioc | TimeInForce::Fok);
        if immediate_only || self.reduce_cap(sim).raw() == 0 {
            self.expire(sim, now_ns);
            return;
        }
        sim.queue = self
            .queue
            .join(book.qty_at(sim.order.side, sim.order.price));
        self.resting.push(*sim);
    }

    /// Takes displayed liquidity level by level, best first, up to the limit.
    fn take(
        &mut self,
        sim: &mut SimOrder,
        book: &impl BookView,
        limit: Option<Price>,
        now_ns: u64,
    ) {
        let from = opposite(sim.order.side);
        for level in book.levels(from) {
            if limit.is_some_and(|l| !at_least_as_good(from, level.px, l)) {
                break;
            }
            let want = sim.leaves().min(self.reduce_cap(sim));
            if want.raw() <= 0 {
                break;
            }
            let available = self.taken.available(from, level.px, level.qty);
            let q = want.min(available);
            if q.raw() <= 0 {
                continue;
            }
            self.taken.record(from, level, q);
            self.fill(sim, level.px, q, false, now_ns);
        }
    }

    /// What [`Self::take`] would fill now (FOK's all-or-nothing test).
    fn fillable(&self, sim: &SimOrder, book: &impl BookView, limit: Option<Price>) -> Qty {
        let from = opposite(sim.order.side);
        let want = sim.leaves().min(self.reduce_cap(sim));
        let mut total = Qty::ZERO;
        for level in book.levels(from) {
            if total >= want || limit.is_some_and(|l| !at_least_as_good(from, level.px, l)) {
                break;
            }
            let available = self.taken.available(from, level.px, level.qty);
            total = Qty(total.raw().saturating_add(available.raw()));
        }
        total.min(want)
    }

    /// Whether an order at `px` on `side` would take liquidity now (post-only's test).
    fn would_take(&self, side: Side, px: Price, book: &impl BookView) -> bool {
        let from = opposite(side);
        book.levels(from)
            .take_while(|l| at_least_as_good(from, l.px, px))
            .any(|l| self.taken.available(from, l.px, l.qty).raw() > 0)
    }

    /// The most a reduce-only order on `side` may still fill: the size of an opposite position.
    fn reduce_cap_for(&self, side: Side) -> Qty {
        let p = self.position.raw();
        match side {
            Side::Buy if p < 0 => Qty(p.saturating_neg()),
            Side::Sell if p > 0 => Qty(p),
            _ => Qty::ZERO,
        }
    }

    fn reduce_cap(&self, sim: &SimOrder) -> Qty {
        if sim.order.reduce_only {
            self.reduce_cap_for(sim.order.side)
        } else {
            Qty(i64::MAX)
        }
    }

    /// Expires resting reduce-only orders that can no longer reduce the position.
    fn expire_stale_reduce_only(&mut self, now_ns: u64) {
        let mut any = false;
        for i in 0..self.resting.len() {
            let sim = self.resting[i];
            if sim.order.reduce_only && !sim.closed && self.reduce_cap(&sim).raw() == 0 {
                let mut sim = sim;
                self.expire(&mut sim, now_ns);
                self.resting[i] = sim;
                any = true;
            }
        }
        if any {
            self.resting.retain(|o| !o.closed);
        }
    }

    /// Books a fill of `qty` at `px` on `sim` and reports it.
    fn fill(&mut self, sim: &mut SimOrder, px: Price, qty: Qty, is_maker: bool, now_ns: u64) {
        sim.cum = Qty(sim.cum.raw() + qty.raw());
        let leaves = sim.leaves();
        self.position = match sim.order.side {
            Side::Buy => Qty(self.position.raw().saturating_add(qty.raw())),
            Side::Sell => Qty(self.position.raw().saturating_sub(qty.raw())),
        };
        let mut r = self.report_base(&sim.order, sim.venue_order_id, now_ns);
        r.kind = if leaves.raw() == 0 {
            sim.closed = true;
            ExecKind::Fill
        } else {
            ExecKind::PartialFill
        };
        r.last_px = px;
        r.last_qty = qty;
        r.cum_qty = sim.cum;
        r.leaves_qty = leaves;
        r.fee = self.fees.fee(px, qty, is_maker);
        r.is_maker = is_maker;
        self.reports.push(r);
    }

    fn expire(&mut self, sim: &mut SimOrder, now_ns: u64) {
        sim.closed = true;
        self.push_status(sim, ExecKind::Expired, Qty::ZERO, now_ns);
    }

    /// A report without a fill (Ack, Amended, Canceled, Expired).
    fn push_status(&mut self, sim: &SimOrder, kind: ExecKind, leaves: Qty, now_ns: u64) {
        let mut r = self.report_base(&sim.order, sim.venue_order_id, now_ns);
        r.kind = kind;
        r.cum_qty = sim.cum;
        r.leaves_qty = leaves;
        self.reports.push(r);
    }

    fn report_base(&self, o: &NewOrder, venue_order_id: u64, now_ns: u64) -> ExecReport {
        ExecReport {
            venue: self.venue,
            symbol: self.symbol,
            venue_order_id,
            exch_ms: now_ns / 1_000_000,
            recv_ns: now_ns,
            ..ExecReport::about(o, ExecKind::Ack)
        }
    }

    fn find(&self, client_id: ClientOrderId) -> Option<usize> {
        // A linear scan: a strategy keeps a handful of orders open, and a scan of a few cache
        // lines beats hashing a 32-byte id.
        self.resting
            .iter()
            .position(|o| o.order.client_id == client_id)
    }

    fn take_priority(&mut self) -> u64 {
        let p = self.next_priority;
        self.next_priority += 1;
        p
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
