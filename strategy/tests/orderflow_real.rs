//! Order-flow features over the bundled Binance USD-M BTCUSDT capture (216 s of depth diffs,
//! `bookTicker`, trades and mark price), replayed record by record through `qalpha-feeds`' decoder
//! and book sync — the rebuilt book is handed to `on_book` after each `BookTop`, as a live consumer
//! next to the feed would.

use qalpha_engine::capture::CaptureReader;
use qalpha_engine::event::{MarketEvent, MarketPayload, Side, TradeKind};
use qalpha_engine::replay::CaptureHandler;
use qalpha_feeds::replay::VenueRouter;
use qalpha_strategy::orderflow::OrderFlow;

const WINDOWS_MS: [u64; 3] = [1_000, 10_000, 60_000];

#[test]
fn btcusdt_capture_features_are_sane_and_count_the_trades() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../data/sample/btcusdt-usdm-20230404.qcap");
    if !path.exists() {
        eprintln!("skipping: {} not found", path.display());
        return;
    }
    let reader = CaptureReader::open(&path).expect("the bundled sample capture opens");
    let mut router = VenueRouter::new();
    router.begin_file(reader.connections());

    let mut of = OrderFlow::new(&WINDOWS_MS);
    let names = of.names();
    let col = |n: &str| names.iter().position(|c| c == n).unwrap();
    let imbalances: Vec<usize> = names
        .iter()
        .enumerate()
        .filter(|(_, n)| n.contains("imbalance"))
        .map(|(i, _)| i)
        .collect();
    let (spread, sv60, slope, basis, funding, book10) = (
        col("spread_bps"),
        col("signed_volume_60s"),
        col("depth_slope"),
        col("basis_bps"),
        col("funding_rate"),
        col("book_imbalance_10"),
    );

    let mut row = vec![0.0; of.len()];
    let mut events: Vec<MarketEvent> = Vec::new();
    // The independent count: every counted trade as (clock at the trade, signed raw qty), where the
    // clock is the running maximum of the events' exchange times.
    let mut trades: Vec<(u64, i64)> = Vec::new();
    let mut clock = 0u64;
    let (mut n_events, mut n_books, mut n_checked) = (0u64, 0u64, 0u64);
    let (mut saw_depth, mut saw_basis, mut saw_slope) = (false, false, false);

    for rec in reader.records() {
        events.clear();
        router.route(&rec, &mut events);
        for ev in &events {
            n_events += 1;
            of.on_event(ev);
            clock = clock.max(ev.exch_ms);
            match &ev.payload {
                MarketPayload::Trade(t)
                    if !matches!(t.kind, TradeKind::InsuranceFund | TradeKind::Adl) =>
                {
                    let q = t.qty.raw();
                    trades.push((clock, if t.aggressor == Side::Buy { q } else { -q }));
                }
                MarketPayload::BookTop(_) => {
                    let sync = router
                        .binance
                        .book(ev.symbol)
                        .expect("a BookTop has a book");
                    assert!(sync.is_synced(), "BookTop from an unsynced book");
                    of.on_book(sync.book());
                    n_books += 1;
                }
                _ => {}
            }
            of.write(&mut row);
            assert_eq!(of.now_ms(), clock);

            for &i in &imbalances {
                let v = row[i];
                assert!(
                    v.is_nan() || (-1.0..=1.0).contains(&v),
                    "{} = {v} at {clock}",
                    names[i]
                );
            }
            let s = row[spread];
            assert!(
                s.is_nan() || (0.0..100.0).contains(&s),
                "spread {s} bps at {clock}"
            );
            for (i, v) in row.iter().enumerate() {
                assert!(!v.is_infinite(), "{} is infinite at {clock}", names[i]);
            }
            // After the first quote, the touch columns are always defined.
            if clock > 0 && !row[spread].is_nan() {
                assert!(row[col("microprice_offset_bps")].is_finite());
                assert!(row[col("book_imbalance_1")].is_finite());
            }
            saw_depth |= row[book10].is_finite();
            saw_slope |= row[slope].is_finite() && row[slope] > 0.0;
            if row[basis].is_finite() {
                saw_basis = true;
                assert!(row[basis].abs() < 100.0, "basis {} bps", row[basis]);
                assert!(row[funding].abs() < 0.01, "funding {}", row[funding]);
            }

            // Signed volume over 60 s equals the independent sum (every 97th event: the sum is
            // a scan over all trades so far).
            if n_events % 97 == 0 && of.bucketed_trades() == 0 {
                let sum: i64 = trades
                    .iter()
                    .filter(|(t, _)| clock - t < 60_000)
                    .map(|(_, q)| q)
                    .sum();
                assert_eq!(row[sv60], sum as f64 / 1e8, "signed volume at {clock}");
                n_checked += 1;
            }
        }
    }

    assert!(n_books > 1_000, "only {n_books} book updates");
    assert!(trades.len() > 1_000, "only {} trades", trades.len());
    assert!(n_checked > 100, "only {n_checked} signed-volume checks");
    assert_eq!(
        of.bucketed_trades(),
        0,
        "the default rings should keep this capture exact"
    );
    assert!(saw_depth && saw_slope && saw_basis);
    eprintln!(
        "{n_events} events, {n_books} books, {} trades, {n_checked} signed-volume checks",
        trades.len()
    );
}
