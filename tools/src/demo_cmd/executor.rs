//! The executor: the strategy thread's hands. A strategy ([`Decider`]) says what it wants — an
//! [`Intent`] — and the executor turns it into orders, with the risk engine inline in front of every
//! new order (DESIGN §1: features → decision → risk → order ring). Rules
//! (`qalpha_strategy::baselines` documents the intents):
//!
//! - **Book sync.** New orders only while the book is in sync (between `BookSynced` and
//!   `BookStale`) and a rebuilt top of book has been seen; on `BookStale` everything resting is
//!   cancelled. `orders_on_stale_book` counts any breach (it must stay 0).
//! - **Quote** `{bid, ask}`: at most one post-only order a side at the asked price and size. A
//!   resting one whose price or size differs — or whose side is no longer wanted — is cancelled once
//!   acknowledged (a cancel racing the ack would meet "unknown order"), one cancel in flight; the
//!   replacement goes out on the first book update after the cancel is confirmed, so a side never
//!   has two orders.
//! - **Target** `{qty, style}`: trade `target − (position + signed open quantity of live orders)`
//!   with one order at a time: while any order is live (the target's own, quotes being pulled,
//!   risk's) no new one is sent, so the same difference is never in flight twice. `Market` → market
//!   IOC, retried after it ends short (after 1 s if it filled nothing); `Ioc { limit }` → limit IOC
//!   at `limit`, one try per intent (the strategy named its worst price: once the book has left it,
//!   trying again would only churn); `PostOnly` → post-only at the touch (best bid to buy, best ask
//!   to sell), re-pegged like a quote when the touch moves.
//! - **Superseding.** A new intent replaces the last one: a `Target` pulls the quotes, a `Quote`
//!   drops the target (its resting post-only order is cancelled; an IOC in flight ends by itself —
//!   cancelling it would only meet "unknown order"); the new intent's orders wait until the old
//!   one's are final.
//! - **Risk.** `RiskEngine::check` before every new order; a refusal becomes a reject report here and
//!   pauses new orders for 1 s; risk's actions (cancel-all, reduce-only cuts) are sent like the
//!   strategy's own orders; outside `Active` nothing new is placed and what rests is cancelled; the
//!   strategy's disagreement goes to `RiskEngine::on_model_disagreement` after every event.
//! - **Fills** move the exact [`Ledger`] and go back to the strategy (`on_fill`) — risk's cuts
//!   included: they change the position the strategy holds.
//!
//! Hot path: nothing is allocated per market event; each order sent allocates its client id
//! (`ClientIdGen::next_id`) and an entry in the order map; final orders stay in it for the next
//! [`KEPT_CLOSED`] final orders (a late or repeated report still finds its order), then leave it, so
//! the map stays bounded over weeks. Live orders are counted incrementally, never by scanning it.

use std::collections::{HashMap, VecDeque};

use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook};
use qalpha_engine::order::{
    is_rate_limited, Applied, ClientIdGen, ClientOrderId, ExecKind, ExecReport, NewOrder,
    OrderAction, OrderCommand, OrderState, OrderStatus, OrderType, TimeInForce,
};
use qalpha_engine::ring::Producer;
use qalpha_engine::{clock, Price, Qty, Side, Symbol, Venue};
use qalpha_risk::engine::{RiskAction, RiskEngine};
use qalpha_risk::RiskState;
use qalpha_strategy::baselines::{Intent, Style};

mod lifecycle;

use super::ledger::Ledger;
use super::strategy::Decider;

/// The instrument the executor trades.
#[derive(Clone, Copy, Debug)]
pub struct Market {
    pub venue: Venue,
    pub symbol: Symbol,
}

/// What the executor counted.
#[derive(Clone, Copy, Debug, Default)]
pub struct ExecCounters {
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
    /// Reports for client ids this executor never sent.
    pub unknown_reports: u64,
    pub stale_events: u64,
    /// Intents the strategy returned.
    pub intents: u64,
    /// New orders the risk engine refused (never sent).
    pub risk_rejects: u64,
    /// Rejects that were rate-limit refusals (each pauses new orders, doubling in a row).
    pub rate_limited: u64,
    /// Orders the risk engine asked for (flatten / cut, reduce-only) and cancel-alls it triggered.
    pub risk_orders: u64,
    pub risk_cancel_alls: u64,
}

/// Reason code of a report synthesized for an order the risk engine refused: this base minus the
/// reason's index (`qalpha_risk::RejectReason as i32`), so it never collides with a venue code.
pub const RISK_REJECT_BASE: i32 = -9000;

/// How long the executor waits after a risk refusal before it tries a new order (1 s): the limits
/// that refuse (order rate, open orders, exposure) do not clear within a tick, so retrying every
/// tick would only flood the journal. A market target order that filled nothing waits as long.
const PAUSE_NS: u64 = 1_000_000_000;
/// After a rate-limit refusal no new order for this long, doubling with each refusal in a row up to
/// [`RATE_PAUSE_MAX_NS`], back to the start once an order is acknowledged. Re-sending at once had
/// turned one refusal into a burst (both quote sides, every event) that tripped risk's API-error
/// switch within minutes (`qalpha soak`).
const RATE_PAUSE_NS: u64 = 1_000_000_000;
const RATE_PAUSE_MAX_NS: u64 = 30_000_000_000;

/// How an order executes: type, time in force, limit price (zero for a market order).
type How = (OrderType, TimeInForce, Price);

const MARKET_IOC: How = (OrderType::Market, TimeInForce::Ioc, Price::ZERO);

/// One working order per role: a quote side, or the target's order.
#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    order: Option<ClientOrderId>,
    cancel_sent: bool,
}

/// The standing target.
#[derive(Clone, Copy, Debug)]
struct Target {
    /// Signed base quantity, 10⁻⁸ units.
    qty: i64,
    style: Style,
    /// An `Ioc` target's one try has gone out.
    tried: bool,
}

/// Orders not yet final, kept as running sums (the hot path never scans the order map).
#[derive(Clone, Copy, Debug, Default)]
struct Live {
    count: usize,
    /// Σ signed open quantity (+ buys), 10⁻⁸ units.
    leaves: i64,
}

fn signed_leaves(st: &OrderState) -> i64 {
    match st.order.side {
        Side::Buy => st.leaves().raw(),
        Side::Sell => -st.leaves().raw(),
    }
}

/// The executor's state. See the module docs.
pub struct Executor {
    m: Market,
    strategy: Decider,
    ids: ClientIdGen,
    in_sync: bool,
    /// The last rebuilt top of book while in sync (post-only targets peg to it).
    top: Option<TopOfBook>,
    bid: Slot,
    ask: Slot,
    want_bid: Option<(Price, Qty)>,
    want_ask: Option<(Price, Qty)>,
    target: Option<Target>,
    working: Slot,
    orders: HashMap<ClientOrderId, OrderState>,
    /// Final orders still in `orders`, oldest first.
    closed: VecDeque<ClientOrderId>,
    live: Live,
    pub ledger: Ledger,
    /// Close any position at shutdown (`--flatten-on-exit`).
    pub flatten_on_exit: bool,
    /// The position (base units × 10⁸) the shutdown flattened, if it did.
    pub flattened: Option<i64>,
    flatten_sent: bool,
    pub counters: ExecCounters,
    /// Pre-trade checks and kill switches, inline (no extra hop): every new order passes it.
    pub risk: Option<RiskEngine>,
    actions: Vec<RiskAction>,
    /// No new order before this (ns): after a risk refusal, or a market target order that filled
    /// nothing.
    pause_until: u64,
    /// The pause after the next rate-limit refusal (ns; 0: none yet in a row).
    rate_pause: u64,
    /// Simulated time (backtests, deterministic replays): `Some` replaces the wall clock everywhere
    /// the executor reads the time (order stamps, pauses, risk). Set with [`Executor::set_time`].
    sim_now: Option<u64>,
}

impl Executor {
    pub fn new(m: Market, strategy: Decider) -> Self {
        Self {
            m,
            strategy,
            ids: ClientIdGen::from_clock(),
            in_sync: false,
            top: None,
            bid: Slot::default(),
            ask: Slot::default(),
            want_bid: None,
            want_ask: None,
            target: None,
            working: Slot::default(),
            orders: HashMap::with_capacity(2 * KEPT_CLOSED),
            closed: VecDeque::with_capacity(KEPT_CLOSED + 1),
            live: Live::default(),
            ledger: Ledger::default(),
            flatten_on_exit: false,
            flattened: None,
            flatten_sent: false,
            counters: ExecCounters::default(),
            risk: None,
            actions: Vec::with_capacity(8),
            pause_until: 0,
            rate_pause: 0,
            sim_now: None,
        }
    }

    /// Simulated time from now on (a backtest's clock, ns): every time the executor reads — order
    /// stamps, pauses, risk — is this instead of the wall clock, so a replay is deterministic.
    pub fn set_time(&mut self, now_ns: u64) {
        self.sim_now = Some(now_ns);
    }

    /// Client ids from `ids` (a backtest numbers its orders from the data's start, not the clock).
    pub fn set_ids(&mut self, ids: ClientIdGen) {
        self.ids = ids;
    }

    /// The executor's clock: simulated when set, else the wall clock.
    fn now(&self) -> u64 {
        self.sim_now.unwrap_or_else(clock::now_ns)
    }

    /// The exact position and money so far.
    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// The same executor with a risk engine in front of its orders.
    pub fn with_risk(m: Market, strategy: Decider, risk: RiskEngine) -> Self {
        Self {
            risk: Some(risk),
            ..Self::new(m, strategy)
        }
    }

    /// The strategy's registry name.
    pub fn strategy_name(&self) -> &'static str {
        self.strategy.name()
    }

    /// What the strategy counted (the Trinity: bars, inference runs, last decision); cold path.
    /// The strategy's models' latest outputs (monitoring).
    pub fn model_outputs(&self) -> Option<[f64; 3]> {
        self.strategy.model_outputs()
    }

    pub fn strategy_summary(&self) -> Vec<(&'static str, String)> {
        self.strategy.summary()
    }

    /// Orders not yet in a terminal state.
    pub fn live_orders(&self) -> usize {
        self.live.count
    }

    /// Whether risk lets the strategy place new orders (active; conservative still trades — risk
    /// refuses what opens or adds).
    fn may_trade(&self) -> bool {
        self.risk
            .as_ref()
            .is_none_or(|r| r.state() == RiskState::Active)
    }

    /// New orders may go out now: the book is trusted, risk lets us, no pause runs.
    fn may_send(&self) -> bool {
        self.in_sync && self.top.is_some() && self.now() >= self.pause_until
    }

    /// Sends what the risk engine asked for (cancel-alls, reduce-only orders).
    pub fn run_risk_actions(&mut self, tick_ns: u64, out: &mut Producer<OrderCommand>) {
        let Some(r) = self.risk.as_mut() else { return };
        r.take_actions(&mut self.actions);
        let actions = std::mem::take(&mut self.actions);
        for a in &actions {
            match *a {
                RiskAction::CancelAll { venue, symbol }
                    if venue == self.m.venue && symbol == self.m.symbol =>
                {
                    self.counters.risk_cancel_alls += 1;
                    self.push(tick_ns, OrderAction::CancelAll, out);
                }
                RiskAction::Reduce {
                    venue,
                    symbol,
                    side,
                    qty,
                } if venue == self.m.venue && symbol == self.m.symbol => {
                    self.counters.risk_orders += 1;
                    self.send_new(tick_ns, side, MARKET_IOC, qty, true, out);
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

    /// One market event: risk sees it, the book's sync state is tracked, the strategy decides, and
    /// the standing intent is worked on every rebuilt top of book (and whenever a new intent came).
    pub fn on_market(&mut self, ev: &MarketEvent, out: &mut Producer<OrderCommand>) {
        if let Some(r) = self.risk.as_mut() {
            r.on_market(ev);
        }
        self.run_risk_actions(ev.recv_ns, out);
        if ev.venue != self.m.venue || ev.symbol != self.m.symbol {
            return;
        }
        let mut work = false;
        match ev.payload {
            MarketPayload::BookSynced { .. } => self.in_sync = true,
            MarketPayload::BookStale { .. } => {
                self.in_sync = false;
                self.top = None;
                self.counters.stale_events += 1;
                self.cancel_resting(ev.recv_ns, out);
            }
            MarketPayload::BookTop(top) if self.in_sync => {
                self.ledger.mid2 = top.bid_px.raw() + top.ask_px.raw();
                self.top = Some(top);
                work = true;
            }
            _ => {}
        }
        let intent = self.strategy.on_event(ev);
        if let (Some(d), Some(r)) = (self.strategy.disagreement(), self.risk.as_mut()) {
            r.on_model_disagreement(d, ev.recv_ns);
            self.run_risk_actions(ev.recv_ns, out);
        }
        if let Some(i) = intent {
            self.apply(i);
            work = true;
        }
        if work && self.in_sync {
            self.work(ev.recv_ns, out);
        }
    }

    /// A new intent replaces the standing one (see the module docs); orders follow on [`Self::work`].
    pub fn apply(&mut self, intent: Intent) {
        self.counters.intents += 1;
        match intent {
            Intent::Quote { bid, ask } => {
                self.want_bid = bid;
                self.want_ask = ask;
                self.target = None;
            }
            Intent::Target { qty, style } => {
                self.want_bid = None;
                self.want_ask = None;
                self.target = Some(Target {
                    qty: qty.raw(),
                    style,
                    tried: false,
                });
            }
        }
    }

    /// Brings the orders in line with the standing intent: cancels what no longer fits, places
    /// what is missing (when allowed).
    pub fn work(&mut self, tick_ns: u64, out: &mut Producer<OrderCommand>) {
        if !self.may_trade() {
            self.cancel_resting(tick_ns, out);
            return;
        }
        for side in [Side::Buy, Side::Sell] {
            self.work_quote(side, tick_ns, out);
        }
        self.work_target(tick_ns, out);
    }

    fn work_quote(&mut self, side: Side, tick_ns: u64, out: &mut Producer<OrderCommand>) {
        let want = match side {
            Side::Buy => self.want_bid,
            Side::Sell => self.want_ask,
        };
        let slot = *self.slot(side);
        match self.live_state(slot.order) {
            Some(st) => {
                let fits =
                    want.is_some_and(|(px, qty)| st.order.price == px && st.order.qty == qty);
                if !fits {
                    self.cancel_slot(side_role(side), tick_ns, out);
                }
            }
            None => {
                *self.slot(side) = Slot::default();
                // A superseded target's order finishes first (never two bids at once).
                let target_live = self.live_state(self.working.order).is_some();
                if let Some((px, qty)) = want {
                    if self.may_send() && !target_live {
                        let how = (OrderType::Limit, TimeInForce::PostOnly, px);
                        let id = self.send_new(tick_ns, side, how, qty, false, out);
                        self.slot(side).order = Some(id);
                    }
                }
            }
        }
    }

    fn work_target(&mut self, tick_ns: u64, out: &mut Producer<OrderCommand>) {
        if let Some(st) = self.live_state(self.working.order) {
            // Only a resting post-only order is ever cancelled: an IOC ends by itself.
            if st.order.tif == TimeInForce::PostOnly && !self.target_fits(&st) {
                self.cancel_slot(Role::Target, tick_ns, out);
            }
            return;
        }
        self.working = Slot::default();
        let Some(t) = self.target else { return };
        // Earlier orders (quotes being pulled, risk's cuts, an older target's) finish first.
        if self.live.count > 0 || !self.may_send() {
            return;
        }
        let delta = t.qty - self.ledger.position - self.live.leaves;
        if delta == 0 || (matches!(t.style, Style::Ioc { .. }) && t.tried) {
            return;
        }
        let side = if delta > 0 { Side::Buy } else { Side::Sell };
        let how = match t.style {
            Style::Market => MARKET_IOC,
            Style::Ioc { limit } => (OrderType::Limit, TimeInForce::Ioc, limit),
            Style::PostOnly => match self.peg(side) {
                Some(px) => (OrderType::Limit, TimeInForce::PostOnly, px),
                None => return,
            },
        };
        let id = self.send_new(tick_ns, side, how, Qty(delta.abs()), false, out);
        self.working.order = Some(id);
        if let Some(t) = self.target.as_mut() {
            t.tried = true;
        }
    }

    /// Whether the target's resting post-only order is what the standing target would place now.
    fn target_fits(&self, st: &OrderState) -> bool {
        let Some(t) = self.target else { return false };
        if t.style != Style::PostOnly {
            return false;
        }
        // The difference this order is working on: everything but itself.
        let delta = t.qty - self.ledger.position - (self.live.leaves - signed_leaves(st));
        let side_ok = match st.order.side {
            Side::Buy => delta > 0,
            Side::Sell => delta < 0,
        };
        side_ok
            && st.leaves().raw() == delta.abs()
            && self.peg(st.order.side) == Some(st.order.price)
    }

    /// The touch a post-only order of `side` pegs to.
    fn peg(&self, side: Side) -> Option<Price> {
        let t = self.top?;
        if t.bid_px.raw() <= 0 || t.ask_px <= t.bid_px {
            return None;
        }
        Some(match side {
            Side::Buy => t.bid_px,
            Side::Sell => t.ask_px,
        })
    }

    /// Cancels everything resting (quotes and the target's post-only order); pending news are
    /// cancelled once acknowledged, on a later call.
    fn cancel_resting(&mut self, tick_ns: u64, out: &mut Producer<OrderCommand>) {
        for role in [Role::Bid, Role::Ask, Role::Target] {
            self.cancel_slot(role, tick_ns, out);
        }
    }

    /// Sends one cancel for the role's order if it is live, acknowledged and not being cancelled.
    fn cancel_slot(&mut self, role: Role, tick_ns: u64, out: &mut Producer<OrderCommand>) {
        let slot = *self.role(role);
        let Some(st) = self.live_state(slot.order) else {
            return;
        };
        // Only resting orders: an IOC in flight ends by itself.
        if st.status == OrderStatus::PendingNew
            || slot.cancel_sent
            || st.order.tif == TimeInForce::Ioc
        {
            return;
        }
        self.counters.cancels_sent += 1;
        self.role(role).cancel_sent = true;
        let id = st.order.client_id;
        self.push(tick_ns, OrderAction::Cancel { client_id: id }, out);
    }

    fn live_state(&self, id: Option<ClientOrderId>) -> Option<OrderState> {
        id.and_then(|id| self.orders.get(&id))
            .filter(|s| !s.status.is_terminal())
            .copied()
    }

    fn slot(&mut self, side: Side) -> &mut Slot {
        self.role(side_role(side))
    }

    fn role(&mut self, role: Role) -> &mut Slot {
        match role {
            Role::Bid => &mut self.bid,
            Role::Ask => &mut self.ask,
            Role::Target => &mut self.working,
        }
    }

    fn send_new(
        &mut self,
        tick_ns: u64,
        side: Side,
        (order_type, tif, price): How,
        qty: Qty,
        reduce_only: bool,
        out: &mut Producer<OrderCommand>,
    ) -> ClientOrderId {
        if !self.in_sync && !reduce_only {
            self.counters.orders_on_stale_book += 1;
        }
        let o = NewOrder {
            venue: self.m.venue,
            symbol: self.m.symbol,
            client_id: self.ids.next_id(),
            side,
            order_type,
            tif,
            price,
            qty,
            reduce_only,
        };
        let st = OrderState::new(o);
        self.orders.insert(o.client_id, st);
        self.live.count += 1;
        self.live.leaves += signed_leaves(&st);
        if !reduce_only {
            self.counters.orders += 1;
        }
        self.push(tick_ns, OrderAction::New(o), out);
        o.client_id
    }

    fn push(&mut self, tick_ns: u64, action: OrderAction, out: &mut Producer<OrderCommand>) {
        let cmd = OrderCommand {
            venue: self.m.venue,
            symbol: self.m.symbol,
            tick_recv_ns: tick_ns,
            decided_ns: self.now(),
            action,
        };
        if let (Some(r), OrderAction::New(o)) = (self.risk.as_mut(), action) {
            if let Err(reason) = r.check(&cmd, None, cmd.decided_ns) {
                // Refused before it left: the order ends here, as a reject with risk's reason.
                self.counters.risk_rejects += 1;
                self.pause_until = cmd.decided_ns + PAUSE_NS;
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

    /// One execution report: update the order, the live sums, the ledger, risk, the strategy and
    /// the counters.
    pub fn on_report(&mut self, r: &ExecReport) {
        if r.reason > RISK_REJECT_BASE - 100 && r.reason <= RISK_REJECT_BASE {
            // risk's own refusal: not an API error
        } else {
            let now = self.now();
            // (A post-only bounce is the market moving, not the API failing: risk does not count it.)
            if let Some(risk) = self.risk.as_mut() {
                risk.on_report(r, now);
            }
            match r.kind {
                ExecKind::Rejected if is_rate_limited(r.venue, r.reason) => {
                    self.rate_pause = (self.rate_pause * 2).clamp(RATE_PAUSE_NS, RATE_PAUSE_MAX_NS);
                    self.pause_until = self.pause_until.max(now + self.rate_pause);
                    self.counters.rate_limited += 1;
                }
                ExecKind::Ack => self.rate_pause = 0,
                _ => {}
            }
        }
        let Some(st) = self.orders.get_mut(&r.client_id) else {
            self.counters.unknown_reports += 1;
            return;
        };
        let (was_live, was_leaves) = (!st.status.is_terminal(), signed_leaves(st));
        if st.apply(r) == Applied::Ignored {
            self.counters.ignored_reports += 1;
            return;
        }
        let now = *st;
        if was_live && now.status.is_terminal() {
            self.live.count -= 1;
        }
        self.live.leaves += signed_leaves(&now) - was_leaves;
        let c = &mut self.counters;
        match r.kind {
            ExecKind::Ack => c.acks += 1,
            ExecKind::Rejected => c.rejects += 1,
            ExecKind::Canceled => c.canceled += 1,
            ExecKind::Expired => c.expired += 1,
            ExecKind::Amended => {}
            ExecKind::PartialFill | ExecKind::Fill => {
                c.fills += 1;
                self.ledger.on_fill(r);
                self.strategy.on_fill(r.side, r.last_qty);
            }
        }
        if now.status.is_terminal() {
            if was_live {
                self.closed.push_back(r.client_id);
                if self.closed.len() > KEPT_CLOSED {
                    if let Some(old) = self.closed.pop_front() {
                        self.orders.remove(&old);
                    }
                }
            }
            if self.working.order == Some(r.client_id)
                && now.order.order_type == OrderType::Market
                && now.cum_qty.raw() == 0
            {
                // A market order that filled nothing (no book, refused): do not hammer the venue.
                self.pause_until = self.pause_until.max(self.now() + PAUSE_NS);
            }
            for slot in [&mut self.bid, &mut self.ask, &mut self.working] {
                if slot.order == Some(r.client_id) {
                    *slot = Slot::default();
                }
            }
        }
    }
}

/// Final orders kept in the order map (see the module docs).
pub const KEPT_CLOSED: usize = 4096;

/// Which slot an order works for.
#[derive(Clone, Copy, Debug)]
enum Role {
    Bid,
    Ask,
    Target,
}

fn side_role(side: Side) -> Role {
    match side {
        Side::Buy => Role::Bid,
        Side::Sell => Role::Ask,
    }
}

#[cfg(test)]
mod tests;
