//! The gateway's retry policies (`qalpha_venues::gateway::session`) against the mock exchange's
//! `rate-limit` and `clock-jump` faults on 127.0.0.1, both venues, over the WebSocket API and over
//! REST: a rate-limited order is resent once after the venue's back-off and, refused again, rejected
//! with the venue's code; an order refused for its timestamp after the venue's clock jumped is
//! acknowledged after one clock re-sync. No order is ever placed twice.
//! Without a private stream (the gateway polls open orders meanwhile) an order waiting out its
//! back-off is not mistaken for one the venue lost.

mod order_common;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use order_common::gw::*;
use order_common::*;
use qalpha_engine::event::Venue;
use qalpha_engine::order::{ExecKind, ExecReport};
use qalpha_venues::gateway::session::{Gateway, GatewayStats, Via};
use qalpha_venues::mock::MockExchange;

fn rate_limit_code(venue: Venue) -> i32 {
    match venue {
        Venue::BinanceUsdm => -1015,
        Venue::BybitLinear => 10006,
    }
}

fn check_transport(s: &GatewayStats, via: Via) {
    match via {
        Via::Ws => assert_eq!((s.rest_fallbacks, s.order_ws_reconnects), (0, 0), "{s:?}"),
        Via::Rest => assert_eq!(s.ws_requests, 0, "{s:?}"),
    }
}

/// `rate-limit=1`: the order is refused, resent once after the back-off, refused again and
/// rejected with the venue's rate-limit code; the venue never placed it.
fn rate_limited_order_is_retried_once_then_rejected(venue: Venue, via: Via, private: bool) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "rate-limit=1", dir.path());
    let mut g = connect(&m, venue, via, private);
    let mut out = Vec::new();
    let o = resting(&m, venue, "rl-1");
    let sent = Instant::now();
    g.submit(&new_order(&o), &mut out);
    assert!(
        pump(&mut g, &mut out, |o| outcome(o, "rl-1").is_some()),
        "{out:?} {:?}",
        g.stats
    );
    let r = outcome(&out, "rl-1").unwrap();
    assert_eq!(
        (r.kind, r.reason),
        (ExecKind::Rejected, rate_limit_code(venue)),
        "{out:?}"
    );
    assert!(
        sent.elapsed() >= Duration::from_millis(900),
        "the resend waits for the venue's back-off"
    );
    assert_eq!(placed(&venue_ids(&m, venue), "rl-1"), 0);
    let s = g.finish();
    assert_eq!((s.retries, s.venue_errors), (1, 2), "{s:?}");
    let on_ws = if via == Via::Ws { 2 } else { 0 };
    assert_eq!(
        s.ws_requests, on_ws,
        "both attempts on one transport: {s:?}"
    );
    check_transport(&s, via);
    assert_eq!(s.tracker.duplicate_orders, 0);
}

#[test]
fn binance_ws_rate_limit_retries_once_then_rejects() {
    rate_limited_order_is_retried_once_then_rejected(Venue::BinanceUsdm, Via::Ws, true);
}

#[test]
fn binance_rest_rate_limit_retries_once_then_rejects() {
    rate_limited_order_is_retried_once_then_rejected(Venue::BinanceUsdm, Via::Rest, true);
}

#[test]
fn bybit_ws_rate_limit_retries_once_then_rejects() {
    rate_limited_order_is_retried_once_then_rejected(Venue::BybitLinear, Via::Ws, true);
}

#[test]
fn bybit_rest_rate_limit_retries_once_then_rejects() {
    rate_limited_order_is_retried_once_then_rejected(Venue::BybitLinear, Via::Rest, true);
}

/// `rate-limit=0.5` over ten orders (the mock's draws are seeded): some are retried; each ends
/// acknowledged — placed exactly once — or rejected with the rate-limit code and never placed, and
/// nothing is reported after that end.
fn rate_limited_orders_end_placed_once_or_rejected(venue: Venue, via: Via, private: bool) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "rate-limit=0.5", dir.path());
    let mut g = connect(&m, venue, via, private);
    let mut out = Vec::new();
    let ids: Vec<String> = (0..10).map(|i| format!("rlp-{i}")).collect();
    for id in &ids {
        let o = resting(&m, venue, id);
        g.submit(&new_order(&o), &mut out);
        g.poll_io(Some(Duration::ZERO), &mut out);
    }
    let all_done = |o: &[ExecReport]| ids.iter().all(|id| outcome(o, id).is_some());
    assert!(pump(&mut g, &mut out, all_done), "{out:?} {:?}", g.stats);
    // Past the back-off: every retry has been answered.
    let settle = Instant::now();
    while settle.elapsed() < Duration::from_millis(1300) {
        g.poll_io(Some(Duration::from_millis(5)), &mut out);
    }
    let listed = venue_ids(&m, venue);
    let mut rejected = 0;
    for id in &ids {
        let mine: Vec<(ExecKind, i32)> = out
            .iter()
            .filter(|r| r.client_id.as_str() == id)
            .map(|r| (r.kind, r.reason))
            .collect();
        match mine.as_slice() {
            [(ExecKind::Ack, _)] => assert_eq!(placed(&listed, id), 1, "{id}: {listed:?}"),
            [(ExecKind::Rejected, code)] => {
                assert_eq!(*code, rate_limit_code(venue), "{id}: {mine:?}");
                assert_eq!(placed(&listed, id), 0, "{id} rejected, never placed");
                rejected += 1;
            }
            _ => panic!("{id}: one ack or one reject, got {mine:?}; venue {listed:?}"),
        }
    }
    let unique: HashSet<&String> = listed.iter().collect();
    assert_eq!(unique.len(), listed.len(), "no order twice: {listed:?}");
    let s = g.finish();
    assert!(s.retries >= 1, "the fault fired: {s:?}");
    // Every refused first attempt is retried once; a reject is a refused retry.
    assert_eq!(s.venue_errors, s.retries + rejected, "{s:?}");
    assert!(rejected < ids.len() as u64, "some orders got through");
    check_transport(&s, via);
    assert_eq!(s.tracker.duplicate_orders, 0);
}

#[test]
fn binance_ws_rate_limited_orders_are_placed_at_most_once() {
    rate_limited_orders_end_placed_once_or_rejected(Venue::BinanceUsdm, Via::Ws, true);
}

#[test]
fn binance_rest_rate_limited_orders_are_placed_at_most_once() {
    rate_limited_orders_end_placed_once_or_rejected(Venue::BinanceUsdm, Via::Rest, true);
}

#[test]
fn bybit_ws_rate_limited_orders_are_placed_at_most_once() {
    rate_limited_orders_end_placed_once_or_rejected(Venue::BybitLinear, Via::Ws, true);
}

#[test]
fn bybit_rest_rate_limited_orders_are_placed_at_most_once() {
    rate_limited_orders_end_placed_once_or_rejected(Venue::BybitLinear, Via::Rest, true);
}

#[test]
fn binance_rest_rate_limited_orders_without_private_stream() {
    rate_limited_orders_end_placed_once_or_rejected(Venue::BinanceUsdm, Via::Rest, false);
}

#[test]
fn bybit_rest_rate_limited_orders_without_private_stream() {
    rate_limited_orders_end_placed_once_or_rejected(Venue::BybitLinear, Via::Rest, false);
}

/// The jump: the venue's clock 10 s ahead from 2 s after the mock started (time enough for the
/// gateway to connect and sync first).
const JUMP: &str = "clock-jump=10s@2s";

/// Polls `g` until the mock's clock has jumped (its time endpoint ≥ 5 s ahead of ours).
fn wait_for_jump(m: &MockExchange, venue: Venue, g: &mut Gateway, out: &mut Vec<ExecReport>) {
    let start = Instant::now();
    while venue_ms(m, venue) < now_ms() + 5_000 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "the clock never jumped"
        );
        g.poll_io(Some(Duration::from_millis(20)), out);
    }
}

/// A gateway synced before the venue's clock jumped: its next order is refused for its timestamp
/// (-1021 / 10002), and the gateway re-syncs (from scratch: its old samples describe the old clock)
/// and resends once: acknowledged, placed once. A gateway connected after the jump syncs to the new
/// clock and trades at once.
fn clock_jump(venue: Venue, via: Via) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), JUMP, dir.path());
    let mut g = connect(&m, venue, via, true);
    let mut out = Vec::new();
    let before = g.stats.clock_offset_ns;
    assert!(
        before.abs() < 1_000_000_000,
        "the gateway synced before the jump (offset {before} ns): the mock took too long to start"
    );
    wait_for_jump(&m, venue, &mut g, &mut out);
    let o = resting(&m, venue, "jump-1");
    g.submit(&new_order(&o), &mut out);
    assert!(
        pump(&mut g, &mut out, |o| outcome(o, "jump-1").is_some()),
        "{out:?} {:?}",
        g.stats
    );
    let r = *outcome(&out, "jump-1").unwrap();
    let listed = venue_ids(&m, venue);
    let s = g.finish();
    assert_eq!(s.retries, 1, "one re-sync and resend: {s:?}");
    assert_eq!(
        r.kind,
        ExecKind::Ack,
        "acknowledged after one re-sync: {r:?} {s:?}"
    );
    assert_eq!(placed(&listed, "jump-1"), 1);
    assert_eq!(s.venue_errors, 1, "{s:?}");
    assert!(s.clock_offset_ns > 9_000_000_000, "re-synced: {s:?}");
    check_transport(&s, via);

    let mut fresh = connect(&m, venue, via, true);
    assert!(
        fresh.stats.clock_offset_ns > 9_000_000_000,
        "{:?}",
        fresh.stats
    );
    let o = resting(&m, venue, "jump-2");
    fresh.submit(&new_order(&o), &mut out);
    assert!(
        pump(&mut fresh, &mut out, |o| outcome(o, "jump-2").is_some()),
        "{out:?}"
    );
    assert_eq!(
        outcome(&out, "jump-2").unwrap().kind,
        ExecKind::Ack,
        "{out:?}"
    );
    assert_eq!(placed(&venue_ids(&m, venue), "jump-2"), 1);
    let s = fresh.finish();
    assert_eq!((s.retries, s.venue_errors), (0, 0), "{s:?}");
}

#[test]
fn binance_ws_clock_jump_acknowledged_after_one_resync() {
    clock_jump(Venue::BinanceUsdm, Via::Ws);
}

#[test]
fn binance_rest_clock_jump_acknowledged_after_one_resync() {
    clock_jump(Venue::BinanceUsdm, Via::Rest);
}

#[test]
fn bybit_ws_clock_jump_acknowledged_after_one_resync() {
    clock_jump(Venue::BybitLinear, Via::Ws);
}

#[test]
fn bybit_rest_clock_jump_acknowledged_after_one_resync() {
    clock_jump(Venue::BybitLinear, Via::Rest);
}

/// Bybit allows 10 creates per second per UID: a burst of 15 sends 10 and refuses 5 locally with
/// the venue's own code (10006) — never sent, so the venue never has to refuse them.
#[test]
fn bybit_client_side_limit_refuses_the_eleventh_create_in_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(Venue::BybitLinear, synthetic(), "", dir.path());
    let mut g = connect(&m, Venue::BybitLinear, Via::Ws, true);
    let mut out = Vec::new();
    // Start right after a second boundary so the burst fits in one window.
    while qalpha_engine::clock::now_ns() % 1_000_000_000 > 200_000_000 {
        std::thread::sleep(Duration::from_millis(5));
    }
    for i in 0..15 {
        let o = resting(&m, Venue::BybitLinear, &format!("burst-{i}"));
        g.submit(&new_order(&o), &mut out);
    }
    assert!(pump(&mut g, &mut out, |o| (0..15).all(|i| outcome(
        o,
        &format!("burst-{i}")
    )
    .is_some())));
    let refused: Vec<String> = (0..15)
        .map(|i| format!("burst-{i}"))
        .filter(|id| outcome(&out, id).is_some_and(|r| r.kind == ExecKind::Rejected))
        .collect();
    assert_eq!(refused.len(), 5, "{out:?}");
    for id in &refused {
        assert_eq!(outcome(&out, id).unwrap().reason, 10006);
    }
    let listed = venue_ids(&m, Venue::BybitLinear);
    assert!(refused.iter().all(|id| placed(&listed, id) == 0));
    let s = g.finish();
    assert_eq!((s.throttled, s.venue_errors), (5, 0), "{s:?}");
}

/// `ack-delay` longer than the gateway's `ack_timeout`: the unanswered order is looked up at the
/// venue (reconciled by a query) instead of being resent; it is acknowledged once — by the query
/// or by the late answer, never both — and placed once.
fn ack_timeout_is_reconciled_not_resent(venue: Venue, via: Via) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "ack-delay=1200ms", dir.path());
    let mut cfg = config(&m, venue, via, false);
    cfg.ack_timeout = Duration::from_millis(300);
    let mut g = Gateway::connect(cfg).unwrap();
    let mut out = Vec::new();
    let o = resting(&m, venue, "slow-1");
    g.submit(&new_order(&o), &mut out);
    assert!(
        pump(&mut g, &mut out, |o| outcome(o, "slow-1").is_some()),
        "{out:?} {:?}",
        g.stats
    );
    assert_eq!(
        outcome(&out, "slow-1").unwrap().kind,
        ExecKind::Ack,
        "{out:?}"
    );
    // Let the late answer arrive too: it must not produce a second acknowledgement.
    let until = Instant::now() + Duration::from_millis(1500);
    while Instant::now() < until {
        g.poll_io(Some(Duration::from_millis(5)), &mut out);
    }
    let acks = out
        .iter()
        .filter(|r| r.client_id.as_str() == "slow-1" && r.kind == ExecKind::Ack)
        .count();
    assert_eq!(acks, 1, "{out:?}");
    assert_eq!(placed(&venue_ids(&m, venue), "slow-1"), 1);
    let s = g.finish();
    // Found at the venue by a query (the timeout's lookup or the open-order poll), not resent;
    // the late answer was recognised as a repeat.
    assert!(
        s.ack_timeouts + s.reconciliations >= 1,
        "{} {}",
        s.ack_timeouts,
        s.reconciliations
    );
    assert_eq!(s.orders, 1, "one placement request");
    assert!(s.tracker.duplicate_reports >= 1, "{:?}", s.tracker);
    assert_eq!(s.tracker.duplicate_orders, 0, "{:?}", s.tracker);
}

#[test]
fn binance_ws_ack_timeout_is_reconciled_not_resent() {
    ack_timeout_is_reconciled_not_resent(Venue::BinanceUsdm, Via::Ws);
}

#[test]
fn bybit_ws_ack_timeout_is_reconciled_not_resent() {
    ack_timeout_is_reconciled_not_resent(Venue::BybitLinear, Via::Ws);
}
