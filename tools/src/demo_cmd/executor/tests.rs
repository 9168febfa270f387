//! The executor's rules with synthetic market events and reports: what goes on the order ring
//! after each step.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use qalpha_engine::event::{StaleReason, Trade, TradeKind};
use qalpha_engine::order::{OrderAction, OrderCommand, OrderType, TimeInForce};
use qalpha_engine::ring::{ring, Consumer, FullPolicy};
use qalpha_engine::runtime::WaitMode;
use qalpha_risk::RiskConfig;
use qalpha_strategy::bars::TimeBars;
use qalpha_strategy::baselines::{bar_strategy, TickStrategy};

use super::*;

/// A tick strategy whose models disagree by the shared value (per mille), read after each event.
struct Disagreeing(Arc<AtomicI64>);

impl TickStrategy for Disagreeing {
    fn name(&self) -> &'static str {
        "disagreeing"
    }
    fn on_event(&mut self, _: &MarketEvent) -> Option<Intent> {
        None
    }
    fn disagreement(&self) -> Option<f64> {
        Some(self.0.load(Ordering::Relaxed) as f64 / 1000.0)
    }
}

/// A tick strategy that decides nothing (intents are applied by hand) and sums its fills.
struct Silent(Arc<AtomicI64>);

impl TickStrategy for Silent {
    fn name(&self) -> &'static str {
        "silent"
    }
    fn on_event(&mut self, _: &MarketEvent) -> Option<Intent> {
        None
    }
    fn on_fill(&mut self, side: Side, qty: Qty) {
        let q = match side {
            Side::Buy => qty.raw(),
            Side::Sell => -qty.raw(),
        };
        self.0.fetch_add(q, Ordering::Relaxed);
    }
}

fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}

fn px(s: &str) -> Price {
    Price::parse(s).unwrap()
}

fn btc() -> Market {
    Market {
        venue: Venue::BinanceUsdm,
        symbol: Symbol::parse("BTCUSDT").unwrap(),
    }
}

fn event(payload: MarketPayload) -> MarketEvent {
    MarketEvent {
        venue: Venue::BinanceUsdm,
        symbol: Symbol::parse("BTCUSDT").unwrap(),
        recv_ns: 1,
        decoded_ns: 1,
        exch_ms: 1,
        payload,
    }
}

fn book(bid: &str, ask: &str) -> MarketEvent {
    event(MarketPayload::BookTop(TopOfBook {
        update_id: 1,
        bid_px: px(bid),
        bid_qty: q("1"),
        ask_px: px(ask),
        ask_qty: q("1"),
    }))
}

/// What the executor sent since the last call, in a form tables can spell.
#[derive(Clone, Debug, PartialEq)]
enum Sent {
    New(Side, OrderType, TimeInForce, Price, Qty),
    Cancel(ClientOrderId),
    CancelAll,
}

struct Rig {
    ex: Executor,
    tx: Producer<OrderCommand>,
    rx: Consumer<OrderCommand>,
    /// Every new order sent, by client id.
    sent: HashMap<ClientOrderId, NewOrder>,
    /// The last new order sent.
    last: Option<ClientOrderId>,
    fills: Arc<AtomicI64>,
}

impl Rig {
    fn new() -> Self {
        let fills = Arc::new(AtomicI64::new(0));
        let ex = Executor::new(btc(), Decider::Tick(Box::new(Silent(fills.clone()))));
        Self::with(ex, fills)
    }

    fn with(ex: Executor, fills: Arc<AtomicI64>) -> Self {
        let (tx, rx) = ring(64, FullPolicy::Backpressure, WaitMode::Yield);
        Self {
            ex,
            tx,
            rx,
            sent: HashMap::new(),
            last: None,
            fills,
        }
    }

    /// In sync at 100 / 101.
    fn synced() -> Self {
        let mut r = Self::new();
        r.market(event(MarketPayload::BookSynced { update_id: 1 }));
        r.market(book("100", "101"));
        r
    }

    fn market(&mut self, ev: MarketEvent) -> Vec<Sent> {
        self.ex.on_market(&ev, &mut self.tx);
        self.drain()
    }

    /// A new intent, then the executor works it (as on the next book update).
    fn intent(&mut self, i: Intent) -> Vec<Sent> {
        self.ex.apply(i);
        self.ex.work(1, &mut self.tx);
        self.drain()
    }

    fn drain(&mut self) -> Vec<Sent> {
        let mut v = Vec::new();
        while let Ok(c) = self.rx.pop() {
            v.push(match c.action {
                OrderAction::New(o) => {
                    self.sent.insert(o.client_id, o);
                    self.last = Some(o.client_id);
                    Sent::New(o.side, o.order_type, o.tif, o.price, o.qty)
                }
                OrderAction::Cancel { client_id } => Sent::Cancel(client_id),
                OrderAction::CancelAll => Sent::CancelAll,
                OrderAction::Amend { .. } => panic!("the executor never amends"),
            });
        }
        v
    }

    fn last(&self) -> ClientOrderId {
        self.last.expect("an order was sent")
    }

    fn report(&mut self, id: ClientOrderId, kind: ExecKind, last_qty: &str, cum: &str) {
        let o = self.sent[&id];
        let r = ExecReport {
            last_px: o.price,
            last_qty: q(last_qty),
            cum_qty: q(cum),
            leaves_qty: Qty(o.qty.raw() - q(cum).raw()),
            ..ExecReport::about(&o, kind)
        };
        self.ex.on_report(&r);
    }

    fn ack(&mut self, id: ClientOrderId) {
        self.report(id, ExecKind::Ack, "0", "0");
    }
}

fn new(side: Side, ty: OrderType, tif: TimeInForce, p: &str, qty: &str) -> Sent {
    Sent::New(side, ty, tif, px(p), q(qty))
}

fn market(side: Side, qty: &str) -> Sent {
    new(side, OrderType::Market, TimeInForce::Ioc, "0", qty)
}

fn post(side: Side, p: &str, qty: &str) -> Sent {
    new(side, OrderType::Limit, TimeInForce::PostOnly, p, qty)
}

fn target(qty: &str, style: Style) -> Intent {
    Intent::Target { qty: q(qty), style }
}

fn quote(bid: Option<(&str, &str)>, ask: Option<(&str, &str)>) -> Intent {
    Intent::Quote {
        bid: bid.map(|(p, s)| (px(p), q(s))),
        ask: ask.map(|(p, s)| (px(p), q(s))),
    }
}

#[test]
fn a_target_trades_the_difference_with_one_order_in_flight() {
    let mut r = Rig::synced();
    assert_eq!(
        r.intent(target("3", Style::Market)),
        [market(Side::Buy, "3")]
    );
    let buy = r.last();
    // In flight: new books and the same intent again send nothing.
    assert_eq!(r.market(book("100", "101")), []);
    assert_eq!(r.intent(target("3", Style::Market)), []);
    // 1 of 3 filled, the rest expired: the difference (2) goes out on the next book.
    r.report(buy, ExecKind::PartialFill, "1", "1");
    r.report(buy, ExecKind::Expired, "0", "1");
    assert_eq!(r.market(book("100", "101")), [market(Side::Buy, "2")]);
    let buy2 = r.last();
    r.report(buy2, ExecKind::Fill, "2", "2");
    assert_eq!(r.market(book("100", "101")), [], "target reached");
    assert_eq!(r.ex.ledger.position, q("3").raw());
    assert_eq!(
        r.fills.load(Ordering::Relaxed),
        q("3").raw(),
        "fills go back to the strategy"
    );

    // A later target supersedes: long 3 → short 1 is one sell of 4, IOC at the limit.
    let ioc = Style::Ioc { limit: px("99") };
    assert_eq!(
        r.intent(target("-1", ioc)),
        [new(
            Side::Sell,
            OrderType::Limit,
            TimeInForce::Ioc,
            "99",
            "4"
        )]
    );
    let sell = r.last();
    assert_eq!(r.market(book("100", "101")), [], "in flight");
    r.report(sell, ExecKind::Expired, "0", "0");
    assert_eq!(r.market(book("100", "101")), [], "one try per IOC intent");
    // Back to flat at market: sell the 3 held.
    assert_eq!(
        r.intent(target("0", Style::Market)),
        [market(Side::Sell, "3")]
    );
    let flat = r.last();
    // Superseded while in flight: an IOC is never cancelled, and nothing goes out beside it.
    assert_eq!(r.intent(target("-1", ioc)), []);
    r.report(flat, ExecKind::Fill, "3", "3");
    assert_eq!(
        r.market(book("100", "101")),
        [new(
            Side::Sell,
            OrderType::Limit,
            TimeInForce::Ioc,
            "99",
            "1"
        )]
    );
    assert_eq!(r.ex.live_orders(), 1);
}

#[test]
fn a_market_order_that_fills_nothing_pauses_the_target() {
    let mut r = Rig::synced();
    assert_eq!(
        r.intent(target("1", Style::Market)),
        [market(Side::Buy, "1")]
    );
    let id = r.last();
    r.report(id, ExecKind::Expired, "0", "0");
    assert_eq!(r.market(book("100", "101")), [], "paused for a second");
    assert!(!r.ex.settled(), "the target is still open");
}

#[test]
fn quotes_rest_one_a_side_and_are_replaced_after_the_cancel() {
    let mut r = Rig::synced();
    let both = quote(Some(("100", "1")), Some(("101", "1")));
    assert_eq!(
        r.intent(both),
        [post(Side::Buy, "100", "1"), post(Side::Sell, "101", "1")]
    );
    let (bid, ask) = {
        let mut ids: Vec<_> = r.sent.values().map(|o| (o.side, o.client_id)).collect();
        ids.sort_by_key(|(s, _)| *s == Side::Sell);
        (ids[0].1, ids[1].1)
    };
    assert_eq!(r.intent(both), [], "same quote: nothing");
    // The bid moves before the ack: the cancel waits for it.
    let moved = quote(Some(("100.5", "1")), Some(("101", "1")));
    assert_eq!(r.intent(moved), []);
    r.ack(bid);
    r.ack(ask);
    assert_eq!(r.market(book("100.5", "101")), [Sent::Cancel(bid)]);
    assert_eq!(r.market(book("100.5", "101")), [], "one cancel in flight");
    r.report(bid, ExecKind::Canceled, "0", "0");
    assert_eq!(
        r.market(book("100.5", "101")),
        [post(Side::Buy, "100.5", "1")]
    );
    // A size change is a different quote too; `None` pulls the side.
    let bid2 = r.last();
    r.ack(bid2);
    assert_eq!(
        r.intent(quote(Some(("100.5", "1")), None)),
        [Sent::Cancel(ask)]
    );
    assert_eq!(
        r.intent(quote(Some(("100.5", "2")), None)),
        [Sent::Cancel(bid2)]
    );
    assert_eq!(r.ex.counters.orders, 3);
}

#[test]
fn a_target_supersedes_quotes_and_waits_until_they_are_gone() {
    let mut r = Rig::synced();
    r.intent(quote(Some(("100", "1")), Some(("101", "1"))));
    let ids: Vec<ClientOrderId> = r.sent.keys().copied().collect();
    for &id in &ids {
        r.ack(id);
    }
    let sent = r.intent(target("1", Style::PostOnly));
    assert_eq!(sent.len(), 2, "both quotes cancelled: {sent:?}");
    assert!(
        sent.iter().all(|s| matches!(s, Sent::Cancel(_))),
        "{sent:?}"
    );
    assert_eq!(
        r.market(book("100", "101")),
        [],
        "no target order while quotes live"
    );
    r.report(ids[0], ExecKind::Canceled, "0", "0");
    assert_eq!(r.market(book("100", "101")), [], "one quote still live");
    r.report(ids[1], ExecKind::Canceled, "0", "0");
    // Post-only at the touch: best bid for a buy.
    assert_eq!(r.market(book("100", "101")), [post(Side::Buy, "100", "1")]);
    let peg = r.last();
    // Re-pegged when the touch moves: cancel once acked, replace once cancelled.
    assert_eq!(r.market(book("100.5", "101")), [], "not acked yet");
    r.ack(peg);
    assert_eq!(r.market(book("100.5", "101")), [Sent::Cancel(peg)]);
    r.report(peg, ExecKind::Canceled, "0", "0");
    assert_eq!(
        r.market(book("100.5", "101")),
        [post(Side::Buy, "100.5", "1")]
    );
    let peg2 = r.last();
    r.ack(peg2);
    // A partial fill leaves the rest working: it still fits the difference.
    r.report(peg2, ExecKind::PartialFill, "0.25", "0.25");
    assert_eq!(r.market(book("100.5", "101")), []);
    // A quote drops the target: its order is cancelled, the quotes wait until it is final.
    assert_eq!(
        r.intent(quote(Some(("100.5", "1")), None)),
        [Sent::Cancel(peg2)]
    );
    r.report(peg2, ExecKind::Canceled, "0", "0.25");
    assert_eq!(
        r.market(book("100.5", "101")),
        [post(Side::Buy, "100.5", "1")]
    );
    assert_eq!(r.ex.ledger.position, q("0.25").raw());
    assert_eq!(r.ex.counters.orders_on_stale_book, 0);
}

#[test]
fn a_post_only_target_is_recut_when_the_target_changes() {
    let mut r = Rig::synced();
    assert_eq!(
        r.intent(target("2", Style::PostOnly)),
        [post(Side::Buy, "100", "2")]
    );
    let id = r.last();
    r.ack(id);
    r.report(id, ExecKind::PartialFill, "0.5", "0.5");
    // Long 0.5 with 1.5 working; the target drops to 1: 0.5 is missing, not 1.5.
    assert_eq!(r.intent(target("1", Style::PostOnly)), [Sent::Cancel(id)]);
    r.report(id, ExecKind::Canceled, "0", "0.5");
    assert_eq!(
        r.market(book("100", "101")),
        [post(Side::Buy, "100", "0.5")]
    );
}

#[test]
fn nothing_new_on_a_stale_book_and_resting_orders_are_pulled() {
    let mut r = Rig::synced();
    r.intent(quote(Some(("100", "1")), None));
    let bid = r.last();
    r.ack(bid);
    let stale = event(MarketPayload::BookStale {
        reason: StaleReason::SequenceGap,
        last_update_id: 1,
    });
    assert_eq!(r.market(stale), [Sent::Cancel(bid)]);
    r.report(bid, ExecKind::Canceled, "0", "0");
    // Intents while stale wait; a book update without a resync places nothing.
    assert_eq!(r.intent(target("1", Style::Market)), []);
    assert_eq!(r.market(book("100", "101")), []);
    r.market(event(MarketPayload::BookSynced { update_id: 2 }));
    assert_eq!(r.market(book("100", "101")), [market(Side::Buy, "1")]);
    assert_eq!(r.ex.counters.orders_on_stale_book, 0);
}

#[test]
fn reports_are_counted_once_and_unknown_ids_are_flagged() {
    let mut r = Rig::synced();
    r.intent(target("1", Style::Market));
    let id = r.last();
    r.report(id, ExecKind::Ack, "0", "0");
    r.report(id, ExecKind::Fill, "1", "1");
    r.report(id, ExecKind::Fill, "1", "1");
    let mut other = r.sent[&id];
    other.client_id = ClientOrderId::parse("someone-else").unwrap();
    r.ex.on_report(&ExecReport::about(&other, ExecKind::Ack));
    let c = r.ex.counters;
    assert_eq!((c.fills, c.ignored_reports, c.unknown_reports), (1, 1, 1));
    assert_eq!(r.ex.ledger.position, q("1").raw());
    assert_eq!(r.ex.live_orders(), 0);
    assert!(r.ex.settled());
}

#[test]
fn a_risk_refusal_is_a_reject_and_pauses_new_orders() {
    let cfg = RiskConfig {
        max_order_notional: q("50"),
        ..RiskConfig::default()
    };
    let risk = RiskEngine::new(cfg, None, 1).unwrap();
    let fills = Arc::new(AtomicI64::new(0));
    let ex = Executor::with_risk(btc(), Decider::Tick(Box::new(Silent(fills.clone()))), risk);
    let mut r = Rig::with(ex, fills);
    r.market(event(MarketPayload::BookSynced { update_id: 1 }));
    r.market(book("100", "101"));
    // 1 × ~100 = 100 USDT > 50: refused before it left.
    assert_eq!(r.intent(target("1", Style::Market)), []);
    let c = r.ex.counters;
    assert_eq!((c.orders, c.risk_rejects, c.rejects), (1, 1, 1));
    assert_eq!(r.ex.live_orders(), 0);
    let by = &r.ex.risk.as_ref().unwrap().stats.rejected_by;
    assert_eq!(by.get("max_order_notional"), Some(&1), "{by:?}");
    // Within the pause even an order risk would accept waits.
    assert_eq!(r.intent(target("0.1", Style::Market)), []);
}

#[test]
fn a_bar_strategy_trades_when_a_bar_closes_and_settles_flat_at_the_end() {
    let params = [("fast", "2"), ("slow", "3")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let strategy = bar_strategy("sma-cross", &params).unwrap();
    let decider = Decider::Bar {
        strategy,
        bars: TimeBars::new(1000),
        bar_ms: 1000,
    };
    let mut r = Rig::with(Executor::new(btc(), decider), Arc::new(AtomicI64::new(0)));
    r.market(event(MarketPayload::BookSynced { update_id: 1 }));
    r.market(book("100", "101"));
    let trade = |sec: u64, p: &str| {
        event(MarketPayload::Trade(Trade {
            trade_id: sec,
            last_trade_id: sec,
            px: px(p),
            qty: q("1"),
            aggressor: Side::Buy,
            kind: TradeKind::Market,
            trade_time_ms: sec * 1000,
        }))
    };
    // Bars close 1, 2, 3 (SMA(2) 2.5 > SMA(3) 2 once bar 2 closes, on the trade of second 3).
    assert_eq!(r.market(trade(0, "1")), []);
    assert_eq!(r.market(trade(1, "2")), []);
    assert_eq!(r.market(trade(2, "3")), []);
    assert_eq!(r.market(trade(3, "3")), [market(Side::Buy, "0.001")]);
    let id = r.last();
    r.report(id, ExecKind::Fill, "0.001", "0.001");
    // The end: flat at market, then settled.
    r.ex.begin_shutdown();
    assert!(!r.ex.settled());
    r.ex.wind_down(&mut r.tx);
    assert_eq!(r.drain(), [market(Side::Sell, "0.001")]);
    let id = r.last();
    r.report(id, ExecKind::Fill, "0.001", "0.001");
    assert!(r.ex.settled());
    assert_eq!(r.ex.ledger.position, 0);
}

#[test]
fn model_disagreement_puts_risk_in_conservative_mode_and_back() {
    let cfg = RiskConfig {
        model_disagreement_max: 0.5,
        ..RiskConfig::default()
    };
    let risk = RiskEngine::new(cfg, None, 1).unwrap();
    let d = Arc::new(AtomicI64::new(900));
    let ex = Executor::with_risk(btc(), Decider::Tick(Box::new(Disagreeing(d.clone()))), risk);
    let mut r = Rig::with(ex, Arc::new(AtomicI64::new(0)));
    r.market(event(MarketPayload::BookSynced { update_id: 1 }));
    r.market(book("100", "101"));
    let risk = r.ex.risk.as_ref().unwrap();
    assert!(risk.conservative(), "0.9 > 0.5 after the event");
    // Conservative: nothing new is opened; the refusal names the reason.
    assert_eq!(r.intent(target("0.001", Style::Market)), []);
    let by = &r.ex.risk.as_ref().unwrap().stats.rejected_by;
    assert_eq!(by.get("conservative"), Some(&1), "{by:?}");
    // The models agree again: the next event clears it.
    d.store(100, Ordering::Relaxed);
    r.market(book("100", "101"));
    let risk = r.ex.risk.as_ref().unwrap();
    assert!(!risk.conservative());
    assert_eq!(risk.stats.transitions, 2, "on, then off");
}

#[test]
fn final_orders_leave_the_map_after_kept_closed_more() {
    use super::KEPT_CLOSED;
    let mut r = Rig::synced();
    let mut ids = Vec::new();
    // Open and close (reject) KEPT_CLOSED + 10 quotes, one at a time.
    for _ in 0..KEPT_CLOSED + 10 {
        r.intent(quote(Some(("100", "1")), None));
        let id = r.last();
        r.report(id, ExecKind::Rejected, "0", "0");
        ids.push(id);
        r.intent(quote(None, None));
    }
    assert_eq!(r.ex.orders.len(), KEPT_CLOSED, "bounded");
    // The oldest left; a late report about one is counted as unknown, not applied.
    let before = r.ex.counters.unknown_reports;
    r.report(ids[0], ExecKind::Canceled, "0", "0");
    assert_eq!(r.ex.counters.unknown_reports, before + 1);
    // A recent one is still there: its repeat is recognised and ignored.
    let recent = *ids.last().unwrap();
    let ignored = r.ex.counters.ignored_reports;
    r.report(recent, ExecKind::Rejected, "0", "0");
    assert_eq!(r.ex.counters.ignored_reports, ignored + 1);
    assert_eq!(r.ex.live_orders(), 0);
}

#[test]
fn rate_limit_refusals_pause_new_orders_doubling_until_an_ack() {
    const S: u64 = 1_000_000_000;
    let mut r = Rig::synced();
    r.ex.set_time(10 * S);
    let both = quote(Some(("100", "1")), Some(("101", "1")));
    assert_eq!(r.intent(both).len(), 2);
    let ids: Vec<ClientOrderId> = r.sent.keys().copied().collect();
    // Both sides refused by the throttle (-1015): nothing new for 1 s, then 2 s, then 4 s.
    let refuse = |r: &mut Rig, id: ClientOrderId| {
        let o = r.sent[&id];
        r.ex.on_report(&ExecReport {
            reason: -1015,
            ..ExecReport::about(&o, ExecKind::Rejected)
        });
    };
    refuse(&mut r, ids[0]);
    refuse(&mut r, ids[1]);
    assert_eq!(r.ex.counters.rate_limited, 2);
    // Two in a row: 1 s, then 2 s from the second.
    r.ex.set_time(11 * S);
    assert_eq!(r.market(book("100", "101")), [], "still paused");
    r.ex.set_time(12 * S + 1);
    let again = r.market(book("100", "101"));
    assert_eq!(again.len(), 2, "{again:?}");
    let bid = r
        .sent
        .values()
        .find(|o| o.side == Side::Buy && !ids.contains(&o.client_id))
        .unwrap()
        .client_id;
    refuse(&mut r, bid);
    r.ex.set_time(15 * S);
    assert_eq!(r.market(book("100", "101")), [], "4 s now");
    r.ex.set_time(16 * S + 2);
    assert_eq!(r.market(book("100", "101")).len(), 1, "the bid again");
    // An ack resets the back-off: the next refusal pauses 1 s again.
    let bid2 = r.last();
    r.ack(bid2);
    let ask = r
        .sent
        .values()
        .find(|o| o.side == Side::Sell && !ids.contains(&o.client_id))
        .unwrap()
        .client_id;
    refuse(&mut r, ask);
    r.ex.set_time(17 * S + 3);
    assert_eq!(r.market(book("100", "101")).len(), 1, "the ask after 1 s");
}
