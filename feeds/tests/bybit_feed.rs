//! `BybitFeed` behaviour on small synthetic frames: what each topic emits, gap → stale → snapshot,
//! level-1 deltas merged into quotes, ticker merging, control replies and disconnects. Real frames
//! are in `bybit_real_frames.rs`.

use qalpha_engine::event::{MarketEvent, MarketPayload, StaleReason, Venue};
use qalpha_engine::{Price, Qty, Symbol};
use qalpha_feeds::bybit::{BybitFeed, SyncCounters};

fn feed(frames: &[&str]) -> (BybitFeed, Vec<MarketEvent>) {
    let mut f = BybitFeed::new();
    let mut ev = Vec::new();
    for (i, fr) in frames.iter().enumerate() {
        f.on_ws_frame(i as u64 + 1, fr.as_bytes(), &mut ev);
    }
    (f, ev)
}
fn px(s: &str) -> Price {
    Price::parse(s).unwrap()
}

#[test]
fn level_one_deltas_merge_into_the_quote() {
    let (f, ev) = feed(&[
        r#"{"topic":"orderbook.1.BTCUSDT","type":"snapshot","ts":1,"data":{"s":"BTCUSDT","b":[["100","1"]],"a":[["101","2"]],"u":7,"seq":70}}"#,
        r#"{"topic":"orderbook.1.BTCUSDT","type":"delta","ts":2,"data":{"s":"BTCUSDT","b":[["100","0"],["99","3"]],"a":[],"u":8,"seq":80}}"#,
    ]);
    let quotes: Vec<_> = ev
        .iter()
        .filter_map(|e| match e.payload {
            MarketPayload::Quote(q) => Some(q),
            _ => None,
        })
        .collect();
    assert_eq!(ev.len(), 2, "quotes only: {ev:?}");
    assert_eq!(quotes[1].update_id, 80);
    assert_eq!(
        (quotes[1].bid_px, quotes[1].bid_qty),
        (px("99"), Qty::parse("3").unwrap())
    );
    assert_eq!(quotes[1].ask_px, px("101"));
    assert_eq!(ev[0].venue, Venue::BybitLinear);
    assert_eq!(f.sync_counters(), SyncCounters::default());
    assert_eq!(f.quote_sync_counters().applied, 1);
}

#[test]
fn gap_emits_stale_and_the_next_snapshot_resyncs() {
    let snap = |u: u64, seq: u64| {
        format!(
            r#"{{"topic":"orderbook.50.X","type":"snapshot","ts":1,"data":{{"s":"X","b":[["1","1"]],"a":[["2","1"]],"u":{u},"seq":{seq}}}}}"#
        )
    };
    let delta = |u: u64, seq: u64| {
        format!(
            r#"{{"topic":"orderbook.50.X","type":"delta","ts":1,"data":{{"s":"X","b":[["1.5","1"]],"a":[],"u":{u},"seq":{seq}}}}}"#
        )
    };
    let (s1, d2, d4, d5, s9) = (
        snap(1, 10),
        delta(2, 20),
        delta(4, 40),
        delta(5, 50),
        snap(9, 90),
    );
    let (f, ev) = feed(&[&s1, &d2, &d4, &d5, &s9]);
    let kinds: Vec<_> = ev
        .iter()
        .map(|e| match e.payload {
            MarketPayload::BookSynced { update_id } => format!("synced {update_id}"),
            MarketPayload::BookTop(t) => format!("top {}", t.update_id),
            MarketPayload::BookStale {
                reason,
                last_update_id,
            } => {
                format!("stale {reason:?} {last_update_id}")
            }
            other => format!("{other:?}"),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "synced 10",
            "top 10",
            "top 20",
            "stale SequenceGap 20",
            "synced 90",
            "top 90"
        ]
    );
    let c = f.counters();
    assert_eq!((c.stale_events, c.resyncs, c.resync_requests), (1, 1, 1));
    assert!(f.pending_resubscribes().is_empty());
    let s = f.sync_counters();
    assert_eq!(
        (s.gaps, s.syncs, s.snapshots, s.discarded, s.applied),
        (1, 2, 2, 1, 1)
    );
}

#[test]
fn ticker_emits_mark_price_only_on_change() {
    let (f, ev) = feed(&[
        r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"markPrice":"5"},"cs":1,"ts":1}"#,
        r#"{"topic":"tickers.BTCUSDT","type":"snapshot","data":{"symbol":"BTCUSDT","markPrice":"10","indexPrice":"11","fundingRate":"0.0001","nextFundingTime":"1680681600000","lastPrice":"9"},"cs":2,"ts":2}"#,
        r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","lastPrice":"9.5","bid1Price":"9"},"cs":3,"ts":3}"#,
        r#"{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","indexPrice":"11.5"},"cs":4,"ts":4}"#,
    ]);
    let marks: Vec<_> = ev
        .iter()
        .filter_map(|e| match e.payload {
            MarketPayload::MarkPrice(m) => Some((e.exch_ms, m)),
            _ => None,
        })
        .collect();
    assert_eq!(marks.len(), 2, "{marks:?}");
    assert_eq!(marks[0].1.next_funding_ms, 1680681600000);
    assert_eq!((marks[1].0, marks[1].1.index_px), (4, px("11.5")));
    assert_eq!(f.counters().orphan_ticker_deltas, 1);
    let t = f.ticker(Symbol::parse("BTCUSDT").unwrap()).unwrap();
    assert_eq!((t.last_px, t.cross_seq), (Some(px("9.5")), 4));
}

#[test]
fn control_frames_are_counted_and_failed_subscriptions_apart() {
    let (f, ev) = feed(&[
        r#"{"success":true,"ret_msg":"pong","conn_id":"a","req_id":"","op":"ping"}"#,
        r#"{"success":true,"ret_msg":"","conn_id":"a","req_id":"","op":"subscribe"}"#,
        r#"{"success":false,"ret_msg":"Invalid topic: x","conn_id":"a","req_id":"","op":"subscribe"}"#,
        r#"{"success":false,"ret_msg":"Invalid topic: y","conn_id":"a","req_id":"","op":"subscribe"}"#,
    ]);
    assert!(ev.is_empty());
    let c = f.counters();
    assert_eq!(
        (c.control_frames, c.pongs, c.failed_subscriptions),
        (4, 1, 2)
    );
    assert_eq!(
        (c.decode.decoded, c.decode.ignored, c.decode.malformed),
        (4, 4, 0)
    );
}

#[test]
fn disconnect_marks_books_stale_and_tickers_wait_for_a_snapshot() {
    let mut f = BybitFeed::new();
    let mut ev = Vec::new();
    f.on_ws_frame(1, br#"{"topic":"orderbook.200.X","type":"snapshot","ts":1,"data":{"s":"X","b":[],"a":[],"u":3,"seq":30}}"#, &mut ev);
    f.on_ws_frame(
        2,
        br#"{"topic":"tickers.X","type":"snapshot","data":{"symbol":"X","markPrice":"1"},"ts":1}"#,
        &mut ev,
    );
    ev.clear();
    f.on_disconnect(10, &mut ev);
    assert!(matches!(
        ev[..],
        [MarketEvent {
            payload: MarketPayload::BookStale {
                reason: StaleReason::Disconnected,
                last_update_id: 30
            },
            ..
        }]
    ));
    f.on_ws_frame(
        11,
        br#"{"topic":"tickers.X","type":"delta","data":{"markPrice":"2"},"ts":2}"#,
        &mut ev,
    );
    assert_eq!(f.counters().orphan_ticker_deltas, 1);
    f.finish();
    assert_eq!(f.counters().stale_ns, 1);
}
