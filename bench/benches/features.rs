//! Per-update cost of the strategy's feature library, on real data only.
//!
//! Measures, one update per iteration (criterion's time is the per-bar or per-event time):
//!
//! - `bar_features/standard`: `FeatureSet::update` of the standard set (the 44 columns the models
//!   read) for one closed bar, row written; `bar_features/{trend,oscillators,volume,extras}`: the
//!   same for each indicator group of that set on its own, to show where the per-bar time goes.
//!   Bars are the real Binance spot BTCUSDT 1m klines in `../shared/data/klines` (3,000 bars),
//!   cycled in order; when that folder is absent, the 1 s time bars built from the bundled
//!   capture's trades (about 215 bars). The wrap from the last bar to the first is one price jump
//!   in thousands of bars.
//! - `orderflow/on_event`: `OrderFlow::on_event` (1 s / 10 s / 60 s trade windows) on every market
//!   event of the bundled Binance USD-M capture, in capture order (`BookTop`, `Quote`, `Trade`,
//!   `MarkPrice`, …, as `qalpha-feeds` decodes them); `orderflow/on_event_write` also writes the
//!   row, as a consumer reading the features after each event does. At the end of the capture the
//!   state is rebuilt outside the timed region, so the event clock never runs backwards.
//! - `orderflow/on_book`: `OrderFlow::on_book` on real rebuilt books — the feed's 1000-level
//!   `OrderBook` copied at 64 `BookTop`s spread over the capture, cycled — the call a consumer
//!   makes after each depth update.
//!
//! Why: the feature update is the first thing the strategy thread does with each bar and event;
//! these numbers bound how much of the per-event budget is left for the decision itself.
//! Run: `cargo bench -p qalpha-bench --bench features` (add `-- --warm-up-time 1
//! --measurement-time 3` for a short run).

use std::hint::black_box;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use qalpha_bench::SAMPLE_CAPTURE;
use qalpha_engine::capture::CaptureReader;
use qalpha_engine::event::{MarketEvent, MarketPayload};
use qalpha_engine::replay::CaptureHandler;
use qalpha_feeds::book::OrderBook;
use qalpha_feeds::replay::VenueRouter;
use qalpha_strategy::bars::{read_klines, Bar, TimeBars};
use qalpha_strategy::features::extra::{
    BbWidth, CloseLocation, EmaRatio, LogReturn, RangeBps, RealizedVol, Returns, SmaDistance,
};
use qalpha_strategy::features::oscillators::{Atr, Mom, Roc, Rsi, Stoch, UltOsc, WillR};
use qalpha_strategy::features::standard::standard;
use qalpha_strategy::features::trend::{Adx, Aroon, Bbands, Cci, Ema, Macd, Sma};
use qalpha_strategy::features::volume::{Ad, Mfi, Obv, TakerBuyRatio, VolumeZ, VwapDistance};
use qalpha_strategy::features::{FeatureSet, Indicator};
use qalpha_strategy::orderflow::OrderFlow;

/// The real kline file the bar benchmarks prefer.
const KLINES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../shared/data/klines/binance-spot-btcusdt-1m.csv"
);

/// Trade windows of the order-flow benchmarks, ms.
const WINDOWS_MS: [u64; 3] = [1_000, 10_000, 60_000];

/// Books the `on_book` benchmark cycles through.
const BOOKS: usize = 64;

/// The capture's market events, in order, and copies of the feed's book at `BOOKS` `BookTop`s
/// spread over it.
struct Replay {
    events: Vec<MarketEvent>,
    books: Vec<OrderBook>,
}

impl Replay {
    fn load() -> Self {
        let reader =
            CaptureReader::open(SAMPLE_CAPTURE).unwrap_or_else(|e| panic!("{SAMPLE_CAPTURE}: {e}"));
        let mut router = VenueRouter::new();
        router.begin_file(reader.connections());
        let mut events = Vec::new();
        let mut tops = Vec::new(); // (event index, book)
        let mut batch = Vec::new();
        for rec in reader.records() {
            batch.clear();
            router.route(&rec, &mut batch);
            for ev in &batch {
                if let MarketPayload::BookTop(_) = ev.payload {
                    let sync = router
                        .binance
                        .book(ev.symbol)
                        .expect("a BookTop has a book");
                    assert!(sync.is_synced(), "BookTop from an unsynced book");
                    tops.push(events.len());
                }
                events.push(*ev);
            }
        }
        // A second pass copies the books at the chosen tops only: a copy of every one would keep
        // thousands of full 1000-level books in memory.
        let chosen: Vec<usize> = (0..BOOKS).map(|i| tops[i * tops.len() / BOOKS]).collect();
        let mut books = Vec::with_capacity(BOOKS);
        let reader = CaptureReader::open(SAMPLE_CAPTURE).expect("opened above");
        let mut router = VenueRouter::new();
        router.begin_file(reader.connections());
        let mut seen = 0;
        for rec in reader.records() {
            batch.clear();
            router.route(&rec, &mut batch);
            for ev in &batch {
                if chosen.get(books.len()) == Some(&seen) {
                    let sync = router
                        .binance
                        .book(ev.symbol)
                        .expect("a BookTop has a book");
                    books.push(sync.book().clone());
                }
                seen += 1;
            }
        }
        assert_eq!(books.len(), BOOKS, "every chosen BookTop found again");
        assert!(events.len() > 30_000, "{} events", events.len());
        Self { events, books }
    }

    /// The 1 s time bars of the capture's trades (the fallback when the kline files are absent).
    fn time_bars(&self) -> Vec<Bar> {
        let mut tb = TimeBars::new(1_000);
        let mut bars: Vec<Bar> = self
            .events
            .iter()
            .filter_map(|ev| match &ev.payload {
                MarketPayload::Trade(t) => tb.on_trade(
                    t.trade_time_ms,
                    t.px.to_f64(),
                    t.qty.to_f64(),
                    t.aggressor == qalpha_engine::Side::Buy,
                ),
                _ => None,
            })
            .collect();
        bars.extend(tb.flush());
        bars
    }
}

/// Real bars: the shared kline file, or the capture's time bars when it is absent.
fn real_bars(replay: &Replay) -> Vec<Bar> {
    if Path::new(KLINES).exists() {
        let bars = read_klines(Path::new(KLINES)).unwrap_or_else(|e| panic!("{e}"));
        println!(
            "bar_features: {} real 1m BTCUSDT klines ({KLINES})",
            bars.len()
        );
        bars
    } else {
        let bars = replay.time_bars();
        println!(
            "bar_features: {KLINES} not found; using the {} 1 s time bars of the bundled capture",
            bars.len()
        );
        bars
    }
}

/// The standard set's indicators, split into its groups (same parameters as `standard()`).
fn groups() -> Vec<(&'static str, Vec<Box<dyn Indicator>>)> {
    vec![
        (
            "trend",
            vec![
                Box::new(Sma::new(20)),
                Box::new(Ema::new(12)),
                Box::new(Ema::new(26)),
                Box::new(Macd::new(12, 26, 9)),
                Box::new(Bbands::new(20, 2.0)),
                Box::new(Adx::new(14)),
                Box::new(Cci::new(20)),
                Box::new(Aroon::new(14)),
                Box::new(Sma::new(50)),
            ],
        ),
        (
            "oscillators",
            vec![
                Box::new(Rsi::new(14)),
                Box::new(Stoch::new(14, 3, 3)),
                Box::new(WillR::new(14)),
                Box::new(Roc::new(10)),
                Box::new(Mom::new(10)),
                Box::new(UltOsc::new(7, 14, 28)),
                Box::new(Atr::new(14)),
            ],
        ),
        (
            "volume",
            vec![
                Box::new(Mfi::new(14)),
                Box::new(Obv::new()),
                Box::new(Ad::new()),
                Box::new(VwapDistance::new(20)),
                Box::new(VolumeZ::new(20)),
                Box::new(TakerBuyRatio::new()),
            ],
        ),
        (
            "extras",
            vec![
                Box::new(Returns::new(&[1, 5, 15, 60])),
                Box::new(LogReturn::new()),
                Box::new(RealizedVol::new(20)),
                Box::new(RealizedVol::new(60)),
                Box::new(RangeBps::new()),
                Box::new(CloseLocation::new()),
                Box::new(EmaRatio::new(12, 26)),
                Box::new(SmaDistance::new(50)),
                Box::new(BbWidth::new(20, 2.0)),
            ],
        ),
    ]
}

fn bar_features(c: &mut Criterion, bars: &[Bar]) {
    let mut g = c.benchmark_group("bar_features");
    g.throughput(Throughput::Elements(1));
    let standard = standard();
    let mut sets = vec![("standard", standard)];
    let grouped: Vec<_> = groups()
        .into_iter()
        .map(|(name, items)| (name, FeatureSet::new(items)))
        .collect();
    // The groups are the standard set, split: same columns, none twice, none left out.
    let mut split: Vec<&String> = grouped.iter().flat_map(|(_, s)| s.names()).collect();
    let mut whole: Vec<&String> = sets[0].1.names().iter().collect();
    assert_eq!(whole.len(), 44, "the standard set's width");
    split.sort();
    whole.sort();
    assert_eq!(split, whole, "the groups do not add up to the standard set");
    sets.extend(grouped);

    for (name, mut set) in sets {
        let mut row = Vec::with_capacity(set.len());
        // Warm every indicator up once so the timed updates are the steady-state ones.
        bars.iter().for_each(|b| set.update(b, &mut row));
        // Every column is defined after warm-up, but the taker ratio on bars without taker volume
        // (the spot kline file is the short `timestamp,open,high,low,close,volume` layout).
        for (col, v) in set.names().iter().zip(&row) {
            assert!(
                v.is_finite() || col == "taker_buy_ratio",
                "{name}: {col} = {v}"
            );
        }
        let mut i = 0;
        g.bench_function(name, |b| {
            b.iter(|| {
                set.update(black_box(&bars[i]), &mut row);
                i = (i + 1) % bars.len();
                black_box(row[0])
            })
        });
    }
    g.finish();
}

/// Times `step` over the events in capture order, `iters` calls in all; at the end of the capture
/// the order-flow state is rebuilt, untimed.
fn replay_events(
    iters: u64,
    events: &[MarketEvent],
    state: &mut (OrderFlow, usize),
    mut step: impl FnMut(&mut OrderFlow, &MarketEvent),
) -> Duration {
    let mut timed = Duration::ZERO;
    let mut left = iters as usize;
    while left > 0 {
        if state.1 == events.len() {
            *state = (OrderFlow::new(&WINDOWS_MS), 0);
        }
        let (of, pos) = state;
        let run = left.min(events.len() - *pos);
        let start = Instant::now();
        for ev in &events[*pos..*pos + run] {
            step(of, black_box(ev));
        }
        timed += start.elapsed();
        *pos += run;
        left -= run;
    }
    timed
}

fn orderflow(c: &mut Criterion, replay: &Replay) {
    let mut g = c.benchmark_group("orderflow");
    g.throughput(Throughput::Elements(1));
    let events = &replay.events;

    let mut state = (OrderFlow::new(&WINDOWS_MS), 0);
    g.bench_function("on_event", |b| {
        b.iter_custom(|iters| replay_events(iters, events, &mut state, |of, ev| of.on_event(ev)))
    });

    let mut state = (OrderFlow::new(&WINDOWS_MS), 0);
    let mut row = vec![0.0; state.0.len()];
    g.bench_function("on_event_write", |b| {
        b.iter_custom(|iters| {
            replay_events(iters, events, &mut state, |of, ev| {
                of.on_event(ev);
                of.write(&mut row);
            })
        })
    });
    black_box(&row);

    let mut of = OrderFlow::new(&WINDOWS_MS);
    let mut i = 0;
    for book in &replay.books {
        of.on_book(book);
        let mut r = vec![0.0; of.len()];
        of.write(&mut r);
        let depth_slope = r[of.names().iter().position(|n| n == "depth_slope").unwrap()];
        assert!(depth_slope.is_finite(), "a real book has a depth slope");
    }
    g.bench_function("on_book", |b| {
        b.iter(|| {
            of.on_book(black_box(&replay.books[i]));
            i = (i + 1) % replay.books.len();
        })
    });
    black_box(&of);
    g.finish();
}

fn benches(c: &mut Criterion) {
    let replay = Replay::load();
    let bars = real_bars(&replay);
    bar_features(c, &bars);
    orderflow(c, &replay);
}

criterion_group!(feature_benches, benches);
criterion_main!(feature_benches);
