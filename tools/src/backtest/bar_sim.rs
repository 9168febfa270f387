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

/// What a bar backtest needs besides the bars and the strategy.
#[derive(Clone, Debug)]
pub struct BarSimConfig {
    pub venue: Venue,
    pub symbol: Symbol,
    pub fees: FeeSchedule,
    pub risk: RiskConfig,
    /// Funding events `(time ms, rate 10⁻⁸)`, in time order (Binance `fundingRate` files).
    pub funding: Vec<(u64, Qty)>,
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
    /// What the strategy itself counted (the Trinity: bars, inference runs, last decision).
    pub strategy_summary: std::collections::BTreeMap<String, String>,
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

/// Runs `strategy` over `bars` (time order, one symbol). See the module docs.
pub fn run(
    bars: &[Bar],
    strategy: &mut dyn BarStrategy,
    cfg: &BarSimConfig,
) -> Result<BarSimOutput> {
    run_with_initial(bars, strategy, cfg, None)
}

/// As [`run`], with `initial` executed at the first bar's open (a position held from the start:
/// the buy & hold baseline).
pub fn run_with_initial(
    bars: &[Bar],
    strategy: &mut dyn BarStrategy,
    cfg: &BarSimConfig,
    initial: Option<Intent>,
) -> Result<BarSimOutput> {
    let Some(first) = bars.first() else {
        bail!("no bars to backtest");
    };
    let interval_ms = bars
        .windows(2)
        .map(|w| w[1].open_time_ms.saturating_sub(w[0].open_time_ms))
        .filter(|d| *d > 0)
        .min()
        .unwrap_or(60_000);
    if let Some(w) = bars
        .windows(2)
        .find(|w| w[1].open_time_ms <= w[0].open_time_ms)
    {
        bail!(
            "bars out of order at open_time {} after {}",
            w[1].open_time_ms,
            w[0].open_time_ms
        );
    }
    let start_ns = first.open_time_ms * 1_000_000;
    let risk = RiskEngine::new(cfg.risk.clone(), None, start_ns)?;
    let equity = Money::from_qty(cfg.risk.initial_equity);
    let mut sim = Sim {
        cfg,
        account: Account::new(cfg.venue, cfg.symbol, equity),
        risk,
        actions: Vec::new(),
        risk_events: Vec::new(),
        ids: ClientIdGen::new(first.open_time_ms),
        next_funding: 0,
        pending_reduce: None,
    };
    sim.account.sample(first.open_time_ms);
    let mut pending: Option<Intent> = initial;
    for b in bars {
        let open = price(b.open)?;
        let t_open = b.open_time_ms;
        sim.market(t_open, open);
        sim.pay_funding(t_open, open);
        if let Some((side, qty)) = sim.pending_reduce.take() {
            sim.order(t_open, side, qty, open, true);
        }
        if let Some(intent) = pending.take() {
            sim.execute(intent, t_open, open)?;
        }
        let close = price(b.close)?;
        let t_close = t_open + interval_ms;
        sim.market(t_close, close);
        sim.account.sample(t_close);
        pending = strategy.on_bar(b);
    }
    let last = bars[bars.len() - 1];
    let t_end = last.open_time_ms + interval_ms;
    if let Some(intent) = strategy.on_end() {
        sim.execute(intent, t_end, price(last.close)?)?;
    }
    sim.account.sample(t_end);
    Ok(BarSimOutput {
        strategy_summary: strategy
            .summary()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        account: sim.account,
        risk: sim.risk,
        risk_events: sim.risk_events,
        interval_ms,
        first_ms: first.open_time_ms,
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
    next_funding: usize,
    /// A reduction risk asked for, executed at the next open.
    pending_reduce: Option<(Side, Qty)>,
}

impl Sim<'_> {
    /// The market at `t_ms` is `px` (touch, mark): risk and the account see it.
    fn market(&mut self, t_ms: u64, px: Price) {
        let ev = MarketEvent {
            venue: self.cfg.venue,
            symbol: self.cfg.symbol,
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
        self.account.mark(px);
        self.drain_risk(t_ms);
    }

    fn pay_funding(&mut self, t_ms: u64, px: Price) {
        while let Some(&(at, rate)) = self.cfg.funding.get(self.next_funding) {
            if at > t_ms {
                break;
            }
            self.account.funding(rate, px);
            self.next_funding += 1;
        }
    }

    fn drain_risk(&mut self, t_ms: u64) {
        self.risk.take_actions(&mut self.actions);
        for a in self.actions.drain(..) {
            match a {
                RiskAction::Reduce { side, qty, .. } => self.pending_reduce = Some((side, qty)),
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

    fn execute(&mut self, intent: Intent, t_ms: u64, px: Price) -> Result<()> {
        let Intent::Target { qty: target, .. } = intent else {
            bail!("a bar strategy asked for quotes; bar backtests fill only targets");
        };
        let delta = target.raw() - self.account.position().raw();
        if delta != 0 {
            let side = if delta > 0 { Side::Buy } else { Side::Sell };
            let reduce_only = target.raw() == 0;
            self.order(t_ms, side, Qty(delta.abs()), px, reduce_only);
        }
        Ok(())
    }

    /// A market order filled at `px` if risk lets it out.
    fn order(&mut self, t_ms: u64, side: Side, qty: Qty, px: Price, reduce_only: bool) {
        let now_ns = t_ms * 1_000_000;
        let o = NewOrder {
            venue: self.cfg.venue,
            symbol: self.cfg.symbol,
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
        self.account.fill(t_ms, side, px, qty, fee);
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
