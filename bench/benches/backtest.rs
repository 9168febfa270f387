//! Tick-backtest throughput on the bundled real capture (32,000 Binance USD-M BTCUSDT frames, 216 s),
//! ours and `hftbacktest`'s, on the same day (issue 7; method and figures in `BACKTEST-BENCH.md`).
//!
//! Ours (`qalpha/…`):
//! - `qalpha/obi-taker`, `qalpha/maker`: `qalpha_tools::backtest::tick_sim::run` exactly as
//!   `qalpha backtest --data <capture> --strategy NAME` runs it (fill model against the rebuilt book,
//!   risk inline, 0 feed latency, 500 µs order latency, 2 / 5 bps, seed 7) — mmap, JSON decode, book
//!   rebuild, strategy, executor, risk and the simulated venue, all timed;
//! - `qalpha/feed_only`: decode + book rebuild only (`VenueRouter::route` into a counting sink, as
//!   `replay/feed_only` in `benches/replay.rs`), so the simulator's own cost reads as the difference;
//! - `qalpha/decode_only`: JSON parse + decode of every frame (depth levels iterated), no book — the
//!   part `hftbacktest` is spared because it is handed parsed rows.
//!
//! `hftbacktest` (`hftbacktest/…`), fed the same frames converted to its `Event` rows in memory
//! before timing (depth diffs one row per level, the REST snapshot as clear + snapshot rows,
//! trades, bookTicker as `DEPTH_BBO_EVENT` rows, markPrice as a custom row; `exch_ts` = the venue's
//! `E`, `local_ts` = our receive time; exchange-only / local-only rows where the two orders differ,
//! as its own `correct_event_order` does):
//! - `hftbacktest/goto_end`: no strategy — both processors replay every row (its floor);
//! - `hftbacktest/obi-taker`, `hftbacktest/maker`: the same two rules written against its `Bot` API,
//!   woken on every local row and every order response (`wait_next_feed(true, …)`), constant 500 µs
//!   order latency each way, `RiskAdverseQueueModel`, `NoPartialFillExchange`, 2 / 5 bps.
//!
//! Throughput is in data frames of the capture for every case, so criterion's `thrpt` compares the
//! two sides on the same input; events in each side's own unit are printed in the summary table
//! (median of a few untimed-by-criterion runs) before the criterion groups.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use hftbacktest::backtest::assettype::LinearAsset;
use hftbacktest::backtest::data::Data;
use hftbacktest::backtest::models::{
    CommonFees, ConstantLatency, RiskAdverseQueueModel, TradingValueFeeModel,
};
use hftbacktest::backtest::{Backtest, DataSource, ExchangeKind, L2AssetBuilder};
use hftbacktest::prelude::{
    Bot, ElapseResult, Event, HashMapMarketDepth, MarketDepth, OrdType, Side as HSide, TimeInForce,
    BUY_EVENT, DEPTH_BBO_EVENT, DEPTH_CLEAR_EVENT, DEPTH_EVENT, DEPTH_SNAPSHOT_EVENT, EXCH_EVENT,
    INVALID_MAX, INVALID_MIN, LOCAL_EVENT, SELL_EVENT, TRADE_EVENT,
};
use qalpha_bench::{CountingSink, Sample, SAMPLE_CAPTURE};
use qalpha_engine::capture::{CaptureReader, RecordKind};
use qalpha_engine::event::{MarketPayload, TradeKind};
use qalpha_engine::replay::CaptureHandler;
use qalpha_engine::{Qty, Side, Symbol, Venue};
use qalpha_feeds::binance::{decode, BinanceMsg};
use qalpha_feeds::json::JsonParser;
use qalpha_feeds::replay::VenueRouter;
use qalpha_risk::RiskConfig;
use qalpha_tools::backtest::latency::Latency;
use qalpha_tools::backtest::tick_sim::{self, Fill, TickSimConfig, TickSimOutput};
use qalpha_tools::demo_cmd::strategy::StrategySpec;
use qalpha_venues::fill::FeeSchedule;

/// Strategy → venue and back, each way, on both sides.
const ORDER_LATENCY_NS: u64 = 500_000;
/// BTCUSDT USD-M filters (2023): tick 0.1, lot 0.001.
const TICK_SIZE: f64 = 0.1;
const LOT_SIZE: f64 = 0.001;
/// The registry defaults of `obi-taker` and `maker` (strategy/src/baselines/mod.rs), reused for the
/// `hftbacktest` versions of the two rules.
const QTY: f64 = 0.001;
const OBI_THRESHOLD: f64 = 0.5;
const OBI_HOLD_NS: i64 = 1_000_000_000;
const MAKER_MAX_POSITION: f64 = 0.01;
/// `wait_next_feed` timeout: longer than any gap in the data (it adds to the current time, so not
/// `i64::MAX`).
const WAIT_NS: i64 = 3_600_000_000_000;
/// A markPrice row for `hftbacktest`: a kind of its own that neither processor handles, so it
/// only wakes the strategy, as a mark-price event does on our side.
const MARK_PRICE_EVENT: u64 = 100;
/// Runs per case in the summary table.
const SUMMARY_RUNS: usize = 5;

fn qty(s: &str) -> Qty {
    Qty::parse(s).expect("constant quantity")
}

/// Risk at the product defaults, with the kill switches that a 216 s backtest of a naive baseline
/// would trip (daily loss, losing streak, order rate, volatility cut) opened wide, so the whole day
/// is simulated; the run still passes every pre-trade check.
fn generous_risk() -> RiskConfig {
    RiskConfig {
        daily_loss_limit: qty("1000000"),
        max_consecutive_losses: 1_000_000,
        max_orders_per_s: 10_000,
        api_errors_per_min: 1_000_000,
        vol_spike_bps: qty("1000000"),
        ..RiskConfig::default()
    }
}

fn sim_config() -> TickSimConfig {
    TickSimConfig {
        venue: Venue::BinanceUsdm,
        symbol: Symbol::parse("BTCUSDT").expect("symbol"),
        fees: FeeSchedule {
            maker_ppm: 200,
            taker_ppm: 500,
        },
        risk: generous_risk(),
        feed_latency: Latency::Constant(0),
        order_latency: Latency::Constant(ORDER_LATENCY_NS),
        seed: 7,
        fill: Fill::Book,
        sample_ms: 1000,
    }
}

/// One tick backtest of `strategy` on the bundled capture (the timed unit of `qalpha/<strategy>`).
fn qalpha_run(files: &[PathBuf], strategy: &str, cfg: &TickSimConfig) -> TickSimOutput {
    let decider = StrategySpec {
        name: strategy.to_string(),
        params: BTreeMap::new(),
    }
    .build()
    .expect("registered strategy");
    tick_sim::run(files, decider, cfg, None).expect("tick backtest of the bundled sample")
}

/// Routes every record through a fresh router into a counting sink; returns the router and the
/// event count (decode + book, no simulator).
fn route_all(reader: &CaptureReader, mut router: VenueRouter) -> (VenueRouter, u64) {
    let mut sink = CountingSink::default();
    router.begin_file(reader.connections());
    for rec in reader.records() {
        router.route(&rec, &mut sink);
    }
    router.finish();
    (router, sink.events)
}

/// Parses and decodes every frame, reading every depth level, without touching a book; returns
/// the number of depth levels read (so nothing is optimised away).
fn decode_all(sample: &Sample, parser: &mut JsonParser) -> u64 {
    let mut levels = 0u64;
    for f in &sample.frames {
        let n = parser
            .parse(&f.bytes, |root| match decode(root) {
                Ok(BinanceMsg::Depth(d)) => d.bids.iter().chain(d.asks.iter()).fold(0, |n, l| {
                    black_box(l.ok());
                    n + 1
                }),
                Ok(BinanceMsg::Snapshot(s)) => {
                    s.bids.iter().chain(s.asks.iter()).fold(0, |n, l| {
                        black_box(l.ok());
                        n + 1
                    })
                }
                Ok(other) => {
                    black_box(&other);
                    0
                }
                Err(e) => panic!("sample frame does not decode: {e}"),
            })
            .expect("sample frame is valid JSON");
        levels += n;
    }
    levels
}

/// What the conversion to `hftbacktest` rows kept and dropped.
#[derive(Debug, Default)]
struct Converted {
    /// Rows in frame order, before the exchange/local reordering.
    rows: Vec<Event>,
    depth_frames: u64,
    /// Depth diffs before the REST snapshot, or older than it: they cannot be applied (our feed
    /// buffers and then drops them too).
    depth_frames_dropped: u64,
    /// Diffs after sync whose `pu` did not continue the last `u` (must stay 0).
    gaps: u64,
    snapshot_levels: u64,
    trades: u64,
    book_tickers: u64,
    mark_prices: u64,
    /// Frames with nothing for a backtest (control replies, ignored streams).
    other: u64,
}

/// [`row`] from the engine's fixed-point price and quantity.
fn fx(ev: u64, exch_ms: u64, recv_ns: u64, px: qalpha_engine::Price, qty: Qty) -> Event {
    row(ev, exch_ms, recv_ns, px.to_f64(), qty.to_f64())
}

fn row(ev: u64, exch_ms: u64, recv_ns: u64, px: f64, qty: f64) -> Event {
    Event {
        ev: ev | EXCH_EVENT | LOCAL_EVENT,
        exch_ts: (exch_ms * 1_000_000) as i64,
        local_ts: recv_ns as i64,
        px,
        qty,
        order_id: 0,
        ival: 0,
        fval: 0.0,
    }
}

/// Converts the sample's frames into `hftbacktest` rows, one per depth level, trade, BBO side and
/// mark price, with Binance's snapshot/diff bridging rule (USD-M: the first diff applied has
/// `U ≤ lastUpdateId ≤ u`, each next one `pu` = the previous `u`).
fn convert(sample: &Sample) -> Converted {
    let mut c = Converted::default();
    let mut parser = JsonParser::new(64 * 1024);
    // The snapshot's lastUpdateId once seen; then the last applied `u` once bridged.
    let mut snapshot_id: Option<u64> = None;
    let mut last_u: Option<u64> = None;
    for (i, f) in sample.frames.iter().enumerate() {
        let recv = f.recv_ns;
        if f.record == RecordKind::RestResponse && i != sample.snapshot {
            c.other += 1;
            continue;
        }
        parser
            .parse(&f.bytes, |root| match decode(root) {
                Ok(BinanceMsg::Snapshot(s)) => {
                    c.rows
                        .push(row(DEPTH_CLEAR_EVENT, s.exch_ms, recv, 0.0, 0.0));
                    for (flag, levels) in [(BUY_EVENT, &s.bids), (SELL_EVENT, &s.asks)] {
                        for l in levels.iter() {
                            let (px, q) = l.expect("snapshot level");
                            c.rows.push(row(
                                DEPTH_SNAPSHOT_EVENT | flag,
                                s.exch_ms,
                                recv,
                                px.to_f64(),
                                q.to_f64(),
                            ));
                            c.snapshot_levels += 1;
                        }
                    }
                    snapshot_id = Some(s.last_update_id);
                    last_u = None;
                }
                Ok(BinanceMsg::Depth(d)) => {
                    c.depth_frames += 1;
                    let apply = match (snapshot_id, last_u) {
                        (None, _) => false,
                        (Some(id), None) => d.first_id <= id && d.last_id >= id,
                        (Some(_), Some(u)) => {
                            if d.prev_last_id != Some(u) {
                                c.gaps += 1;
                            }
                            true
                        }
                    };
                    if !apply {
                        c.depth_frames_dropped += 1;
                        return;
                    }
                    last_u = Some(d.last_id);
                    for (flag, levels) in [(BUY_EVENT, &d.bids), (SELL_EVENT, &d.asks)] {
                        for l in levels.iter() {
                            let (px, q) = l.expect("depth level");
                            c.rows.push(row(
                                DEPTH_EVENT | flag,
                                d.exch_ms,
                                recv,
                                px.to_f64(),
                                q.to_f64(),
                            ));
                        }
                    }
                }
                Ok(BinanceMsg::Event {
                    exch_ms, payload, ..
                }) => match payload {
                    MarketPayload::Trade(t)
                        if matches!(t.kind, TradeKind::Market | TradeKind::Aggregated) =>
                    {
                        let side = match t.aggressor {
                            Side::Buy => BUY_EVENT,
                            Side::Sell => SELL_EVENT,
                        };
                        c.rows
                            .push(fx(TRADE_EVENT | side, exch_ms, recv, t.px, t.qty));
                        c.trades += 1;
                    }
                    MarketPayload::Quote(q) => {
                        let (bid, ask) =
                            (DEPTH_BBO_EVENT | BUY_EVENT, DEPTH_BBO_EVENT | SELL_EVENT);
                        c.rows.push(fx(bid, exch_ms, recv, q.bid_px, q.bid_qty));
                        c.rows.push(fx(ask, exch_ms, recv, q.ask_px, q.ask_qty));
                        c.book_tickers += 1;
                    }
                    MarketPayload::MarkPrice(m) => {
                        c.rows.push(row(
                            MARK_PRICE_EVENT,
                            exch_ms,
                            recv,
                            m.mark_px.to_f64(),
                            0.0,
                        ));
                        c.mark_prices += 1;
                    }
                    _ => c.other += 1,
                },
                Ok(_) => c.other += 1,
                Err(e) => panic!("frame {i} does not decode: {e}"),
            })
            .expect("sample frame is valid JSON");
    }
    c
}

/// `hftbacktest` reads one row array for both processors: the exchange side in `exch_ts` order,
/// the local side in `local_ts` order. Where the two orders differ (streams whose `E` are not in
/// arrival order), a row is split into an exchange-only and a local-only copy — what its Python
/// `correct_event_order` does to converted data.
fn order_rows(rows: &[Event]) -> Vec<Event> {
    let mut by_exch: Vec<usize> = (0..rows.len()).collect();
    by_exch.sort_by_key(|&i| rows[i].exch_ts);
    let mut by_local: Vec<usize> = (0..rows.len()).collect();
    by_local.sort_by_key(|&i| rows[i].local_ts);
    let flags = !(EXCH_EVENT | LOCAL_EVENT);
    let only = |i: usize, f: u64| Event {
        ev: (rows[i].ev & flags) | f,
        ..rows[i].clone()
    };
    let mut out = Vec::with_capacity(rows.len() + rows.len() / 4);
    let (mut x, mut l) = (0, 0);
    while x < rows.len() || l < rows.len() {
        match (by_exch.get(x), by_local.get(l)) {
            (Some(&a), Some(&b)) if a == b => {
                out.push(rows[a].clone());
                x += 1;
                l += 1;
            }
            (Some(&a), Some(&b)) if rows[a].exch_ts <= rows[b].exch_ts => {
                out.push(only(a, EXCH_EVENT));
                x += 1;
            }
            (Some(&a), None) => {
                out.push(only(a, EXCH_EVENT));
                x += 1;
            }
            (_, Some(&b)) => {
                out.push(only(b, LOCAL_EVENT));
                l += 1;
            }
            (None, None) => unreachable!("loop condition"),
        }
    }
    out
}

fn hbt_backtest(data: &Data<Event>) -> Backtest<HashMapMarketDepth> {
    let asset = L2AssetBuilder::new()
        .data(vec![DataSource::Data(data.clone())])
        .parallel_load(false)
        .latency_model(ConstantLatency::new(
            ORDER_LATENCY_NS as i64,
            ORDER_LATENCY_NS as i64,
        ))
        .asset_type(LinearAsset::new(1.0))
        .fee_model(TradingValueFeeModel::new(CommonFees::new(0.0002, 0.0005)))
        .exchange(ExchangeKind::NoPartialFillExchange)
        .queue_model(RiskAdverseQueueModel::new())
        .depth(|| HashMapMarketDepth::new(TICK_SIZE, LOT_SIZE))
        .build()
        .expect("hftbacktest asset");
    Backtest::builder()
        .add_asset(asset)
        .build()
        .expect("hftbacktest backtest")
}

/// What an `hftbacktest` run did.
#[derive(Clone, Copy, Debug, Default)]
struct HbtRun {
    /// Times the strategy loop woke (local rows + order responses).
    wakes: u64,
    orders: u64,
    trades: i64,
    position: f64,
}

fn hbt_done(hbt: &Backtest<HashMapMarketDepth>, wakes: u64, orders: u64) -> HbtRun {
    HbtRun {
        wakes,
        orders,
        trades: hbt.state_values(0).num_trades,
        position: hbt.position(0),
    }
}

/// The best prices in ticks, when both sides exist and are not crossed.
fn touch(hbt: &Backtest<HashMapMarketDepth>) -> Option<(i64, i64, f64, f64)> {
    let d = hbt.depth(0);
    let (b, a) = (d.best_bid_tick(), d.best_ask_tick());
    (b != INVALID_MIN && a != INVALID_MAX && a > b)
        .then(|| (b, a, d.best_bid_qty(), d.best_ask_qty()))
}

/// `hftbacktest` with no strategy: every row through both processors.
fn hbt_goto_end(data: &Data<Event>) -> (Backtest<HashMapMarketDepth>, HbtRun) {
    let mut hbt = hbt_backtest(data);
    hbt.goto_end().expect("goto_end");
    let r = hbt_done(&hbt, 0, 0);
    (hbt, r)
}

/// `obi-taker` on `hftbacktest`: the same rule as `strategy/src/baselines/obi_taker.rs` (imbalance at
/// the touch beyond ±0.5 → ±qty IOC at the touch; neutral after 1 s in a position → flat at
/// market), and a one-order-at-a-time executor that trades the difference between the target and
/// the position.
fn hbt_obi_taker(data: &Data<Event>) -> HbtRun {
    let mut hbt = hbt_backtest(data);
    let (mut target, mut entered, mut market) = (0i8, 0i64, false);
    let (mut wakes, mut orders, mut next_id) = (0u64, 0u64, 1u64);
    while hbt.wait_next_feed(true, WAIT_NS).expect("wait_next_feed") != ElapseResult::EndOfData {
        wakes += 1;
        let Some((bid, ask, bq, aq)) = touch(&hbt) else {
            continue;
        };
        let now = hbt.current_timestamp();
        if bq + aq > 0.0 {
            let imbalance = (bq - aq) / (bq + aq);
            let want = if imbalance > OBI_THRESHOLD {
                Some((1, false))
            } else if imbalance < -OBI_THRESHOLD {
                Some((-1, false))
            } else if target != 0 && now - entered >= OBI_HOLD_NS {
                Some((0, true))
            } else {
                None
            };
            if let Some((w, m)) = want.filter(|&(w, _)| w != target) {
                (target, entered, market) = (w, now, m);
            }
        }
        hbt.clear_inactive_orders(Some(0));
        if !hbt.orders(0).is_empty() {
            continue;
        }
        let diff = f64::from(target) * QTY - hbt.position(0);
        if diff.abs() < LOT_SIZE / 2.0 {
            continue;
        }
        let (tif, kind) = if market {
            (TimeInForce::GTC, OrdType::Market)
        } else {
            (TimeInForce::IOC, OrdType::Limit)
        };
        let id = next_id;
        next_id += 1;
        orders += 1;
        if diff > 0.0 {
            hbt.submit_buy_order(0, id, ask as f64 * TICK_SIZE, diff, tif, kind, false)
        } else {
            hbt.submit_sell_order(0, id, bid as f64 * TICK_SIZE, -diff, tif, kind, false)
        }
        .expect("submit");
    }
    hbt_done(&hbt, wakes, orders)
}

/// `maker` on `hftbacktest`: one post-only order a side at the touch, `qty` each, a side left out
/// when its fill would pass `max_position`; a quote off the touch is cancelled and re-posted once
/// the cancel is confirmed.
fn hbt_maker(data: &Data<Event>) -> HbtRun {
    let mut hbt = hbt_backtest(data);
    let (mut wakes, mut orders, mut next_id) = (0u64, 0u64, 1u64);
    while hbt.wait_next_feed(true, WAIT_NS).expect("wait_next_feed") != ElapseResult::EndOfData {
        wakes += 1;
        let Some((bid, ask, _, _)) = touch(&hbt) else {
            continue;
        };
        hbt.clear_inactive_orders(Some(0));
        let position = hbt.position(0);
        for (side, tick, room) in [
            (
                HSide::Buy,
                bid,
                position + QTY <= MAKER_MAX_POSITION + LOT_SIZE / 2.0,
            ),
            (
                HSide::Sell,
                ask,
                position - QTY >= -MAKER_MAX_POSITION - LOT_SIZE / 2.0,
            ),
        ] {
            let resting = hbt
                .orders(0)
                .values()
                .find(|o| o.side == side)
                .map(|o| (o.order_id, o.price_tick, o.pending(), o.cancellable()));
            match resting {
                Some((_, _, true, _)) => {}
                Some((_, px, _, _)) if room && px == tick => {}
                Some((id, _, _, true)) => {
                    hbt.cancel(0, id, false).expect("cancel");
                }
                Some(_) => {}
                None if room => {
                    let id = next_id;
                    next_id += 1;
                    orders += 1;
                    let px = tick as f64 * TICK_SIZE;
                    match side {
                        HSide::Buy => hbt.submit_buy_order(
                            0,
                            id,
                            px,
                            QTY,
                            TimeInForce::GTX,
                            OrdType::Limit,
                            false,
                        ),
                        _ => hbt.submit_sell_order(
                            0,
                            id,
                            px,
                            QTY,
                            TimeInForce::GTX,
                            OrdType::Limit,
                            false,
                        ),
                    }
                    .expect("submit");
                }
                None => {}
            }
        }
    }
    hbt_done(&hbt, wakes, orders)
}

/// Median wall time of `runs` calls of `f`.
fn median_time<R>(runs: usize, mut f: impl FnMut() -> R) -> Duration {
    let mut t: Vec<Duration> = (0..runs)
        .map(|_| {
            let s = Instant::now();
            black_box(f());
            s.elapsed()
        })
        .collect();
    t.sort_unstable();
    t[t.len() / 2]
}

fn benches(c: &mut Criterion) {
    let files = [PathBuf::from(SAMPLE_CAPTURE)];
    let cfg = sim_config();
    let sample = Sample::load();
    let frames = sample.frames.len() as u64;
    let reader = CaptureReader::open(&files[0]).expect("bundled sample opens");

    // Untimed set-up and checks: every run below is a clean, complete one.
    let (router, feed_events) = route_all(&reader, VenueRouter::new());
    assert_eq!(router.decode_stats().malformed, 0);
    let mut parser = JsonParser::new(64 * 1024);
    let levels = decode_all(&sample, &mut parser);
    let mut ours = Vec::new();
    for name in ["obi-taker", "maker"] {
        let out = qalpha_run(&files, name, &cfg);
        let ex = &out.executor;
        let risk = ex.risk.as_ref().expect("tick backtests run with risk");
        println!(
            "qalpha/{name}: {} events, {} orders, {} fills, {} risk rejects, {} venue rejects, \
             final position {}, risk state {} (halt: {:?})",
            out.events,
            ex.counters.orders,
            ex.counters.fills,
            ex.counters.risk_rejects,
            out.venue_rejects,
            out.account.position(cfg.symbol),
            risk.state().name(),
            risk.halt_reason().map(|s| s.name()),
        );
        assert_eq!(out.events, feed_events, "the simulator sees every event");
        ours.push((name, out.events));
    }

    let conv = convert(&sample);
    assert_eq!(conv.gaps, 0, "the converted diffs are continuous");
    let rows = order_rows(&conv.rows);
    let split = rows.len() - conv.rows.len();
    let local_rows = rows.iter().filter(|e| e.ev & LOCAL_EVENT != 0).count();
    let data = Data::from_data(&rows);
    println!(
        "hftbacktest rows: {} from {} frames ({} depth diffs, {} dropped before sync; {} snapshot \
         levels; {} trades; {} bookTickers; {} markPrices; {} other) → {} rows after splitting {} \
         rows whose exchange and local orders differ; {} local rows",
        conv.rows.len(),
        frames,
        conv.depth_frames,
        conv.depth_frames_dropped,
        conv.snapshot_levels,
        conv.trades,
        conv.book_tickers,
        conv.mark_prices,
        conv.other,
        rows.len(),
        split,
        local_rows,
    );
    // Both sides rebuilt the same book: compare the 20 best levels a side at the end of the day.
    let (hbt, _) = hbt_goto_end(&data);
    let book = router
        .binance
        .book(sample.symbol)
        .expect("BTCUSDT book")
        .book();
    let depth = hbt.depth(0);
    let tick = |px: qalpha_engine::Price| (px.to_f64() / TICK_SIZE).round() as i64;
    for l in book.bids().take(20) {
        assert_eq!(
            depth.bid_qty_at_tick(tick(l.px)),
            l.qty.to_f64(),
            "bid {}",
            l.px
        );
    }
    for l in book.asks().take(20) {
        assert_eq!(
            depth.ask_qty_at_tick(tick(l.px)),
            l.qty.to_f64(),
            "ask {}",
            l.px
        );
    }
    drop(hbt);
    let obi = hbt_obi_taker(&data);
    let maker = hbt_maker(&data);
    for (name, r) in [("obi-taker", obi), ("maker", maker)] {
        println!(
            "hftbacktest/{name}: {} wakes, {} orders, {} fills, final position {:.3}",
            r.wakes, r.orders, r.trades, r.position
        );
    }

    // Summary: median of a few runs of each case, with each side's own event unit.
    let secs = |d: Duration| d.as_secs_f64();
    let mut table: Vec<(String, u64, &str, Duration)> = Vec::new();
    for &(name, events) in &ours {
        let t = median_time(SUMMARY_RUNS, || qalpha_run(&files, name, &cfg));
        table.push((format!("qalpha/{name}"), events, "MarketEvents", t));
    }
    let t = median_time(SUMMARY_RUNS, || route_all(&reader, VenueRouter::new()));
    table.push(("qalpha/feed_only".into(), feed_events, "MarketEvents", t));
    let t = median_time(SUMMARY_RUNS, || decode_all(&sample, &mut parser));
    table.push(("qalpha/decode_only".into(), levels, "depth levels", t));
    let hrows = rows.len() as u64;
    let t = median_time(SUMMARY_RUNS, || hbt_goto_end(&data).1);
    table.push(("hftbacktest/goto_end".into(), hrows, "rows", t));
    let t = median_time(SUMMARY_RUNS, || hbt_obi_taker(&data));
    table.push(("hftbacktest/obi-taker".into(), hrows, "rows", t));
    let t = median_time(SUMMARY_RUNS, || hbt_maker(&data));
    table.push(("hftbacktest/maker".into(), hrows, "rows", t));
    println!("\n| case | median ms ({SUMMARY_RUNS} runs) | frames/s | events | events/s |");
    println!("|---|---:|---:|---:|---:|");
    for (case, events, unit, t) in &table {
        println!(
            "| {case} | {:.1} | {:.2} M | {events} {unit} | {:.2} M |",
            secs(*t) * 1e3,
            frames as f64 / secs(*t) / 1e6,
            *events as f64 / secs(*t) / 1e6,
        );
    }
    println!();

    let mut g = c.benchmark_group("backtest");
    g.sample_size(10);
    g.throughput(Throughput::Elements(frames));
    for (name, _) in &ours {
        g.bench_function(format!("qalpha/{name}"), |b| {
            b.iter(|| qalpha_run(black_box(&files), name, &cfg))
        });
    }
    g.bench_function("qalpha/feed_only", |b| {
        b.iter_batched(
            VenueRouter::new,
            |router| route_all(black_box(&reader), router),
            BatchSize::PerIteration,
        )
    });
    g.bench_function("qalpha/decode_only", |b| {
        b.iter(|| decode_all(black_box(&sample), &mut parser))
    });
    g.bench_function("hftbacktest/goto_end", |b| {
        b.iter(|| hbt_goto_end(black_box(&data)).1)
    });
    g.bench_function("hftbacktest/obi-taker", |b| {
        b.iter(|| hbt_obi_taker(black_box(&data)))
    });
    g.bench_function("hftbacktest/maker", |b| {
        b.iter(|| hbt_maker(black_box(&data)))
    });
    g.finish();
}

criterion_group!(backtest_benches, benches);
criterion_main!(backtest_benches);
