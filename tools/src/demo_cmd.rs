//! `qalpha demo`: the whole engine against the mock exchange, offline and without keys.
//!
//! The mock exchange starts in-process (Binance USD-M over TLS, replaying the bundled real capture
//! `data/sample/btcusdt-usdm-20230404.qcap`, its CA written to a temporary directory). Against it run
//! three engine threads (DESIGN §1), placed by [`Runtime`] unpinned with `park` waiting by default so
//! the demo behaves on a 2-core box:
//!
//! ```text
//! feed (FeedRunner: depth@0ms, bookTicker, trade) ─MarketEvent ring (drop newest)─► strategy
//! strategy (baseline → Executor → RiskEngine, book checker) ─OrderCommand ring (back-pressure)─► gateway
//! gateway (ws-fapi orders, REST fallback, user-data stream) ─ExecReport ring (back-pressure)─► strategy
//! ```
//!
//! The strategy is any of the strategy crate's baselines by name (`--strategy`, default `maker`:
//! post-only quotes at the touch; see [`strategy`]); the [`executor`] turns its intents into orders
//! through the risk engine.
//!
//! The gateway is the engine's own (`qalpha_venues::gateway::session`): orders over the mock's
//! Binance WebSocket API, fills from the user-data stream, reconciliation over REST. In paper mode
//! there is no gateway thread: the paper venue runs inline on the strategy thread, on event time, so
//! the run is deterministic in the events it received ([`thread`]).
//!
//! `--record FILE.qcap` records every raw frame the feed thread receives (WebSocket frames, the
//! REST snapshots, connects and disconnects) through the feed's recorder ring: a paper run's
//! recording, backtested with `--fill top` and zero latencies, sends the same orders
//! (`tools/tests/replay_equivalence.rs`).
//!
//! Progress goes to stderr every few seconds; the summary is printed on stdout (JSON with `--json`
//! FILE as well). Tick-to-order runs from the `recv_ns` of the market event behind a decision to the
//! moment the order's bytes were handed to the WebSocket.

pub mod executor;
pub mod ledger;
mod parts;
pub mod strategy;
mod thread;
mod wiring;

pub(crate) use wiring::{mock_feed_plans, mock_gateway_config, start_mock};

pub use parts::{summary_text, Latency};
use parts::{GatewaySummary, Venues};

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use qalpha_engine::capture::Transport;
use qalpha_engine::capture::WriterOptions;
use qalpha_engine::event::{MarketEvent, Venue};
use qalpha_engine::order::{ExecReport, OrderCommand};
use qalpha_engine::ring::{ring, FullPolicy};
use qalpha_engine::runtime::{Runtime, ThreadSpec, WaitMode};
use qalpha_engine::{Qty, Symbol};
use qalpha_feeds::live::{recorder_ring, FeedRunner, LiveOptions};
use qalpha_venues::mock::FaultSpec;
use serde_json::json;

use executor::{Executor, Market};
use ledger::decimal;
use qalpha_risk::engine::RiskEngine;
use qalpha_risk::RiskConfig;
use qalpha_venues::fill::FeeSchedule;
use qalpha_venues::gateway::session::Gateway;
use qalpha_venues::paper::PaperVenue;
use strategy::StrategySpec;
use thread::LiveView;

/// The capture bundled with the repository (relative to its root).
pub const SAMPLE_CAPTURE: &str = "data/sample/btcusdt-usdm-20230404.qcap";

/// The bundled capture: from the working directory if it is the repository root, else from the
/// source tree this binary was built from.
pub fn default_capture() -> PathBuf {
    let here = PathBuf::from(SAMPLE_CAPTURE);
    if here.is_file() {
        return here;
    }
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../")).join(SAMPLE_CAPTURE)
}

/// `qalpha demo` arguments.
#[derive(clap::Args, Debug)]
pub struct DemoArgs {
    /// How long to run (e.g. 60s, 2m).
    #[arg(long, value_parser = parse_dur, default_value = "60s")]
    pub duration: Duration,
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Replay pace of the mock's market (N times the recorded pace).
    #[arg(long, default_value_t = 20.0)]
    pub speed: f64,
    /// Capture the mock exchange serves (a Binance USD-M BTCUSDT .qcap; default: the bundled sample).
    #[arg(long)]
    pub capture: Option<PathBuf>,
    /// How idle engine threads wait: spin, yield or park.
    #[arg(long, default_value = "park")]
    pub wait: String,
    /// Where orders go: `mock` (default: the mock exchange's WebSocket API, fills from its matching
    /// of the served market, private stream) or `paper` (the local paper venue: the same fill model
    /// on the engine's own market events; nothing is sent).
    #[arg(long, default_value = "mock")]
    pub mode: String,
    /// The strategy, by name: `maker` (post-only quotes at the touch), `obi-taker` (takes the side
    /// the top of book leans to), `sma-cross` (moving-average crossover on time bars of
    /// `strategy.bar_ms`, default 1000). Params: `--set strategy.KEY=VALUE`.
    #[arg(long, default_value = strategy::DEFAULT_STRATEGY)]
    pub strategy: String,
    /// Override a setting, e.g. `--set risk.daily_loss_limit=1` (quote currency) or
    /// `--set strategy.threshold=0.3`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// A config file whose `[risk]` and `[strategy]` sections set the limits and the strategy's
    /// params (`--set` applies on top).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The risk journal: restored at start (today's PnL, halt state, counters), appended to.
    #[arg(long)]
    pub risk_journal: Option<PathBuf>,
    /// Record every raw frame the feed receives to this capture (`.qcap`): replay it with
    /// `qalpha replay`, backtest it with `qalpha backtest --data FILE` (a paper run backtests to
    /// the same orders with `--fill top --feed-latency 0 --order-latency 0`).
    #[arg(long, value_name = "FILE.qcap")]
    pub record: Option<PathBuf>,
    /// Faults the mock exchange injects (`--mode mock`), e.g. `reject=0.2,disconnect-every=20s`.
    #[arg(long, value_parser = parse_faults)]
    pub faults: Option<FaultSpec>,
    /// Serve the control API here (`GET /status`, `POST /halt|/resume|/flatten` with an `X-TOTP`
    /// code; secret in QALPHA_CONTROL_TOTP_SECRET), e.g. 127.0.0.1:9300 (port 0: any free port;
    /// the address is printed on stderr). `--mode mock` only.
    #[arg(long, value_name = "ADDR")]
    pub control: Option<String>,
    /// Addresses allowed to use the control API: IPs or CIDR networks, comma-separated.
    #[arg(long, default_value = "127.0.0.1,::1")]
    pub control_allow: String,
    /// Append every control request that changed something or was refused here (JSON lines).
    #[arg(long, value_name = "FILE")]
    pub control_audit: Option<PathBuf>,
}

fn parse_faults(s: &str) -> Result<FaultSpec, String> {
    FaultSpec::parse(s).map_err(|e| format!("{e}; {}", qalpha_venues::mock::FAULT_HELP))
}

/// Where the demo's orders go.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum DemoMode {
    /// Orders to the mock exchange over its WebSocket API (the engine's venue gateway).
    Mock,
    /// Orders filled locally by the paper venue (`qalpha_venues::paper`).
    Paper,
}

/// Demo settings (what the library entry point takes).
#[derive(Clone, Debug)]
pub struct DemoOptions {
    pub duration: Duration,
    pub speed: f64,
    pub capture: PathBuf,
    pub wait: WaitMode,
    /// Progress line interval on stderr (`None`: quiet).
    pub progress_every: Option<Duration>,
    pub json: Option<PathBuf>,
    pub mode: DemoMode,
    /// Risk limits (`[risk]`, with `--set risk.key=value` applied).
    pub risk: RiskConfig,
    /// Where the risk journal lives (restored at start, appended to).
    pub risk_journal: Option<PathBuf>,
    /// The strategy by name, with its params.
    pub strategy: StrategySpec,
    /// Record the feed's raw frames to this capture.
    pub record: Option<PathBuf>,
    /// Paper mode: keep every command sent to the paper venue in [`DemoReport::commands`].
    pub keep_commands: bool,
    /// Faults the mock exchange injects.
    pub faults: FaultSpec,
    /// The control API (mock mode).
    pub control: Option<crate::control::ControlConfig>,
}

impl Default for DemoOptions {
    fn default() -> Self {
        Self {
            duration: Duration::from_secs(60),
            speed: 20.0,
            capture: default_capture(),
            wait: WaitMode::Park,
            progress_every: Some(Duration::from_secs(3)),
            json: None,
            mode: DemoMode::Mock,
            risk: RiskConfig::default(),
            risk_journal: None,
            strategy: StrategySpec::default(),
            record: None,
            keep_commands: false,
            faults: FaultSpec::default(),
            control: None,
        }
    }
}

/// The demo's summary.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct DemoReport {
    /// The strategy's registry name and the params it was given (bar strategies: `bar_ms` too).
    pub strategy: String,
    pub strategy_params: std::collections::BTreeMap<String, String>,
    /// Intents the strategy returned.
    pub intents: u64,
    /// What the strategy itself counted (the Trinity: bars, inference runs, last decision).
    pub strategy_summary: std::collections::BTreeMap<String, String>,
    pub frames: u64,
    pub events: u64,
    pub reconnects: u64,
    pub resyncs: u64,
    pub gaps: u64,
    pub ring_drops: u64,
    pub book_checks: u64,
    pub book_mismatches: u64,
    pub orders: u64,
    pub acks: u64,
    pub fills: u64,
    pub rejects: u64,
    pub cancels: u64,
    pub canceled: u64,
    pub expired: u64,
    pub duplicate_orders: u64,
    pub orders_on_stale_book: u64,
    /// Reports the order state machine ignored as repeats or late / for ids never sent.
    pub duplicate_reports: u64,
    pub unknown_reports: u64,
    /// New orders the risk engine refused (never sent) / reduce-only orders it sent.
    pub risk_rejects: u64,
    pub risk_orders: u64,
    /// `active`, `reducing` or `halted` at the end; the switch that halted and when.
    pub final_state: String,
    pub halt_reason: Option<String>,
    pub halted_at_ns: Option<u64>,
    /// Symbol → signed position (exact decimal) from the risk ledger.
    pub final_positions: std::collections::BTreeMap<String, String>,
    /// Orders not final at the end.
    pub open_orders: u64,
    /// Risk journal records written this run.
    /// Risk state changes (halts, reducing, conservative on and off).
    pub risk_transitions: u64,
    pub risk_events: u64,
    /// Risk refusals by reason.
    pub risk_rejected_by: std::collections::BTreeMap<String, u64>,
    /// Base quantity at the end, exact decimal (= bought − sold, the sums of the fills).
    pub position: String,
    pub bought: String,
    pub sold: String,
    /// Net PnL (cash flow + position at mid − fees), quote currency, exact decimal.
    pub pnl: String,
    pub pnl_before_fees: String,
    pub fees: String,
    pub fee_model: String,
    /// `mock` or `paper`.
    pub mode: Option<DemoMode>,
    pub tick_to_order: Latency,
    /// Tick → the venue's answer to the new order (REST round trip included).
    pub tick_to_answer: Latency,
    /// Order requests over the WebSocket API / REST requests of any kind (fallback, reconciliation).
    pub ws_requests: u64,
    pub rest_requests: u64,
    pub reconciliations: u64,
    pub private_reconnects: u64,
    pub transport_errors: u64,
    pub clock_offset_ms: f64,
    pub last_error: Option<String>,
    pub speed: f64,
    /// The mock played the whole capture (the run ended there, before `--duration`).
    pub tape_finished: bool,
    pub elapsed_s: f64,
    /// What `--record` wrote.
    pub recorded: Option<Recorded>,
    /// Paper mode with [`DemoOptions::keep_commands`]: every command the paper venue received, in
    /// order (not in the JSON summary).
    #[serde(skip)]
    pub commands: Vec<OrderCommand>,
}

/// The capture `--record` wrote.
#[derive(Clone, Debug, Default, serde::Serialize)]
pub struct Recorded {
    pub file: PathBuf,
    pub records: u64,
}

/// What the feed thread hands back.
struct FeedResult {
    frames: u64,
    connects: u64,
    resyncs: u64,
    gaps: u64,
    ring_drops: u64,
    last_error: Option<String>,
}

/// Runs the demo for `o.duration` (or until `stop` is set) and returns its summary.
pub fn run_demo(o: &DemoOptions, stop: Arc<AtomicBool>) -> Result<DemoReport> {
    let started = Instant::now();
    // A bad name or param stops the demo here, before anything starts.
    let decider = o
        .strategy
        .build()
        .map_err(|e| anyhow::anyhow!("--strategy {}: {e}", o.strategy.name))?;
    if !o.capture.is_file() {
        bail!(
            "capture {} not found: run from the repository root or pass --capture FILE.qcap",
            o.capture.display()
        );
    }
    if !o.speed.is_finite() || o.speed <= 0.0 {
        bail!(
            "--speed {}: use a positive factor (20 = 20× the recorded pace)",
            o.speed
        );
    }
    let cert_dir = std::env::temp_dir().join(format!(
        "qalpha-demo-{}-{}",
        std::process::id(),
        qalpha_engine::clock::now_ns()
    ));
    std::fs::create_dir_all(&cert_dir)
        .with_context(|| format!("cannot create {}", cert_dir.display()))?;
    let result = run_with_mock(o, decider, &cert_dir, stop, started);
    let _ = std::fs::remove_dir_all(&cert_dir);
    let rep = result?;
    if let Some(path) = &o.json {
        std::fs::write(path, serde_json::to_string_pretty(&rep)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(rep)
}

fn run_with_mock(
    o: &DemoOptions,
    decider: strategy::Decider,
    cert_dir: &std::path::Path,
    stop: Arc<AtomicBool>,
    started: Instant,
) -> Result<DemoReport> {
    let mock = start_mock(&o.capture, o.speed, o.faults.clone(), cert_dir)?;
    let symbol = Symbol::parse("BTCUSDT").context("symbol")?;
    let plans = mock_feed_plans(&mock, symbol, o.wait)?;
    let ws_conns = FeedRunner::connection_table(&plans)
        .iter()
        .filter(|c| c.transport == Transport::WebSocket)
        .count() as u64;
    let gw = match o.mode {
        DemoMode::Mock => Venues::Gateway(Box::new(Gateway::connect(mock_gateway_config(
            &mock, symbol,
        ))?)),
        DemoMode::Paper => Venues::Paper(Box::new(PaperVenue::new(
            Venue::BinanceUsdm,
            FeeSchedule::BINANCE_USDM_REGULAR,
        ))),
    };

    // Paper mode needs no gateway thread: the paper venue runs on the strategy thread.
    let names: &[&str] = match o.mode {
        DemoMode::Mock => &["qa-feed", "qa-strategy", "qa-gateway"],
        DemoMode::Paper => &["qa-feed", "qa-strategy"],
    };
    let specs: Vec<ThreadSpec> = names
        .iter()
        .map(|n| ThreadSpec {
            name: n.to_string(),
            core: None,
            wait: o.wait,
        })
        .collect();
    let pl = Runtime::place(&specs);
    let (md_tx, mut md_rx) = ring::<MarketEvent>(1 << 16, FullPolicy::DropNewest, pl[0].wait);
    // The recorder: one producer (the feed thread), the runner's connection table as the header.
    let rec_stop = Arc::new(AtomicBool::new(false));
    let (rec_tx, rec_handle) = match &o.record {
        Some(path) => {
            let (mut txs, handle) = recorder_ring(
                path.clone(),
                FeedRunner::connection_table(&plans),
                WriterOptions::default(),
                64 << 20,
                1,
                rec_stop.clone(),
            )
            .with_context(|| {
                format!(
                    "--record {}: cannot create the capture (is the directory there and writable?)",
                    path.display()
                )
            })?;
            (txs.pop(), Some(handle))
        }
        None => (None, None),
    };
    let mut runner = FeedRunner::new(
        &plans,
        LiveOptions {
            wait: pl[0].wait,
            ..Default::default()
        },
        md_tx,
        rec_tx,
    )?;
    // The control API: a thread of its own, commands to the strategy thread over a channel.
    let control = match (&o.control, o.mode) {
        (None, _) => None,
        (Some(_), DemoMode::Paper) => bail!("--control needs --mode mock"),
        (Some(cfg), DemoMode::Mock) => {
            let (tx, rx) = crossbeam::channel::bounded(16);
            let status = Arc::new(std::sync::Mutex::new(json!({"risk_state": "starting"})));
            let server = crate::control::ControlServer::start(cfg.clone(), status.clone(), tx)?;
            eprintln!("control API on {}", server.addr);
            Some((server, rx, status))
        }
    };
    let view = Arc::new(LiveView::default());
    let mut rt = Runtime::new();

    let (feed_res_tx, feed_res_rx) = std::sync::mpsc::channel();
    let feed_stop = stop.clone();
    rt.spawn(&specs[0].name, pl[0], move |_| {
        runner.run(&feed_stop);
        let (live, sync, fc) = (
            runner.stats().clone(),
            runner.router.binance.sync_counters(),
            runner.router.binance.counters().clone(),
        );
        let _ = feed_res_tx.send(FeedResult {
            frames: live.frames,
            connects: live.connects,
            resyncs: fc.resyncs,
            gaps: sync.gaps,
            ring_drops: fc.ring_drops,
            last_error: live.last_error,
        });
    })?;

    let mut risk = RiskEngine::new(
        o.risk.clone(),
        o.risk_journal.as_deref(),
        qalpha_engine::clock::now_ns(),
    )
    .context("risk engine")?;
    // BTCUSDT's lot step on both venues (instrument rules): risk's position cuts are rounded to it.
    risk.set_step(Venue::BinanceUsdm, symbol, Qty(100_000));
    let mut strategy_params = o.strategy.params.clone();
    if let Some(ms) = decider.bar_ms() {
        strategy_params.insert("bar_ms".into(), ms.to_string());
    }
    let market = Market {
        venue: Venue::BinanceUsdm,
        symbol,
    };
    let q = Executor::with_risk(market, decider, risk);
    let (strat_res_tx, strat_res_rx) = std::sync::mpsc::channel();
    let (gw_res_tx, gw_res_rx) = std::sync::mpsc::channel();
    let v = view.clone();
    match gw {
        Venues::Paper(paper) => {
            let keep = o.keep_commands;
            rt.spawn(&specs[1].name, pl[1], move |p| {
                let res = thread::with_paper(q, &mut md_rx, *paper, keep, p.wait, &v);
                let _ = strat_res_tx.send(res);
            })?;
        }
        Venues::Gateway(g) => {
            let (cmd_tx, mut cmd_rx) =
                ring::<OrderCommand>(1024, FullPolicy::Backpressure, pl[1].wait);
            let (mut rep_tx, mut rep_rx) =
                ring::<ExecReport>(4096, FullPolicy::Backpressure, pl[2].wait);
            // The gateway runs until the strategy thread has wound down (its last cancels get
            // answered), not merely until `stop`.
            let gw_stop = Arc::new(AtomicBool::new(false));
            let strat_done = gw_stop.clone();
            let link = control
                .as_ref()
                .map(|(_, rx, status)| thread::ControlLink::new(rx.clone(), status.clone()));
            rt.spawn(&specs[1].name, pl[1], move |p| {
                let res = thread::with_gateway(
                    q,
                    &mut md_rx,
                    &mut rep_rx,
                    cmd_tx,
                    p.wait,
                    thread::Side {
                        view: &v,
                        done: &strat_done,
                        control: link,
                    },
                );
                let _ = strat_res_tx.send(res);
            })?;
            rt.spawn(&specs[2].name, pl[2], move |p| {
                let stats = g.run(&mut cmd_rx, &mut rep_tx, p.wait, &gw_stop);
                let _ = gw_res_tx.send(GatewaySummary::from_gateway(stats));
            })?;
        }
    }

    let mut next_progress = o.progress_every.map(|d| Instant::now() + d);
    let mut tape_end: Option<Instant> = None;
    // systemd (Type=notify): ready now; watchdog pings while the strategy thread's heartbeat moves.
    let _ = crate::sdnotify::notify("READY=1\nSTATUS=trading");
    let mut watchdog = crate::sdnotify::Watchdog::new(Duration::from_secs(5));
    let mut stalled = false;
    while !stop.load(Ordering::Relaxed) && started.elapsed() < o.duration {
        std::thread::sleep(Duration::from_millis(20));
        if !watchdog.tick(view.beats.load(Ordering::Relaxed)) {
            eprintln!("demo: the strategy thread has not beaten for 5 s; stopping (watchdog pings stopped)");
            stalled = true;
            break;
        }
        // The capture is finite: once it has played, give the engine a moment to drain, then stop.
        if mock.tape_finished() {
            let at = *tape_end.get_or_insert_with(Instant::now);
            if at.elapsed() >= Duration::from_millis(500) {
                if o.progress_every.is_some() {
                    eprintln!("demo: the capture has played to its end; stopping");
                }
                break;
            }
        }
        if let Some(at) = next_progress.filter(|at| Instant::now() >= *at) {
            eprintln!(
                "demo {:>5.1}s  events {}  orders {}  acks {}  fills {}  rejects {}  position {}",
                started.elapsed().as_secs_f64(),
                view.events.load(Ordering::Relaxed),
                view.orders.load(Ordering::Relaxed),
                view.acks.load(Ordering::Relaxed),
                view.fills.load(Ordering::Relaxed),
                view.rejects.load(Ordering::Relaxed),
                decimal(view.position.load(Ordering::Relaxed) as i128, 8),
            );
            next_progress = o.progress_every.map(|d| at + d);
        }
    }
    let _ = crate::sdnotify::notify("STOPPING=1\nSTATUS=cancelling open orders");
    stop.store(true, Ordering::Relaxed);
    let panicked = rt.join();
    drop(control);
    if stalled {
        bail!("an engine thread stalled: stopped trading and cancelled what it could");
    }
    mock.stop();
    if !panicked.is_empty() {
        bail!("engine thread(s) panicked: {panicked:?}");
    }
    let feed = feed_res_rx.recv().context("feed thread result")?;
    let st = strat_res_rx.recv().context("strategy thread result")?;
    let g = match st.paper {
        Some(p) => p,
        None => gw_res_rx.recv().context("gateway thread result")?,
    };
    // The feed thread has ended: its recorder ring is closed, the recorder drains it and finishes.
    rec_stop.store(true, Ordering::Relaxed);
    let recorded = match (rec_handle, &o.record) {
        (Some(h), Some(path)) => {
            let rs = h
                .join()
                .map_err(|_| anyhow::anyhow!("recorder thread panicked"))?
                .with_context(|| format!("--record {}", path.display()))?;
            Some(Recorded {
                file: path.clone(),
                records: rs.records,
            })
        }
        _ => None,
    };
    let (c, ledger, checker, risk) = (st.counters, st.ledger, st.checker, st.risk);
    Ok(DemoReport {
        strategy: o.strategy.name.clone(),
        strategy_params,
        intents: c.intents,
        strategy_summary: st
            .summary
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect(),
        frames: feed.frames,
        events: checker.events,
        reconnects: feed.connects.saturating_sub(ws_conns),
        resyncs: feed.resyncs,
        gaps: feed.gaps,
        ring_drops: feed.ring_drops,
        book_checks: checker.checker.counters().checks,
        book_mismatches: checker.checker.counters().mismatches,
        orders: c.orders,
        acks: c.acks,
        fills: c.fills,
        rejects: c.rejects,
        cancels: g.cancels,
        canceled: c.canceled,
        expired: c.expired,
        duplicate_orders: g.duplicate_orders,
        orders_on_stale_book: c.orders_on_stale_book,
        duplicate_reports: c.ignored_reports,
        unknown_reports: c.unknown_reports,
        risk_rejects: c.risk_rejects,
        risk_orders: c.risk_orders,
        final_state: risk.final_state,
        halt_reason: risk.halt_reason,
        halted_at_ns: risk.halted_at_ns,
        final_positions: risk.final_positions,
        open_orders: risk.open_orders,
        risk_events: risk.risk_events,
        risk_transitions: risk.transitions,
        risk_rejected_by: risk.rejected_by,
        position: decimal(ledger.position as i128, 8),
        bought: decimal(ledger.bought as i128, 8),
        sold: decimal(ledger.sold as i128, 8),
        pnl: decimal(ledger.net(), 16),
        pnl_before_fees: decimal(ledger.gross(), 16),
        fees: decimal(ledger.fees as i128, 8),
        fee_model: "mock schedule, Binance USD-M regular: maker 0.02 %, taker 0.05 %".into(),
        mode: Some(o.mode),
        tick_to_order: Latency::of(&g.tick_to_wire),
        tick_to_answer: Latency::of(&g.tick_to_answer),
        ws_requests: g.ws_requests,
        rest_requests: g.rest_requests,
        reconciliations: g.reconciliations,
        private_reconnects: g.private_reconnects,
        transport_errors: g.transport_errors,
        clock_offset_ms: g.clock_offset_ns as f64 / 1e6,
        last_error: g.last_error.or(feed.last_error),
        speed: o.speed,
        tape_finished: tape_end.is_some(),
        elapsed_s: started.elapsed().as_secs_f64(),
        recorded,
        commands: st.commands,
    })
}

/// Runs `qalpha demo`.
pub fn run(a: DemoArgs) -> Result<()> {
    let wait = WaitMode::parse(&a.wait)
        .with_context(|| format!("--wait {:?}: use spin, yield or park", a.wait))?;
    let mode = match a.mode.as_str() {
        "mock" => DemoMode::Mock,
        "paper" => DemoMode::Paper,
        m => bail!("--mode {m:?}: use mock or paper"),
    };
    let cfg =
        qalpha_engine::config::EngineConfig::load_with_overrides(a.config.as_deref(), &a.sets)?;
    let risk = RiskConfig::from_engine(&cfg)?;
    let strategy = StrategySpec::from_config(&a.strategy, &cfg)
        .map_err(|e| anyhow::anyhow!("--strategy {}: {e}", a.strategy))?;
    let o = DemoOptions {
        strategy,
        mode,
        risk,
        risk_journal: a.risk_journal,
        duration: a.duration,
        speed: a.speed,
        capture: a.capture.unwrap_or_else(default_capture),
        wait,
        json: a.json,
        record: a.record,
        faults: a.faults.unwrap_or_default(),
        control: a
            .control
            .as_deref()
            .map(|addr| {
                crate::control::ControlConfig::from_args(
                    addr,
                    &a.control_allow,
                    a.control_audit.clone(),
                )
            })
            .transpose()?,
        ..Default::default()
    };
    let rep = run_demo(&o, crate::live_cmd::ctrl_c_flag())?;
    println!("{}", summary_text(&rep));
    println!("{}", json!(rep));
    Ok(())
}

fn parse_dur(s: &str) -> Result<Duration, String> {
    qalpha_venues::mock::faults::parse_duration(s)
        .ok_or_else(|| format!("invalid duration {s:?}: use e.g. 500ms, 15s, 2m"))
}
