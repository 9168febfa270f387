//! The gateway thread's logic (`qalpha_venues::gateway::session`) against the mock exchange on
//! 127.0.0.1: WebSocket order entry with REST fallback, private streams, reconciliation after a
//! private-stream drop, and adoption of open orders after a restart — both venues.

mod order_common;

use std::time::{Duration, Instant};

use order_common::gw::*;
use order_common::*;
use qalpha_engine::event::Venue;
use qalpha_engine::order::{ExecKind, ExecReport, NewOrder, OrderAction, TimeInForce};
use qalpha_engine::{Price, Qty, Side};
use qalpha_venues::gateway::session::{Gateway, Via};

/// Place (resting post-only) → amend → cancel → a marketable IOC that fills, on `via`.
fn order_lifecycle(venue: Venue, via: Via, private: bool) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "", dir.path());
    let mut g = Gateway::connect(config(&m, venue, via, private)).unwrap();
    if via == Via::Ws {
        assert!(
            g.order_ws_ready(),
            "order WebSocket ready at start: {:?}",
            g.stats.last_error
        );
    }
    assert_eq!(g.private_ready(), private, "{:?}", g.stats.last_error);
    let (bid, ask) = touch(&m, venue);
    let mut out = Vec::new();

    let rest = order(
        venue,
        "gw-rest-1",
        Side::Buy,
        TimeInForce::PostOnly,
        ticks(bid, -50),
        "0.010",
    );
    g.submit(&cmd(&rest, OrderAction::New(rest)), &mut out);
    assert!(
        pump(&mut g, &mut out, |o| has(o, "gw-rest-1", ExecKind::Ack)),
        "{out:?} {:?}",
        g.stats.last_error
    );
    let new_px = ticks(bid, -60);
    let amend = OrderAction::Amend {
        client_id: rest.client_id,
        price: new_px,
        qty: Qty::parse("0.020").unwrap(),
    };
    g.submit(&cmd(&rest, amend), &mut out);
    let start = Instant::now();
    loop {
        g.poll_io(Some(Duration::from_millis(5)), &mut out);
        let listed = match venue {
            Venue::BinanceUsdm => binance_open_orders(&m)[0]["price"].clone(),
            Venue::BybitLinear => bybit_realtime(&m, "")[0]["price"].clone(),
        };
        if Price::parse(listed.as_str().unwrap()).unwrap() == new_px {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "amend never applied"
        );
    }
    g.submit(
        &cmd(
            &rest,
            OrderAction::Cancel {
                client_id: rest.client_id,
            },
        ),
        &mut out,
    );
    assert!(
        pump(&mut g, &mut out, |o| has(
            o,
            "gw-rest-1",
            ExecKind::Canceled
        )),
        "{out:?}"
    );

    let take = order(
        venue,
        "gw-take-1",
        Side::Buy,
        TimeInForce::Ioc,
        ticks(ask, 50),
        "0.003",
    );
    g.submit(&cmd(&take, OrderAction::New(take)), &mut out);
    assert!(
        pump(&mut g, &mut out, |o| filled(o, "gw-take-1") == take.qty
            || has(o, "gw-take-1", ExecKind::Expired)),
        "{out:?}"
    );
    let (status, executed) = venue_order(&m, venue, "gw-take-1");
    // Whatever the venue executed is exactly what was reported (the IOC may be cut by the book).
    assert!(
        pump(&mut g, &mut out, |o| filled(o, "gw-take-1") == executed),
        "{status} {executed} {out:?}"
    );
    assert!(
        executed.raw() > 0,
        "an IOC through the touch fills: {status}"
    );
    let fees: i64 = out
        .iter()
        .filter(|r| r.client_id.as_str() == "gw-take-1")
        .map(|r| r.fee.raw())
        .sum();
    assert!(fees > 0, "taker fills pay a fee");
    // Every report appears once: no fill twice.
    let acks = out
        .iter()
        .filter(|r| r.client_id.as_str() == "gw-rest-1" && r.kind == ExecKind::Ack)
        .count();
    assert_eq!(acks, 1);
    let s = g.finish();
    match via {
        Via::Ws => {
            assert!(s.ws_requests >= 4, "{s:?}");
            assert_eq!(s.rest_fallbacks, 0);
        }
        Via::Rest => assert_eq!(s.ws_requests, 0),
    }
    assert_eq!(s.tracker.duplicate_orders, 0);
}

#[test]
fn binance_websocket_orders_with_the_user_data_stream() {
    order_lifecycle(Venue::BinanceUsdm, Via::Ws, true);
}

#[test]
fn bybit_trade_websocket_with_the_private_stream() {
    order_lifecycle(Venue::BybitLinear, Via::Ws, true);
}

#[test]
fn binance_rest_orders_without_a_private_stream() {
    order_lifecycle(Venue::BinanceUsdm, Via::Rest, false);
}

#[test]
fn bybit_rest_orders_without_a_private_stream() {
    order_lifecycle(Venue::BybitLinear, Via::Rest, false);
}

/// The private stream is cut again and again (`drop-private`): each fill the gateway missed is
/// recovered by reconciliation, none is reported twice.
fn private_drop_recovers_fills(venue: Venue) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "drop-private=0.3", dir.path());
    let mut g = Gateway::connect(config(&m, venue, Via::Ws, true)).unwrap();
    let mut out = Vec::new();
    let mut ids = Vec::new();
    for i in 0..12 {
        let (bid, ask) = touch(&m, venue);
        let (side, px) = if i % 2 == 0 {
            (Side::Buy, ticks(ask, 30))
        } else {
            (Side::Sell, ticks(bid, -30))
        };
        let id = format!("drop-{i}");
        let o = order(venue, &id, side, TimeInForce::Ioc, px, "0.002");
        g.submit(&cmd(&o, OrderAction::New(o)), &mut out);
        ids.push(id);
        // Paced under Bybit's 10 creates per second (the gateway would refuse a faster burst).
        let next = Instant::now() + Duration::from_millis(120);
        while Instant::now() < next {
            g.poll_io(Some(Duration::from_millis(5)), &mut out);
        }
    }
    let venue_fills: Vec<Qty> = ids.iter().map(|id| venue_order(&m, venue, id).1).collect();
    let ok = pump(&mut g, &mut out, |o| {
        ids.iter()
            .zip(&venue_fills)
            .all(|(id, v)| filled(o, id) == *v)
    });
    let reported: Vec<Qty> = ids.iter().map(|id| filled(&out, id)).collect();
    assert!(ok, "venue {venue_fills:?} vs reported {reported:?}");
    assert!(venue_fills.iter().any(|q| q.raw() > 0));
    // The position caught up too (fills missed by the stream moved it).
    let at_venue = venue_position(&m, venue);
    let start = Instant::now();
    while gateway_position(&g) != at_venue && start.elapsed() < Duration::from_secs(10) {
        g.poll_io(Some(Duration::from_millis(5)), &mut out);
    }
    assert_eq!(gateway_position(&g), at_venue);
    let drops = m
        .counters
        .private_drops
        .load(std::sync::atomic::Ordering::Relaxed);
    let s = g.finish();
    assert!(drops >= 1, "the fault fired");
    assert!(s.private_reconnects >= 1, "{s:?}");
    assert!(s.reconciliations >= 2, "{s:?}");
}

#[test]
fn binance_private_stream_drop_is_reconciled() {
    private_drop_recovers_fills(Venue::BinanceUsdm);
}

#[test]
fn bybit_private_stream_drop_is_reconciled() {
    private_drop_recovers_fills(Venue::BybitLinear);
}

/// A gateway stops with resting orders; the next one adopts them and never places them again.
fn restart_adopts_open_orders(venue: Venue) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "", dir.path());
    let (bid, _) = touch(&m, venue);
    let mut first = Gateway::connect(config(&m, venue, Via::Ws, true)).unwrap();
    let mut out = Vec::new();
    let orders: Vec<NewOrder> = (0..3)
        .map(|i| {
            order(
                venue,
                &format!("keep-{i}"),
                Side::Buy,
                TimeInForce::PostOnly,
                ticks(bid, -40 - i),
                "0.001",
            )
        })
        .collect();
    for o in &orders {
        first.submit(&cmd(o, OrderAction::New(*o)), &mut out);
    }
    assert!(pump(&mut first, &mut out, |o| (0..3).all(|i| has(
        o,
        &format!("keep-{i}"),
        ExecKind::Ack
    ))));
    drop(first.finish());

    let mut second = Gateway::connect(config(&m, venue, Via::Ws, true)).unwrap();
    let mut out = Vec::new();
    second.poll_io(Some(Duration::ZERO), &mut out);
    for i in 0..3 {
        assert!(
            has(&out, &format!("keep-{i}"), ExecKind::Ack),
            "adopted keep-{i}: {out:?}"
        );
    }
    assert_eq!(second.open_orders().count(), 3);
    // Positions are reconciled at start as well.
    assert_eq!(gateway_position(&second), venue_position(&m, venue));
    // The strategy, restarted, tries one of them again: refused locally, never sent.
    second.submit(&cmd(&orders[1], OrderAction::New(orders[1])), &mut out);
    assert!(out
        .iter()
        .any(|r| r.client_id.as_str() == "keep-1" && r.kind == ExecKind::Rejected));
    let mut listed = open_count(&m, venue);
    listed.sort();
    assert_eq!(listed, vec!["keep-0", "keep-1", "keep-2"]);
    // Adopted orders are managed like any other.
    second.submit(
        &cmd(
            &orders[0],
            OrderAction::Cancel {
                client_id: orders[0].client_id,
            },
        ),
        &mut out,
    );
    assert!(
        pump(&mut second, &mut out, |o| has(
            o,
            "keep-0",
            ExecKind::Canceled
        )),
        "{out:?}"
    );
    let s = second.finish();
    assert_eq!(s.tracker.adopted, 3);
    assert_eq!(s.tracker.duplicate_orders, 1);
}

#[test]
fn binance_restart_adopts_open_orders_without_duplicates() {
    restart_adopts_open_orders(Venue::BinanceUsdm);
}

#[test]
fn bybit_restart_adopts_open_orders_without_duplicates() {
    restart_adopts_open_orders(Venue::BybitLinear);
}

/// Commands are taken between the messages of one read, not only between polls: with several
/// answers waiting in the order WebSocket, a command pushed meanwhile is submitted by the same
/// `poll_serving` that hands the answers on (bench/README.md: answers read in a batch held back the
/// next order).
#[test]
fn a_command_is_taken_between_the_messages_of_one_read() {
    let venue = Venue::BinanceUsdm;
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "", dir.path());
    let mut g = Gateway::connect(config(&m, venue, Via::Ws, true)).unwrap();
    assert!(g.order_ws_ready(), "{:?}", g.stats.last_error);
    let (bid, _) = touch(&m, venue);
    let mut out = Vec::new();
    let resting = |i: i64| {
        order(
            venue,
            &format!("gw-batch-{i}"),
            Side::Buy,
            TimeInForce::PostOnly,
            ticks(bid, -50 - i),
            "0.010",
        )
    };
    for i in 0..4 {
        let o = resting(i);
        g.submit(&cmd(&o, OrderAction::New(o)), &mut out);
    }
    // The four answers (and their user-data updates) arrive and wait, unread.
    std::thread::sleep(Duration::from_millis(500));
    let (mut tx, mut rx) = qalpha_engine::ring::ring(
        8,
        qalpha_engine::ring::FullPolicy::DropNewest,
        qalpha_engine::runtime::WaitMode::Spin,
    );
    let next = resting(4);
    tx.push(cmd(&next, OrderAction::New(next)));
    let took = g.poll_serving(Some(Duration::ZERO), &mut out, Some(&mut rx));
    assert!(
        took && rx.is_empty(),
        "the command waited for the next turn"
    );
    let acks = |o: &[ExecReport]| (0..4).all(|i| has(o, &format!("gw-batch-{i}"), ExecKind::Ack));
    assert!(
        acks(&out),
        "the answers were read in that same turn: {out:?}"
    );
    assert!(
        pump(&mut g, &mut out, |o| has(o, "gw-batch-4", ExecKind::Ack)),
        "{out:?}"
    );
    assert_eq!(binance_open_orders(&m).as_array().unwrap().len(), 5);
    assert_eq!(g.finish().tracker.duplicate_orders, 0);
}
