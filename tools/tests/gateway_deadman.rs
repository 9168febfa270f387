//! The venues' dead-man switches armed by the gateway (live mode) against the mock on 127.0.0.1:
//! while the gateway runs, its resting orders stay; when it dies without cancelling, the venue
//! cancels them — Binance by the `countdownCancelAll` it stopped refreshing, Bybit by
//! disconnection protection once the `dcp` private connection has been gone for the window.

mod order_common;

use std::time::{Duration, Instant};

use order_common::gw::*;
use order_common::*;
use qalpha_engine::event::Venue;
use qalpha_engine::order::{ExecKind, OrderAction};
use qalpha_venues::gateway::session::{Gateway, Via};

/// `open` / `canceled`: the venue's status names.
fn dead_man(venue: Venue, window_ms: u64, open: &str, canceled: &str) {
    let dir = tempfile::tempdir().unwrap();
    let m = mock(venue, synthetic(), "", dir.path());
    let mut c = config(&m, venue, Via::Ws, true);
    c.dead_man_ms = Some(window_ms);
    let mut g = Gateway::connect(c).unwrap();
    assert!(g.stats.dead_man_refreshes >= 1, "{:?}", g.stats);
    let mut out = Vec::new();
    let o = resting(&m, venue, "dm-1");
    g.submit(&cmd(&o, OrderAction::New(o)), &mut out);
    assert!(pump(&mut g, &mut out, |o| has(o, "dm-1", ExecKind::Ack)));
    // Alive for longer than the window: the switch never fires.
    let until = Instant::now() + Duration::from_millis(window_ms + window_ms / 2);
    while Instant::now() < until {
        g.poll_io(Some(Duration::from_millis(5)), &mut out);
    }
    assert_eq!(venue_order(&m, venue, "dm-1").0, open);
    // The gateway dies (connections dropped, nothing cancelled, nothing refreshed).
    let s = g.finish();
    if venue == Venue::BinanceUsdm {
        assert!(
            s.dead_man_refreshes >= 3,
            "refreshed every third of the window: {s:?}"
        );
    }
    // Right after the death the order still rests: the switch waits for its window.
    assert_eq!(venue_order(&m, venue, "dm-1").0, open);
    let start = Instant::now();
    while venue_order(&m, venue, "dm-1").0 != canceled {
        assert!(
            start.elapsed() < Duration::from_millis(window_ms + 3000),
            "the venue never cancelled the orphaned order"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn binance_countdown_cancel_all_fires_when_the_gateway_stops_refreshing() {
    dead_man(Venue::BinanceUsdm, 900, "NEW", "CANCELED");
}

#[test]
fn bybit_disconnection_protection_fires_when_the_private_stream_is_gone() {
    dead_man(Venue::BybitLinear, 3000, "New", "Cancelled");
}
