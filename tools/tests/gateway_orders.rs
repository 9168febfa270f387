//! Every order type through the engine's gateway against the mock exchange on 127.0.0.1, both
//! venues, over the order WebSocket and over REST: instrument rules refused locally (never sent),
//! post-only refusal, partial fill with the IOC remainder expired, market order, reduce-only (fills
//! when it reduces, refused when it would open), cancel-all.

mod order_common;

use order_common::gw::*;
use order_common::*;
use qalpha_engine::event::Venue;
use qalpha_engine::order::{ExecKind, ExecReport, NewOrder, OrderAction, OrderType, TimeInForce};
use qalpha_engine::{Price, Qty, Side};
use qalpha_venues::gateway::session::Via;

fn kinds(out: &[ExecReport], id: &str) -> Vec<ExecKind> {
    out.iter()
        .filter(|r| r.client_id.as_str() == id)
        .map(|r| r.kind)
        .collect()
}

fn market(venue: Venue, id: &str, side: Side, qty: &str, reduce_only: bool) -> NewOrder {
    NewOrder {
        order_type: OrderType::Market,
        tif: TimeInForce::Ioc,
        price: Price::ZERO,
        reduce_only,
        ..order(venue, id, side, TimeInForce::Ioc, Price::ZERO, qty)
    }
}

fn order_types(venue: Venue, via: Via) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "", dir.path());
    let mut g = connect(&m, venue, via, true);
    let mut out = Vec::new();
    let (bid, ask) = touch(&m, venue);
    let submit = |g: &mut qalpha_venues::gateway::session::Gateway,
                  out: &mut Vec<ExecReport>,
                  o: NewOrder| g.submit(&cmd(&o, OrderAction::New(o)), out);

    // Off-tick (half a tick): refused locally with the venue's code, never sent.
    let off = Price(ticks(bid, -20).raw() + 5_000_000);
    submit(
        &mut g,
        &mut out,
        order(venue, "off-tick", Side::Buy, TimeInForce::Gtc, off, "0.001"),
    );
    let r = out
        .iter()
        .find(|r| r.client_id.as_str() == "off-tick")
        .unwrap();
    let tick_code = if venue == Venue::BinanceUsdm {
        -4014
    } else {
        10001
    };
    assert_eq!((r.kind, r.reason), (ExecKind::Rejected, tick_code));
    assert_eq!(g.stats.rule_refusals, 1);
    assert_eq!(placed(&venue_ids(&m, venue), "off-tick"), 0);

    // Post-only at the ask would take: Binance refuses it (-5022), Bybit accepts and cancels it.
    submit(
        &mut g,
        &mut out,
        order(
            venue,
            "po-cross",
            Side::Buy,
            TimeInForce::PostOnly,
            ask,
            "0.001",
        ),
    );
    assert!(pump(&mut g, &mut out, |o| {
        has(o, "po-cross", ExecKind::Rejected) || has(o, "po-cross", ExecKind::Expired)
    }));
    match venue {
        Venue::BinanceUsdm => {
            let r = out
                .iter()
                .find(|r| r.client_id.as_str() == "po-cross")
                .unwrap();
            assert_eq!((r.kind, r.reason), (ExecKind::Rejected, -5022));
        }
        Venue::BybitLinear => {
            assert_eq!(kinds(&out, "po-cross"), [ExecKind::Ack, ExecKind::Expired])
        }
    }

    // An IOC at the ask for more than the level shows: part fills, the rest expires (Bybit reports
    // the end of an IOC as `Cancelled`, which is what its stream says).
    submit(
        &mut g,
        &mut out,
        order(venue, "ioc-part", Side::Buy, TimeInForce::Ioc, ask, "500"),
    );
    assert!(
        pump(&mut g, &mut out, |o| has(o, "ioc-part", ExecKind::Expired)
            || has(o, "ioc-part", ExecKind::Canceled)),
        "{out:?}"
    );
    let part = filled(&out, "ioc-part");
    assert!(
        part.raw() > 0 && part < Qty::parse("500").unwrap(),
        "{part}"
    );
    assert!(has(&out, "ioc-part", ExecKind::PartialFill));
    assert_eq!(
        venue_order(&m, venue, "ioc-part").1,
        part,
        "reported = executed at the venue"
    );

    // A market order fills as taker.
    submit(
        &mut g,
        &mut out,
        market(venue, "mkt-1", Side::Buy, "0.002", false),
    );
    assert!(
        pump(&mut g, &mut out, |o| filled(o, "mkt-1")
            == Qty::parse("0.002").unwrap()),
        "{out:?}"
    );
    assert!(out
        .iter()
        .any(|r| r.client_id.as_str() == "mkt-1" && !r.is_maker && r.fee.raw() > 0));

    // Long now: a reduce-only sell fills; a reduce-only buy would add to the position: refused.
    submit(
        &mut g,
        &mut out,
        market(venue, "ro-sell", Side::Sell, "0.001", true),
    );
    assert!(
        pump(&mut g, &mut out, |o| filled(o, "ro-sell")
            == Qty::parse("0.001").unwrap()),
        "{out:?}"
    );
    submit(
        &mut g,
        &mut out,
        market(venue, "ro-buy", Side::Buy, "0.001", true),
    );
    assert!(
        pump(&mut g, &mut out, |o| {
            has(o, "ro-buy", ExecKind::Rejected) || has(o, "ro-buy", ExecKind::Expired)
        }),
        "{out:?}"
    );
    assert_eq!(filled(&out, "ro-buy"), Qty::ZERO);

    // The position the private stream reported matches the venue's own.
    let at_venue = venue_position(&m, venue);
    assert!(at_venue.raw() > 0, "long after the fills: {at_venue}");
    let start = std::time::Instant::now();
    while gateway_position(&g) != at_venue && start.elapsed().as_secs() < 10 {
        g.poll_io(Some(std::time::Duration::from_millis(5)), &mut out);
    }
    assert_eq!(gateway_position(&g), at_venue);

    // Two resting orders, then cancel-all: both reported canceled, nothing left at the venue.
    for (id, n) in [("rest-a", -30), ("rest-b", -31)] {
        submit(
            &mut g,
            &mut out,
            order(
                venue,
                id,
                Side::Buy,
                TimeInForce::PostOnly,
                ticks(bid, n),
                "0.001",
            ),
        );
    }
    assert!(pump(&mut g, &mut out, |o| has(o, "rest-a", ExecKind::Ack)
        && has(o, "rest-b", ExecKind::Ack)));
    let all = order(venue, "x", Side::Buy, TimeInForce::Gtc, bid, "0.001");
    g.submit(&cmd(&all, OrderAction::CancelAll), &mut out);
    assert!(
        pump(&mut g, &mut out, |o| {
            has(o, "rest-a", ExecKind::Canceled) && has(o, "rest-b", ExecKind::Canceled)
        }),
        "{out:?}"
    );
    assert!(open_count(&m, venue).is_empty());
    assert_eq!(g.open_orders().count(), 0);
    let s = g.finish();
    assert_eq!(s.tracker.duplicate_orders, 0);
    if via == Via::Ws {
        assert_eq!(s.rest_fallbacks, 0, "{s:?}");
        assert!(s.ws_requests >= 6, "{s:?}");
    } else {
        assert_eq!(s.ws_requests, 0, "{s:?}");
    }
}

#[test]
fn binance_order_types_over_the_websocket_api() {
    order_types(Venue::BinanceUsdm, Via::Ws);
}

#[test]
fn binance_order_types_over_rest() {
    order_types(Venue::BinanceUsdm, Via::Rest);
}

#[test]
fn bybit_order_types_over_the_trade_websocket() {
    order_types(Venue::BybitLinear, Via::Ws);
}

#[test]
fn bybit_order_types_over_rest() {
    order_types(Venue::BybitLinear, Via::Rest);
}

/// A venue refusal that no retry can fix (insufficient margin: `reject=1`) is reported at once with
/// the venue's code, on both venues and both paths, and never retried.
#[test]
fn margin_rejects_are_final_on_both_venues_and_paths() {
    for venue in [Venue::BinanceUsdm, Venue::BybitLinear] {
        for via in [Via::Ws, Via::Rest] {
            let dir = tempfile::tempdir().unwrap();
            let m = mock(venue, synthetic(), "reject=1", dir.path());
            let mut g = connect(&m, venue, via, true);
            let mut out = Vec::new();
            let o = resting(&m, venue, "no-margin");
            g.submit(&cmd(&o, OrderAction::New(o)), &mut out);
            assert!(pump(&mut g, &mut out, |o| has(
                o,
                "no-margin",
                ExecKind::Rejected
            )));
            let r = out.iter().find(|r| r.kind == ExecKind::Rejected).unwrap();
            let code = if venue == Venue::BinanceUsdm {
                -2019
            } else {
                110007
            };
            assert_eq!(r.reason, code, "{venue:?} {via:?}");
            let s = g.finish();
            assert_eq!((s.retries, s.venue_errors), (0, 1), "{s:?}");
        }
    }
}
