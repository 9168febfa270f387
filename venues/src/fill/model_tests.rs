//! Unit tests of [`FillModel`] on small hand-built books: every order type and path, the queue,
//! reduce-only, refusals, and that `OrderState` consumes the reports unchanged.

use qalpha_engine::order::{
    ClientOrderId, ExecKind, ExecReport, NewOrder, OrderState, OrderStatus, OrderType, TimeInForce,
};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};

use super::FillModel;
use crate::fill::{FeeSchedule, ProportionalCancel, QueueModel, RejectReason, RiskAverse};
use crate::mock::book::ExchangeBook;

fn p(s: &str) -> Price {
    Price::parse(s).unwrap()
}
fn q(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}
fn id(s: &str) -> ClientOrderId {
    ClientOrderId::parse(s).unwrap()
}
fn sym() -> Symbol {
    Symbol::parse("BTCUSDT").unwrap()
}

fn model() -> FillModel<RiskAverse> {
    FillModel::new(
        Venue::BinanceUsdm,
        sym(),
        FeeSchedule::BINANCE_USDM_REGULAR,
        RiskAverse,
    )
}

fn limit(cid: &str, side: Side, px: &str, qty: &str, tif: TimeInForce) -> NewOrder {
    NewOrder {
        venue: Venue::BinanceUsdm,
        symbol: sym(),
        client_id: id(cid),
        side,
        order_type: OrderType::Limit,
        tif,
        price: p(px),
        qty: q(qty),
        reduce_only: false,
    }
}

fn market(cid: &str, side: Side, qty: &str) -> NewOrder {
    NewOrder {
        order_type: OrderType::Market,
        tif: TimeInForce::Ioc,
        price: Price::ZERO,
        ..limit(cid, side, "1", qty, TimeInForce::Ioc)
    }
}

/// Bids 100 × 5, 99 × 2; asks 101 × 1, 102 × 2, 103 × 5.
fn book() -> ExchangeBook {
    let mut b = ExchangeBook::default();
    b.set(true, p("100"), q("5"));
    b.set(true, p("99"), q("2"));
    b.set(false, p("101"), q("1"));
    b.set(false, p("102"), q("2"));
    b.set(false, p("103"), q("5"));
    b
}

fn kinds(r: &[ExecReport]) -> Vec<ExecKind> {
    r.iter().map(|r| r.kind).collect()
}

fn fills(r: &[ExecReport]) -> Vec<(Price, Qty)> {
    r.iter()
        .filter(|r| matches!(r.kind, ExecKind::PartialFill | ExecKind::Fill))
        .map(|r| (r.last_px, r.last_qty))
        .collect()
}

#[test]
fn post_only_that_would_cross_is_refused_with_the_venues_code() {
    let mut m = model();
    let r = m
        .submit(
            limit("po", Side::Buy, "101", "1", TimeInForce::PostOnly),
            &book(),
            1,
        )
        .to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Rejected]);
    assert_eq!(r[0].reason, -5022);
    assert_eq!(m.open_orders().count(), 0);

    // Bybit accepts it and cancels it on the order stream.
    let mut by = FillModel::new(
        Venue::BybitLinear,
        sym(),
        FeeSchedule::BYBIT_LINEAR_VIP0,
        RiskAverse,
    );
    let o = NewOrder {
        venue: Venue::BybitLinear,
        ..limit("po", Side::Sell, "100", "1", TimeInForce::PostOnly)
    };
    let r = by.submit(o, &book(), 1).to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Ack, ExecKind::Expired]);
    assert_eq!(
        r[1].reason,
        RejectReason::PostOnlyWouldTake.code(Venue::BybitLinear)
    );

    // Not crossing: it rests behind the whole displayed size at its price.
    let r = m
        .submit(
            limit("po2", Side::Buy, "100", "1", TimeInForce::PostOnly),
            &book(),
            2,
        )
        .to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Ack]);
    assert_eq!(m.open_order(id("po2")).unwrap().queue_ahead, q("5"));
}

#[test]
fn marketable_limit_takes_level_by_level_then_rests() {
    let mut m = model();
    let r = m
        .submit(
            limit("t", Side::Buy, "102", "4", TimeInForce::Gtc),
            &book(),
            7_000_000,
        )
        .to_vec();
    assert_eq!(
        kinds(&r),
        vec![ExecKind::Ack, ExecKind::PartialFill, ExecKind::PartialFill]
    );
    assert_eq!(fills(&r), vec![(p("101"), q("1")), (p("102"), q("2"))]);
    assert_eq!((r[2].cum_qty, r[2].leaves_qty), (q("3"), q("1")));
    assert!(!r[1].is_maker && !r[2].is_maker);
    // 101 × 1 × 0.05 % = 0.0505; 102 × 2 × 0.05 % = 0.102.
    assert_eq!((r[1].fee, r[2].fee), (q("0.0505"), q("0.102")));
    assert_eq!(r[0].exch_ms, 7);
    // The remainder rests at 102, where no bid is displayed: at the front.
    let o = m.open_order(id("t")).unwrap();
    assert_eq!((o.leaves_qty, o.queue_ahead), (q("1"), Qty::ZERO));
    assert_eq!(m.position(), q("3"));
}

#[test]
fn market_and_ioc_remainders_expire_and_never_rest() {
    let mut m = model();
    let r = m.submit(market("m", Side::Sell, "10"), &book(), 1).to_vec();
    assert_eq!(fills(&r), vec![(p("100"), q("5")), (p("99"), q("2"))]);
    assert_eq!(r.last().unwrap().kind, ExecKind::Expired);
    assert_eq!(r.last().unwrap().cum_qty, q("7"));
    assert_eq!(r.last().unwrap().leaves_qty, Qty::ZERO);

    let r = m
        .submit(
            limit("ioc", Side::Buy, "100.5", "1", TimeInForce::Ioc),
            &book(),
            2,
        )
        .to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Ack, ExecKind::Expired]);
    let r = m
        .submit(
            limit("ioc2", Side::Buy, "101", "0.4", TimeInForce::Ioc),
            &book(),
            3,
        )
        .to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Ack, ExecKind::Fill]);
    assert_eq!(m.open_orders().count(), 0);
}

#[test]
fn fok_fills_completely_or_not_at_all() {
    let mut m = model();
    let r = m
        .submit(
            limit("f1", Side::Buy, "102", "3.5", TimeInForce::Fok),
            &book(),
            1,
        )
        .to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Ack, ExecKind::Expired]);
    let r = m
        .submit(
            limit("f2", Side::Buy, "102", "3", TimeInForce::Fok),
            &book(),
            2,
        )
        .to_vec();
    assert_eq!(
        kinds(&r),
        vec![ExecKind::Ack, ExecKind::PartialFill, ExecKind::Fill]
    );
}

#[test]
fn liquidity_we_took_is_gone_until_the_venue_updates_the_level() {
    let mut m = model();
    let b = book();
    m.submit(market("a", Side::Buy, "1"), &b, 1);
    // The same instant: 101 is exhausted for us, the next order reaches 102.
    let r = m.submit(market("b", Side::Buy, "1"), &b, 1).to_vec();
    assert_eq!(fills(&r), vec![(p("102"), q("1"))]);
    // A post-only buy at 101 no longer crosses anything we could take.
    let r = m
        .submit(
            limit("po", Side::Buy, "101", "1", TimeInForce::PostOnly),
            &b,
            1,
        )
        .to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Ack]);
    m.cancel(id("po"), 1).unwrap();
    // The venue reports the level again: it counts at face value.
    m.on_book_level(Side::Sell, p("101"), q("1"));
    let r = m.submit(market("c", Side::Buy, "1"), &b, 2).to_vec();
    assert_eq!(fills(&r), vec![(p("101"), q("1"))]);
}

#[test]
fn resting_order_fills_only_after_the_queue_ahead_trades() {
    let mut m = model();
    m.submit(
        limit("bid", Side::Buy, "100", "2", TimeInForce::Gtc),
        &book(),
        1,
    );
    // A buy print at our price does not touch bids.
    assert!(m.on_trade(p("100"), q("9"), Side::Buy, 2).is_empty());
    // 3 of the 5 ahead trade.
    assert!(m.on_trade(p("100"), q("3"), Side::Sell, 3).is_empty());
    assert_eq!(m.open_order(id("bid")).unwrap().queue_ahead, q("2"));
    // A cancel behind us (risk averse): 2 → displayed 1.5 moves us only to 1.5.
    m.on_book_level(Side::Buy, p("100"), q("1.5"));
    assert_eq!(m.open_order(id("bid")).unwrap().queue_ahead, q("1.5"));
    // A sell print above our bid never reaches it.
    assert!(m.on_trade(p("100.5"), q("1"), Side::Sell, 4).is_empty());
    // 2 trade: 1.5 ahead, 0.5 reaches us.
    let r = m.on_trade(p("100"), q("2"), Side::Sell, 5).to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::PartialFill]);
    assert_eq!((r[0].last_px, r[0].last_qty), (p("100"), q("0.5")));
    assert!(r[0].is_maker);
    // 100 × 0.5 × 0.02 % = 0.01.
    assert_eq!(r[0].fee, q("0.01"));
    let r = m.on_trade(p("100"), q("5"), Side::Sell, 6).to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Fill]);
    assert_eq!(
        (r[0].last_qty, r[0].cum_qty, r[0].leaves_qty),
        (q("1.5"), q("2"), Qty::ZERO)
    );
    assert_eq!(m.open_orders().count(), 0);
}

#[test]
fn a_print_through_our_price_fills_at_our_price_up_to_its_quantity() {
    let mut m = model();
    m.submit(
        limit("ask", Side::Sell, "102", "3", TimeInForce::Gtc),
        &book(),
        1,
    );
    assert_eq!(m.open_order(id("ask")).unwrap().queue_ahead, q("2"));
    let r = m.on_trade(p("102.5"), q("1"), Side::Buy, 2).to_vec();
    assert_eq!(fills(&r), vec![(p("102"), q("1"))]);
    assert_eq!(m.open_order(id("ask")).unwrap().queue_ahead, Qty::ZERO);
    assert_eq!(m.position(), q("-1"));
}

#[test]
fn one_print_is_shared_by_our_orders_in_price_then_time_priority() {
    let mut m = model();
    let mut b = ExchangeBook::default();
    b.set(false, p("200"), q("1"));
    m.submit(limit("a", Side::Buy, "100", "2", TimeInForce::Gtc), &b, 1);
    m.submit(limit("b", Side::Buy, "100", "2", TimeInForce::Gtc), &b, 2);
    m.submit(limit("c", Side::Buy, "100.5", "1", TimeInForce::Gtc), &b, 3);
    // A sell print of 3.5 at 100: c (better price, through) first, then a, then b.
    let r = m.on_trade(p("100"), q("3.5"), Side::Sell, 4).to_vec();
    let got: Vec<_> = r
        .iter()
        .map(|r| (r.client_id.as_str().to_string(), r.last_qty))
        .collect();
    assert_eq!(
        got,
        vec![
            ("c".to_string(), q("1")),
            ("a".to_string(), q("2")),
            ("b".to_string(), q("0.5")),
        ]
    );
    assert_eq!(m.position(), q("3.5"));
}

#[test]
fn amend_loses_priority_and_follows_binances_cancel_rules() {
    let mut m = model();
    let mut b = ExchangeBook::default();
    b.set(false, p("200"), q("1"));
    m.submit(limit("a", Side::Buy, "100", "1", TimeInForce::Gtc), &b, 1);
    m.submit(limit("b", Side::Buy, "100", "1", TimeInForce::Gtc), &b, 2);
    // Amend a at the same price: it goes behind b.
    let r = m.amend(id("a"), p("100"), q("1"), &b, 3).unwrap().to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Amended]);
    assert_eq!((r[0].cum_qty, r[0].leaves_qty), (Qty::ZERO, q("1")));
    let r = m.on_trade(p("100"), q("1"), Side::Sell, 4).to_vec();
    assert_eq!(r[0].client_id, id("b"));
    // Refusals leave the order alone.
    assert_eq!(
        m.amend(id("zz"), p("100"), q("1"), &b, 5),
        Err(RejectReason::UnknownOrder)
    );
    assert_eq!(
        m.amend(id("a"), p("100"), Qty::ZERO, &b, 5),
        Err(RejectReason::NonPositiveQty)
    );
    assert_eq!(
        m.amend(id("a"), p("-1"), q("1"), &b, 5),
        Err(RejectReason::NonPositivePrice)
    );
    assert!(m.open_order(id("a")).is_some());
    // A GTC amended across the spread takes, then rests the rest.
    let r = m.amend(id("a"), p("200"), q("3"), &b, 6).unwrap().to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Amended, ExecKind::PartialFill]);
    assert_eq!(
        (r[1].last_px, r[1].last_qty, r[1].is_maker),
        (p("200"), q("1"), false)
    );
    // New quantity at or below the filled quantity: cancelled.
    let r = m.amend(id("a"), p("150"), q("1"), &b, 7).unwrap().to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Canceled]);
    assert_eq!(r[0].cum_qty, q("1"));
    // A post-only amended to a crossing price: cancelled.
    m.on_book_level(Side::Sell, p("200"), q("1"));
    m.submit(
        limit("po", Side::Buy, "100", "1", TimeInForce::PostOnly),
        &b,
        8,
    );
    let r = m.amend(id("po"), p("200"), q("1"), &b, 9).unwrap().to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Canceled]);
}

#[test]
fn cancel_and_cancel_all() {
    let mut m = model();
    m.submit(
        limit("a", Side::Buy, "99", "1", TimeInForce::Gtc),
        &book(),
        1,
    );
    m.submit(
        limit("b", Side::Sell, "105", "1", TimeInForce::Gtc),
        &book(),
        1,
    );
    m.submit(
        limit("c", Side::Buy, "98", "1", TimeInForce::Gtc),
        &book(),
        1,
    );
    let r = m.cancel(id("b"), 2).unwrap().to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::Canceled]);
    assert_eq!(r[0].leaves_qty, Qty::ZERO);
    assert_eq!(m.cancel(id("b"), 3), Err(RejectReason::UnknownOrder));
    let r = m.cancel_all(4).to_vec();
    let ids: Vec<_> = r.iter().map(|r| r.client_id).collect();
    assert_eq!(ids, vec![id("a"), id("c")]);
    assert!(m.cancel_all(5).is_empty());
}

#[test]
fn reduce_only_never_opens_or_flips_a_position() {
    let mut m = model();
    let mut o = limit("r1", Side::Sell, "105", "1", TimeInForce::Gtc);
    o.reduce_only = true;
    let r = m.submit(o, &book(), 1).to_vec();
    assert_eq!((r[0].kind, r[0].reason), (ExecKind::Rejected, -2022));

    // Long 1: a reduce-only sell of 2 rests, fills 1 and expires at flat.
    assert!(m.set_position(q("1"), 2).is_empty());
    let mut o = limit("r2", Side::Sell, "105", "2", TimeInForce::Gtc);
    o.reduce_only = true;
    assert_eq!(kinds(m.submit(o, &book(), 3)), vec![ExecKind::Ack]);
    let r = m.on_trade(p("106"), q("5"), Side::Buy, 4).to_vec();
    assert_eq!(kinds(&r), vec![ExecKind::PartialFill, ExecKind::Expired]);
    assert_eq!(r[0].last_qty, q("1"));
    assert_eq!(m.position(), Qty::ZERO);

    // A reduce-only buy while long would increase it.
    m.set_position(q("1"), 5);
    let mut o = limit("r3", Side::Buy, "90", "1", TimeInForce::Gtc);
    o.reduce_only = true;
    assert_eq!(m.submit(o, &book(), 6)[0].reason, -2022);

    // A taker reduce-only order is capped at the position.
    let mut o = market("r4", Side::Sell, "3");
    o.reduce_only = true;
    let r = m.submit(o, &book(), 7).to_vec();
    assert_eq!(fills(&r), vec![(p("100"), q("1"))]);
    assert_eq!(r.last().unwrap().kind, ExecKind::Expired);
    assert_eq!(m.position(), Qty::ZERO);

    // A resting reduce-only order expires when another order flattens the position.
    m.set_position(q("-2"), 8);
    let mut o = limit("r5", Side::Buy, "90", "2", TimeInForce::Gtc);
    o.reduce_only = true;
    m.submit(o, &book(), 9);
    let r = m
        .submit(market("flat", Side::Buy, "2"), &book(), 10)
        .to_vec();
    let last = r.last().unwrap();
    assert_eq!((last.client_id, last.kind), (id("r5"), ExecKind::Expired));
    assert_eq!(m.open_orders().count(), 0);
    // ... and so does one left behind by a reconciled position.
    m.set_position(q("-1"), 11);
    let mut o = limit("r6", Side::Buy, "90", "1", TimeInForce::Gtc);
    o.reduce_only = true;
    m.submit(o, &book(), 12);
    assert_eq!(
        kinds(m.set_position(Qty::ZERO, 13)),
        vec![ExecKind::Expired]
    );
}

#[test]
fn bad_inputs_are_refused_with_codes_never_panics() {
    let mut m = model();
    let b = book();
    let code = |m: &mut FillModel<RiskAverse>, o: NewOrder| {
        let r = m.submit(o, &b, 1);
        assert_eq!(r.len(), 1, "{r:?}");
        assert_eq!(r[0].kind, ExecKind::Rejected);
        r[0].reason
    };
    assert_eq!(
        code(&mut m, limit("z", Side::Buy, "100", "0", TimeInForce::Gtc)),
        -4003
    );
    assert_eq!(
        code(&mut m, limit("z", Side::Buy, "100", "-1", TimeInForce::Gtc)),
        -4003
    );
    assert_eq!(
        code(&mut m, limit("z", Side::Buy, "0", "1", TimeInForce::Gtc)),
        -4001
    );
    assert_eq!(
        code(&mut m, limit("z", Side::Buy, "-5", "1", TimeInForce::Gtc)),
        -4001
    );
    let mut o = market("z", Side::Buy, "1");
    o.tif = TimeInForce::PostOnly;
    assert_eq!(code(&mut m, o), -1115);
    let mut o = limit("z", Side::Buy, "100", "1", TimeInForce::Gtc);
    o.symbol = Symbol::parse("ETHUSDT").unwrap();
    assert_eq!(code(&mut m, o), -1121);
    o.symbol = sym();
    o.venue = Venue::BybitLinear;
    assert_eq!(code(&mut m, o), -1121);
    m.submit(limit("dup", Side::Buy, "90", "1", TimeInForce::Gtc), &b, 1);
    assert_eq!(
        code(&mut m, limit("dup", Side::Buy, "91", "1", TimeInForce::Gtc)),
        -4116
    );

    // Nonsense market data is ignored.
    assert!(m.on_trade(p("90"), Qty(-1), Side::Sell, 2).is_empty());
    assert!(m.on_trade(Price(-1), q("1"), Side::Sell, 2).is_empty());
    m.on_book_level(Side::Buy, p("90"), Qty(-7));
    assert_eq!(m.open_order(id("dup")).unwrap().queue_ahead, Qty::ZERO);

    // Extremes: no overflow panic anywhere.
    let mut huge = ExchangeBook::default();
    huge.set(false, Price(i64::MAX), Qty(i64::MAX));
    huge.set(false, Price(i64::MAX - 1), Qty(i64::MAX));
    let r = m.submit(market("big", Side::Buy, "1"), &huge, 3).to_vec();
    assert_eq!(r.last().unwrap().kind, ExecKind::Fill);
    let mut o = market("big2", Side::Buy, "1");
    o.qty = Qty(i64::MAX);
    let r = m.submit(o, &huge, 4).to_vec();
    assert!(r.iter().all(|r| r.cum_qty <= Qty(i64::MAX)));
    let mut o = limit("big3", Side::Sell, "1", "1", TimeInForce::Gtc);
    o.price = Price(i64::MAX);
    o.qty = Qty(i64::MAX);
    m.submit(o, &huge, 5);
    m.on_trade(Price(i64::MAX), Qty(i64::MAX), Side::Buy, 6);
    m.on_trade(Price(i64::MAX), Qty(i64::MAX), Side::Buy, u64::MAX);
    m.on_book_level(Side::Sell, Price(i64::MAX), Qty(i64::MAX));
    m.cancel_all(u64::MAX);
}

#[test]
fn order_state_consumes_the_reports_unchanged() {
    let mut m = model();
    let o = limit("s", Side::Buy, "102", "4", TimeInForce::Gtc);
    let mut st = OrderState::new(o);
    let apply = |st: &mut OrderState, r: &[ExecReport]| {
        for r in r {
            st.apply(r);
        }
    };
    apply(&mut st, m.submit(o, &book(), 1));
    assert_eq!(st.status, OrderStatus::PartiallyFilled);
    assert_eq!(st.leaves(), m.open_order(id("s")).unwrap().leaves_qty);
    apply(&mut st, m.on_trade(p("101"), q("2"), Side::Sell, 2));
    assert_eq!(st.status, OrderStatus::Filled);
    assert_eq!(st.leaves(), Qty::ZERO);
    // (101×1 + 102×2 + 102×1) / 4 = 101.75
    assert_eq!(st.avg_price(), Some(p("101.75")));
    // 0.0505 + 0.102 taker, 102 × 1 × 0.02 % = 0.0204 maker.
    assert_eq!(st.fees, q("0.1729"));

    let o = limit("c", Side::Sell, "110", "1", TimeInForce::Gtc);
    let mut st = OrderState::new(o);
    apply(&mut st, m.submit(o, &book(), 3));
    assert_eq!(st.status, OrderStatus::New);
    apply(&mut st, m.cancel(id("c"), 4).unwrap());
    assert_eq!((st.status, st.leaves()), (OrderStatus::Canceled, Qty::ZERO));
}

#[test]
fn proportional_cancel_fills_no_later_than_risk_averse() {
    fn run<Q: QueueModel>(queue: Q) -> Vec<ExecReport> {
        let mut m = FillModel::new(Venue::BinanceUsdm, sym(), FeeSchedule::ZERO, queue);
        let b = book();
        m.submit(limit("x", Side::Buy, "100", "1", TimeInForce::Gtc), &b, 1);
        // 5 ahead, 5 join behind, 6 cancelled: risk-averse stays at 4 ahead (min with 4),
        // pro rata credits 3 of the 6 to the front → 2 ahead.
        m.on_book_level(Side::Buy, p("100"), q("10"));
        m.on_book_level(Side::Buy, p("100"), q("4"));
        m.on_trade(p("100"), q("3"), Side::Sell, 2).to_vec()
    }
    let ra = run(RiskAverse);
    let pc = run(ProportionalCancel::new(q("0.001")));
    assert!(ra.is_empty());
    assert_eq!(fills(&pc), vec![(p("100"), q("1"))]);
}

#[test]
fn syncing_with_the_book_equals_feeding_the_level_changes() {
    // Paper trading sees the book, not its diffs: `sync_with_book` must land where
    // `on_book_level` does, and must not double-count a level that did not change.
    let mut by_level = FillModel::new(
        Venue::BinanceUsdm,
        sym(),
        FeeSchedule::ZERO,
        ProportionalCancel::new(Qty::ZERO),
    );
    let mut by_sync = by_level.clone();
    let mut b = book();
    for m in [&mut by_level, &mut by_sync] {
        m.submit(limit("x", Side::Buy, "100", "1", TimeInForce::Gtc), &b, 1);
        m.submit(market("t", Side::Buy, "1"), &b, 1);
        m.on_trade(p("100"), q("1"), Side::Sell, 2);
    }
    // The trade shows in the book; then 2 more are cancelled.
    for qty in ["4", "2"] {
        b.set(true, p("100"), q(qty));
        by_level.on_book_level(Side::Buy, p("100"), q(qty));
        by_sync.sync_with_book(&b);
        by_sync.sync_with_book(&b);
    }
    let ahead = |m: &FillModel<ProportionalCancel>| m.open_order(id("x")).unwrap().queue_ahead;
    assert_eq!(ahead(&by_sync), ahead(&by_level));
    // 4 ahead after the trade; 2 of 4 cancelled pro rata, all ahead of us → 2.
    assert_eq!(ahead(&by_sync), q("2"));
    // The 101 level we took is hidden until it changes.
    let r = by_sync.submit(market("u", Side::Buy, "1"), &b, 3).to_vec();
    assert_eq!(fills(&r), vec![(p("102"), q("1"))]);
    b.set(false, p("101"), q("0.7"));
    by_sync.sync_with_book(&b);
    let r = by_sync.submit(market("v", Side::Buy, "1"), &b, 4).to_vec();
    assert_eq!(fills(&r)[0], (p("101"), q("0.7")));
}
