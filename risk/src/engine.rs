//! The risk engine the strategy thread calls inline: every new order passes [`RiskEngine::check`]
//! before it is sent; every execution report and market event goes through it; when a kill switch
//! fires it hands out [`RiskAction`]s (cancel everything, flatten with reduce-only orders, alert)
//! which the strategy sends like its own orders. Every decision and state change is journaled, and a
//! restart restores the day's PnL, the state and the counters from the journal — a restart never
//! resets a limit.
//!
//! Reports it reads must be clean (each fill once): the venue gateway and the paper venue both
//! guarantee it.

use std::collections::{HashMap, VecDeque};
use std::path::Path;

use qalpha_engine::event::{MarketEvent, MarketPayload};
use qalpha_engine::order::{
    ClientOrderId, ExecKind, ExecReport, NewOrder, OrderAction, OrderCommand,
};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};

use crate::checks::{pre_trade, reduces, Exposure, OrderContext};
use crate::journal::{restore, JournalError, JournalWriter, RiskEvent, RiskEventKind};
use crate::ledger::Ledger;
use crate::switches::{Switches, Transition};
use crate::{Money, RejectReason, RiskConfig, RiskState, SwitchKind};

/// What the strategy must do for the risk engine.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RiskAction {
    /// Cancel every open order of this market.
    CancelAll { venue: Venue, symbol: Symbol },
    /// Send a reduce-only market order of `qty` on `side` (flatten, or cut a position).
    Reduce {
        venue: Venue,
        symbol: Symbol,
        side: Side,
        qty: Qty,
    },
    /// Tell the operator (halt, reducing, conservative).
    Alert {
        switch: SwitchKind,
        state: RiskState,
        conservative: bool,
        detail: i64,
    },
}

/// Why the risk engine could not start.
#[derive(Debug, thiserror::Error)]
pub enum RiskError {
    #[error("risk journal: {0}")]
    Journal(#[from] JournalError),
}

/// One market as risk sees it.
#[derive(Clone, Copy, Debug, Default)]
struct Market {
    mark: Option<Price>,
    bid: Option<Price>,
    ask: Option<Price>,
    stale: bool,
    /// The next funding time (ms) and the rate announced for it.
    funding: Option<(u64, Qty)>,
    /// Lot step for cut sizes (0: unknown → 10⁻⁸).
    step: Qty,
}

/// An order risk accepted that is not final yet.
#[derive(Clone, Copy, Debug)]
struct Open {
    venue: Venue,
    symbol: Symbol,
}

/// Counters for reports.
#[derive(Clone, Debug, Default)]
pub struct RiskStats {
    pub accepted: u64,
    pub rejected: u64,
    /// Refusals by reason name.
    pub rejected_by: HashMap<&'static str, u64>,
    pub transitions: u64,
    pub journal_errors: u64,
    /// Journal records written this run.
    pub risk_events: u64,
}

/// The facade.
pub struct RiskEngine {
    cfg: RiskConfig,
    ledger: Ledger,
    switches: Switches,
    journal: Option<JournalWriter>,
    markets: HashMap<(Venue, Symbol), Market>,
    open: HashMap<ClientOrderId, Open>,
    accepted_at: VecDeque<u64>,
    actions: Vec<RiskAction>,
    /// When the day's PnL was last journaled (mark moves are journaled at most every
    /// `DAY_PNL_EVERY_NS`; fills and funding always).
    last_day_pnl_ns: u64,
    pub stats: RiskStats,
}

/// Mark-to-market changes of the day's PnL are journaled at most this often (10 s): a restart
/// recomputes unrealized PnL from the venue anyway; realized PnL is journaled on every fill.
const DAY_PNL_EVERY_NS: u64 = 10_000_000_000;

impl RiskEngine {
    /// A risk engine with `cfg`; with a journal path, the state is restored from it and every event
    /// is appended to it.
    pub fn new(cfg: RiskConfig, journal: Option<&Path>, now_ns: u64) -> Result<Self, RiskError> {
        let mut switches = Switches::new(&cfg);
        let writer = match journal {
            Some(p) => {
                let r = restore(p, now_ns)?;
                if r.events > 0 {
                    switches.restore(
                        r.state,
                        r.conservative,
                        r.halt_reason,
                        r.halted_at_ns,
                        r.utc_day,
                        r.day_pnl,
                        r.consecutive_losses,
                        r.api_errors_in_last_min,
                        now_ns,
                    );
                    tracing::info!(
                        "risk restored from {}: {} events, state {}, today's PnL {}, {} losses in a row",
                        p.display(),
                        r.events,
                        r.state.name(),
                        r.day_pnl,
                        r.consecutive_losses
                    );
                }
                Some(JournalWriter::open(p)?)
            }
            None => None,
        };
        Ok(Self {
            ledger: Ledger::new(Money::from_qty(cfg.initial_equity)),
            switches,
            journal: writer,
            markets: HashMap::new(),
            open: HashMap::new(),
            accepted_at: VecDeque::new(),
            actions: Vec::new(),
            last_day_pnl_ns: 0,
            stats: RiskStats::default(),
            cfg,
        })
    }

    pub fn config(&self) -> &RiskConfig {
        &self.cfg
    }

    pub fn state(&self) -> RiskState {
        self.switches.state()
    }

    pub fn conservative(&self) -> bool {
        self.switches.conservative()
    }

    pub fn halt_reason(&self) -> Option<SwitchKind> {
        self.switches.halt_reason()
    }

    pub fn halted_at_ns(&self) -> Option<u64> {
        self.switches.halted_at_ns()
    }

    pub fn ledger(&self) -> &Ledger {
        &self.ledger
    }

    /// Orders risk accepted that are not final yet.
    pub fn open_orders(&self) -> usize {
        self.open.len()
    }

    /// The lot step cut sizes are rounded down to (from the instrument's rules).
    /// At start: a position the venue reports (left by a crash, or traded by hand) enters the
    /// ledger at the venue's entry price, fee-free, so exposure checks, reductions and PnL count it.
    /// Call once, before any fill of this run.
    pub fn restore_position(&mut self, venue: Venue, symbol: Symbol, size: Qty, entry: Price) {
        if size.raw() == 0 {
            return;
        }
        let side = if size.raw() > 0 {
            Side::Buy
        } else {
            Side::Sell
        };
        self.ledger
            .on_fill(venue, symbol, side, entry, Qty(size.raw().abs()), Qty::ZERO);
    }

    pub fn set_step(&mut self, venue: Venue, symbol: Symbol, step: Qty) {
        self.markets.entry((venue, symbol)).or_default().step = step;
    }

    /// Pre-trade: `Ok` lets the command go out. Cancels always pass; an amend is judged as the
    /// order it would become; a new order passes every check of [`crate::checks`]. Each decision on
    /// a new order is journaled.
    pub fn check(
        &mut self,
        cmd: &OrderCommand,
        stop_px: Option<Price>,
        now_ns: u64,
    ) -> Result<(), RejectReason> {
        let o = match cmd.action {
            OrderAction::New(o) => o,
            OrderAction::Cancel { .. } | OrderAction::CancelAll => return Ok(()),
            // Amends change price/size of a resting order: judged by the band and the limits only
            // through the order they produce, which the strategy re-submits as new when it matters.
            OrderAction::Amend { .. } => return Ok(()),
        };
        while self
            .accepted_at
            .front()
            .is_some_and(|t| now_ns.saturating_sub(*t) >= 1_000_000_000)
        {
            self.accepted_at.pop_front();
        }
        let m = self
            .markets
            .get(&(o.venue, o.symbol))
            .copied()
            .unwrap_or(Market {
                stale: true,
                ..Market::default()
            });
        let ctx = OrderContext {
            mark: m.mark,
            best_bid: m.bid,
            best_ask: m.ask,
            book_stale: m.stale,
            stop_px,
        };
        let x = Exposure {
            position: self.ledger.position(o.venue, o.symbol),
            equity: self.ledger.equity(),
            gross_notional: self.ledger.gross_notional(),
            open_orders: self.open.len() as u32,
            orders_last_s: self.accepted_at.len() as u32,
        };
        let verdict = pre_trade(&self.cfg, self.state(), self.conservative(), &o, &ctx, &x);
        match verdict {
            Ok(()) => {
                self.stats.accepted += 1;
                self.accepted_at.push_back(now_ns);
                self.open.insert(
                    o.client_id,
                    Open {
                        venue: o.venue,
                        symbol: o.symbol,
                    },
                );
            }
            Err(r) => {
                self.stats.rejected += 1;
                *self.stats.rejected_by.entry(r.name()).or_default() += 1;
            }
        }
        self.journal_event(RiskEvent {
            ts_ns: now_ns,
            kind: RiskEventKind::Decision {
                venue: o.venue,
                symbol: o.symbol,
                client_id: o.client_id,
                side: o.side,
                price: o.price,
                qty: o.qty,
                reduce_only: o.reduce_only,
                reject: verdict.err(),
            },
        });
        verdict
    }

    /// Whether `o` would only reduce the current position (what halted/reducing states allow).
    pub fn reduces(&self, o: &NewOrder) -> bool {
        reduces(o, self.ledger.position(o.venue, o.symbol))
    }

    /// An execution report: fills move the ledger (and may close a round trip), venue refusals
    /// count as API errors, final states free the open-order slot.
    pub fn on_report(&mut self, r: &ExecReport, now_ns: u64) {
        match r.kind {
            ExecKind::PartialFill | ExecKind::Fill => {
                let out = self
                    .ledger
                    .on_fill(r.venue, r.symbol, r.side, r.last_px, r.last_qty, r.fee);
                if let Some(pnl) = out.closed_trade {
                    let t = self.switches.on_trade_closed(pnl, now_ns);
                    self.apply(t);
                }
                self.after_money_move(now_ns, true);
            }
            // Post-only bounces are the venue's normal answer to a maker, not an API failure.
            ExecKind::Rejected
                if r.reason != 0
                    && !qalpha_engine::order::is_post_only_bounce(r.venue, r.reason) =>
            {
                let (n, t) = self.switches.on_api_error(now_ns);
                self.journal_event(RiskEvent {
                    ts_ns: now_ns,
                    kind: RiskEventKind::ApiErrors { in_last_min: n },
                });
                self.apply(t);
            }
            _ => {}
        }
        if matches!(
            r.kind,
            ExecKind::Fill | ExecKind::Canceled | ExecKind::Expired | ExecKind::Rejected
        ) {
            self.open.remove(&r.client_id);
        }
    }

    /// A request that timed out (the gateway gave up waiting): an API error.
    pub fn on_timeout(&mut self, now_ns: u64) {
        let (_, t) = self.switches.on_api_error(now_ns);
        self.apply(t);
    }

    /// A market event: books (stale or not, the touch), marks, funding, volatility.
    pub fn on_market(&mut self, ev: &MarketEvent) {
        let now = ev.recv_ns;
        let m = self.markets.entry((ev.venue, ev.symbol)).or_default();
        let mut mid = None;
        let mut funding = None;
        match ev.payload {
            MarketPayload::BookTop(t) | MarketPayload::Quote(t) => {
                m.bid = (t.bid_qty.raw() > 0).then_some(t.bid_px);
                m.ask = (t.ask_qty.raw() > 0).then_some(t.ask_px);
                if matches!(ev.payload, MarketPayload::BookTop(_)) {
                    m.stale = false;
                }
                if let (Some(b), Some(a)) = (m.bid, m.ask) {
                    mid = Some(Price((b.raw() + a.raw()) / 2));
                }
            }
            MarketPayload::MarkPrice(mp) => {
                m.mark = Some(mp.mark_px);
                // A funding time passed: settle at the rate announced for it.
                if let Some((at, rate)) = m.funding {
                    if ev.exch_ms >= at {
                        funding = Some((rate, mp.mark_px));
                        m.funding = None;
                    }
                }
                if mp.next_funding_ms > ev.exch_ms {
                    m.funding = Some((mp.next_funding_ms, mp.funding_rate));
                }
            }
            MarketPayload::BookStale { .. } => m.stale = true,
            MarketPayload::BookSynced { .. } => m.stale = false,
            _ => {}
        }
        // Without a mark stream, the mid marks the position.
        let mark = m.mark.or(mid);
        if let Some(px) = mark {
            self.ledger.on_mark(ev.venue, ev.symbol, px);
        }
        if let Some((rate, px)) = funding {
            self.ledger.on_funding(ev.venue, ev.symbol, rate, px);
        }
        if let Some(mid) = mid {
            let t = self.switches.on_mid(mid, now);
            self.apply(t);
        }
        if mark.is_some() || funding.is_some() {
            self.after_money_move(now, funding.is_some());
        }
    }

    /// The Trinity's disagreement (0…1).
    pub fn on_model_disagreement(&mut self, d: f64, now_ns: u64) {
        let t = self.switches.on_model_disagreement(d, now_ns);
        self.apply(t);
    }

    /// Operator halt.
    pub fn halt(&mut self, now_ns: u64) {
        let t = self.switches.halt(now_ns);
        self.apply(t);
    }

    /// Operator resume.
    pub fn resume(&mut self, now_ns: u64) {
        let t = self.switches.resume(now_ns);
        self.apply(t);
    }

    /// What the strategy must send now (drained).
    pub fn take_actions(&mut self, out: &mut Vec<RiskAction>) {
        out.append(&mut self.actions);
    }

    /// Journal writes are buffered; this makes them durable (call at shutdown).
    pub fn sync(&mut self) {
        if let Some(j) = self.journal.as_mut() {
            if let Err(e) = j.sync() {
                self.stats.journal_errors += 1;
                tracing::error!("risk journal: {e}");
            }
        }
    }

    /// Equity moved: the daily-loss switch sees it; the day's PnL is journaled (`realized`: a fill
    /// or funding — always; a mark move — at most every 10 s).
    fn after_money_move(&mut self, now_ns: u64, realized: bool) {
        let t = self.switches.on_equity(self.ledger.equity(), now_ns);
        let due = realized || now_ns.saturating_sub(self.last_day_pnl_ns) >= DAY_PNL_EVERY_NS;
        if let (Some(day), true) = (self.switches.utc_day(), due) {
            self.last_day_pnl_ns = now_ns;
            self.journal_event(RiskEvent {
                ts_ns: now_ns,
                kind: RiskEventKind::DayPnl {
                    utc_day: day,
                    day_pnl: self.switches.day_pnl(),
                    realized_today: self.ledger.realized(),
                    consecutive_losses: self.switches.consecutive_losses(),
                },
            });
        }
        self.apply(t);
    }

    /// A state change: journal it (durably), and turn it into actions.
    fn apply(&mut self, t: Option<Transition>) {
        let Some(t) = t else { return };
        self.stats.transitions += 1;
        tracing::warn!(
            "risk: {} → {}{} by {} (detail {})",
            t.from.name(),
            t.to.name(),
            if t.conservative {
                " (conservative)"
            } else {
                ""
            },
            t.switch.name(),
            t.detail
        );
        self.journal_event(RiskEvent {
            ts_ns: t.at_ns,
            kind: RiskEventKind::StateChange {
                from: t.from,
                to: t.to,
                conservative: t.conservative,
                switch: t.switch,
                detail: t.detail,
            },
        });
        self.sync();
        self.actions.push(RiskAction::Alert {
            switch: t.switch,
            state: t.to,
            conservative: t.conservative,
            detail: t.detail,
        });
        let entering = t.from != t.to;
        match t.to {
            RiskState::Halted if entering => {
                // Cancel everything, flatten everything.
                let mut markets: Vec<(Venue, Symbol)> =
                    self.open.values().map(|o| (o.venue, o.symbol)).collect();
                markets.extend(self.ledger.positions().map(|(k, _)| k));
                markets.sort_by(|a, b| (a.0 as u8, a.1.as_str()).cmp(&(b.0 as u8, b.1.as_str())));
                markets.dedup();
                for (venue, symbol) in markets {
                    self.actions.push(RiskAction::CancelAll { venue, symbol });
                    let pos = self.ledger.position(venue, symbol);
                    if pos.raw() != 0 {
                        self.actions.push(reduce(
                            venue,
                            symbol,
                            pos,
                            pos.raw().unsigned_abs() as i64,
                        ));
                    }
                }
            }
            RiskState::Reducing if entering => {
                // Cut every position by (1 − vol_cut_factor), rounded down to the lot step.
                let keep = self.cfg.vol_cut_factor.raw() as i128;
                let positions: Vec<((Venue, Symbol), Qty)> =
                    self.ledger.positions().map(|(k, p)| (k, p.size)).collect();
                for ((venue, symbol), pos) in positions {
                    let abs = pos.raw().unsigned_abs() as i128;
                    let cut = abs - abs * keep / qalpha_engine::FIXED_SCALE as i128;
                    let step = self
                        .markets
                        .get(&(venue, symbol))
                        .map_or(1, |m| m.step.raw().max(1)) as i128;
                    let cut = cut / step * step;
                    if cut > 0 {
                        self.actions.push(reduce(venue, symbol, pos, cut as i64));
                    }
                }
            }
            _ => {}
        }
    }

    fn journal_event(&mut self, e: RiskEvent) {
        if let Some(j) = self.journal.as_mut() {
            match j.append(&e) {
                Ok(()) => self.stats.risk_events += 1,
                Err(err) => {
                    self.stats.journal_errors += 1;
                    tracing::error!("risk journal: {err}");
                }
            }
        }
    }
}

/// A reduce-only order against `position` of `qty_raw` (10⁻⁸ units).
fn reduce(venue: Venue, symbol: Symbol, position: Qty, qty_raw: i64) -> RiskAction {
    RiskAction::Reduce {
        venue,
        symbol,
        side: if position.raw() > 0 {
            Side::Sell
        } else {
            Side::Buy
        },
        qty: Qty(qty_raw),
    }
}
