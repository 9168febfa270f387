//! The wire-to-wire harness: the mock exchange streams the bundled real capture over loopback TLS
//! WebSockets; the engine's feed thread (`FeedRunner`: the live decoders and books), a trigger
//! strategy thread and the gateway thread (`Gateway::run`: ws-fapi orders) run as they do live;
//! every K-th market event that carries a frame id becomes an order (an IOC limit buy below the
//! bid: it never fills, so the run can go on for as long as it likes). The mock stamps each frame
//! as it hands it to its socket and each order request as it reads it ([`WireProbe`], the same
//! clock, the same process), so tick-to-order is measured from outside the engine; the engine's own
//! stamps split it into stages:
//!
//! ```text
//! mock write ─wire_in─► socket read (recv_ns) ─decode_book─► event out (decoded_ns) ─md_ring─►
//! strategy pop ─decide─► order built (Trinity inference here, when on) ─risk─► RiskEngine::check
//! ─cmd_ring─► gateway pop ─encode_sign─► request signed ─write─► TLS write done ─wire_out─► mock read
//! ```
//!
//! Variants: the engine threads spin (`Spin`: busy-poll, the feed in zero-timeout `mio` polls) or
//! sleep in epoll (`Park`: the feed blocks in `mio::Poll::poll`, the rings park), with or without
//! the Trinity's three tract models run on the decision path of every order.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use hdrhistogram::Histogram;
use qalpha_engine::clock::now_ns;
use qalpha_engine::event::{MarketEvent, MarketPayload, Venue};
use qalpha_engine::order::{
    ClientIdGen, ClientOrderId, ExecKind, ExecReport, NewOrder, OrderAction, OrderCommand,
    OrderType, TimeInForce,
};
use qalpha_engine::ring::{ring, FullPolicy};
use qalpha_engine::runtime::{Runtime, ThreadSpec, WaitMode};
use qalpha_engine::{Price, Qty, Side, Symbol};
use qalpha_feeds::live::{FeedRunner, LiveOptions};
use qalpha_risk::engine::RiskEngine;
use qalpha_risk::RiskConfig;
use qalpha_strategy::trinity::Trinity;
use qalpha_venues::gateway::session::{Gateway, OrderStamp};
use qalpha_venues::mock::probe::{event_key, WireProbe};
use qalpha_venues::mock::FaultSpec;
use serde::Serialize;

use crate::demo_cmd::{mock_feed_plans, mock_gateway_config, start_mock};

/// One wire-to-wire run.
#[derive(Clone, Debug)]
pub struct WireOptions {
    pub capture: PathBuf,
    /// An order for every `every`-th market event with a frame id.
    pub every: u64,
    pub wait: WaitMode,
    /// Cores for the feed, strategy and gateway threads (in that order); `None`: unpinned.
    pub cores: Option<[usize; 3]>,
    /// Tape speed (× the recorded pace).
    pub speed: f64,
    /// Stop after this many orders.
    pub max_orders: usize,
    /// Stop after this long in any case.
    pub max_time: Duration,
    /// The Trinity's models (a directory with guardian/oracle/strategist) and a kline CSV to warm
    /// its features up: inference on every order's path.
    pub trinity: Option<(PathBuf, PathBuf)>,
}

/// A latency distribution, µs.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Dist {
    pub samples: u64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub p999_us: f64,
    pub max_us: f64,
}

impl Dist {
    fn of(h: &Histogram<u64>) -> Self {
        let us = |q: f64| h.value_at_quantile(q) as f64 / 1e3;
        Self {
            samples: h.len(),
            p50_us: us(0.5),
            p90_us: us(0.9),
            p99_us: us(0.99),
            p999_us: us(0.999),
            max_us: h.max() as f64 / 1e3,
        }
    }
}

/// The stages of tick-to-order, in order (names as the JSON has them).
pub const STAGES: [&str; 9] = [
    "wire_in",
    "decode_book",
    "md_ring",
    "decide",
    "risk",
    "cmd_ring",
    "encode_sign",
    "write",
    "wire_out",
];

/// What one variant measured.
#[derive(Clone, Debug, Serialize)]
pub struct WireResult {
    pub variant: String,
    pub wait: &'static str,
    pub trinity: bool,
    pub every: u64,
    pub pinned: bool,
    /// Orders the strategy sent / matched end to end (mock saw the frame and the order).
    pub orders_sent: u64,
    pub orders_matched: u64,
    pub risk_rejects: u64,
    pub venue_rejects: u64,
    pub ring_drops: u64,
    pub frames: u64,
    pub tick_to_order: Dist,
    /// Per stage, in [`STAGES`] order.
    pub stages: Vec<(String, Dist)>,
    pub elapsed_s: f64,
}

/// The strategy side of one order.
#[derive(Clone, Copy, Debug)]
struct Sent {
    client_id: ClientOrderId,
    key: u64,
    recv_ns: u64,
    decoded_ns: u64,
    popped_ns: u64,
    decided_ns: u64,
    risk_ns: u64,
}

/// What the strategy thread hands back.
struct StrategyOut {
    sent: Vec<Sent>,
    risk_rejects: u64,
    venue_rejects: u64,
    trinity_runs: u64,
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000_000, 3).unwrap_or_else(|_| Histogram::new(3).unwrap())
}

/// Risk limits that let the trigger's orders through (what is measured is the path, not limits):
/// the checks still run in full on every order.
fn bench_risk() -> RiskConfig {
    let q = |s: &str| Qty::parse(s).unwrap_or(Qty::ZERO);
    RiskConfig {
        initial_equity: q("1000000"),
        max_order_notional: q("100000"),
        max_open_orders: 100_000,
        max_orders_per_s: 1_000_000,
        api_errors_per_min: 1_000_000,
        price_band_bps: q("500"),
        vol_spike_bps: q("1000000"),
        ..RiskConfig::default()
    }
}

/// The trigger's order: an IOC limit buy 0.005 BTC 20 bps under the bid (rounded down to the 0.1
/// tick) — it cannot fill, so it expires at once and leaves nothing behind.
fn trigger_order(symbol: Symbol, client_id: ClientOrderId, bid: Price) -> NewOrder {
    const TICK: i64 = 10_000_000; // 0.1
    let raw = bid.raw() - bid.raw() / 500;
    NewOrder {
        venue: Venue::BinanceUsdm,
        symbol,
        client_id,
        side: Side::Buy,
        order_type: OrderType::Limit,
        tif: TimeInForce::Ioc,
        price: Price(raw - raw % TICK),
        qty: Qty(500_000),
        reduce_only: false,
    }
}

/// Runs one variant against a fresh mock exchange.
pub fn run(o: &WireOptions, variant: &str) -> Result<WireResult> {
    if !o.capture.is_file() {
        bail!("capture {} not found", o.capture.display());
    }
    let dir =
        std::env::temp_dir().join(format!("qalpha-bench-{}-{}", std::process::id(), now_ns()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let res = run_in(o, variant, &dir);
    let _ = std::fs::remove_dir_all(&dir);
    res
}

fn run_in(o: &WireOptions, variant: &str, dir: &Path) -> Result<WireResult> {
    let started = Instant::now();
    let mut trinity = match &o.trinity {
        Some((models, warmup)) => {
            let mut p = std::collections::BTreeMap::new();
            p.insert("models".to_string(), models.display().to_string());
            p.insert("warmup".to_string(), warmup.display().to_string());
            p.insert("bar_ms".to_string(), "60000".to_string());
            let t = Trinity::from_params(&p).map_err(|e| anyhow::anyhow!("trinity: {e}"))?;
            Some(t)
        }
        None => None,
    };
    let mock = start_mock(&o.capture, o.speed, FaultSpec::default(), dir)?;
    let probe = Arc::new(WireProbe::new());
    mock.hub.set_probe(probe.clone());
    let symbol = Symbol::parse("BTCUSDT").context("symbol")?;
    let plans = mock_feed_plans(&mock, symbol, o.wait)?;
    let mut gc = mock_gateway_config(&mock, symbol);
    gc.client_rate_limits = false;
    gc.trace_orders = o.max_orders;
    let gateway = Gateway::connect(gc)?;

    let names = ["qa-feed", "qa-strategy", "qa-gateway"];
    let specs: Vec<ThreadSpec> = names
        .iter()
        .enumerate()
        .map(|(i, n)| ThreadSpec {
            name: n.to_string(),
            core: o.cores.map(|c| c[i]),
            wait: o.wait,
        })
        .collect();
    let pl = Runtime::place(&specs);
    let pinned = pl.iter().all(|p| p.core.is_some());
    let (md_tx, mut md_rx) = ring::<MarketEvent>(1 << 16, FullPolicy::DropNewest, pl[1].wait);
    let (cmd_tx, mut cmd_rx) = ring::<OrderCommand>(1 << 14, FullPolicy::Backpressure, pl[2].wait);
    let (mut rep_tx, mut rep_rx) =
        ring::<ExecReport>(1 << 14, FullPolicy::Backpressure, pl[1].wait);
    let mut runner = FeedRunner::new(
        &plans,
        LiveOptions {
            wait: pl[0].wait,
            ..Default::default()
        },
        md_tx,
        None,
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let strat_done = Arc::new(AtomicBool::new(false));
    let mut rt = Runtime::new();
    let (feed_tx, feed_rx) = std::sync::mpsc::channel();
    let fs = stop.clone();
    rt.spawn(names[0], pl[0], move |_| {
        runner.run(&fs);
        let _ = feed_tx.send((
            runner.stats().frames,
            runner.router.binance.counters().ring_drops,
        ));
    })?;
    let (strat_tx, strat_rx) = std::sync::mpsc::channel();
    let (ss, done) = (stop.clone(), strat_done.clone());
    let (every, max_orders) = (o.every.max(1), o.max_orders);
    let mut risk = RiskEngine::new(bench_risk(), None, now_ns()).context("risk engine")?;
    risk.set_step(Venue::BinanceUsdm, symbol, Qty(100_000));
    rt.spawn(names[1], pl[1], move |p| {
        let mut cmd_tx = cmd_tx;
        let mut ids = ClientIdGen::new(now_ns() / 1_000_000);
        let mut out = StrategyOut {
            sent: Vec::with_capacity(max_orders),
            risk_rejects: 0,
            venue_rejects: 0,
            trinity_runs: 0,
        };
        let (mut n, mut spins, mut bid, mut stale) = (0u64, 0u32, Price::ZERO, true);
        while !ss.load(Ordering::Relaxed) && out.sent.len() < max_orders {
            let mut busy = false;
            while let Ok(r) = rep_rx.pop() {
                busy = true;
                if r.kind == ExecKind::Rejected {
                    out.venue_rejects += 1;
                }
                risk.on_report(&r, now_ns());
            }
            let Ok(ev) = md_rx.pop() else {
                if !busy {
                    p.wait.idle(&mut spins);
                }
                continue;
            };
            spins = 0;
            let popped_ns = now_ns();
            risk.on_market(&ev);
            match ev.payload {
                MarketPayload::BookTop(t) | MarketPayload::Quote(t) if t.bid_px.raw() > 0 => {
                    bid = t.bid_px;
                    stale = false;
                }
                MarketPayload::BookStale { .. } => stale = true,
                _ => {}
            }
            if let Some(t) = trinity.as_mut() {
                let _ = qalpha_strategy::baselines::TickStrategy::on_event(t, &ev);
            }
            let Some(key) = event_key(&ev) else {
                continue;
            };
            n += 1;
            if n % every != 0 || stale || bid.raw() <= 0 {
                continue;
            }
            if let Some(t) = trinity.as_mut() {
                if t.infer_now(ev.exch_ms) {
                    out.trinity_runs += 1;
                }
            }
            let o = trigger_order(symbol, ids.next_id(), bid);
            let decided_ns = now_ns();
            let cmd = OrderCommand {
                venue: o.venue,
                symbol,
                tick_recv_ns: ev.recv_ns,
                decided_ns,
                action: OrderAction::New(o),
            };
            let verdict = risk.check(&cmd, None, decided_ns);
            let risk_ns = now_ns();
            if verdict.is_err() {
                out.risk_rejects += 1;
                continue;
            }
            cmd_tx.push(cmd);
            out.sent.push(Sent {
                client_id: o.client_id,
                key,
                recv_ns: ev.recv_ns,
                decoded_ns: ev.decoded_ns,
                popped_ns,
                decided_ns,
                risk_ns,
            });
        }
        done.store(true, Ordering::Relaxed);
        drop(cmd_tx);
        let _ = strat_tx.send(out);
    })?;
    let (gw_tx, gw_rx) = std::sync::mpsc::channel();
    let gs = stop.clone();
    rt.spawn(names[2], pl[2], move |p| {
        let stats = gateway.run(&mut cmd_rx, &mut rep_tx, p.wait, &gs);
        let _ = gw_tx.send(stats);
    })?;

    while started.elapsed() < o.max_time && !strat_done.load(Ordering::Relaxed) {
        if mock.tape_finished() {
            std::thread::sleep(Duration::from_millis(300));
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    // Let the last orders reach the mock before stopping.
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    let panicked = rt.join();
    mock.stop();
    if !panicked.is_empty() {
        bail!("bench thread(s) panicked: {panicked:?}");
    }
    let (frames, ring_drops) = feed_rx.recv().context("feed result")?;
    let st = strat_rx.recv().context("strategy result")?;
    let gw = gw_rx.recv().context("gateway result")?;
    let (sent_frames, arrivals) = probe.take();
    let mut result = join(&st.sent, &gw.order_trace, &sent_frames, &arrivals);
    result.variant = variant.to_string();
    result.wait = match o.wait {
        WaitMode::Spin => "spin",
        WaitMode::Yield => "yield",
        WaitMode::Park => "epoll",
    };
    result.trinity = o.trinity.is_some();
    result.every = every;
    result.pinned = pinned;
    result.risk_rejects = st.risk_rejects;
    result.venue_rejects = st.venue_rejects;
    result.ring_drops = ring_drops;
    result.frames = frames;
    result.elapsed_s = started.elapsed().as_secs_f64();
    if o.trinity.is_some() && st.trinity_runs == 0 && !st.sent.is_empty() {
        bail!("the Trinity never ran on the decision path (its windows never filled)");
    }
    Ok(result)
}

/// Pairs each order with its frame (by the frame's id), the gateway's stamps (by client id) and
/// its arrival at the mock (by client id); histograms of the total and of each stage.
fn join(
    sent: &[Sent],
    gateway: &[OrderStamp],
    frames: &[(u64, u64)],
    arrivals: &[(String, u64)],
) -> WireResult {
    let mut frame_at: HashMap<u64, u64> = HashMap::with_capacity(frames.len());
    for &(k, t) in frames {
        frame_at.entry(k).or_insert(t);
    }
    let arrived: HashMap<&str, u64> = arrivals.iter().map(|(c, t)| (c.as_str(), *t)).collect();
    let gw: HashMap<ClientOrderId, &OrderStamp> =
        gateway.iter().map(|g| (g.client_id, g)).collect();
    let mut total = histogram();
    let mut stages: Vec<Histogram<u64>> = STAGES.iter().map(|_| histogram()).collect();
    let mut matched = 0u64;
    for s in sent {
        let (Some(&t0), Some(&t_end), Some(g)) = (
            frame_at.get(&s.key),
            arrived.get(s.client_id.as_str()),
            gw.get(&s.client_id),
        ) else {
            continue;
        };
        matched += 1;
        let points = [
            t0,
            s.recv_ns,
            s.decoded_ns,
            s.popped_ns,
            s.decided_ns,
            s.risk_ns,
            g.dequeued_ns,
            g.encoded_ns,
            g.written_ns,
            t_end,
        ];
        total.saturating_record(t_end.saturating_sub(t0).max(1));
        for (i, h) in stages.iter_mut().enumerate() {
            h.saturating_record(points[i + 1].saturating_sub(points[i]).max(1));
        }
    }
    WireResult {
        variant: String::new(),
        wait: "",
        trinity: false,
        every: 0,
        pinned: false,
        orders_sent: sent.len() as u64,
        orders_matched: matched,
        risk_rejects: 0,
        venue_rejects: 0,
        ring_drops: 0,
        frames: 0,
        tick_to_order: Dist::of(&total),
        stages: STAGES
            .iter()
            .zip(&stages)
            .map(|(n, h)| (n.to_string(), Dist::of(h)))
            .collect(),
        elapsed_s: 0.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(s: &str) -> ClientOrderId {
        ClientOrderId::parse(s).unwrap()
    }

    #[test]
    fn orders_pair_with_their_frames_and_the_stages_add_up() {
        // Two orders; the second's frame never reached the probe (not matched); a third order the
        // gateway never wrote (not matched either).
        let order = |c: &str, key: u64, t: u64| Sent {
            client_id: id(c),
            key,
            recv_ns: t + 100,
            decoded_ns: t + 300,
            popped_ns: t + 350,
            decided_ns: t + 400,
            risk_ns: t + 420,
        };
        let sent = [
            order("a-1", 7, 1_000),
            order("a-2", 8, 4_900),
            order("a-3", 7, 1_000),
        ];
        let stamp = |c: &str, d: u64| OrderStamp {
            client_id: id(c),
            tick_recv_ns: 0,
            decided_ns: 0,
            dequeued_ns: d,
            encoded_ns: d + 100,
            written_ns: d + 150,
        };
        let gw = [stamp("a-1", 1_500), stamp("a-2", 5_500)];
        let frames = [(7, 1_000), (7, 900_000)]; // a repeated key keeps its first send
        let arrivals = [("a-1".to_string(), 2_000), ("a-2".to_string(), 6_000)];
        let r = join(&sent, &gw, &frames, &arrivals);
        assert_eq!((r.orders_sent, r.orders_matched), (3, 1));
        assert_eq!(r.tick_to_order.samples, 1);
        assert!(
            (r.tick_to_order.p50_us - 1.0).abs() < 0.01,
            "{:?}",
            r.tick_to_order
        );
        let want = [100, 200, 50, 50, 20, 80, 100, 50, 350];
        for ((name, d), w) in r.stages.iter().zip(want) {
            assert_eq!(d.samples, 1, "{name}");
            assert!((d.p50_us * 1e3 - w as f64).abs() < 1.0, "{name}: {d:?}");
        }
        let sum: f64 = r.stages.iter().map(|(_, d)| d.p50_us).sum();
        assert!((sum - r.tick_to_order.p50_us).abs() < 0.01);
    }
}
