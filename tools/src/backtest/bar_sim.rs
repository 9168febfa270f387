//! Bar-mode backtests: a [`BarStrategy`] on klines, orders filled at the **next bar's open** (the
//! decision on bar `t` is made after it closed; nothing it could not have seen moves it), through
//! the risk engine like every live order.
//!
//! Per bar `t`:
//! 1. at its open: risk sees the open as the touch and mark; funding due since the last bar is paid
//!    at the open; then the intent decided on bar `t − 1` and any risk-requested reduction are
//!    executed as market orders at the open (taker fee), each through `RiskEngine::check` first — a
//!    refused order is logged, not filled;
//! 2. at its close: the position is marked at the close, the equity sampled at the close time
//!    (`open_time + interval`), and the strategy decides on the closed bar;
//! 3. after the last bar, `on_end`'s intent is executed at the last close.
//!
//! Only `Intent::Target` exists in bar mode (a bar strategy does not quote); a quote is an error.

use std::collections::BTreeMap;

use anyhow::{bail, Result};
use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook};
use qalpha_engine::order::{
    ClientIdGen, ExecKind, ExecReport, NewOrder, OrderAction, OrderCommand, OrderType, TimeInForce,
};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use qalpha_risk::engine::{RiskAction, RiskEngine};
use qalpha_risk::{Money, RiskConfig};
use qalpha_strategy::bars::Bar;
use qalpha_strategy::baselines::{BarStrategy, Intent};
use qalpha_venues::fill::FeeSchedule;
use serde::Serialize;

use super::account::{Account, OrderRecord};

/// What a bar backtest needs besides the bars and the strategies.
#[derive(Clone, Debug)]
pub struct BarSimConfig {
    pub venue: Venue,
    pub fees: FeeSchedule,
    pub risk: RiskConfig,
}

/// One symbol of a run: its bars, its strategy instance and its funding.
pub struct Leg<'a> {
    pub symbol: Symbol,
    /// Time order, one interval.
    pub bars: &'a [Bar],
    pub strategy: &'a mut dyn BarStrategy,
    /// Executed at the first bar's open (a position held from the start: buy & hold).
    pub initial: Option<Intent>,
    /// Funding events `(time ms, rate 10⁻⁸)`, in time order (Binance `fundingRate` files), paid at
    /// the open of the first bar at or after each.
    pub funding: &'a [(u64, Qty)],
}

/// A risk alert during the run (kill switch, reducing, conservative).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RiskEventRecord {
    pub ts_ns: u64,
    pub switch: &'static str,
    pub state: &'static str,
    pub conservative: bool,
    pub detail: i64,
}

/// Everything a bar backtest produced.
pub struct BarSimOutput {
    /// What the strategy itself counted (the Trinity: bars, inference runs, last decision); keys
    /// prefixed `SYMBOL.` when several symbols ran.
    pub strategy_summary: BTreeMap<String, String>,
    /// The legs' symbols, in leg order.
    pub symbols: Vec<Symbol>,
    pub account: Account,
    pub risk: RiskEngine,
    pub risk_events: Vec<RiskEventRecord>,
    pub interval_ms: u64,
    pub first_ms: u64,
    pub last_ms: u64,
}

/// Converts a kline price (≤ 8 decimals) to the engine's fixed point.
fn price(x: f64) -> Result<Price> {
    let raw = (x * 1e8).round();
    if !raw.is_finite() || raw <= 0.0 || raw >= i64::MAX as f64 {
        bail!("kline price {x} is not a positive price");
    }
    Ok(Price(raw as i64))
}

/// Runs `strategy` over `bars` of one symbol. See the module docs.
pub fn run(
    symbol: Symbol,
    bars: &[Bar],
    strategy: &mut dyn BarStrategy,
    cfg: &BarSimConfig,
) -> Result<BarSimOutput> {
    run_legs(
        &mut [Leg {
            symbol,
            bars,
            strategy,
            initial: None,
            funding: &[],
        }],
        cfg,
    )
}

/// The bar interval of `bars` (their smallest positive step), after checking their order.
fn interval_of(symbol: Symbol, bars: &[Bar]) -> Result<u64> {
    if let Some(w) = bars
        .windows(2)
        .find(|w| w[1].open_time_ms <= w[0].open_time_ms)
    {
        bail!(
            "{symbol}: bars out of order at open_time {} after {}",
            w[1].open_time_ms,
            w[0].open_time_ms
        );
    }
    Ok(bars
        .windows(2)
        .map(|w| w[1].open_time_ms - w[0].open_time_ms)
        .min()
        .unwrap_or(60_000))
}

/// Runs every leg on one account and one risk engine (a portfolio: one equity, risk's limits across
/// symbols). Bars of all legs are taken in time order; at each open time the legs with a bar there
/// run step 1 of the module docs, then all of them step 2 (one equity sample for the portfolio).
/// The legs must share the bar interval.
pub fn run_legs(legs: &mut [Leg<'_>], cfg: &BarSimConfig) -> Result<BarSimOutput> {
    if legs.is_empty() || legs.iter().any(|l| l.bars.is_empty()) {
        bail!("no bars to backtest");
    }
    let mut interval_ms = 0;
    for l in legs.iter() {
        let i = interval_of(l.symbol, l.bars)?;
        if interval_ms != 0 && legs.len() > 1 && i != interval_ms {
            bail!(
                "{}: {} ms bars, but {} has {} ms bars; a portfolio backtest needs one interval",
                l.symbol,
                i,
                legs[0].symbol,
                interval_ms
            );
        }
        interval_ms = i;
    }
    let first_ms = legs
        .iter()
        .map(|l| l.bars[0].open_time_ms)
        .min()
        .unwrap_or(0);
    let start_ns = first_ms * 1_000_000;
    let risk = RiskEngine::new(cfg.risk.clone(), None, start_ns)?;
    let equity = Money::from_qty(cfg.risk.initial_equity);
    let mut sim = Sim {
        cfg,
        account: Account::new(cfg.venue, equity),
        risk,
        actions: Vec::new(),
        risk_events: Vec::new(),
        ids: ClientIdGen::new(first_ms),
        pending_reduce: BTreeMap::new(),
    };
    sim.account.sample(first_ms);
    let n = legs.len();
    let mut cursor = vec![0usize; n];
    let mut next_funding = vec![0usize; n];
    let mut pending: Vec<Option<Intent>> = legs.iter_mut().map(|l| l.initial.take()).collect();
    let mut due = Vec::with_capacity(n);
    while let Some(t_open) = (0..n)
        .filter_map(|i| legs[i].bars.get(cursor[i]).map(|b| b.open_time_ms))
        .min()
    {
        due.clear();
        due.extend((0..n).filter(|&i| {
            legs[i]
                .bars
                .get(cursor[i])
                .is_some_and(|b| b.open_time_ms == t_open)
        }));
        for &i in &due {
            let (symbol, b) = (legs[i].symbol, legs[i].bars[cursor[i]]);
            let open = price(b.open)?;
            sim.market(symbol, t_open, open);
            while let Some(&(at, rate)) = legs[i].funding.get(next_funding[i]) {
                if at > t_open {
                    break;
                }
                sim.account.funding(symbol, rate, open);
                next_funding[i] += 1;
            }
            if let Some((side, qty)) = sim.pending_reduce.remove(&symbol) {
                sim.order(symbol, t_open, side, qty, open, true);
            }
            if let Some(intent) = pending[i].take() {
                sim.execute(symbol, intent, t_open, open)?;
            }
        }
        let t_close = t_open + interval_ms;
        for &i in &due {
            let b = legs[i].bars[cursor[i]];
            sim.market(legs[i].symbol, t_close, price(b.close)?);
        }
        sim.account.sample(t_close);
        for &i in &due {
            let b = legs[i].bars[cursor[i]];
            pending[i] = legs[i].strategy.on_bar(&b);
            cursor[i] += 1;
        }
    }
    let mut t_end = 0;
    for l in legs.iter_mut() {
        let last = l.bars[l.bars.len() - 1];
        let t = last.open_time_ms + interval_ms;
        t_end = t_end.max(t);
        if let Some(intent) = l.strategy.on_end() {
            sim.execute(l.symbol, intent, t, price(last.close)?)?;
        }
    }
    sim.account.sample(t_end);
    let mut strategy_summary = BTreeMap::new();
    for l in legs.iter() {
        for (k, v) in l.strategy.summary() {
            let key = if n == 1 {
                k.to_string()
            } else {
                format!("{}.{k}", l.symbol)
            };
            strategy_summary.insert(key, v);
        }
    }
    Ok(BarSimOutput {
        strategy_summary,
        symbols: legs.iter().map(|l| l.symbol).collect(),
        account: sim.account,
        risk: sim.risk,
        risk_events: sim.risk_events,
        interval_ms,
        first_ms,
        last_ms: t_end,
    })
}

struct Sim<'a> {
    cfg: &'a BarSimConfig,
    account: Account,
    risk: RiskEngine,
    actions: Vec<RiskAction>,
    risk_events: Vec<RiskEventRecord>,
    ids: ClientIdGen,
    /// Reductions risk asked for, executed at the symbol's next open.
    pending_reduce: BTreeMap<Symbol, (Side, Qty)>,
}

impl Sim<'_> {
    /// The market at `t_ms` is `px` (touch, mark): risk and the account see it.
    fn market(&mut self, symbol: Symbol, t_ms: u64, px: Price) {
        let ev = MarketEvent {
            venue: self.cfg.venue,
            symbol,
            recv_ns: t_ms * 1_000_000,
            decoded_ns: t_ms * 1_000_000,
            exch_ms: t_ms,
            payload: MarketPayload::BookTop(TopOfBook {
                update_id: 0,
                bid_px: px,
                bid_qty: Qty(1),
                ask_px: px,
                ask_qty: Qty(1),
            }),
        };
        self.risk.on_market(&ev);
        self.account.mark(symbol, px);
        self.drain_risk(t_ms);
    }

    fn drain_risk(&mut self, t_ms: u64) {
        self.risk.take_actions(&mut self.actions);
        for a in self.actions.drain(..) {
            match a {
                RiskAction::Reduce {
                    symbol, side, qty, ..
                } => {
                    self.pending_reduce.insert(symbol, (side, qty));
                }
                RiskAction::Alert {
                    switch,
                    state,
                    conservative,
                    detail,
                } => self.risk_events.push(RiskEventRecord {
                    ts_ns: t_ms * 1_000_000,
                    switch: switch.name(),
                    state: state.name(),
                    conservative,
                    detail,
                }),
                // Market orders never rest: nothing to cancel.
                RiskAction::CancelAll { .. } => {}
            }
        }
    }

    fn execute(&mut self, symbol: Symbol, intent: Intent, t_ms: u64, px: Price) -> Result<()> {
        let Intent::Target { qty: target, .. } = intent else {
            bail!("a bar strategy asked for quotes; bar backtests fill only targets");
        };
        let delta = target.raw() - self.account.position(symbol).raw();
        if delta != 0 {
            let side = if delta > 0 { Side::Buy } else { Side::Sell };
            let reduce_only = target.raw() == 0;
            self.order(symbol, t_ms, side, Qty(delta.abs()), px, reduce_only);
        }
        Ok(())
    }

    /// A market order filled at `px` if risk lets it out.
    fn order(
        &mut self,
        symbol: Symbol,
        t_ms: u64,
        side: Side,
        qty: Qty,
        px: Price,
        reduce_only: bool,
    ) {
        let now_ns = t_ms * 1_000_000;
        let o = NewOrder {
            venue: self.cfg.venue,
            symbol,
            client_id: self.ids.next_id(),
            side,
            order_type: OrderType::Market,
            tif: TimeInForce::Ioc,
            price: Price::ZERO,
            qty,
            reduce_only,
        };
        let cmd = OrderCommand {
            venue: o.venue,
            symbol: o.symbol,
            tick_recv_ns: now_ns,
            decided_ns: now_ns,
            action: OrderAction::New(o),
        };
        let verdict = self.risk.check(&cmd, None, now_ns);
        self.account.orders.push(OrderRecord {
            ts_ns: now_ns,
            symbol,
            side,
            qty,
            price: px,
            reduce_only,
            rejected: verdict.err().map(|r| r.name()),
        });
        if verdict.is_err() {
            return;
        }
        let fee = self.cfg.fees.fee(px, qty, false);
        self.account.fill(symbol, t_ms, side, px, qty, fee);
        let rep = ExecReport {
            last_px: px,
            last_qty: qty,
            cum_qty: qty,
            fee,
            recv_ns: now_ns,
            ..ExecReport::about(&o, ExecKind::Fill)
        };
        self.risk.on_report(&rep, now_ns);
        self.drain_risk(t_ms);
    }
}
