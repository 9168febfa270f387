//! Paper trading: a local venue that fills the strategy's orders with the one fill model
//! ([`crate::fill::FillModel`], the same code the mock exchange and backtests use) against the market
//! the engine is watching — live venues or the mock — and never sends an order anywhere.
//!
//! It sees what the strategy sees: the engine's [`MarketEvent`]s. The book it matches against is
//! therefore the **top of book** each event carries (`BookTop`, or the venue's own `Quote`) — the
//! 128-byte events do not carry deeper levels — and the **trade prints**, which fill resting orders
//! through the model's queue logic (an order joins behind the displayed size at its price; the queue
//! advances on prints and size decreases). A marketable order takes at most the displayed top-level
//! size; the rest of an IOC expires, the rest of a GTC rests. While a symbol's book is stale
//! (`BookStale` until `BookSynced`) new orders are refused (reason −1, as the gateway does when halted),
//! so paper and live agree that nothing trades on a book the engine does not trust.
//!
//! [`PaperVenue::run`] is the gateway-thread loop: commands from the strategy's ring, a copy of the
//! market events on a second ring, reports back — the same shape as the venue gateway, so the
//! strategy cannot tell them apart.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};

use hdrhistogram::Histogram;
use qalpha_engine::book_view::{BookLevel, BookView};
use qalpha_engine::clock::now_ns;
use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook};
use qalpha_engine::order::{ExecKind, ExecReport, OrderAction, OrderCommand};
use qalpha_engine::ring::{Consumer, Producer};
use qalpha_engine::runtime::WaitMode;
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};

use crate::fill::{FeeSchedule, FillModel, RiskAverse};
use crate::gateway::tracker::blank;

/// A one-level book: the top of book of the last event.
#[derive(Clone, Copy, Debug, Default)]
struct Top(Option<TopOfBook>);

impl Top {
    fn level(&self, side: Side) -> Option<BookLevel> {
        let t = self.0?;
        let (px, qty) = match side {
            Side::Buy => (t.bid_px, t.bid_qty),
            Side::Sell => (t.ask_px, t.ask_qty),
        };
        (qty.raw() > 0).then_some(BookLevel { px, qty })
    }
}

impl BookView for Top {
    fn best(&self, side: Side) -> Option<BookLevel> {
        self.level(side)
    }

    fn qty_at(&self, side: Side, px: Price) -> Qty {
        self.level(side)
            .filter(|l| l.px == px)
            .map_or(Qty::ZERO, |l| l.qty)
    }

    fn levels(&self, side: Side) -> impl Iterator<Item = BookLevel> + '_ {
        self.level(side).into_iter()
    }
}

/// One symbol's simulated venue.
struct Market {
    model: FillModel<RiskAverse>,
    top: Top,
    stale: bool,
}

/// What the paper venue counted.
#[derive(Clone, Debug)]
pub struct PaperStats {
    pub orders: u64,
    pub cancels: u64,
    pub amends: u64,
    pub fills: u64,
    pub rejects: u64,
    /// New orders refused because the book was stale or absent.
    pub refused_no_book: u64,
    /// New orders refused because their client id was used before.
    pub duplicate_orders: u64,
    pub events: u64,
    /// Tick `recv_ns` → the new order reached the paper venue, ns.
    pub tick_to_order: Histogram<u64>,
}

impl Default for PaperStats {
    fn default() -> Self {
        Self {
            orders: 0,
            cancels: 0,
            amends: 0,
            fills: 0,
            rejects: 0,
            refused_no_book: 0,
            duplicate_orders: 0,
            events: 0,
            tick_to_order: crate::gateway::session::latency_histogram(),
        }
    }
}

/// The paper venue (one venue, any number of symbols).
pub struct PaperVenue {
    venue: Venue,
    fees: FeeSchedule,
    markets: HashMap<Symbol, Market>,
    used: HashSet<qalpha_engine::order::ClientOrderId>,
    pub stats: PaperStats,
}

impl PaperVenue {
    pub fn new(venue: Venue, fees: FeeSchedule) -> Self {
        Self {
            venue,
            fees,
            markets: HashMap::new(),
            used: HashSet::new(),
            stats: PaperStats::default(),
        }
    }

    fn market(&mut self, symbol: Symbol) -> &mut Market {
        let (venue, fees) = (self.venue, self.fees);
        self.markets.entry(symbol).or_insert_with(|| Market {
            model: FillModel::new(venue, symbol, fees, RiskAverse),
            top: Top::default(),
            stale: true,
        })
    }

    /// The market of `symbol` and the counters, borrowed together.
    fn market_and_stats(&mut self, symbol: Symbol) -> (&mut Market, &mut PaperStats) {
        let (venue, fees) = (self.venue, self.fees);
        let m = self.markets.entry(symbol).or_insert_with(|| Market {
            model: FillModel::new(venue, symbol, fees, RiskAverse),
            top: Top::default(),
            stale: true,
        });
        (m, &mut self.stats)
    }

    /// The symbol's simulated position (+ long).
    pub fn position(&self, symbol: Symbol) -> Qty {
        self.markets
            .get(&symbol)
            .map_or(Qty::ZERO, |m| m.model.position())
    }

    /// A market event: moves the book the orders are matched against, and fills resting orders on
    /// trade prints.
    pub fn on_market(&mut self, ev: &MarketEvent, out: &mut Vec<ExecReport>) {
        if ev.venue != self.venue {
            return;
        }
        self.stats.events += 1;
        let (m, stats) = self.market_and_stats(ev.symbol);
        match ev.payload {
            MarketPayload::BookTop(t) | MarketPayload::Quote(t) => {
                if let Some(old) = m.top.0 {
                    // Levels that left the top are gone from our one-level view.
                    if old.bid_px != t.bid_px {
                        m.model.on_book_level(Side::Buy, old.bid_px, Qty::ZERO);
                    }
                    if old.ask_px != t.ask_px {
                        m.model.on_book_level(Side::Sell, old.ask_px, Qty::ZERO);
                    }
                }
                m.model.on_book_level(Side::Buy, t.bid_px, t.bid_qty);
                m.model.on_book_level(Side::Sell, t.ask_px, t.ask_qty);
                m.top = Top(Some(t));
                if matches!(ev.payload, MarketPayload::BookTop(_)) {
                    m.stale = false;
                }
            }
            MarketPayload::Trade(tr) => {
                let reports = m.model.on_trade(tr.px, tr.qty, tr.aggressor, ev.recv_ns);
                count(stats, reports);
                out.extend_from_slice(reports);
            }
            MarketPayload::BookStale { .. } => m.stale = true,
            MarketPayload::BookSynced { .. } => m.stale = false,
            _ => {}
        }
    }

    /// One command from the strategy.
    pub fn submit(&mut self, cmd: &OrderCommand, out: &mut Vec<ExecReport>) {
        let now = now_ns();
        match cmd.action {
            OrderAction::New(o) => {
                self.stats.orders += 1;
                self.stats
                    .tick_to_order
                    .saturating_record(now.saturating_sub(cmd.tick_recv_ns).max(1));
                if !self.used.insert(o.client_id) {
                    self.stats.duplicate_orders += 1;
                    self.stats.rejects += 1;
                    out.push(ExecReport {
                        reason: crate::fill::RejectReason::DuplicateClientId.code(o.venue),
                        ..blank(&o, ExecKind::Rejected)
                    });
                    return;
                }
                let (m, stats) = self.market_and_stats(o.symbol);
                if m.stale || m.top.0.is_none() {
                    stats.refused_no_book += 1;
                    stats.rejects += 1;
                    out.push(ExecReport {
                        reason: -1,
                        ..blank(&o, ExecKind::Rejected)
                    });
                    return;
                }
                let top = m.top;
                let reports = m.model.submit(o, &top, now);
                count(stats, reports);
                out.extend_from_slice(reports);
            }
            OrderAction::Cancel { client_id } => {
                self.stats.cancels += 1;
                let venue = self.venue;
                let m = self.market(cmd.symbol);
                match m.model.cancel(client_id, now) {
                    Ok(r) => out.extend_from_slice(r),
                    Err(reason) => {
                        // Already final (filled meanwhile): nothing to report but the refusal code.
                        tracing::debug!("paper cancel of {client_id}: {}", reason.code(venue));
                    }
                }
            }
            OrderAction::Amend {
                client_id,
                price,
                qty,
            } => {
                self.stats.amends += 1;
                let m = self.market(cmd.symbol);
                let top = m.top;
                if let Ok(r) = m.model.amend(client_id, price, qty, &top, now) {
                    out.extend_from_slice(r);
                }
            }
            OrderAction::CancelAll => {
                let m = self.market(cmd.symbol);
                out.extend_from_slice(m.model.cancel_all(now));
            }
        }
    }

    /// The gateway-thread loop: until the command ring is closed and empty (or `stop`).
    pub fn run(
        mut self,
        cmds: &mut Consumer<OrderCommand>,
        market: &mut Consumer<MarketEvent>,
        reports: &mut Producer<ExecReport>,
        wait: WaitMode,
        stop: &AtomicBool,
    ) -> PaperStats {
        let mut out = Vec::with_capacity(16);
        let mut spins = 0u32;
        loop {
            let mut busy = false;
            // Market first: an order decided on a tick reaches the venue after that tick.
            while let Ok(ev) = market.pop() {
                busy = true;
                self.on_market(&ev, &mut out);
            }
            while let Ok(cmd) = cmds.pop() {
                busy = true;
                self.submit(&cmd, &mut out);
            }
            for r in out.drain(..) {
                reports.push(r);
            }
            if cmds.is_abandoned() || stop.load(Ordering::Relaxed) {
                break;
            }
            if busy {
                spins = 0;
            } else {
                wait.idle(&mut spins);
            }
        }
        self.stats
    }
}

fn count(stats: &mut PaperStats, reports: &[ExecReport]) {
    for r in reports {
        match r.kind {
            ExecKind::Fill | ExecKind::PartialFill => stats.fills += 1,
            ExecKind::Rejected => stats.rejects += 1,
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use qalpha_engine::event::{Trade, TradeKind};
    use qalpha_engine::order::{ClientOrderId, NewOrder, OrderType, TimeInForce};

    fn sym() -> Symbol {
        Symbol::parse("BTCUSDT").unwrap()
    }

    fn ev(payload: MarketPayload) -> MarketEvent {
        MarketEvent {
            venue: Venue::BinanceUsdm,
            symbol: sym(),
            recv_ns: 1,
            decoded_ns: 1,
            exch_ms: 1,
            payload,
        }
    }

    fn top(bid: &str, bq: &str, ask: &str, aq: &str) -> MarketEvent {
        ev(MarketPayload::BookTop(TopOfBook {
            update_id: 1,
            bid_px: Price::parse(bid).unwrap(),
            bid_qty: Qty::parse(bq).unwrap(),
            ask_px: Price::parse(ask).unwrap(),
            ask_qty: Qty::parse(aq).unwrap(),
        }))
    }

    fn trade(px: &str, qty: &str, aggressor: Side) -> MarketEvent {
        ev(MarketPayload::Trade(Trade {
            trade_id: 1,
            last_trade_id: 1,
            px: Price::parse(px).unwrap(),
            qty: Qty::parse(qty).unwrap(),
            aggressor,
            kind: TradeKind::Market,
            trade_time_ms: 1,
        }))
    }

    fn new(id: &str, side: Side, px: &str, qty: &str, tif: TimeInForce) -> OrderCommand {
        let o = NewOrder {
            venue: Venue::BinanceUsdm,
            symbol: sym(),
            client_id: ClientOrderId::parse(id).unwrap(),
            side,
            order_type: OrderType::Limit,
            tif,
            price: Price::parse(px).unwrap(),
            qty: Qty::parse(qty).unwrap(),
            reduce_only: false,
        };
        OrderCommand {
            venue: o.venue,
            symbol: o.symbol,
            tick_recv_ns: 1,
            decided_ns: 1,
            action: OrderAction::New(o),
        }
    }

    fn kinds(out: &[ExecReport]) -> Vec<ExecKind> {
        out.iter().map(|r| r.kind).collect()
    }

    #[test]
    fn nothing_trades_without_a_synced_book() {
        let mut p = PaperVenue::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        let mut out = Vec::new();
        p.submit(&new("a", Side::Buy, "100", "1", TimeInForce::Gtc), &mut out);
        assert_eq!(kinds(&out), vec![ExecKind::Rejected]);
        p.on_market(&top("100", "5", "101", "5"), &mut out);
        p.on_market(
            &ev(MarketPayload::BookStale {
                reason: qalpha_engine::event::StaleReason::SequenceGap,
                last_update_id: 1,
            }),
            &mut out,
        );
        out.clear();
        p.submit(&new("b", Side::Buy, "100", "1", TimeInForce::Gtc), &mut out);
        assert_eq!(kinds(&out), vec![ExecKind::Rejected]);
        assert_eq!(p.stats.refused_no_book, 2);
    }

    #[test]
    fn a_resting_bid_fills_after_the_queue_ahead_trades_away() {
        let mut p = PaperVenue::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        let mut out = Vec::new();
        p.on_market(&top("100", "2", "101", "5"), &mut out);
        p.submit(
            &new("a", Side::Buy, "100", "1", TimeInForce::PostOnly),
            &mut out,
        );
        assert_eq!(kinds(&out), vec![ExecKind::Ack]);
        out.clear();
        // 2 ahead of us: a 2-lot sell print clears the queue, the next one fills us.
        p.on_market(&trade("100", "2", Side::Sell), &mut out);
        assert!(out.is_empty(), "{out:?}");
        p.on_market(&trade("100", "3", Side::Sell), &mut out);
        assert_eq!(kinds(&out), vec![ExecKind::Fill]);
        assert!(out[0].is_maker && out[0].fee.raw() > 0);
        assert_eq!(p.position(sym()), Qty::parse("1").unwrap());
    }

    #[test]
    fn a_marketable_order_takes_only_the_displayed_top_and_duplicates_are_refused() {
        let mut p = PaperVenue::new(Venue::BinanceUsdm, FeeSchedule::BINANCE_USDM_REGULAR);
        let mut out = Vec::new();
        p.on_market(&top("100", "2", "101", "0.5"), &mut out);
        p.submit(&new("t", Side::Buy, "102", "2", TimeInForce::Ioc), &mut out);
        assert_eq!(
            kinds(&out),
            vec![ExecKind::Ack, ExecKind::PartialFill, ExecKind::Expired]
        );
        assert_eq!(out[1].last_qty, Qty::parse("0.5").unwrap());
        assert!(!out[1].is_maker);
        out.clear();
        p.submit(&new("t", Side::Buy, "102", "2", TimeInForce::Ioc), &mut out);
        assert_eq!(kinds(&out), vec![ExecKind::Rejected]);
        assert_eq!(p.stats.duplicate_orders, 1);
    }
}
