//! The Trinity: Guardian (regimes and a change score), Oracle (return quantiles per horizon) and
//! Strategist (an action given a target return), run with tract on the strategy thread, and the
//! decision layer that turns their outputs into a target position and an order type.
//!
//! [`Trinity`] is a [`TickStrategy`] (`tick_strategy("trinity", params)`), so the executors that run
//! the baselines run it too. Per market event of its instrument:
//!
//! 1. order-flow features update ([`OrderFlow`]); trades build time bars of `bar_ms`
//!    ([`TimeBars::on_trade_event`], the same bars `qalpha features` writes for training);
//! 2. on each closed bar the engine's feature row — the standard bar features
//!    ([`standard`]) followed by the order-flow columns as they stand at the bar's close — is
//!    normalized into each model's window (each model reads its own columns, in its own order);
//! 3. **inference** at the configured cadence: after every closed bar (`cadence_ms = 0`, the
//!    default) or every `cadence_ms` of event time, the newest window row then refreshed with the
//!    current order-flow values. A run needs every window full of finite rows (features warm up for
//!    ~50 bars; `warmup` primes them from a kline file). The latest outputs are kept
//!    ([`Trinity::latest`]);
//! 4. the **decision layer** ([`decision::decide`]) runs on every event with the latest outputs and
//!    the current spread; when its target differs from the last one asked for, the Trinity returns
//!    [`Intent::Target`] with the style it chose (maker: post-only; taker: IOC at the far touch;
//!    Guardian exit: market). Its disagreement is offered to risk through
//!    [`TickStrategy::disagreement`] (risk's conservative mode).
//!
//! Stale books: after `BookStale` nothing is asked until `BookSynced` (inference goes on: features
//! are not book-bound except the depth columns).
//!
//! Hot path: the per-event path (features, bars, windows, decision) allocates nothing after
//! construction; an inference run allocates inside tract (see [`crate::model::Model::run`]).
//!
//! # Params (`[strategy]` keys / `--set strategy.KEY=VALUE`)
//!
//! | key | default | meaning |
//! |---|---|---|
//! | `models` | — (required) | directory with `{guardian,oracle,strategist}.{onnx,json}` |
//! | `bar_ms` | 1000 | bar interval, ms |
//! | `cadence_ms` | 0 | 0: infer after each bar; N: every N ms of event time |
//! | `target_return` | 0.002 | the return the Strategist is conditioned on |
//! | `horizon` | the Oracle's first | bars ahead of the Oracle horizon to use |
//! | `max_qty` / `qty_step` | 0.001 / 0.001 | largest target; lot size |
//! | `min_conviction` | 0.2 | both directional scores must reach it |
//! | `taker_edge_bps` | 8 | edge (net of half the spread) from which to cross |
//! | `shock_max` / `change_max` | 0.5 / 0.8 | Guardian levels that zero the exposure |
//! | `warmup` | none | a kline CSV of `bar_ms` bars before the live start, to warm features up |

pub mod decision;
mod models;

use std::collections::BTreeMap;
use std::path::PathBuf;

use qalpha_engine::event::{MarketEvent, MarketPayload, TopOfBook};
use qalpha_engine::{Qty, Side};

use crate::bars::{read_klines, Bar, TimeBars};
use crate::baselines::{BarStrategy, Intent, Style, TickStrategy};
use crate::features::standard::standard;
use crate::features::FeatureSet;
use crate::model::ModelError;
use crate::orderflow::OrderFlow;

pub use decision::{decide, Decision, DecisionParams, OrderStyle, Reason, Signals};
pub use models::TrinityModels;

/// Trade windows of the order-flow columns the models may read.
pub const FLOW_WINDOWS_MS: [u64; 3] = [1_000, 10_000, 60_000];

/// Why the Trinity could not start (or a run failed).
#[derive(Debug, thiserror::Error)]
pub enum TrinityError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("model {} cannot play its Trinity role: {problem}", path.display())]
    Role { path: PathBuf, problem: String },
    #[error("{0}")]
    Param(String),
}

/// The Trinity's settings.
#[derive(Clone, Debug, PartialEq)]
pub struct TrinityConfig {
    pub models: PathBuf,
    pub bar_ms: u64,
    pub cadence_ms: u64,
    pub target_return: f32,
    pub horizon: Option<u32>,
    pub decision: DecisionParams,
    pub warmup: Option<PathBuf>,
}

impl TrinityConfig {
    /// Defaults with the given model directory.
    pub fn new(models: impl Into<PathBuf>) -> Self {
        Self {
            models: models.into(),
            bar_ms: 1000,
            cadence_ms: 0,
            target_return: 0.002,
            horizon: None,
            decision: DecisionParams::default(),
            warmup: None,
        }
    }

    /// From registry params (see the module docs for the keys).
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Self, String> {
        let p = crate::baselines::Params::new("trinity", params, PARAM_KEYS)?;
        let models = params.get("models").ok_or(
            "trinity: param models=DIR is required (guardian/oracle/strategist .onnx + .json)",
        )?;
        let d = DecisionParams::default();
        let cfg = Self {
            models: PathBuf::from(models),
            bar_ms: p.u64("bar_ms", 1000)?,
            cadence_ms: p.u64("cadence_ms", 0)?,
            target_return: p.f64("target_return", 0.002)? as f32,
            horizon: match params.get("horizon") {
                Some(_) => Some(p.u64("horizon", 0)? as u32),
                None => None,
            },
            decision: DecisionParams {
                max_qty: p.qty("max_qty", "0.001")?,
                qty_step: p.qty("qty_step", "0.001")?,
                min_conviction: p.f64("min_conviction", d.min_conviction)?,
                taker_edge_bps: p.f64("taker_edge_bps", d.taker_edge_bps)?,
                shock_max: p.f64("shock_max", d.shock_max)?,
                change_max: p.f64("change_max", d.change_max)?,
            },
            warmup: params.get("warmup").map(PathBuf::from),
        };
        cfg.check()?;
        Ok(cfg)
    }

    fn check(&self) -> Result<(), String> {
        let d = &self.decision;
        let bad = if self.bar_ms == 0 {
            "bar_ms must be positive"
        } else if d.qty_step.raw() <= 0 || d.max_qty.raw() < d.qty_step.raw() {
            "need 0 < qty_step <= max_qty"
        } else if !(0.0..=1.0).contains(&d.min_conviction) {
            "min_conviction must be in [0, 1]"
        } else if !(d.shock_max > 0.0
            && d.shock_max <= 1.0
            && d.change_max > 0.0
            && d.change_max <= 1.0)
        {
            "shock_max and change_max must be in (0, 1]"
        } else if d.taker_edge_bps.is_nan()
            || d.taker_edge_bps < 0.0
            || !self.target_return.is_finite()
        {
            "taker_edge_bps must be >= 0 and target_return finite"
        } else {
            return Ok(());
        };
        Err(format!("trinity: {bad}"))
    }
}

/// Every param the `trinity` strategy accepts.
pub const PARAM_KEYS: &[&str] = &[
    "models",
    "bar_ms",
    "cadence_ms",
    "target_return",
    "horizon",
    "max_qty",
    "qty_step",
    "min_conviction",
    "taker_edge_bps",
    "shock_max",
    "change_max",
    "warmup",
];

/// The latest inference outputs and what the decision layer made of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Latest {
    pub signals: Signals,
    /// The decision on the latest event (spread and position as they were then).
    pub decision: Decision,
    /// Event time of the run, ms.
    pub at_ms: u64,
}

/// What the Trinity counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TrinityStats {
    pub bars: u64,
    pub warmup_bars: u64,
    pub runs: u64,
    pub run_errors: u64,
    pub intents: u64,
}

/// The Trinity as a tick strategy. See the module docs.
pub struct Trinity {
    cfg: TrinityConfig,
    models: TrinityModels,
    features: FeatureSet,
    flow: OrderFlow,
    bars: TimeBars,
    /// Bar feature columns, then order-flow columns.
    row: Vec<f64>,
    bar_row: Vec<f64>,
    n_bar: usize,
    latest: Option<Latest>,
    last_run_ms: u64,
    last_error: Option<String>,
    stats: TrinityStats,
    position: i64,
    stale: bool,
    touch: Option<TopOfBook>,
    /// The target last asked for.
    last_target: Option<Qty>,
}

impl std::fmt::Debug for Trinity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trinity")
            .field("cfg", &self.cfg)
            .field("models", &self.models)
            .field("stats", &self.stats)
            .finish_non_exhaustive()
    }
}

impl Trinity {
    /// The engine's feature columns the models may read: the standard bar features, then the
    /// order-flow columns over [`FLOW_WINDOWS_MS`].
    pub fn feature_columns() -> Vec<String> {
        let mut names = standard().names().to_vec();
        names.extend(OrderFlow::new(&FLOW_WINDOWS_MS).names());
        names
    }

    /// Loads and checks the models, then warms the features up from `cfg.warmup` if given.
    pub fn new(cfg: TrinityConfig) -> Result<Trinity, TrinityError> {
        cfg.check().map_err(TrinityError::Param)?;
        let columns = Self::feature_columns();
        let models = TrinityModels::load(&cfg.models, &columns, cfg.horizon)?;
        let features = standard();
        let n_bar = features.len();
        let mut t = Trinity {
            bars: TimeBars::new(cfg.bar_ms),
            cfg,
            models,
            features,
            flow: OrderFlow::new(&FLOW_WINDOWS_MS),
            row: vec![f64::NAN; columns.len()],
            bar_row: vec![f64::NAN; n_bar],
            n_bar,
            latest: None,
            last_run_ms: 0,
            last_error: None,
            stats: TrinityStats::default(),
            position: 0,
            stale: false,
            touch: None,
            last_target: None,
        };
        if let Some(path) = t.cfg.warmup.clone() {
            let bars = read_klines(&path)
                .map_err(|e| TrinityError::Param(format!("trinity: warmup: {e}")))?;
            if let Some(w) = bars
                .windows(2)
                .find(|w| w[1].open_time_ms - w[0].open_time_ms != t.cfg.bar_ms)
            {
                return Err(TrinityError::Param(format!(
                    "trinity: warmup {} has bars {} ms apart at open_time {}; bar_ms is {}",
                    path.display(),
                    w[1].open_time_ms.wrapping_sub(w[0].open_time_ms),
                    w[1].open_time_ms,
                    t.cfg.bar_ms
                )));
            }
            for b in &bars {
                t.push_bar(b);
                t.stats.warmup_bars += 1;
            }
            if let Some(last) = bars.last() {
                t.infer(last.open_time_ms + t.cfg.bar_ms);
            }
        }
        Ok(t)
    }

    /// Builds from registry params ([`TrinityConfig::from_params`]).
    pub fn from_params(params: &BTreeMap<String, String>) -> Result<Trinity, String> {
        let cfg = TrinityConfig::from_params(params)?;
        Trinity::new(cfg).map_err(|e| e.to_string())
    }

    pub fn config(&self) -> &TrinityConfig {
        &self.cfg
    }

    pub fn models(&self) -> &TrinityModels {
        &self.models
    }

    /// The latest outputs (none before the first run).
    pub fn latest(&self) -> Option<&Latest> {
        self.latest.as_ref()
    }

    pub fn stats(&self) -> TrinityStats {
        self.stats
    }

    /// The last inference error, if any run failed.
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// The engine row of the last closed bar (bar features then order flow), in
    /// [`Trinity::feature_columns`] order.
    pub fn row(&self) -> &[f64] {
        &self.row
    }

    /// The position counted from fills (base qty).
    pub fn position(&self) -> Qty {
        Qty(self.position)
    }

    fn push_bar(&mut self, bar: &Bar) {
        self.features.update(bar, &mut self.bar_row);
        self.row[..self.n_bar].copy_from_slice(&self.bar_row);
        self.flow.write(&mut self.row[self.n_bar..]);
        self.models.push(&self.row);
        self.stats.bars += 1;
    }

    /// Runs the models now on the current windows, whatever the cadence (the latency benchmark puts
    /// this on each order's path); false when the windows are not ready or the run failed.
    pub fn infer_now(&mut self, now_ms: u64) -> bool {
        let before = self.stats.runs;
        self.infer(now_ms);
        self.stats.runs > before
    }

    /// One inference pass, if every window is ready.
    fn infer(&mut self, now_ms: u64) {
        if !self.models.ready() {
            return;
        }
        self.last_run_ms = now_ms;
        match self.models.run(self.cfg.target_return) {
            Ok(signals) => {
                self.stats.runs += 1;
                let decision = self.decide(&signals);
                self.latest = Some(Latest {
                    signals,
                    decision,
                    at_ms: now_ms,
                });
            }
            Err(e) => {
                self.stats.run_errors += 1;
                self.last_error = Some(e.to_string());
            }
        }
    }

    fn spread_bps(&self) -> f64 {
        match self.touch {
            Some(t) if t.bid_px.raw() > 0 && t.ask_px > t.bid_px => {
                let (b, a) = (t.bid_px.raw() as f64, t.ask_px.raw() as f64);
                (a - b) / ((a + b) / 2.0) * 1e4
            }
            _ => f64::NAN,
        }
    }

    fn decide(&self, s: &Signals) -> Decision {
        decide(s, &self.cfg.decision, Qty(self.position), self.spread_bps())
    }

    fn intent(&mut self) -> Option<Intent> {
        if self.stale {
            return None;
        }
        let touch = self.touch?;
        if touch.bid_px.raw() <= 0 || touch.ask_px <= touch.bid_px {
            return None;
        }
        let signals = self.latest?.signals;
        let d = self.decide(&signals);
        if let Some(l) = self.latest.as_mut() {
            l.decision = d;
        }
        if self.last_target == Some(d.target) {
            return None;
        }
        let buying = d.target.raw() > self.position;
        let style = match d.style {
            OrderStyle::Maker => Style::PostOnly,
            OrderStyle::Taker => Style::Ioc {
                limit: if buying { touch.ask_px } else { touch.bid_px },
            },
            OrderStyle::Exit => Style::Market,
        };
        self.last_target = Some(d.target);
        self.stats.intents += 1;
        Some(Intent::Target {
            qty: d.target,
            style,
        })
    }
}

/// The Trinity on klines (bar backtests, the research pipeline's test year): each closed bar goes
/// through the same features, windows and models as live, inference runs after every bar
/// (`cadence_ms` does not apply), and a changed target is traded at the next bar's open at market
/// (klines carry no book to rest an order on). Set `bar_ms` to the klines' interval. Without
/// fills reported back, the position the decision layer sees is the last target asked for.
impl BarStrategy for Trinity {
    fn name(&self) -> &'static str {
        "trinity"
    }

    fn on_bar(&mut self, bar: &Bar) -> Option<Intent> {
        self.push_bar(bar);
        self.infer(bar.open_time_ms + self.cfg.bar_ms);
        let signals = self.latest?.signals;
        let d = decide(&signals, &self.cfg.decision, Qty(self.position), f64::NAN);
        if let Some(l) = self.latest.as_mut() {
            l.decision = d;
        }
        if self.last_target == Some(d.target) {
            return None;
        }
        self.last_target = Some(d.target);
        self.position = d.target.raw();
        self.stats.intents += 1;
        Some(Intent::Target {
            qty: d.target,
            style: Style::Market,
        })
    }

    fn on_end(&mut self) -> Option<Intent> {
        Some(Intent::Target {
            qty: Qty::ZERO,
            style: Style::Market,
        })
    }

    fn summary(&self) -> Vec<(&'static str, String)> {
        TickStrategy::summary(self)
    }
}

impl TickStrategy for Trinity {
    fn name(&self) -> &'static str {
        "trinity"
    }

    fn on_event(&mut self, ev: &MarketEvent) -> Option<Intent> {
        self.flow.on_event(ev);
        match ev.payload {
            MarketPayload::Trade(t) => {
                if let Some(bar) = self.bars.on_trade_event(&t) {
                    self.push_bar(&bar);
                    if self.cfg.cadence_ms == 0 {
                        self.infer(bar.open_time_ms + self.cfg.bar_ms);
                    }
                }
            }
            MarketPayload::BookTop(t) | MarketPayload::Quote(t) => self.touch = Some(t),
            MarketPayload::BookStale { .. } => {
                self.stale = true;
                return None;
            }
            MarketPayload::BookSynced { .. } => self.stale = false,
            _ => {}
        }
        let cadence = self.cfg.cadence_ms;
        if cadence > 0
            && ev.exch_ms >= self.last_run_ms.saturating_add(cadence)
            && self.models.ready()
        {
            // Between bars only the order-flow columns have moved: refresh them in the newest row.
            self.flow.write(&mut self.row[self.n_bar..]);
            self.models.rewrite_newest(&self.row);
            self.infer(ev.exch_ms);
        }
        self.intent()
    }

    fn on_fill(&mut self, side: Side, qty: Qty) {
        match side {
            Side::Buy => self.position += qty.raw(),
            Side::Sell => self.position -= qty.raw(),
        }
    }

    fn disagreement(&self) -> Option<f64> {
        self.latest.map(|l| l.decision.disagreement)
    }

    fn model_outputs(&self) -> Option<[f64; 3]> {
        self.latest.map(|l| {
            [
                l.signals.q50,
                l.signals.p_long - l.signals.p_short,
                l.signals.p_shock,
            ]
        })
    }

    fn summary(&self) -> Vec<(&'static str, String)> {
        let s = self.stats;
        let mut out = vec![
            ("models", self.cfg.models.display().to_string()),
            ("bars", s.bars.to_string()),
            ("warmup_bars", s.warmup_bars.to_string()),
            ("inference_runs", s.runs.to_string()),
            ("inference_errors", s.run_errors.to_string()),
            ("intents", s.intents.to_string()),
            (
                "oracle_horizon_bars",
                self.models.horizon_bars().to_string(),
            ),
        ];
        if let Some(l) = self.latest {
            out.push(("last_target", l.decision.target.to_string()));
            out.push((
                "last_disagreement",
                format!("{:.4}", l.decision.disagreement),
            ));
            out.push(("last_p_shock", format!("{:.4}", l.signals.p_shock)));
        }
        if let Some(e) = &self.last_error {
            out.push(("last_inference_error", e.clone()));
        }
        out
    }
}
