//! `qalpha backtest` on captures (`.qcap`): the tick simulator ([`super::tick_sim`]) with the
//! strategy by name (tick strategies, the Trinity, or a bar strategy on time bars cut from the
//! prints), and the same JSON report as bar mode, plus what only a tick run has (latencies, fill
//! mode, venue rejects, the executor's counters).
//!
//! Baselines: buy & hold (the strategy's `qty`, bought at the first mid and sold at the last, taker
//! fee both ways) and flat, marked on the same samples as the strategy.
//!
//! Several symbols (`--symbol BTCUSDT,ETHUSDT` on captures; archive CSVs by their names): each runs
//! its own simulation — its own executor and risk engine, each with the whole initial equity — over
//! the same data, and the report sums them into one account (initial + each one's PnL) with a
//! per-symbol table. Risk limits that span symbols (daily loss, leverage) therefore hold per symbol
//! in tick mode; bar mode runs one risk engine over every symbol.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_engine::{Qty, Side, Symbol};
use qalpha_risk::engine::RiskEngine;
use qalpha_risk::journal::{JournalReader, RiskEventKind};
use qalpha_risk::Money;
use serde_json::{json, Value};

use super::account::{Account, OrderRecord};
use super::bar_sim::RiskEventRecord;
use super::cmd::{default_symbol, BacktestArgs, Setup};
use super::latency::Latency;
use super::metrics::{self, ClosedTrade, EquityPoint, Totals};
use super::tick_sim::{self, Fill, TickSimConfig, TickSimOutput};
use crate::demo_cmd::executor::ExecCounters;
use crate::demo_cmd::strategy::StrategySpec;

/// What a tick backtest reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TickInput {
    /// `.qcap` captures: raw frames through the engine's decoders and books.
    Captures,
    /// Binance archive `aggTrades` / `bookTicker` CSVs ([`super::csv_events`]): tops and prints only.
    ArchiveCsv,
}

/// Which tick input `paths` are, or `None` for kline files (bar mode).
pub fn tick_input(paths: &[PathBuf]) -> Result<Option<TickInput>> {
    let caps = paths
        .iter()
        .filter(|p| p.extension().is_some_and(|e| e == "qcap"))
        .count();
    if caps == paths.len() {
        return Ok(Some(TickInput::Captures));
    }
    if caps > 0 {
        bail!("--data mixes captures (.qcap) and CSV files; give one kind");
    }
    let archive = paths
        .iter()
        .filter(|p| super::csv_events::detect(p).is_ok())
        .count();
    match archive {
        0 => Ok(None),
        n if n == paths.len() => Ok(Some(TickInput::ArchiveCsv)),
        _ => bail!("--data mixes kline CSVs with aggTrades/bookTicker CSVs; give one kind"),
    }
}

/// Whether the inputs are tick data (captures or archive trade/quote CSVs).
pub fn is_tick_data(paths: &[PathBuf]) -> Result<bool> {
    Ok(tick_input(paths)?.is_some())
}

/// Parses `--fill`.
pub fn parse_fill(s: &str) -> Result<Fill, String> {
    match s {
        "book" => Ok(Fill::Book),
        "top" => Ok(Fill::Top),
        _ => Err(format!("--fill {s:?}: book or top")),
    }
}

/// Parses a latency argument.
pub fn parse_latency(s: &str) -> Result<Latency, String> {
    Latency::parse(s).map_err(|e| format!("{e:#}"))
}

/// The tick simulator's settings from the resolved setup and the arguments.
pub fn config(setup: &Setup, a: &BacktestArgs) -> TickSimConfig {
    TickSimConfig {
        venue: setup.sim.venue,
        symbol: default_symbol(),
        fees: setup.sim.fees,
        risk: setup.sim.risk.clone(),
        feed_latency: a.feed_latency.clone(),
        order_latency: a.order_latency.clone(),
        seed: setup.seed,
        fill: a.fill,
        sample_ms: 1000,
    }
}

/// A unique scratch journal path for the run's risk engine (read back for `risk_events`).
fn scratch_journal() -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    std::env::temp_dir().join(format!(
        "qalpha-backtest-{}-{nanos}.qrisk",
        std::process::id()
    ))
}

/// The risk state changes journaled during the run.
fn risk_events(journal: &Path) -> Vec<RiskEventRecord> {
    let Ok(r) = JournalReader::open(journal) else {
        return Vec::new();
    };
    r.events()
        .filter_map(|e| match e.kind {
            RiskEventKind::StateChange {
                to,
                conservative,
                switch,
                detail,
                ..
            } => Some(RiskEventRecord {
                ts_ns: e.ts_ns,
                switch: switch.name(),
                state: to.name(),
                conservative,
                detail,
            }),
            _ => None,
        })
        .collect()
}

/// One symbol's tick backtest.
pub struct SymbolRun {
    pub symbol: Symbol,
    pub out: TickSimOutput,
    pub risk_events: Vec<RiskEventRecord>,
}

/// The symbols a tick backtest trades and, for archive CSVs, each one's files.
fn symbol_inputs(setup: &Setup, a: &BacktestArgs) -> Result<Vec<(Symbol, Vec<PathBuf>)>> {
    Ok(match tick_input(&a.data)? {
        Some(TickInput::ArchiveCsv) => {
            super::inputs::group_by_symbol(&a.data, setup.symbols.as_deref(), default_symbol())?
                .into_iter()
                .collect()
        }
        _ => setup
            .capture_symbols()
            .into_iter()
            .map(|s| (s, a.data.clone()))
            .collect(),
    })
}

/// Runs the strategy on the data, one simulation per symbol (its own executor and risk engine,
/// each with the whole initial equity), in symbol order.
pub fn simulate(setup: &Setup, a: &BacktestArgs) -> Result<Vec<SymbolRun>> {
    let input = tick_input(&a.data)?;
    let mut runs = Vec::new();
    for (symbol, files) in symbol_inputs(setup, a)? {
        let spec = StrategySpec {
            name: setup.strategy.clone(),
            params: setup.params_for(symbol),
        };
        let decider = spec.build().map_err(anyhow::Error::msg)?;
        let tcfg = TickSimConfig {
            symbol,
            ..config(setup, a)
        };
        let journal = scratch_journal();
        let out = match input {
            Some(TickInput::ArchiveCsv) => {
                let events = files
                    .iter()
                    .map(|p| super::csv_events::read(p, symbol))
                    .collect::<Result<Vec<_>>>()?;
                tick_sim::run_events(
                    super::csv_events::merge(events),
                    decider,
                    &tcfg,
                    Some(&journal),
                )
            }
            _ => tick_sim::run(&files, decider, &tcfg, Some(&journal)),
        };
        let risk_events = risk_events(&journal);
        let _ = std::fs::remove_file(&journal);
        let out = out.with_context(|| format!("{symbol}"))?;
        if out.marks.is_empty() && out.events > 0 {
            bail!("{symbol}: the data has no prices of {symbol}; pick the symbols it holds with --symbol");
        }
        runs.push(SymbolRun {
            symbol,
            out,
            risk_events,
        });
    }
    Ok(runs)
}

/// Buy & hold `qty` of the run's symbol along its equity sample times, marked at the same mids.
fn hold_account(run: &SymbolRun, setup: &Setup, qty: Qty) -> Account {
    let mut acc = Account::new(
        setup.sim.venue,
        Money::from_qty(setup.sim.risk.initial_equity),
    );
    let (marks, sym, fees) = (&run.out.marks, run.symbol, setup.sim.fees);
    if let (Some(&(t0, p0)), Some(&(t1, p1))) = (marks.first(), marks.last()) {
        acc.fill(sym, t0, Side::Buy, p0, qty, fees.fee(p0, qty, false));
        for &(t, p) in marks {
            acc.mark(sym, p);
            acc.sample(t);
        }
        acc.fill(sym, t1, Side::Sell, p1, qty, fees.fee(p1, qty, false));
        acc.sample(t1);
    }
    acc
}

/// Several single-symbol accounts as one: the summed curve, every trade (by exit time), every
/// order (by time), the summed totals.
fn combined(
    accounts: &[&Account],
    initial: Money,
) -> (Vec<EquityPoint>, Vec<ClosedTrade>, Vec<OrderRecord>, Totals) {
    let curves: Vec<&[EquityPoint]> = accounts.iter().map(|a| &a.curve[..]).collect();
    let mut trades: Vec<ClosedTrade> = accounts
        .iter()
        .flat_map(|a| a.trades.iter().copied())
        .collect();
    trades.sort_by_key(|t| (t.exit_time, t.entry_time));
    let mut orders: Vec<OrderRecord> = accounts
        .iter()
        .flat_map(|a| a.orders.iter().copied())
        .collect();
    orders.sort_by_key(|o| o.ts_ns);
    let mut totals = Totals::default();
    for a in accounts {
        totals.fees += a.totals.fees;
        totals.funding += a.totals.funding;
        totals.traded_notional += a.totals.traded_notional;
    }
    (
        metrics::combine_curves(&curves, initial),
        trades,
        orders,
        totals,
    )
}

/// The curves of the strategy and its baselines, for `--report`.
pub struct Curves {
    pub strategy: Vec<EquityPoint>,
    pub hold: Vec<EquityPoint>,
    pub flat: Vec<EquityPoint>,
}

/// Runs and reports (the JSON document) a tick backtest.
pub fn run(setup: &Setup, a: &BacktestArgs) -> Result<(Value, Curves)> {
    let runs = simulate(setup, a)?;
    let initial = Money::from_qty(setup.sim.risk.initial_equity);
    let multi = runs.len() > 1;
    let accounts: Vec<&Account> = runs.iter().map(|r| &r.out.account).collect();
    let (curve, trades, orders, totals) = combined(&accounts, initial);
    let m = metrics::compute(&curve, &trades, &totals, setup.period_ms);
    let holds = runs
        .iter()
        .map(|r| Ok(hold_account(r, setup, setup.hold_qty(r.symbol)?)))
        .collect::<Result<Vec<_>>>()?;
    let (hold, hold_trades, _, hold_totals) = combined(&holds.iter().collect::<Vec<_>>(), initial);
    let hm = metrics::compute(&hold, &hold_trades, &hold_totals, setup.period_ms);
    let first_ms = runs.iter().map(|r| r.out.first_ms).min().unwrap_or(0);
    let last_ms = runs.iter().map(|r| r.out.last_ms).max().unwrap_or(0);
    let flat: Vec<EquityPoint> = [first_ms, last_ms]
        .iter()
        .map(|&t| EquityPoint {
            t_ms: t,
            equity: initial,
        })
        .collect();
    let fm = metrics::compute(&flat, &[], &Default::default(), setup.period_ms);

    let mut c = ExecCounters::default();
    let (mut venue_rejects, mut open_orders, mut events) = (0u64, 0usize, 0u64);
    let mut positions = serde_json::Map::new();
    let mut per_symbol = serde_json::Map::new();
    let mut summary = BTreeMap::new();
    let mut risk_events = Vec::new();
    // The most severe final risk state across the symbols (Active < Reducing < Halted).
    let mut worst: Option<&RiskEngine> = None;
    for r in &runs {
        let ex = &r.out.executor;
        let risk = ex.risk.as_ref().context("the backtest runs with risk")?;
        if worst.is_none_or(|w| (risk.state() as u8) > (w.state() as u8)) {
            worst = Some(risk);
        }
        let rc = ex.counters;
        for (sum, x) in [
            (&mut c.intents, rc.intents),
            (&mut c.orders, rc.orders),
            (&mut c.fills, rc.fills),
            (&mut c.cancels_sent, rc.cancels_sent),
            (&mut c.rejects, rc.rejects),
            (&mut c.expired, rc.expired),
            (&mut c.canceled, rc.canceled),
            (&mut c.risk_rejects, rc.risk_rejects),
            (&mut c.orders_on_stale_book, rc.orders_on_stale_book),
        ] {
            *sum += x;
        }
        venue_rejects += r.out.venue_rejects;
        open_orders += ex.live_orders();
        events = events.max(r.out.events);
        positions.insert(
            r.symbol.to_string(),
            json!(r.out.account.position(r.symbol).to_string()),
        );
        let mut row = json!(r
            .out
            .account
            .by_symbol()
            .get(&r.symbol)
            .copied()
            .unwrap_or_default());
        row["events"] = json!(r.out.events);
        row["final_state"] = json!(risk.state().name());
        row["halt_reason"] = json!(risk.halt_reason().map(|s| s.name()));
        per_symbol.insert(r.symbol.to_string(), row);
        for (k, v) in ex.strategy_summary() {
            let key = if multi {
                format!("{}.{k}", r.symbol)
            } else {
                k.to_string()
            };
            summary.insert(key, v);
        }
        risk_events.extend(r.risk_events.iter().cloned());
    }
    risk_events.sort_by_key(|e| e.ts_ns);
    let risk = worst.context("no symbol to backtest")?;
    let symbols: Vec<Symbol> = runs.iter().map(|r| r.symbol).collect();
    let report = json!({
        "mode": "ticks",
        "strategy": { "name": setup.strategy, "params": setup.params, "symbol_params": setup.symbol_params },
        "data": {
            "files": a.data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "symbol": super::cmd::symbols_label(&symbols),
            "symbols": symbols.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
            "events": events,
            "from_ms": first_ms,
            "to_ms": last_ms,
        },
        "settings": {
            "seed": setup.seed,
            "fees": { "maker_bps": setup.fees_bps.0, "taker_bps": setup.fees_bps.1 },
            "initial_equity": setup.sim.risk.initial_equity.to_string(),
            "fill": match a.fill { Fill::Book => "book: the fill model against the rebuilt order book (depth, queue position, prints)", Fill::Top => "top: the paper venue (top of book and prints)" },
            "feed_latency": a.feed_latency.describe(),
            "order_latency": a.order_latency.describe(),
            "account": if multi {
                "each symbol runs its own executor and risk engine with the whole initial equity; the account is their sum (initial + the PnL of each)"
            } else {
                "one account and one risk engine"
            },
        },
        "metrics": m,
        "baselines": { "buy_and_hold": hm, "flat": fm },
        "per_symbol": per_symbol,
        "trades": trades,
        "orders": orders,
        "executor": {
            "intents": c.intents,
            "orders": c.orders,
            "fills": c.fills,
            "cancels_sent": c.cancels_sent,
            "rejects": c.rejects,
            "expired": c.expired,
            "canceled": c.canceled,
            "risk_rejects": c.risk_rejects,
            "orders_on_stale_book": c.orders_on_stale_book,
            "venue_rejects": venue_rejects,
        },
        "strategy_summary": summary,
        "final_state": risk.state().name(),
        "halt_reason": risk.halt_reason().map(|s| s.name()),
        "halted_at_ns": risk.halted_at_ns(),
        "final_positions": positions,
        "open_orders": open_orders,
        "risk_events": risk_events,
    });
    Ok((
        report,
        Curves {
            strategy: curve,
            hold,
            flat,
        },
    ))
}
