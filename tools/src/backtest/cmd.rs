//! `qalpha backtest`: arguments, inputs, the run and its JSON report.
//!
//! Bar mode (kline CSVs with a bar strategy) runs [`super::bar_sim`]; the report puts the strategy
//! next to two baselines run through the same simulator and fees — buy & hold (the strategy's
//! `qty`, bought at the first open and sold at the last close) and flat (never trades).
//!
//! Settings come from `--config FILE` and `--set key=value` (applied on top): `[strategy]` params,
//! `[risk]`, `[fees]` (`maker_bps`, `taker_bps`; default Binance USD-M regular: 2 / 5 bps) and
//! `[account]` (`initial_equity`, which also becomes risk's equity; default risk's).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_engine::config::EngineConfig;
use qalpha_engine::{Qty, Symbol, Venue};
use qalpha_risk::RiskConfig;
use qalpha_strategy::bars::{read_klines, Bar};
use qalpha_strategy::baselines::{bar_strategy, BarStrategy, Intent, Style};
use qalpha_venues::fill::FeeSchedule;
use serde_json::{json, Value};

use super::bar_sim::{self, BarSimConfig, BarSimOutput};
use super::metrics::{self, DAY_MS};
use crate::features_cmd::parse_interval;

#[derive(clap::Args, Debug, Clone)]
pub struct BacktestArgs {
    /// A config file (`[strategy]`, `[risk]`, `[fees]`, `[account]`); `--set` applies on top.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Input data: Binance kline CSVs (bar strategies), one symbol.
    #[arg(long, required = true, num_args = 1..)]
    pub data: Vec<PathBuf>,
    /// Strategy by name (bar strategies: sma-cross).
    #[arg(long, default_value = "sma-cross")]
    pub strategy: String,
    /// Override a setting, e.g. `--set strategy.fast=5 --set fees.taker_bps=4`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
    /// Keep data from this time on: epoch ms or YYYY-MM-DD (UTC).
    #[arg(long)]
    pub from: Option<String>,
    /// Keep data before this time: epoch ms or YYYY-MM-DD (UTC).
    #[arg(long)]
    pub to: Option<String>,
    /// Keep one calendar year (UTC), e.g. 2024.
    #[arg(long)]
    pub year: Option<i32>,
    /// Seed of the simulation's random parts (recorded in the report; bar mode has none).
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Symbol traded (kline files do not name it).
    #[arg(long, default_value = "BTCUSDT")]
    pub symbol: String,
    /// Sharpe/Sortino sampling period, e.g. 1h, 1d.
    #[arg(long, default_value = "1d", value_parser = parse_interval)]
    pub period: u64,
    /// Write the JSON report here.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Write a report folder here: report.txt, equity.png, drawdown.png and a self-contained
    /// report.html.
    #[arg(long, value_name = "DIR")]
    pub report: Option<PathBuf>,
    /// Tick mode (captures): exchange → strategy latency, e.g. 0, 200us, 1ms, or samples:FILE (ns per
    /// line, drawn with --seed).
    #[arg(long, default_value = "0", value_parser = super::tick_cmd::parse_latency)]
    pub feed_latency: super::latency::Latency,
    /// Tick mode: strategy → exchange latency (and the answer's way back), as --feed-latency.
    #[arg(long, default_value = "500us", value_parser = super::tick_cmd::parse_latency)]
    pub order_latency: super::latency::Latency,
    /// Tick mode: `book` (the fill model against the rebuilt book: depth, queue position, prints) or
    /// `top` (the paper venue: top of book, as a paper run).
    #[arg(long, default_value = "book", value_parser = super::tick_cmd::parse_fill)]
    pub fill: super::tick_sim::Fill,
    /// Sweep a setting over values, e.g. `--sweep strategy.fast=5,10,20`; repeat for a grid. Runs
    /// every point in parallel and prints a ranked table (in-sample: it overfits).
    #[arg(long = "sweep", value_name = "KEY=V1,V2,...", value_parser = super::sweep::parse_axis)]
    pub sweeps: Vec<super::sweep::Axis>,
}

impl BacktestArgs {
    /// The command-line defaults for `strategy` on `data` (for library callers and tests).
    pub fn new(data: Vec<PathBuf>, strategy: &str) -> Self {
        Self {
            config: None,
            data,
            strategy: strategy.to_string(),
            sets: Vec::new(),
            from: None,
            to: None,
            year: None,
            seed: 0,
            symbol: "BTCUSDT".into(),
            period: DAY_MS,
            json: None,
            report: None,
            feed_latency: super::latency::Latency::Constant(0),
            order_latency: super::latency::Latency::Constant(500_000),
            fill: super::tick_sim::Fill::Book,
            sweeps: Vec::new(),
        }
    }
}

/// Everything resolved from the arguments and the config.
#[derive(Clone, Debug)]
pub struct Setup {
    pub strategy: String,
    pub params: BTreeMap<String, String>,
    pub sim: BarSimConfig,
    pub from_ms: Option<u64>,
    pub to_ms: Option<u64>,
    pub period_ms: u64,
    pub seed: u64,
    pub fees_bps: (String, String),
}

/// Days from 1970-01-01 to a civil date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i64 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `1704067200000` or `2024-01-01` → epoch ms.
pub fn parse_time(s: &str) -> Result<u64> {
    let t = s.trim();
    if let Ok(ms) = t.parse::<u64>() {
        return Ok(ms);
    }
    let parts: Vec<&str> = t.split('-').collect();
    if let [y, m, d] = parts.as_slice() {
        if let (Ok(y), Ok(m), Ok(d)) = (y.parse::<i64>(), m.parse::<u32>(), d.parse::<u32>()) {
            if (1..=12).contains(&m) && (1..=31).contains(&d) && (1970..=9999).contains(&y) {
                return Ok(days_from_civil(y, m, d) as u64 * DAY_MS);
            }
        }
    }
    bail!("invalid time {s:?}: use epoch milliseconds or YYYY-MM-DD")
}

/// A `[fees]` rate in bps (a decimal string or number) → ppm, exactly.
fn bps_to_ppm(t: Option<&toml::Table>, key: &str, default: &str) -> Result<(i32, String)> {
    let text = match t.and_then(|t| t.get(key)) {
        None => default.to_string(),
        Some(toml::Value::String(s)) => s.clone(),
        Some(toml::Value::Integer(i)) => i.to_string(),
        Some(toml::Value::Float(f)) => f.to_string(),
        Some(v) => bail!("fees.{key} = {v}: expected a number of basis points"),
    };
    let q = Qty::parse(text.trim()).map_err(|e| anyhow::anyhow!("fees.{key} = {text:?}: {e:?}"))?;
    // 1 bp = 100 ppm; Qty is 10⁻⁸ units, so ppm = raw × 100 / 10⁸ — exact only to 0.01 bp.
    let raw = q.raw() as i128 * 100;
    if raw % 100_000_000 != 0 {
        bail!("fees.{key} = {text}: at most 2 decimals of a basis point");
    }
    let ppm = raw / 100_000_000;
    if !(-10_000..=100_000).contains(&ppm) {
        bail!("fees.{key} = {text}: outside -100..1000 bps");
    }
    Ok((ppm as i32, text))
}

fn strategy_params(cfg: &EngineConfig) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in cfg.strategy.iter().flatten() {
        let s = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                v.to_string()
            }
            other => bail!("strategy.{k} = {other}: expected a single value"),
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// Resolves the config and the arguments.
pub fn setup(a: &BacktestArgs) -> Result<Setup> {
    let cfg = EngineConfig::load_with_overrides(a.config.as_deref(), &a.sets)?;
    let mut risk = RiskConfig::from_engine(&cfg)?;
    if let Some(v) = cfg.account.as_ref().and_then(|t| t.get("initial_equity")) {
        let text = match v {
            toml::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        risk.initial_equity = Qty::parse(text.trim())
            .map_err(|e| anyhow::anyhow!("account.initial_equity = {text:?}: {e:?}"))?;
        if risk.initial_equity.raw() <= 0 {
            bail!("account.initial_equity must be positive, got {text}");
        }
    }
    if let Some(k) = cfg
        .account
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| *k != "initial_equity")
    {
        bail!("account.{k}: unknown key; [account] has initial_equity");
    }
    if let Some(k) = cfg
        .fees
        .iter()
        .flatten()
        .map(|(k, _)| k)
        .find(|k| *k != "maker_bps" && *k != "taker_bps")
    {
        bail!("fees.{k}: unknown key; [fees] has maker_bps, taker_bps");
    }
    let (maker_ppm, maker) = bps_to_ppm(cfg.fees.as_ref(), "maker_bps", "2")?;
    let (taker_ppm, taker) = bps_to_ppm(cfg.fees.as_ref(), "taker_bps", "5")?;
    let symbol =
        Symbol::parse(&a.symbol).with_context(|| format!("invalid --symbol {:?}", a.symbol))?;
    let (mut from_ms, mut to_ms) = (
        a.from.as_deref().map(parse_time).transpose()?,
        a.to.as_deref().map(parse_time).transpose()?,
    );
    if let Some(y) = a.year {
        if from_ms.is_some() || to_ms.is_some() {
            bail!("--year and --from/--to exclude each other");
        }
        from_ms = Some(days_from_civil(y as i64, 1, 1) as u64 * DAY_MS);
        to_ms = Some(days_from_civil(y as i64 + 1, 1, 1) as u64 * DAY_MS);
    }
    Ok(Setup {
        strategy: a.strategy.clone(),
        params: strategy_params(&cfg)?,
        sim: BarSimConfig {
            venue: Venue::BinanceUsdm,
            symbol,
            fees: FeeSchedule {
                maker_ppm,
                taker_ppm,
            },
            risk,
            funding: Vec::new(),
        },
        from_ms,
        to_ms,
        period_ms: a.period,
        seed: a.seed,
        fees_bps: (maker, taker),
    })
}

/// Reads the kline files, merges them in time order (duplicates dropped) and applies the range.
pub fn load_bars(paths: &[PathBuf], from_ms: Option<u64>, to_ms: Option<u64>) -> Result<Vec<Bar>> {
    let mut bars = Vec::new();
    for p in paths {
        if p.extension().is_some_and(|e| e == "qcap") {
            bail!(
                "{}: captures need a tick strategy; bar backtests read kline CSVs",
                p.display()
            );
        }
        bars.extend(read_klines(p)?);
    }
    bars.sort_by_key(|b| b.open_time_ms);
    bars.dedup_by_key(|b| b.open_time_ms);
    bars.retain(|b| {
        from_ms.is_none_or(|f| b.open_time_ms >= f) && to_ms.is_none_or(|t| b.open_time_ms < t)
    });
    if bars.is_empty() {
        bail!("no bars in the data and range given");
    }
    Ok(bars)
}

/// Buy & hold: the simulator buys at the first open (`run_with_initial`); this sells at the end.
struct Hold;

impl BarStrategy for Hold {
    fn name(&self) -> &'static str {
        "buy-and-hold"
    }
    fn on_bar(&mut self, _: &Bar) -> Option<Intent> {
        None
    }
    fn on_end(&mut self) -> Option<Intent> {
        Some(Intent::Target {
            qty: Qty::ZERO,
            style: Style::Market,
        })
    }
}

/// Never trades.
struct Flat;

impl BarStrategy for Flat {
    fn name(&self) -> &'static str {
        "flat"
    }
    fn on_bar(&mut self, _: &Bar) -> Option<Intent> {
        None
    }
    fn on_end(&mut self) -> Option<Intent> {
        None
    }
}

/// One simulated run and its metrics, as the report shows it.
pub struct Run {
    pub out: BarSimOutput,
    pub metrics: metrics::Metrics,
}

fn measure(out: BarSimOutput, period_ms: u64) -> Run {
    let a = &out.account;
    let m = metrics::compute(&a.curve, &a.trades, &a.totals, period_ms);
    Run { out, metrics: m }
}

/// Runs the strategy and the baselines on `bars`.
pub fn run_all(setup: &Setup, bars: &[Bar]) -> Result<(Run, Run, Run)> {
    let mut strat = bar_strategy(&setup.strategy, &setup.params).map_err(anyhow::Error::msg)?;
    let main = bar_sim::run(bars, strat.as_mut(), &setup.sim)?;
    let qty = match setup.params.get("qty") {
        Some(q) => Qty::parse(q.trim()).map_err(|e| anyhow::anyhow!("strategy.qty: {e:?}"))?,
        None => Qty::parse("0.001").unwrap_or(Qty(100_000)),
    };
    let hold_out = bar_sim::run_with_initial(
        bars,
        &mut Hold,
        &setup.sim,
        Some(Intent::Target {
            qty,
            style: Style::Market,
        }),
    )?;
    let flat_out = bar_sim::run(bars, &mut Flat, &setup.sim)?;
    Ok((
        measure(main, setup.period_ms),
        measure(hold_out, setup.period_ms),
        measure(flat_out, setup.period_ms),
    ))
}

/// The JSON report (deterministic: no wall-clock time, ordered keys).
pub fn report_json(setup: &Setup, data: &[PathBuf], bars: &[Bar], runs: &(Run, Run, Run)) -> Value {
    let (main, hold, flat) = runs;
    let out = &main.out;
    let risk = &out.risk;
    let a = &out.account;
    let mut positions = serde_json::Map::new();
    positions.insert(
        setup.sim.symbol.as_str().to_string(),
        json!(a.position().to_string()),
    );
    json!({
        "mode": "bars",
        "strategy": { "name": setup.strategy, "params": setup.params },
        "data": {
            "files": data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "symbol": setup.sim.symbol.as_str(),
            "bars": bars.len(),
            "interval_ms": out.interval_ms,
            "from_ms": out.first_ms,
            "to_ms": out.last_ms,
        },
        "settings": {
            "seed": setup.seed,
            "fees": { "maker_bps": setup.fees_bps.0, "taker_bps": setup.fees_bps.1 },
            "initial_equity": setup.sim.risk.initial_equity.to_string(),
            "fills": "market orders at the next bar's open (on_end: the last close)",
        },
        "metrics": main.metrics,
        "baselines": { "buy_and_hold": hold.metrics, "flat": flat.metrics },
        "strategy_summary": out.strategy_summary,
        "trades": a.trades,
        "orders": a.orders,
        "final_state": risk.state().name(),
        "halt_reason": risk.halt_reason().map(|s| s.name()),
        "halted_at_ns": risk.halted_at_ns(),
        "final_positions": positions,
        "open_orders": 0,
        "risk_events": out.risk_events,
    })
}

/// `qalpha backtest`.
pub fn run(a: BacktestArgs) -> Result<()> {
    let setup = setup(&a)?;
    if super::tick_cmd::is_tick_data(&a.data)? {
        if !a.sweeps.is_empty() {
            bail!("--sweep runs on kline data (bar mode) for now");
        }
        let (report, curves) = super::tick_cmd::run(&setup, &a)?;
        print!("{}", super::text::summary(&report));
        if let Some(p) = &a.json {
            write_json(p, &report)?;
        }
        if let Some(dir) = &a.report {
            let files = super::report_dir::write_report_dir(
                dir,
                &report,
                &[
                    (setup.strategy.as_str(), &curves.strategy[..]),
                    ("buy & hold", &curves.hold[..]),
                    ("flat", &curves.flat[..]),
                ],
            )?;
            eprintln!(
                "report written to {} ({} files)",
                dir.display(),
                files.len()
            );
        }
        return Ok(());
    }
    let bars = load_bars(&a.data, setup.from_ms, setup.to_ms)?;
    if !a.sweeps.is_empty() {
        let points = super::sweep::run(&a, &a.sweeps, &bars)?;
        print!("{}", super::sweep::table(&points));
        if let Some(p) = &a.json {
            let v = json!({
                "mode": "sweep",
                "strategy": setup.strategy,
                "warning": super::sweep::OVERFIT_WARNING,
                "bars": bars.len(),
                "points": points,
            });
            write_json(p, &v)?;
        }
        return Ok(());
    }
    let runs = run_all(&setup, &bars)?;
    let report = report_json(&setup, &a.data, &bars, &runs);
    print!("{}", super::text::summary(&report));
    if let Some(p) = &a.json {
        write_json(p, &report)?;
    }
    if let Some(dir) = &a.report {
        let (main, hold, flat) = &runs;
        let files = super::report_dir::write_report_dir(
            dir,
            &report,
            &[
                (setup.strategy.as_str(), &main.out.account.curve[..]),
                ("buy & hold", &hold.out.account.curve[..]),
                ("flat", &flat.out.account.curve[..]),
            ],
        )?;
        eprintln!(
            "report written to {} ({} files)",
            dir.display(),
            files.len()
        );
    }
    Ok(())
}

/// Writes `report` pretty-printed with a trailing newline.
pub fn write_json(path: &Path, report: &Value) -> Result<()> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}
