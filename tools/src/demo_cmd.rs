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

mod engine;
pub mod executor;
pub mod ledger;
mod parts;
mod report;
mod startup;
pub mod strategy;
mod supervise;
mod thread;
mod wiring;

pub use report::{AlertCounts, DemoReport, Recorded};
pub use startup::Restored;
pub use supervise::Emergency;

pub(crate) use engine::{finish_run, run_engine, Target};
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
use qalpha_engine::config::EngineConfig;
use qalpha_engine::event::{MarketEvent, Venue};
use qalpha_engine::order::{ExecReport, OrderCommand};
use qalpha_engine::ring::{ring, FullPolicy};
use qalpha_engine::runtime::{Runtime, ThreadSpec, WaitMode};
use qalpha_engine::{Qty, Symbol};
use qalpha_feeds::live::{recorder_ring, FeedRunner, LiveOptions};
use qalpha_venues::mock::FaultSpec;
use serde_json::json;

use crate::live_cmd::parse_dur;
use crate::monitor::{MetricsServer, Sources};
use crate::order_journal::OrderJournal;
use executor::{Executor, Market};
use ledger::decimal;
use qalpha_engine::metrics::{FeedMetrics, GatewayMetrics};
use qalpha_risk::engine::RiskEngine;
use qalpha_risk::RiskConfig;
use qalpha_venues::fill::FeeSchedule;
use qalpha_venues::gateway::session::Gateway;
use qalpha_venues::paper::PaperVenue;
use strategy::StrategySpec;
use thread::LiveView;

/// `qalpha demo`'s exit code when an engine thread stalled (trading halted, orders cancelled).
pub const EXIT_STALLED: u8 = 3;

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
    /// Replay pace of the mock's market (N times the recorded pace).
    #[arg(long, default_value_t = 20.0)]
    pub speed: f64,
    /// Capture the mock exchange serves (a Binance USD-M BTCUSDT .qcap; default: the bundled sample).
    #[arg(long)]
    pub capture: Option<PathBuf>,
    /// Where orders go: `mock` (default: the mock exchange's WebSocket API, fills from its matching
    /// of the served market, private stream) or `paper` (the local paper venue: the same fill model
    /// on the engine's own market events; nothing is sent).
    #[arg(long, default_value = "mock")]
    pub mode: String,
    /// Faults the mock exchange injects (`--mode mock`), e.g. `reject=0.2,disconnect-every=20s`.
    #[arg(long, value_parser = parse_faults)]
    pub faults: Option<FaultSpec>,
    /// Fault injection (tests): the strategy thread stops working and beating this long after it
    /// starts.
    #[arg(long, value_parser = parse_dur, hide = true)]
    pub fault_stall_strategy: Option<Duration>,
    /// What runs and how it is watched.
    #[command(flatten)]
    pub engine: EngineArgs,
}
/// The engine's settings shared by `qalpha demo` and `qalpha run`: the strategy, risk, the
/// journals and the operator's interfaces.
#[derive(clap::Args, Debug, Clone)]
pub struct EngineArgs {
    /// Also write the summary as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// How idle engine threads wait: spin, yield or park.
    #[arg(long, default_value = "park")]
    pub wait: String,
    /// The strategy, by name: `maker` (post-only quotes at the touch), `obi-taker` (takes the side
    /// the top of book leans to), `sma-cross` (moving-average crossover on time bars of
    /// `strategy.bar_ms`, default 1000). Params: `--set strategy.KEY=VALUE`.
    #[arg(long, default_value = strategy::DEFAULT_STRATEGY)]
    pub strategy: String,
    /// Override a setting, e.g. `--set risk.daily_loss_limit=1` (quote currency) or
    /// `--set strategy.threshold=0.3`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// The config: `[risk]` limits, `[strategy]` params and `[alerts]` channels (`--set` applies on
    /// top); for `qalpha run` (required) also `mode` and the `[[venues]]` it trades on.
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
    /// Serve Prometheus metrics at `http://ADDR/metrics` (e.g. 127.0.0.1:9184; port 0: any free
    /// port, printed on stderr). See docs/OPERATIONS.md for the series.
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<String>,
    /// An engine thread whose heartbeat stands still this long is stuck: trading is halted (open
    /// orders cancelled, over REST if need be) and the run stops with exit code 3.
    #[arg(long, value_parser = parse_dur, default_value = "5s")]
    pub stall_after: Duration,
    /// The order journal: every order command, ack, fill, cancel and reject, and the engine's
    /// system events, appended as JSON lines (read it with `qalpha journal`).
    #[arg(long, value_name = "FILE")]
    pub journal: Option<PathBuf>,
    /// At shutdown (end of run, SIGTERM, SIGINT), close any position with a market order after
    /// cancelling the open ones (default: positions are left as they are).
    #[arg(long)]
    pub flatten_on_exit: bool,
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
    /// `qalpha run` against a venue's test network / the real venue.
    Testnet,
    Live,
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
    /// Serve `/metrics` here.
    pub metrics: Option<String>,
    /// The supervisor's stall window.
    pub stall_after: Duration,
    /// Fault injection for tests: the strategy thread stops beating (and working) this long after
    /// it starts, until the run stops.
    pub stall_strategy_after: Option<Duration>,
    /// Alert channels and limits (`[alerts]`; no channels: no alerts).
    pub alerts: crate::alerts::AlertConfig,
    /// The order journal.
    pub journal: Option<PathBuf>,
    /// Close any position at shutdown.
    pub flatten_on_exit: bool,
    /// The feed → strategy ring's capacity (events).
    pub md_ring: usize,
    /// Fault injection (tests): the strategy thread spends this long on every market event (a slow
    /// consumer: the ring fills and the feed drops).
    pub slow_strategy: Option<Duration>,
    /// Receives the threads' metric blocks once they exist (the soak's sampler reads them).
    pub sources_out: Option<std::sync::mpsc::Sender<crate::monitor::Sources>>,
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
            metrics: None,
            stall_after: Duration::from_secs(5),
            stall_strategy_after: None,
            alerts: Default::default(),
            journal: None,
            flatten_on_exit: false,
            md_ring: 1 << 16,
            slow_strategy: None,
            sources_out: None,
        }
    }
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
    let target = Target {
        plans: mock_feed_plans(&mock, symbol, o.wait)?,
        gateway: (o.mode != DemoMode::Paper).then(|| mock_gateway_config(&mock, symbol)),
        venue: Venue::BinanceUsdm,
        symbol,
        mock: Some(&mock),
    };
    let res = run_engine(o, decider, target, stop, started);
    mock.stop();
    res
}

/// Runs `qalpha demo`.
pub fn run(a: DemoArgs) -> Result<()> {
    let mode = match a.mode.as_str() {
        "mock" => DemoMode::Mock,
        "paper" => DemoMode::Paper,
        m => bail!("--mode {m:?}: use mock or paper"),
    };
    let (base, _) = a.engine.options()?;
    let o = DemoOptions {
        mode,
        duration: a.duration,
        speed: a.speed,
        capture: a.capture.unwrap_or_else(default_capture),
        faults: a.faults.unwrap_or_default(),
        stall_strategy_after: a.fault_stall_strategy,
        ..base
    };
    let rep = run_demo(&o, crate::live_cmd::ctrl_c_flag())?;
    finish_run(&rep)
}
