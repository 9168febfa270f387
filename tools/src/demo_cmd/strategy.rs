//! `TouchQuoter`: the demo's rule-based strategy. It is not meant to make money; it exercises the
//! order path end to end with rules anyone can check:
//!
//! - Quote only while the book is in sync (between `BookSynced` and `BookStale`); on `BookStale`
//!   cancel what rests and place nothing until the book is synced again.
//! - At most one post-only bid at the best bid and one post-only ask at the best ask, each of a
//!   fixed size. When the touch moves away from a resting quote, cancel it; the replacement is placed
//!   on the first book update after the cancel is confirmed (so there are never two orders per side).
//! - Position limit: a side is quoted only if a full fill keeps |position| ≤ the limit; past it only
//!   the reducing side is quoted.
//! - Position and PnL are exact integers: cash flow Σ ∓price×qty (10⁻¹⁶ quote units), fees from the
//!   fill reports, the position marked at the mid of the rebuilt book.
//!
//! Hot path: nothing is allocated per market event; each order sent allocates its client id
//! (`ClientIdGen::next_id`) and an entry in the order map (kept for the run, so late fills still count).

use std::collections::HashMap;

use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook};
use qalpha_engine::order::{
    Applied, ClientIdGen, ClientOrderId, ExecKind, ExecReport, NewOrder, OrderAction, OrderCommand,
    OrderState, OrderType, TimeInForce,
};
use qalpha_engine::ring::Producer;
use qalpha_engine::{clock, Price, Qty, Side, Symbol, Venue, FIXED_SCALE};
use qalpha_risk::engine::{RiskAction, RiskEngine};
use qalpha_risk::RiskState;

/// What the quoter trades and how much.
#[derive(Clone, Copy, Debug)]
pub struct QuoterParams {
    pub venue: Venue,
    pub symbol: Symbol,
    /// Size of each quote.
    pub size: Qty,
    /// Largest |position| a fill may lead to.
    pub max_position: Qty,
}

/// What the quoter counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuoterCounters {
    pub orders: u64,
    pub cancels_sent: u64,
    pub acks: u64,
    /// Fill reports that raised an order's filled quantity (partial or full).
    pub fills: u64,
    pub rejects: u64,
    pub canceled: u64,
    pub expired: u64,
    /// New orders sent while the book was not in sync (must stay 0).
    pub orders_on_stale_book: u64,
    /// Reports recognised as duplicates or late by the order state machine.
    pub ignored_reports: u64,
    /// Reports for client ids this strategy never sent.
    pub unknown_reports: u64,
    pub stale_events: u64,
    /// New orders the risk engine refused (never sent).
    pub risk_rejects: u64,
    /// Orders the risk engine asked for (flatten / cut, reduce-only) and cancel-alls it triggered.
    pub risk_orders: u64,
    pub risk_cancel_alls: u64,
}

/// Reason code of a report synthesized for an order the risk engine refused: this base minus the
/// reason's index (`qalpha_risk::RejectReason as i32`), so it never collides with a venue code.
pub const RISK_REJECT_BASE: i32 = -9000;

/// How long the quoter waits after a risk refusal before it tries a new order (1 s).
const RISK_PAUSE_NS: u64 = 1_000_000_000;

/// Position and money, all exact.
#[derive(Clone, Copy, Debug, Default)]
pub struct Ledger {
    /// Base quantity, 10⁻⁸ units (+ long).
    pub position: i64,
    /// Σ (sell px×qty − buy px×qty), 10⁻¹⁶ quote units.
    pub cash: i128,
    /// Σ fees paid (negative = rebates), 10⁻⁸ quote units.
    pub fees: i64,
    /// Σ (bid + ask) of the last in-sync book, 10⁻⁸ units (twice the mid, so it stays exact).
    pub mid2: i64,
}

impl Ledger {
    /// PnL before fees, 10⁻¹⁶ quote units: cash flow plus the position marked at mid.
    /// Exact: `position × (bid + ask) / 2` is divided only when even (any multiple of 10⁻⁸ lots).
    pub fn gross(&self) -> i128 {
        let marked2 = self.position as i128 * self.mid2 as i128;
        self.cash + marked2.div_euclid(2)
    }

    /// PnL after fees, 10⁻¹⁶ quote units.
    pub fn net(&self) -> i128 {
        self.gross() - self.fees as i128 * FIXED_SCALE as i128
    }
}

/// Formats a fixed-point integer with `scale` decimals, exactly (trailing zeros trimmed).
pub fn decimal(v: i128, scale: u32) -> String {
    let unit = 10i128.pow(scale);
    let sign = if v < 0 { "-" } else { "" };
    let a = v.unsigned_abs();
    let (whole, frac) = (a / unit as u128, a % unit as u128);
    if frac == 0 {
        return format!("{sign}{whole}");
    }
    let f = format!("{frac:0width$}", width = scale as usize);
    format!("{sign}{whole}.{}", f.trim_end_matches('0'))
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    order: Option<ClientOrderId>,
    cancel_sent: bool,
}

/// The strategy's state.
pub struct TouchQuoter {
    p: QuoterParams,
    ids: ClientIdGen,
    in_sync: bool,
    bid: Slot,
    ask: Slot,
    orders: HashMap<ClientOrderId, OrderState>,
    pub ledger: Ledger,
    pub counters: QuoterCounters,
    /// Pre-trade checks and kill switches, inline (no extra hop): every new order passes it.
    pub risk: Option<RiskEngine>,
    actions: Vec<RiskAction>,
    /// After a risk refusal no new order is tried before this (ns): the limits that refuse (order
    /// rate, open orders, exposure) do not clear within a tick, so retrying every tick would only
    /// flood the journal.
    risk_pause_until: u64,
}

impl TouchQuoter {
    pub fn new(p: QuoterParams) -> Self {
        Self {
            p,
            ids: ClientIdGen::from_clock(),
            in_sync: false,
            bid: Slot::default(),
            ask: Slot::default(),
            orders: HashMap::with_capacity(4096),
            ledger: Ledger::default(),
            counters: QuoterCounters::default(),
            risk: None,
            actions: Vec::new(),
            risk_pause_until: 0,
        }
    }

    /// The same quoter with a risk engine in front of its orders.
    pub fn with_risk(p: QuoterParams, risk: RiskEngine) -> Self {
        Self {
            risk: Some(risk),
            ..Self::new(p)
        }
    }

    /// Whether risk lets the quoter open new quotes (active; conservative still quotes — risk
    /// refuses what opens or adds).
    fn may_quote(&self) -> bool {
        self.risk
            .as_ref()
            .is_none_or(|r| r.state() == RiskState::Active)
    }

    /// Sends what the risk engine asked for (cancel-alls, reduce-only orders).
    pub fn run_risk_actions(&mut self, tick_ns: u64, out: &mut Producer<OrderCommand>) {
        let Some(r) = self.risk.as_mut() else { return };
        r.take_actions(&mut self.actions);
        let actions = std::mem::take(&mut self.actions);
        for a in &actions {
            match *a {
                RiskAction::CancelAll { venue, symbol }
                    if venue == self.p.venue && symbol == self.p.symbol =>
                {
                    self.counters.risk_cancel_alls += 1;
                    self.push(tick_ns, OrderAction::CancelAll, out);
                }
                RiskAction::Reduce {
                    venue,
                    symbol,
                    side,
                    qty,
                } if venue == self.p.venue && symbol == self.p.symbol => {
                    let o = NewOrder {
                        venue,
                        symbol,
                        client_id: self.ids.next_id(),
                        side,
                        order_type: OrderType::Market,
                        tif: TimeInForce::Ioc,
                        price: Price::ZERO,
                        qty,
                        reduce_only: true,
                    };
                    self.orders.insert(o.client_id, OrderState::new(o));
                    self.counters.risk_orders += 1;
                    self.push(tick_ns, OrderAction::New(o), out);
                }
                RiskAction::Alert {
                    switch,
                    state,
                    conservative,
                    detail,
                } => tracing::warn!(
                    "risk alert: {} by {} (conservative {conservative}, detail {detail})",
                    state.name(),
                    switch.name()
                ),
                _ => {}
            }
        }
        self.actions = actions;
        self.actions.clear();
    }

    /// Orders not yet in a terminal state.
    pub fn live_orders(&self) -> usize {
        self.orders
            .values()
            .filter(|s| !s.status.is_terminal())
            .count()
    }

    /// One market event: track the book's sync state and requote on every rebuilt top of book.
    pub fn on_market(&mut self, ev: &MarketEvent, out: &mut Producer<OrderCommand>) {
        if let Some(r) = self.risk.as_mut() {
            r.on_market(ev);
        }
        self.run_risk_actions(ev.recv_ns, out);
        if ev.venue != self.p.venue || ev.symbol != self.p.symbol {
            return;
        }
        match ev.payload {
            MarketPayload::BookSynced { .. } => self.in_sync = true,
            MarketPayload::BookStale { .. } => {
                self.in_sync = false;
                self.counters.stale_events += 1;
                self.cancel_all(ev.recv_ns, out);
            }
            MarketPayload::BookTop(top) if self.in_sync => {
                self.ledger.mid2 = top.bid_px.raw() + top.ask_px.raw();
                if self.may_quote() {
                    self.requote(ev.recv_ns, &top, out);
                } else {
                    self.cancel_all(ev.recv_ns, out);
                }
            }
            _ => {}
        }
    }

    fn requote(&mut self, tick_ns: u64, top: &TopOfBook, out: &mut Producer<OrderCommand>) {
        if top.bid_px.raw() <= 0 || top.ask_px <= top.bid_px {
            return;
        }
        for side in [Side::Buy, Side::Sell] {
            let (target, allowed) = match side {
                Side::Buy => (
                    top.bid_px,
                    self.ledger.position + self.p.size.raw() <= self.p.max_position.raw(),
                ),
                Side::Sell => (
                    top.ask_px,
                    self.ledger.position - self.p.size.raw() >= -self.p.max_position.raw(),
                ),
            };
            let slot = *self.slot(side);
            let live = slot
                .order
                .and_then(|id| self.orders.get(&id))
                .filter(|s| !s.status.is_terminal())
                .copied();
            match live {
                Some(st) => {
                    let off = !allowed || st.order.price != target;
                    // A cancel waits for the ack: racing it would meet "unknown order".
                    let acked = st.status != qalpha_engine::order::OrderStatus::PendingNew;
                    if off && acked && !slot.cancel_sent {
                        self.send_cancel(tick_ns, st.order.client_id, out);
                        self.slot(side).cancel_sent = true;
                    }
                }
                None => {
                    *self.slot(side) = Slot::default();
                    if allowed && clock::now_ns() >= self.risk_pause_until {
                        let id = self.send_new(tick_ns, side, target, out);
                        self.slot(side).order = Some(id);
                    }
                }
            }
        }
    }

    fn cancel_all(&mut self, tick_ns: u64, out: &mut Producer<OrderCommand>) {
        for side in [Side::Buy, Side::Sell] {
            let slot = *self.slot(side);
            let Some(id) = slot.order else { continue };
            let cancellable = self.orders.get(&id).is_some_and(|s| {
                !s.status.is_terminal() && s.status != qalpha_engine::order::OrderStatus::PendingNew
            });
            if cancellable && !slot.cancel_sent {
                self.send_cancel(tick_ns, id, out);
                self.slot(side).cancel_sent = true;
            }
        }
    }

    /// At shutdown: cancel everything that rests (pending news are cancelled once acknowledged).
    pub fn flatten_quotes(&mut self, out: &mut Producer<OrderCommand>) {
        self.cancel_all(clock::now_ns(), out);
    }

    fn slot(&mut self, side: Side) -> &mut Slot {
        match side {
            Side::Buy => &mut self.bid,
            Side::Sell => &mut self.ask,
        }
    }

    fn send_new(
        &mut self,
        tick_ns: u64,
        side: Side,
        price: Price,
        out: &mut Producer<OrderCommand>,
    ) -> ClientOrderId {
        if !self.in_sync {
            self.counters.orders_on_stale_book += 1;
        }
        let o = NewOrder {
            venue: self.p.venue,
            symbol: self.p.symbol,
            client_id: self.ids.next_id(),
            side,
            order_type: OrderType::Limit,
            tif: TimeInForce::PostOnly,
            price,
            qty: self.p.size,
            reduce_only: false,
        };
        self.orders.insert(o.client_id, OrderState::new(o));
        self.counters.orders += 1;
        self.push(tick_ns, OrderAction::New(o), out);
        o.client_id
    }

    fn send_cancel(&mut self, tick_ns: u64, id: ClientOrderId, out: &mut Producer<OrderCommand>) {
        self.counters.cancels_sent += 1;
        self.push(tick_ns, OrderAction::Cancel { client_id: id }, out);
    }

    fn push(&mut self, tick_ns: u64, action: OrderAction, out: &mut Producer<OrderCommand>) {
        let cmd = OrderCommand {
            venue: self.p.venue,
            symbol: self.p.symbol,
            tick_recv_ns: tick_ns,
            decided_ns: clock::now_ns(),
            action,
        };
        if let (Some(r), OrderAction::New(o)) = (self.risk.as_mut(), action) {
            if let Err(reason) = r.check(&cmd, None, cmd.decided_ns) {
                // Refused before it left: the order ends here, as a reject with risk's reason.
                self.counters.risk_rejects += 1;
                self.risk_pause_until = cmd.decided_ns + RISK_PAUSE_NS;
                let rep = ExecReport {
                    reason: RISK_REJECT_BASE - reason as i32,
                    recv_ns: cmd.decided_ns,
                    ..ExecReport::about(&o, ExecKind::Rejected)
                };
                self.on_report(&rep);
                return;
            }
        }
        // The order ring back-pressures: a command is never dropped.
        out.push(cmd);
    }

    /// One execution report: update the order, the ledger, risk and the counters.
    pub fn on_report(&mut self, r: &ExecReport) {
        if r.reason > RISK_REJECT_BASE - 100 && r.reason <= RISK_REJECT_BASE {
            // risk's own refusal: not an API error
        } else if let Some(risk) = self.risk.as_mut() {
            risk.on_report(r, clock::now_ns());
        }
        let Some(st) = self.orders.get_mut(&r.client_id) else {
            self.counters.unknown_reports += 1;
            return;
        };
        if st.apply(r) == Applied::Ignored {
            self.counters.ignored_reports += 1;
            return;
        }
        let c = &mut self.counters;
        match r.kind {
            ExecKind::Ack => c.acks += 1,
            ExecKind::Rejected => c.rejects += 1,
            ExecKind::Canceled => c.canceled += 1,
            ExecKind::Expired => c.expired += 1,
            ExecKind::Amended => {}
            ExecKind::PartialFill | ExecKind::Fill => {
                c.fills += 1;
                let notional = r.last_px.raw() as i128 * r.last_qty.raw() as i128;
                match r.side {
                    Side::Buy => {
                        self.ledger.position += r.last_qty.raw();
                        self.ledger.cash -= notional;
                    }
                    Side::Sell => {
                        self.ledger.position -= r.last_qty.raw();
                        self.ledger.cash += notional;
                    }
                }
                self.ledger.fees += r.fee.raw();
            }
        }
        if st.status.is_terminal() {
            for slot in [&mut self.bid, &mut self.ask] {
                if slot.order == Some(r.client_id) {
                    *slot = Slot::default();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_exact() {
        assert_eq!(decimal(0, 16), "0");
        assert_eq!(decimal(-12_345_000_000_000_000_000, 16), "-1234.5");
        assert_eq!(decimal(1, 8), "0.00000001");
    }

    #[test]
    fn ledger_marks_at_mid() {
        let l = Ledger {
            position: 100_000, // 0.001
            cash: -2_800_010_000_000 * 100_000,
            fees: 560_002, // 0.00560002
            mid2: 2 * 2_800_020_000_000,
        };
        // Bought 0.001 at 28000.1, mid 28000.2: +0.0001 gross.
        assert_eq!(decimal(l.gross(), 16), "0.0001");
        assert_eq!(decimal(l.net(), 16), "-0.00550002");
    }
}
