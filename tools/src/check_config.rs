//! `qalpha check-config FILE [--strategy NAME] [--set KEY=VALUE]…`: validates a config the way the
//! engine will read it and names the wrong key and why, before anything starts.
//!
//! Checked, in order: TOML syntax and unknown keys (with line and column), `mode`, `[[feed_threads]]`
//! and `[[venues]]` (venue names, order-entry keys, the feed plan of every venue: stream names,
//! symbols, URLs), `[risk]` (every limit, ranges, per-symbol tables), `[fees]` and `[account]`, and the
//! `[strategy]` params (`[strategy.SYMBOL]` tables too) against the strategy named by `--strategy`
//! (without it the params are only read, not matched to a strategy — the summary says so).

use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use qalpha_engine::config::EngineConfig;
use qalpha_risk::RiskConfig;

use crate::backtest::cmd::{self as backtest, BacktestArgs};
use crate::demo_cmd::strategy::StrategySpec;

#[derive(clap::Args, Debug, Clone)]
pub struct CheckConfigArgs {
    /// The config file.
    pub file: PathBuf,
    /// Check the `[strategy]` params against this strategy (maker, obi-taker, sma-cross, trinity).
    #[arg(long)]
    pub strategy: Option<String>,
    /// Overrides, as `qalpha demo` / `qalpha backtest` take them.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    pub sets: Vec<String>,
}

/// Validates; returns the summary lines of a valid config, or the first error.
pub fn check(a: &CheckConfigArgs) -> Result<Vec<String>> {
    if !a.file.is_file() {
        bail!("{}: no such file", a.file.display());
    }
    let cfg = EngineConfig::load_with_overrides(Some(&a.file), &a.sets)?;
    let mut out = vec![format!(
        "mode {}, {} feed thread(s), {} venue(s)",
        cfg.mode,
        cfg.feed_threads.len(),
        cfg.venues.len()
    )];
    for (i, v) in cfg.venues.iter().enumerate() {
        let plan = qalpha_feeds::live::plan_venue(v)
            .map_err(|e| anyhow::anyhow!("venues[{i}] ({}): {e}", v.venue))?;
        out.push(format!(
            "venues[{i}] {}: symbols {}, {} connection(s)",
            v.venue,
            v.symbols.join(","),
            plan.conns.len()
        ));
    }
    let risk = RiskConfig::from_engine(&cfg)?;
    out.push(format!(
        "risk: daily loss limit {}, max leverage {}, {} per-symbol table(s)",
        risk.daily_loss_limit,
        risk.max_leverage,
        risk.symbols.len()
    ));
    let alerts = crate::alerts::AlertConfig::from_table(cfg.alerts.as_ref())?;
    out.push(format!(
        "alerts: {} channel(s){}",
        alerts.sinks.len(),
        if alerts.sinks.is_empty() {
            String::new()
        } else {
            format!(
                " ({}), at most {} a minute",
                alerts
                    .sinks
                    .iter()
                    .map(|s| s.name())
                    .collect::<Vec<_>>()
                    .join(", "),
                alerts.max_per_minute
            )
        }
    ));
    // [fees], [account] and the shape of [strategy] (single values, [strategy.SYMBOL] tables): as a
    // backtest or paper run reads them.
    let name = a.strategy.clone().unwrap_or_else(|| "sma-cross".into());
    let setup = backtest::setup(&BacktestArgs {
        config: Some(a.file.clone()),
        sets: a.sets.clone(),
        ..BacktestArgs::new(Vec::new(), &name)
    })?;
    out.push(format!(
        "fees: maker {} bps, taker {} bps; initial equity {}",
        setup.fees_bps.0, setup.fees_bps.1, setup.sim.risk.initial_equity
    ));
    match &a.strategy {
        Some(s) => {
            let mut symbols: Vec<Option<&String>> = vec![None];
            symbols.extend(setup.symbol_params.keys().map(Some));
            for sym in symbols {
                let mut params = setup.params.clone();
                if let Some(own) = sym.and_then(|k| setup.symbol_params.get(k)) {
                    params.extend(own.clone());
                }
                StrategySpec {
                    name: s.clone(),
                    params,
                }
                .build()
                .map_err(|e| {
                    let at = sym.map_or("strategy".to_string(), |k| format!("strategy.{k}"));
                    anyhow::anyhow!("[{at}] for --strategy {s}: {e}")
                })?;
            }
            out.push(format!(
                "strategy {s}: {} param(s) accepted",
                setup.params.len()
            ));
        }
        None if !setup.params.is_empty() || !setup.symbol_params.is_empty() => out.push(
            "strategy params read but not matched to a strategy (give --strategy NAME)".into(),
        ),
        None => {}
    }
    Ok(out)
}

/// `qalpha check-config`: prints `FILE: ok` and the summary, or fails with the error.
pub fn run(a: CheckConfigArgs) -> Result<()> {
    let lines = check(&a).with_context(|| format!("{}: invalid", a.file.display()))?;
    println!("{}: ok", a.file.display());
    for l in lines {
        println!("  {l}");
    }
    Ok(())
}
