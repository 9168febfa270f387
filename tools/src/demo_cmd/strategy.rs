//! Which strategy the demo's strategy thread runs: any of the strategy crate's baselines, chosen by
//! name (`--strategy NAME`), with its params from the config's `[strategy]` table and
//! `--set strategy.KEY=VALUE`.
//!
//! - Tick strategies (`obi-taker`, `maker`) see every market event of the traded instrument.
//! - Bar strategies (`sma-cross`) see time bars the thread cuts from the trade prints
//!   ([`TimeBars`], `strategy.bar_ms` long, default 1000 — the executor's own key, not passed to
//!   the strategy). A bar closes when the first trade of a later interval arrives; the intent
//!   `on_bar` returns is executed right away, which in live trading *is* the next bar's open.
//!
//! Cold path: [`StrategySpec::build`] runs once, before any thread starts, so a bad name or param
//! stops the demo with the registry's message. Hot path: [`Decider`] allocates nothing per event.

use std::collections::BTreeMap;

use qalpha_engine::event::{MarketEvent, MarketPayload};
use qalpha_engine::{Qty, Side};
use qalpha_strategy::bars::TimeBars;
use qalpha_strategy::baselines::{
    bar_strategy, tick_strategy, BarStrategy, Intent, TickStrategy, BAR_STRATEGIES,
    MODEL_STRATEGIES, TICK_STRATEGIES,
};

/// The strategy the demo runs when none is named: the touch quoter.
pub const DEFAULT_STRATEGY: &str = "maker";

/// Bar length when `strategy.bar_ms` is not set.
pub const DEFAULT_BAR_MS: u64 = 1000;

/// A strategy by name with its params (exactly what the user set; defaults are the registry's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StrategySpec {
    pub name: String,
    pub params: BTreeMap<String, String>,
}

impl Default for StrategySpec {
    fn default() -> Self {
        Self::named(DEFAULT_STRATEGY)
    }
}

impl StrategySpec {
    /// `name` with no params (the registry's defaults).
    pub fn named(name: &str) -> Self {
        Self {
            name: name.to_string(),
            params: BTreeMap::new(),
        }
    }

    /// `name` with the params of a config's `[strategy]` table (`--set strategy.k=v` included):
    /// scalars become the strings the registries parse; tables and arrays are errors.
    pub fn from_config(
        name: &str,
        cfg: &qalpha_engine::config::EngineConfig,
    ) -> Result<Self, String> {
        let mut params = BTreeMap::new();
        for (k, v) in cfg.strategy.iter().flatten() {
            let s = if let Some(s) = v.as_str() {
                s.to_string()
            } else if let Some(i) = v.as_integer() {
                i.to_string()
            } else if let Some(f) = v.as_float() {
                // Rust prints the shortest decimal that reads back as the same float: `0.001`.
                f.to_string()
            } else if let Some(b) = v.as_bool() {
                b.to_string()
            } else {
                return Err(format!(
                    "strategy.{k}: a strategy param is a number, a string or true/false, got {v}"
                ));
            };
            params.insert(k.clone(), s);
        }
        Ok(Self {
            name: name.to_string(),
            params,
        })
    }

    /// The strategy, ready to run; an unknown name or param, or a value out of range, is the
    /// registry's message.
    pub fn build(&self) -> Result<Decider, String> {
        let name = self.name.as_str();
        if BAR_STRATEGIES.contains(&name) {
            let mut params = self.params.clone();
            let bar_ms = match params.remove("bar_ms") {
                None => DEFAULT_BAR_MS,
                Some(v) => v
                    .trim()
                    .parse::<u64>()
                    .ok()
                    .filter(|&ms| ms > 0)
                    .ok_or_else(|| {
                        format!(
                            "{name}: param bar_ms={v:?} is not a whole number of milliseconds > 0"
                        )
                    })?,
            };
            let strategy = bar_strategy(name, &params)?;
            Ok(Decider::Bar {
                strategy,
                bars: TimeBars::new(bar_ms),
                bar_ms,
            })
        } else if TICK_STRATEGIES.contains(&name) || MODEL_STRATEGIES.contains(&name) {
            if self.params.contains_key("bar_ms") {
                return Err(format!(
                    "{name}: param bar_ms is for bar strategies ({}); {name} decides on every market event",
                    BAR_STRATEGIES.join(", ")
                ));
            }
            Ok(Decider::Tick(tick_strategy(name, &self.params)?))
        } else {
            Err(format!(
                "unknown strategy {name:?}; strategies: {}",
                BAR_STRATEGIES
                    .iter()
                    .chain(TICK_STRATEGIES)
                    .chain(MODEL_STRATEGIES)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
    }
}

/// A strategy as the executor runs it.
pub enum Decider {
    Tick(Box<dyn TickStrategy + Send>),
    Bar {
        strategy: Box<dyn BarStrategy + Send>,
        bars: TimeBars,
        bar_ms: u64,
    },
}

impl Decider {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Tick(s) => s.name(),
            Self::Bar { strategy, .. } => strategy.name(),
        }
    }

    /// Bar length for bar strategies.
    pub fn bar_ms(&self) -> Option<u64> {
        match self {
            Self::Tick(_) => None,
            Self::Bar { bar_ms, .. } => Some(*bar_ms),
        }
    }

    /// One market event of the traded instrument: a tick strategy's intent, or a bar strategy's
    /// when this trade closed a bar.
    pub fn on_event(&mut self, ev: &MarketEvent) -> Option<Intent> {
        match self {
            Self::Tick(s) => s.on_event(ev),
            Self::Bar { strategy, bars, .. } => match &ev.payload {
                MarketPayload::Trade(t) => {
                    let bar = bars.on_trade_event(t)?;
                    strategy.on_bar(&bar)
                }
                _ => None,
            },
        }
    }

    /// A fill of one of the executor's orders (tick strategies that count their own position).
    pub fn on_fill(&mut self, side: Side, qty: Qty) {
        if let Self::Tick(s) = self {
            s.on_fill(side, qty);
        }
    }

    /// The models' disagreement, read after each event (`None` for every baseline).
    pub fn disagreement(&self) -> Option<f64> {
        match self {
            Self::Tick(s) => s.disagreement(),
            Self::Bar { .. } => None,
        }
    }

    /// The models' latest outputs (forecast, action lean, P(shock)); `None` for the baselines.
    pub fn model_outputs(&self) -> Option<[f64; 3]> {
        match self {
            Self::Tick(s) => s.model_outputs(),
            Self::Bar { .. } => None,
        }
    }

    /// What the strategy counted, for the run's summary (cold path).
    pub fn summary(&self) -> Vec<(&'static str, String)> {
        match self {
            Self::Tick(s) => s.summary(),
            Self::Bar { .. } => Vec::new(),
        }
    }

    /// The data has ended: a bar strategy's settling intent (flat). The bar in progress is not
    /// closed: it never completed, and a decision on it would be on a partial bar.
    pub fn on_end(&mut self) -> Option<Intent> {
        match self {
            Self::Tick(_) => None,
            Self::Bar { strategy, .. } => strategy.on_end(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, kv: &[(&str, &str)]) -> StrategySpec {
        StrategySpec {
            name: name.into(),
            params: kv
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// (name, params, a substring the error must contain)
    type BadCase = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );

    #[test]
    fn every_registered_name_builds_and_bad_ones_say_why() {
        for n in BAR_STRATEGIES.iter().chain(TICK_STRATEGIES) {
            let d = spec(n, &[]).build().unwrap();
            assert_eq!(d.name(), *n);
        }
        assert_eq!(
            spec("sma-cross", &[("bar_ms", "250")])
                .build()
                .unwrap()
                .bar_ms(),
            Some(250)
        );
        let cases: &[BadCase] = &[
            ("nope", &[], "strategies: sma-cross, obi-taker, maker"),
            ("sma-cross", &[("bar_ms", "0")], "bar_ms"),
            ("sma-cross", &[("bar_ms", "x")], "bar_ms"),
            ("sma-cross", &[("fast", "9"), ("slow", "3")], "fast < slow"),
            ("obi-taker", &[("threshold", "2")], "threshold"),
            ("obi-taker", &[("bar_ms", "100")], "bar strategies"),
            ("maker", &[("size", "1")], "unknown param \"size\""),
        ];
        for (name, kv, needle) in cases {
            let e = spec(name, kv).build().err().unwrap();
            assert!(e.contains(needle), "{name} {kv:?}: {e}");
        }
    }

    #[test]
    fn config_scalars_become_param_strings() {
        let sets: Vec<String> = [
            "strategy.threshold=0.3",
            "strategy.hold_ms=250",
            "strategy.qty=\"0.002\"",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let cfg = qalpha_engine::config::EngineConfig::load_with_overrides(None, &sets).unwrap();
        let s = StrategySpec::from_config("obi-taker", &cfg).unwrap();
        assert_eq!(
            s,
            spec(
                "obi-taker",
                &[("threshold", "0.3"), ("hold_ms", "250"), ("qty", "0.002")]
            )
        );
        assert!(s.build().is_ok());
        let sets = vec!["strategy.fast.x=1".to_string()];
        let cfg = qalpha_engine::config::EngineConfig::load_with_overrides(None, &sets).unwrap();
        let e = StrategySpec::from_config("sma-cross", &cfg).unwrap_err();
        assert!(e.contains("strategy.fast"), "{e}");
    }
}
