//! `qalpha backtest`: arguments, inputs, the run and its JSON report.
//!
//! Bar mode (kline CSVs with a bar strategy) runs [`super::bar_sim`]; the report puts the strategy
//! next to two baselines run through the same simulator and fees — buy & hold (the strategy's
//! `qty`, bought at the first open and sold at the last close) and flat (never trades).
//!
//! Several symbols run in one backtest on one account and one risk engine (a portfolio): each
//! file's symbol comes from its name (`BTCUSDT-1m-2024-01.csv`, as the archive names them) or
//! `--symbol`; each symbol runs its own instance of the strategy; Binance `fundingRate` files among
//! the data are paid at their times. The report adds a per-symbol table.
//!
//! Settings come from `--config FILE` and `--set key=value` (applied on top): `[strategy]` params
//! (`[strategy.ETHUSDT]` overrides them for one symbol, e.g. `--set strategy.ETHUSDT.qty=0.05`),
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

use super::bar_sim::{self, BarSimConfig, BarSimOutput, Leg};
use super::metrics::{self, EquityPoint, DAY_MS};
use crate::features_cmd::parse_interval;

#[derive(clap::Args, Debug, Clone)]
pub struct BacktestArgs {
    /// A config file (`[strategy]`, `[risk]`, `[fees]`, `[account]`); `--set` applies on top.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Input data: Binance kline CSVs (bar strategies; plus `fundingRate` CSVs), captures (`.qcap`)
    /// or aggTrades/bookTicker CSVs (tick strategies); several symbols at once.
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
    /// Symbols traded, comma-separated. CSV files name theirs (`BTCUSDT-1m-2024-01.csv`); this
    /// names the symbol of files that do not, or picks from captures (default BTCUSDT there).
    #[arg(long, alias = "symbols", value_name = "SYMBOL[,SYMBOL...]")]
    pub symbol: Option<String>,
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
            symbol: None,
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
    /// `[strategy]`: every symbol's params.
    pub params: BTreeMap<String, String>,
    /// `[strategy.SYMBOL]`: one symbol's overrides.
    pub symbol_params: BTreeMap<String, BTreeMap<String, String>>,
    /// `--symbol` (None: from the file names).
    pub symbols: Option<Vec<Symbol>>,
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

/// The params of one table: single values only.
fn param_table(t: &toml::Table, at: &str) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for (k, v) in t {
        let s = match v {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(_) | toml::Value::Float(_) | toml::Value::Boolean(_) => {
                v.to_string()
            }
            other => bail!("{at}.{k} = {other}: expected a single value"),
        };
        out.insert(k.clone(), s);
    }
    Ok(out)
}

/// `[strategy]` → (params, per-symbol overrides from `[strategy.SYMBOL]` tables).
type StrategyParams = (
    BTreeMap<String, String>,
    BTreeMap<String, BTreeMap<String, String>>,
);

fn strategy_params(cfg: &EngineConfig) -> Result<StrategyParams> {
    let mut common = toml::Table::new();
    let mut per_symbol = BTreeMap::new();
    for (k, v) in cfg.strategy.iter().flatten() {
        match v {
            toml::Value::Table(t) => {
                if Symbol::parse(k).is_none() || k.to_ascii_uppercase() != *k {
                    bail!("strategy.{k}: a table here overrides one symbol's params; {k:?} is not a symbol like BTCUSDT");
                }
                per_symbol.insert(k.clone(), param_table(t, &format!("strategy.{k}"))?);
            }
            _ => {
                common.insert(k.clone(), v.clone());
            }
        }
    }
    Ok((param_table(&common, "strategy")?, per_symbol))
}

impl Setup {
    /// The strategy params of `symbol`: `[strategy]` with its `[strategy.SYMBOL]` on top.
    pub fn params_for(&self, symbol: Symbol) -> BTreeMap<String, String> {
        let mut p = self.params.clone();
        if let Some(own) = self.symbol_params.get(symbol.as_str()) {
            p.extend(own.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        p
    }

    /// The buy & hold baseline's size for `symbol`: the strategy's `qty`, else 0.001.
    pub fn hold_qty(&self, symbol: Symbol) -> Result<Qty> {
        match self.params_for(symbol).get("qty") {
            Some(q) => {
                Qty::parse(q.trim()).map_err(|e| anyhow::anyhow!("strategy.qty = {q:?}: {e:?}"))
            }
            None => Ok(Qty(100_000)),
        }
    }

    /// The symbols a capture backtest trades: `--symbol`, else BTCUSDT.
    pub fn capture_symbols(&self) -> Vec<Symbol> {
        self.symbols
            .clone()
            .unwrap_or_else(|| vec![default_symbol()])
    }
}

/// The symbol of data that names none, without `--symbol`.
pub fn default_symbol() -> Symbol {
    Symbol::parse("BTCUSDT").unwrap_or_default()
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
    let symbols = a
        .symbol
        .as_deref()
        .map(super::inputs::parse_symbols)
        .transpose()?;
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
    let (params, symbol_params) = strategy_params(&cfg)?;
    Ok(Setup {
        strategy: a.strategy.clone(),
        params,
        symbol_params,
        symbols,
        sim: BarSimConfig {
            venue: Venue::BinanceUsdm,
            fees: FeeSchedule {
                maker_ppm,
                taker_ppm,
            },
            risk,
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
    bars.retain(|b| in_range(b.open_time_ms, from_ms, to_ms));
    if bars.is_empty() {
        bail!("no bars in the data and range given");
    }
    Ok(bars)
}

fn in_range(t: u64, from_ms: Option<u64>, to_ms: Option<u64>) -> bool {
    from_ms.is_none_or(|f| t >= f) && to_ms.is_none_or(|e| t < e)
}

/// One symbol's bars and funding events, as a bar backtest reads them.
#[derive(Clone, Debug)]
pub struct SymbolBars {
    pub symbol: Symbol,
    pub bars: Vec<Bar>,
    pub funding: Vec<(u64, Qty)>,
}

/// The bar-mode data by symbol (symbol order): kline CSVs and `fundingRate` CSVs grouped by the
/// symbol their names name (or `--symbol`), the range applied to both.
pub fn load_data(setup: &Setup, paths: &[PathBuf]) -> Result<Vec<SymbolBars>> {
    let groups = super::inputs::group_by_symbol(paths, setup.symbols.as_deref(), default_symbol())?;
    if let Some(missing) = setup
        .symbols
        .iter()
        .flatten()
        .find(|s| !groups.contains_key(s))
    {
        bail!("--symbol names {missing}, but no --data file holds it");
    }
    let mut out = Vec::new();
    for (symbol, files) in groups {
        let (mut klines, mut funding) = (Vec::new(), Vec::new());
        for f in files {
            if super::inputs::is_funding_file(&f)? {
                funding.extend(super::inputs::read_funding(&f)?);
            } else {
                klines.push(f);
            }
        }
        if klines.is_empty() {
            bail!("{symbol}: funding files but no klines to backtest");
        }
        funding.sort_by_key(|e| e.0);
        funding.dedup_by_key(|e| e.0);
        funding.retain(|e| in_range(e.0, setup.from_ms, setup.to_ms));
        let bars =
            load_bars(&klines, setup.from_ms, setup.to_ms).with_context(|| format!("{symbol}"))?;
        // Funding before the first bar falls on no position of this run.
        funding.retain(|e| e.0 >= bars[0].open_time_ms);
        out.push(SymbolBars {
            symbol,
            bars,
            funding,
        });
    }
    Ok(out)
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

/// Runs one strategy instance per symbol (`initial`: each symbol's position from the first open).
fn run_legs(
    setup: &Setup,
    data: &[SymbolBars],
    strategies: &mut [Box<dyn BarStrategy + Send>],
    initial: &[Option<Intent>],
) -> Result<BarSimOutput> {
    let mut legs: Vec<Leg<'_>> = data
        .iter()
        .zip(strategies.iter_mut())
        .zip(initial)
        .map(|((d, s), init)| Leg {
            symbol: d.symbol,
            bars: &d.bars,
            strategy: s.as_mut(),
            initial: *init,
            funding: &d.funding,
        })
        .collect();
    bar_sim::run_legs(&mut legs, &setup.sim)
}

/// The strategy alone on `data` (one instance per symbol, each with its params).
pub fn run_strategy(setup: &Setup, data: &[SymbolBars]) -> Result<BarSimOutput> {
    let mut strategies = data
        .iter()
        .map(|d| bar_strategy(&setup.strategy, &setup.params_for(d.symbol)))
        .collect::<Result<Vec<_>, _>>()
        .map_err(anyhow::Error::msg)?;
    run_legs(setup, data, &mut strategies, &vec![None; data.len()])
}

/// Runs the strategy and the baselines on `data`.
pub fn run_all(setup: &Setup, data: &[SymbolBars]) -> Result<(Run, Run, Run)> {
    let main = run_strategy(setup, data)?;
    let mut holds: Vec<Box<dyn BarStrategy + Send>> = Vec::new();
    let mut flats: Vec<Box<dyn BarStrategy + Send>> = Vec::new();
    let mut initial = Vec::new();
    for d in data {
        holds.push(Box::new(Hold));
        flats.push(Box::new(Flat));
        initial.push(Some(Intent::Target {
            qty: setup.hold_qty(d.symbol)?,
            style: Style::Market,
        }));
    }
    let hold_out = run_legs(setup, data, &mut holds, &initial)?;
    let flat_out = run_legs(setup, data, &mut flats, &vec![None; data.len()])?;
    Ok((
        measure(main, setup.period_ms),
        measure(hold_out, setup.period_ms),
        measure(flat_out, setup.period_ms),
    ))
}

/// `"BTCUSDT"`, or `"BTCUSDT,ETHUSDT"` for several.
pub fn symbols_label(symbols: &[Symbol]) -> String {
    symbols
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// The JSON report (deterministic: no wall-clock time, ordered keys).
pub fn report_json(
    setup: &Setup,
    files: &[PathBuf],
    data: &[SymbolBars],
    runs: &(Run, Run, Run),
) -> Value {
    let (main, hold, flat) = runs;
    let out = &main.out;
    let risk = &out.risk;
    let a = &out.account;
    let per_symbol = a.by_symbol();
    let mut positions = serde_json::Map::new();
    let mut by_symbol = serde_json::Map::new();
    for d in data {
        positions.insert(
            d.symbol.to_string(),
            json!(a.position(d.symbol).to_string()),
        );
        let mut row = json!(per_symbol.get(&d.symbol).copied().unwrap_or_default());
        row["bars"] = json!(d.bars.len());
        row["funding_events"] = json!(d.funding.len());
        by_symbol.insert(d.symbol.to_string(), row);
    }
    json!({
        "mode": "bars",
        "strategy": { "name": setup.strategy, "params": setup.params, "symbol_params": setup.symbol_params },
        "data": {
            "files": files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "symbol": symbols_label(&out.symbols),
            "symbols": out.symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "bars": data.iter().map(|d| d.bars.len()).sum::<usize>(),
            "interval_ms": out.interval_ms,
            "from_ms": out.first_ms,
            "to_ms": out.last_ms,
        },
        "settings": {
            "seed": setup.seed,
            "fees": { "maker_bps": setup.fees_bps.0, "taker_bps": setup.fees_bps.1 },
            "initial_equity": setup.sim.risk.initial_equity.to_string(),
            "fills": "market orders at the next bar's open (on_end: the last close)",
            "account": "one account and one risk engine for every symbol",
        },
        "metrics": main.metrics,
        "baselines": { "buy_and_hold": hold.metrics, "flat": flat.metrics },
        "per_symbol": by_symbol,
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

/// A bar-mode backtest of `a` (no sweep): its JSON report and the three runs behind it.
pub fn bar_report(a: &BacktestArgs) -> Result<(Value, (Run, Run, Run))> {
    let setup = setup(a)?;
    let data = load_data(&setup, &a.data)?;
    let runs = run_all(&setup, &data)?;
    Ok((report_json(&setup, &a.data, &data, &runs), runs))
}

/// `qalpha backtest`.
pub fn run(a: BacktestArgs) -> Result<()> {
    let setup = setup(&a)?;
    if super::tick_cmd::is_tick_data(&a.data)? {
        if !a.sweeps.is_empty() {
            bail!("--sweep runs on kline data (bar mode) for now");
        }
        let (report, curves) = super::tick_cmd::run(&setup, &a)?;
        return finish(
            &a,
            &report,
            &[
                (setup.strategy.as_str(), &curves.strategy[..]),
                ("buy & hold", &curves.hold[..]),
                ("flat", &curves.flat[..]),
            ],
        );
    }
    if !a.sweeps.is_empty() {
        let data = load_data(&setup, &a.data)?;
        let points = super::sweep::run(&a, &a.sweeps, &data)?;
        print!("{}", super::sweep::table(&points));
        if let Some(p) = &a.json {
            let v = json!({
                "mode": "sweep",
                "strategy": setup.strategy,
                "warning": super::sweep::OVERFIT_WARNING,
                "symbols": symbols_label(&data.iter().map(|d| d.symbol).collect::<Vec<_>>()),
                "bars": data.iter().map(|d| d.bars.len()).sum::<usize>(),
                "points": points,
            });
            write_json(p, &v)?;
        }
        return Ok(());
    }
    let (report, (main, hold, flat)) = bar_report(&a)?;
    finish(
        &a,
        &report,
        &[
            (setup.strategy.as_str(), &main.out.account.curve[..]),
            ("buy & hold", &hold.out.account.curve[..]),
            ("flat", &flat.out.account.curve[..]),
        ],
    )
}

/// Prints the summary and writes `--json` and `--report`.
fn finish(a: &BacktestArgs, report: &Value, curves: &[(&str, &[EquityPoint])]) -> Result<()> {
    print!("{}", super::text::summary(report));
    if let Some(p) = &a.json {
        write_json(p, report)?;
    }
    if let Some(dir) = &a.report {
        let files = super::report_dir::write_report_dir(dir, report, curves)?;
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
