//! The risk engine as the strategy thread uses it: events in, decisions and actions out.

use qalpha_engine::event::{MarkPrice, MarketEvent, MarketPayload, TopOfBook};
use qalpha_engine::order::{
    ClientOrderId, ExecKind, ExecReport, NewOrder, OrderAction, OrderCommand, OrderType,
    TimeInForce,
};
use qalpha_engine::{Price, Qty, Side, Symbol, Venue};
use qalpha_risk::engine::{RiskAction, RiskEngine};
use qalpha_risk::{RejectReason, RiskConfig, RiskState, SwitchKind};

const V: Venue = Venue::BinanceUsdm;
const T0: u64 = 1_764_000_000_000_000_000; // 2025-11-24T16:00Z
const S: u64 = 1_000_000_000;

fn sym() -> Symbol {
    Symbol::parse("BTCUSDT").unwrap()
}

fn px(s: &str) -> Price {
    Price::parse(s).unwrap()
}

fn qty(s: &str) -> Qty {
    Qty::parse(s).unwrap()
}

fn ev(t: u64, payload: MarketPayload) -> MarketEvent {
    MarketEvent {
        venue: V,
        symbol: sym(),
        recv_ns: t,
        decoded_ns: t,
        exch_ms: t / 1_000_000,
        payload,
    }
}

fn top(t: u64, bid: &str, ask: &str) -> MarketEvent {
    ev(
        t,
        MarketPayload::BookTop(TopOfBook {
            update_id: 1,
            bid_px: px(bid),
            bid_qty: qty("5"),
            ask_px: px(ask),
            ask_qty: qty("5"),
        }),
    )
}

fn order(id: &str, side: Side, price: &str, q: &str) -> NewOrder {
    NewOrder {
        venue: V,
        symbol: sym(),
        client_id: ClientOrderId::parse(id).unwrap(),
        side,
        order_type: OrderType::Limit,
        tif: TimeInForce::Gtc,
        price: px(price),
        qty: qty(q),
        reduce_only: false,
    }
}

fn cmd(o: NewOrder) -> OrderCommand {
    OrderCommand {
        venue: V,
        symbol: sym(),
        tick_recv_ns: 0,
        decided_ns: 0,
        action: OrderAction::New(o),
    }
}

fn fill(o: &NewOrder, price: &str, q: &str) -> ExecReport {
    ExecReport {
        last_px: px(price),
        last_qty: qty(q),
        cum_qty: qty(q),
        fee: Qty::ZERO,
        ..ExecReport::about(o, ExecKind::Fill)
    }
}

fn engine(journal: Option<&std::path::Path>) -> RiskEngine {
    let mut r = RiskEngine::new(RiskConfig::default(), journal, T0).unwrap();
    r.on_market(&top(T0, "60000", "60000.1"));
    r
}

/// Buys `q` at 60000 through the engine (accepted, filled).
fn buy(r: &mut RiskEngine, id: &str, q: &str, t: u64) -> NewOrder {
    let o = order(id, Side::Buy, "60000", q);
    r.check(&cmd(o), None, t).unwrap();
    r.on_report(&fill(&o, "60000", q), t);
    o
}

#[test]
fn model_disagreement_is_conservative_no_new_positions_until_it_agrees_again() {
    let mut r = engine(None);
    buy(&mut r, "b1", "0.1", T0);
    r.on_model_disagreement(0.9, T0 + S);
    assert!(r.conservative());
    assert_eq!(r.state(), RiskState::Active);
    let add = order("b2", Side::Buy, "60000", "0.1");
    assert_eq!(
        r.check(&cmd(add), None, T0 + S),
        Err(RejectReason::Conservative)
    );
    let reduce = order("s1", Side::Sell, "60000", "0.05");
    assert_eq!(r.check(&cmd(reduce), None, T0 + S), Ok(()));
    r.on_model_disagreement(0.1, T0 + 2 * S);
    assert!(!r.conservative());
    assert_eq!(
        r.check(
            &cmd(order("b3", Side::Buy, "60000", "0.1")),
            None,
            T0 + 2 * S
        ),
        Ok(())
    );
}

#[test]
fn a_halt_cancels_flattens_and_then_admits_only_reductions() {
    let mut r = engine(None);
    buy(&mut r, "b1", "0.3", T0);
    let resting = order("b2", Side::Buy, "59990", "0.1");
    r.check(&cmd(resting), None, T0).unwrap();
    r.halt(T0 + S);
    assert_eq!(r.state(), RiskState::Halted);
    let mut actions = Vec::new();
    r.take_actions(&mut actions);
    assert!(actions.contains(&RiskAction::CancelAll {
        venue: V,
        symbol: sym()
    }));
    assert!(actions.contains(&RiskAction::Reduce {
        venue: V,
        symbol: sym(),
        side: Side::Sell,
        qty: qty("0.3")
    }));
    assert!(actions.iter().any(|a| matches!(
        a,
        RiskAction::Alert {
            state: RiskState::Halted,
            ..
        }
    )));
    // Only orders that reduce pass now.
    let add = order("b3", Side::Buy, "60000", "0.1");
    assert_eq!(r.check(&cmd(add), None, T0 + S), Err(RejectReason::Halted));
    let mut flatten = order("s1", Side::Sell, "0", "0.3");
    flatten.order_type = OrderType::Market;
    flatten.reduce_only = true;
    assert_eq!(r.check(&cmd(flatten), None, T0 + S), Ok(()));
    r.on_report(&fill(&flatten, "60000", "0.3"), T0 + S);
    assert_eq!(r.ledger().position(V, sym()), Qty::ZERO);
    r.resume(T0 + 2 * S);
    assert_eq!(r.state(), RiskState::Active);
}

#[test]
fn a_restart_restores_the_daily_loss_and_the_halt_from_the_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("risk.qrisk");
    let cfg = RiskConfig {
        daily_loss_limit: qty("50"),
        ..Default::default()
    };
    {
        let mut r = RiskEngine::new(cfg.clone(), Some(&path), T0).unwrap();
        r.on_market(&top(T0, "60000", "60000.1"));
        let o = buy(&mut r, "b1", "0.1", T0);
        // Sell it 400 lower: −40, not yet the limit.
        let s = order("s1", Side::Sell, "59600", "0.1");
        r.check(&cmd(s), None, T0 + S).unwrap();
        r.on_report(&fill(&s, "59600", "0.1"), T0 + S);
        assert_eq!(r.state(), RiskState::Active);
        let _ = o;
        r.sync();
    }
    // Restart the same day: −40 is remembered; another −20 reaches the limit.
    let mut r = RiskEngine::new(cfg.clone(), Some(&path), T0 + 60 * S).unwrap();
    r.on_market(&top(T0 + 60 * S, "60000", "60000.1"));
    buy(&mut r, "b2", "0.1", T0 + 61 * S);
    let s = order("s2", Side::Sell, "59800", "0.1");
    r.check(&cmd(s), None, T0 + 62 * S).unwrap();
    r.on_report(&fill(&s, "59800", "0.1"), T0 + 62 * S);
    assert_eq!(r.state(), RiskState::Halted);
    assert_eq!(r.halt_reason(), Some(SwitchKind::DailyLoss));
    r.sync();
    drop(r);
    // And again: still halted, with its reason and time.
    let r = RiskEngine::new(cfg, Some(&path), T0 + 120 * S).unwrap();
    assert_eq!(r.state(), RiskState::Halted);
    assert_eq!(r.halt_reason(), Some(SwitchKind::DailyLoss));
    assert_eq!(r.halted_at_ns(), Some(T0 + 62 * S));
}

#[test]
fn funding_is_settled_at_the_funding_time_at_the_announced_rate() {
    let mut r = engine(None);
    buy(&mut r, "b1", "0.3", T0);
    let mark = |t: u64, next_ms: u64| {
        ev(
            t,
            MarketPayload::MarkPrice(MarkPrice {
                mark_px: px("60000"),
                index_px: px("60000"),
                funding_rate: qty("0.0001"),
                next_funding_ms: next_ms,
            }),
        )
    };
    let funding_at = (T0 + 10 * S) / 1_000_000;
    r.on_market(&mark(T0 + S, funding_at));
    assert_eq!(r.ledger().funding().to_string(), "0");
    // The funding time passes: the long pays 0.3 × 60000 × 0.0001 = 1.8.
    r.on_market(&mark(T0 + 11 * S, funding_at + 8 * 3_600_000));
    assert_eq!(r.ledger().funding().to_string(), "-1.8");
}

#[test]
fn post_only_bounces_are_not_api_errors_but_other_rejects_are() {
    // A maker in a fast market: far more post-only bounces (-5022) in a minute than the API-error
    // limit (30) — trading goes on.
    let mut r = engine(None);
    let limit = RiskConfig::default().api_errors_per_min as u64;
    for i in 0..3 * limit {
        let o = order(&format!("po-{i}"), Side::Buy, "60000", "0.001");
        let rej = ExecReport {
            reason: -5022,
            ..ExecReport::about(&o, ExecKind::Rejected)
        };
        r.on_report(&rej, T0 + i * 1_000_000);
    }
    assert_eq!(r.state(), RiskState::Active);
    // Margin rejects are failures of the account or the bot: past the limit, halted.
    for i in 0..=limit {
        let o = order(&format!("m-{i}"), Side::Buy, "60000", "0.001");
        let rej = ExecReport {
            reason: -2019,
            ..ExecReport::about(&o, ExecKind::Rejected)
        };
        r.on_report(&rej, T0 + S + i * 1_000_000);
    }
    assert_eq!(r.state(), RiskState::Halted);
    assert_eq!(r.halt_reason(), Some(SwitchKind::ApiErrorRate));
}
