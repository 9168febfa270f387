//! `qalpha backtest` on captures (`.qcap`): the tick simulator ([`super::tick_sim`]) with the
//! strategy by name (tick strategies, the Trinity, or a bar strategy on time bars cut from the
//! prints), and the same JSON report as bar mode, plus what only a tick run has (latencies, fill
//! mode, venue rejects, the executor's counters).
//!
//! Baselines: buy & hold (the strategy's `qty`, bought at the first mid and sold at the last, taker
//! fee both ways) and flat, marked on the same samples as the strategy.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use qalpha_engine::{Qty, Side};
use qalpha_risk::journal::{JournalReader, RiskEventKind};
use qalpha_risk::Money;
use serde_json::{json, Value};

use super::account::Account;
use super::bar_sim::RiskEventRecord;
use super::cmd::{BacktestArgs, Setup};
use super::latency::Latency;
use super::metrics::{self, EquityPoint, Metrics};
use super::tick_sim::{self, Fill, TickSimConfig, TickSimOutput};
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
        symbol: setup.sim.symbol,
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

/// Runs the strategy on the captures; returns the simulator's output and the risk events.
pub fn simulate(setup: &Setup, a: &BacktestArgs) -> Result<(TickSimOutput, Vec<RiskEventRecord>)> {
    let spec = StrategySpec {
        name: setup.strategy.clone(),
        params: setup.params.clone(),
    };
    let decider = spec.build().map_err(anyhow::Error::msg)?;
    let tcfg = config(setup, a);
    let journal = scratch_journal();
    let out = match tick_input(&a.data)? {
        Some(TickInput::ArchiveCsv) => {
            let files = a
                .data
                .iter()
                .map(|p| super::csv_events::read(p, setup.sim.symbol))
                .collect::<Result<Vec<_>>>()?;
            tick_sim::run_events(
                super::csv_events::merge(files),
                decider,
                &tcfg,
                Some(&journal),
            )
        }
        _ => tick_sim::run(&a.data, decider, &tcfg, Some(&journal)),
    };
    let events = risk_events(&journal);
    let _ = std::fs::remove_file(&journal);
    Ok((out?, events))
}

/// Buy & hold `qty` along the strategy's equity sample times, marked at the same mids.
fn hold_curve(out: &TickSimOutput, setup: &Setup, qty: Qty) -> (Vec<EquityPoint>, Metrics) {
    let mut acc = Account::new(
        setup.sim.venue,
        setup.sim.symbol,
        Money::from_qty(setup.sim.risk.initial_equity),
    );
    let marks = &out.marks;
    if let (Some(&(t0, p0)), Some(&(t1, p1))) = (marks.first(), marks.last()) {
        acc.fill(t0, Side::Buy, p0, qty, setup.sim.fees.fee(p0, qty, false));
        for &(t, p) in marks {
            acc.mark(p);
            acc.sample(t);
        }
        acc.fill(t1, Side::Sell, p1, qty, setup.sim.fees.fee(p1, qty, false));
        acc.sample(t1);
    }
    let m = metrics::compute(&acc.curve, &acc.trades, &acc.totals, setup.period_ms);
    (acc.curve, m)
}

fn flat_curve(out: &TickSimOutput, setup: &Setup) -> (Vec<EquityPoint>, Metrics) {
    let eq = Money::from_qty(setup.sim.risk.initial_equity);
    let curve: Vec<EquityPoint> = [out.first_ms, out.last_ms]
        .iter()
        .map(|&t| EquityPoint {
            t_ms: t,
            equity: eq,
        })
        .collect();
    let m = metrics::compute(&curve, &[], &Default::default(), setup.period_ms);
    (curve, m)
}

/// The curves of the strategy and its baselines, for `--report`.
pub struct Curves {
    pub strategy: Vec<EquityPoint>,
    pub hold: Vec<EquityPoint>,
    pub flat: Vec<EquityPoint>,
}

/// Runs and reports (the JSON document) a tick backtest.
pub fn run(setup: &Setup, a: &BacktestArgs) -> Result<(Value, Curves)> {
    let (out, risk_events) = simulate(setup, a)?;
    let qty = match setup.params.get("qty") {
        Some(q) => Qty::parse(q.trim()).map_err(|e| anyhow::anyhow!("strategy.qty: {e:?}"))?,
        None => Qty(100_000),
    };
    let acc = &out.account;
    let m = metrics::compute(&acc.curve, &acc.trades, &acc.totals, setup.period_ms);
    let (hold, hm) = hold_curve(&out, setup, qty);
    let (flat, fm) = flat_curve(&out, setup);
    let ex = &out.executor;
    let risk = ex.risk.as_ref().context("the backtest runs with risk")?;
    let mut positions = serde_json::Map::new();
    positions.insert(
        setup.sim.symbol.as_str().to_string(),
        json!(acc.position().to_string()),
    );
    let c = ex.counters;
    let report = json!({
        "mode": "ticks",
        "strategy": { "name": setup.strategy, "params": setup.params },
        "data": {
            "files": a.data.iter().map(|p| p.display().to_string()).collect::<Vec<_>>(),
            "symbol": setup.sim.symbol.as_str(),
            "events": out.events,
            "from_ms": out.first_ms,
            "to_ms": out.last_ms,
        },
        "settings": {
            "seed": setup.seed,
            "fees": { "maker_bps": setup.fees_bps.0, "taker_bps": setup.fees_bps.1 },
            "initial_equity": setup.sim.risk.initial_equity.to_string(),
            "fill": match a.fill { Fill::Book => "book: the fill model against the rebuilt order book (depth, queue position, prints)", Fill::Top => "top: the paper venue (top of book and prints)" },
            "feed_latency": a.feed_latency.describe(),
            "order_latency": a.order_latency.describe(),
        },
        "metrics": m,
        "baselines": { "buy_and_hold": hm, "flat": fm },
        "trades": acc.trades,
        "orders": acc.orders,
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
            "venue_rejects": out.venue_rejects,
        },
        "strategy_summary": ex
            .strategy_summary()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect::<std::collections::BTreeMap<_, _>>(),
        "final_state": risk.state().name(),
        "halt_reason": risk.halt_reason().map(|s| s.name()),
        "halted_at_ns": risk.halted_at_ns(),
        "final_positions": positions,
        "open_orders": ex.live_orders(),
        "risk_events": risk_events,
    });
    Ok((
        report,
        Curves {
            strategy: out.account.curve,
            hold,
            flat,
        },
    ))
}
