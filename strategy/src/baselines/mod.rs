//! Rule-based baselines: strategies that need no model, selectable by name. They drive the demo, the
//! tests and the baseline rows of the backtest report.
//!
//! | name | kind | what it does | params (default) |
//! |---|---|---|---|
//! | `sma-cross` | bar | long when SMA(fast) > SMA(slow), short when below ([`SmaCross`]) | `fast` (10), `slow` (30), `qty` (0.001) |
//! | `obi-taker` | tick | takes the side the top-of-book imbalance leans to ([`ObiTaker`]) | `threshold` (0.5), `qty` (0.001), `hold_ms` (1000) |
//! | `maker` | tick | quotes both sides at the touch, post-only ([`Maker`]) | `qty` (0.001), `max_position` (0.01) |
//!
//! # Intents, not orders
//!
//! A strategy says what it wants — an [`Intent`] — and never builds an order. The executor (the
//! backtester, or the live strategy thread followed by risk) turns intents into
//! `qalpha_engine::order::NewOrder`s: it knows the real position, the open orders, the venue's
//! filters and the risk limits, none of which a baseline should reimplement.
//!
//! - [`Intent::Target`]: *hold this signed position* (base quantity, positive long, negative short,
//!   zero flat). The executor trades the difference between the target and its actual position with
//!   the given [`Style`]. A target equal to the position is a no-op, so targets are idempotent.
//! - [`Intent::Quote`]: *rest these quotes* (one level a side, post-only); `None` on a side means no
//!   quote there, so `Quote { bid: None, ask: None }` pulls everything.
//!
//! Baselines speak only when their wish changes: a strategy returns `None` while its last intent
//! still stands.
//!
//! # Timing
//!
//! - [`BarStrategy`]: `on_bar` sees bar `t` once it has closed; an intent it returns is executed at
//!   bar `t + 1`'s **open** (never at the close it was computed from, which would be look-ahead). A
//!   target returned for the last bar has no next open and is dropped; `on_end` then returns the
//!   intent that settles at the last bar's **close** (flat for every baseline here).
//! - [`TickStrategy`]: `on_event` sees one market event; an intent applies **now**, at the book it
//!   was computed from. Fills come back through [`TickStrategy::on_fill`].
//!
//! # Hot path
//!
//! `on_bar`, `on_event` and `on_fill` allocate nothing, take no lock and make no syscall; the
//! registries ([`bar_strategy`], [`tick_strategy`]) are cold-path constructors.

mod maker;
mod obi_taker;
mod sma_cross;

use std::collections::BTreeMap;

use qalpha_engine::event::MarketEvent;
use qalpha_engine::{Price, Qty, Side};

use crate::bars::Bar;

pub use maker::Maker;
pub use obi_taker::ObiTaker;
pub use sma_cross::SmaCross;

/// How the executor should trade towards a [`Intent::Target`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    /// A market order (bar strategies: filled at the next bar's open in a backtest).
    Market,
    /// A post-only limit at the touch; rejected rather than taking liquidity.
    PostOnly,
    /// An immediate-or-cancel limit: buys no higher, sells no lower than `limit`.
    Ioc { limit: Price },
}

/// What a strategy wants. See the module docs for who turns it into orders and when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Intent {
    /// Hold this signed position (base qty: positive long, negative short, zero flat), entering at the
    /// next bar's open (bar strategies) or now (tick strategies) with the given order style.
    Target { qty: Qty, style: Style },
    /// Quote both sides (maker): price and size per side, post-only; `None` = no quote on that side.
    Quote {
        bid: Option<(Price, Qty)>,
        ask: Option<(Price, Qty)>,
    },
}

/// A strategy that decides on closed bars.
pub trait BarStrategy {
    /// The registry name (`sma-cross`).
    fn name(&self) -> &'static str;
    /// One closed bar `t`; an intent returned here is executed at bar `t + 1`'s open.
    fn on_bar(&mut self, bar: &Bar) -> Option<Intent>;
    /// The data has ended; an intent returned here is executed at the last bar's close.
    fn on_end(&mut self) -> Option<Intent>;
    /// What the strategy counted, for reports (cold path); see [`TickStrategy::summary`].
    fn summary(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// A strategy that decides on market events (book tops, quotes, staleness).
pub trait TickStrategy {
    /// The registry name (`obi-taker`, `maker`).
    fn name(&self) -> &'static str;
    /// One market event of the instrument this instance trades; an intent applies now.
    fn on_event(&mut self, ev: &MarketEvent) -> Option<Intent>;
    /// One of this strategy's orders filled `qty` (positive) on `side`. Strategies that keep their
    /// own position (the maker) override it; the default ignores fills.
    fn on_fill(&mut self, side: Side, qty: Qty) {
        let _ = (side, qty);
    }
    /// How much the strategy's models disagree (0…1), for risk's conservative mode
    /// (`RiskEngine::on_model_disagreement`); `None` for strategies without models (every baseline).
    /// The executor reads it after each event.
    fn disagreement(&self) -> Option<f64> {
        None
    }
    /// The models' latest outputs for monitoring: Oracle's median forecast (a return fraction),
    /// the Strategist's action lean (P(long) − P(short)), Guardian's P(shock regime); `None` without
    /// models.
    fn model_outputs(&self) -> Option<[f64; 3]> {
        None
    }
    /// What the strategy counted, for run summaries (cold path: called at the end of a run or for a
    /// progress line). Baselines have nothing beyond the executor's counters.
    fn summary(&self) -> Vec<(&'static str, String)> {
        Vec::new()
    }
}

/// Bar strategies by name.
pub const BAR_STRATEGIES: &[&str] = &["sma-cross"];
/// Tick strategies by name (the baselines; see also [`MODEL_STRATEGIES`]).
pub const TICK_STRATEGIES: &[&str] = &["obi-taker", "maker"];
/// Tick strategies that need models (their params name the model files): the Trinity.
pub const MODEL_STRATEGIES: &[&str] = &["trinity"];

/// Builds a bar strategy by name; unknown names or params, and values that do not parse or are out of
/// range, are errors that list what exists.
pub fn bar_strategy(
    name: &str,
    params: &BTreeMap<String, String>,
) -> Result<Box<dyn BarStrategy + Send>, String> {
    match name {
        "sma-cross" => {
            let p = Params::new(name, params, &["fast", "slow", "qty"])?;
            let fast = p.usize("fast", 10)?;
            let slow = p.usize("slow", 30)?;
            let qty = p.qty("qty", "0.001")?;
            if fast < 2 || slow <= fast {
                return Err(format!(
                    "sma-cross: need 2 <= fast < slow, got fast={fast} slow={slow}"
                ));
            }
            positive(name, "qty", qty)?;
            Ok(Box::new(SmaCross::new(fast, slow, qty)))
        }
        // The Trinity decides on bars too (on klines: bar backtests of trained models).
        "trinity" => Ok(Box::new(crate::trinity::Trinity::from_params(params)?)),
        _ => Err(unknown(name, "bar", BAR_STRATEGIES, TICK_STRATEGIES)),
    }
}

/// Builds a tick strategy by name; see [`bar_strategy`] for the error rules.
pub fn tick_strategy(
    name: &str,
    params: &BTreeMap<String, String>,
) -> Result<Box<dyn TickStrategy + Send>, String> {
    match name {
        "obi-taker" => {
            let p = Params::new(name, params, &["threshold", "qty", "hold_ms"])?;
            let threshold = p.f64("threshold", 0.5)?;
            let qty = p.qty("qty", "0.001")?;
            let hold_ms = p.u64("hold_ms", 1000)?;
            if !(threshold > 0.0 && threshold < 1.0) {
                return Err(format!(
                    "obi-taker: threshold must be in (0, 1), got {threshold}"
                ));
            }
            positive(name, "qty", qty)?;
            Ok(Box::new(ObiTaker::new(threshold, qty, hold_ms)))
        }
        "maker" => {
            let p = Params::new(name, params, &["qty", "max_position"])?;
            let qty = p.qty("qty", "0.001")?;
            let max_position = p.qty("max_position", "0.01")?;
            positive(name, "qty", qty)?;
            if max_position < qty {
                return Err(format!(
                    "maker: max_position ({max_position}) must be at least qty ({qty})"
                ));
            }
            Ok(Box::new(Maker::new(qty, max_position)))
        }
        "trinity" => Ok(Box::new(crate::trinity::Trinity::from_params(params)?)),
        _ => Err(unknown(
            name,
            "tick",
            &[TICK_STRATEGIES, MODEL_STRATEGIES].concat(),
            BAR_STRATEGIES,
        )),
    }
}

fn unknown(name: &str, kind: &str, these: &[&str], others: &[&str]) -> String {
    let hint = if others.contains(&name) {
        format!(
            " ({name} is a {} strategy)",
            if kind == "bar" { "tick" } else { "bar" }
        )
    } else {
        String::new()
    };
    format!(
        "unknown {kind} strategy {name:?}{hint}; {kind} strategies: {}",
        these.join(", ")
    )
}

fn positive(strategy: &str, key: &str, q: Qty) -> Result<(), String> {
    if q.raw() > 0 {
        Ok(())
    } else {
        Err(format!("{strategy}: {key} must be positive, got {q}"))
    }
}

/// A strategy's params, checked against the keys it accepts.
pub(crate) struct Params<'a> {
    strategy: &'a str,
    map: &'a BTreeMap<String, String>,
}

impl<'a> Params<'a> {
    pub(crate) fn new(
        strategy: &'a str,
        map: &'a BTreeMap<String, String>,
        known: &[&str],
    ) -> Result<Self, String> {
        if let Some(bad) = map.keys().find(|k| !known.contains(&k.as_str())) {
            return Err(format!(
                "{strategy}: unknown param {bad:?}; params: {}",
                known.join(", ")
            ));
        }
        Ok(Self { strategy, map })
    }

    fn get<T: std::str::FromStr>(&self, key: &str, default: T, what: &str) -> Result<T, String> {
        match self.map.get(key) {
            None => Ok(default),
            Some(v) => v
                .trim()
                .parse()
                .map_err(|_| format!("{}: param {key}={v:?} is not {what}", self.strategy)),
        }
    }

    pub(crate) fn usize(&self, key: &str, default: usize) -> Result<usize, String> {
        self.get(key, default, "a whole number")
    }

    pub(crate) fn u64(&self, key: &str, default: u64) -> Result<u64, String> {
        self.get(key, default, "a whole number")
    }

    pub(crate) fn f64(&self, key: &str, default: f64) -> Result<f64, String> {
        let v: f64 = self.get(key, default, "a number")?;
        if v.is_finite() {
            Ok(v)
        } else {
            Err(format!("{}: param {key} is not finite", self.strategy))
        }
    }

    pub(crate) fn qty(&self, key: &str, default: &str) -> Result<Qty, String> {
        let default = Qty::parse(default).map_err(|e| format!("default {key}: {e:?}"))?;
        self.get(key, default, "a decimal quantity (at most 8 decimals)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(kv: &[(&str, &str)]) -> BTreeMap<String, String> {
        kv.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn registries_build_every_name_with_defaults() {
        for &n in BAR_STRATEGIES {
            assert_eq!(bar_strategy(n, &BTreeMap::new()).unwrap().name(), n);
        }
        for &n in TICK_STRATEGIES {
            assert_eq!(tick_strategy(n, &BTreeMap::new()).unwrap().name(), n);
        }
    }

    #[test]
    fn registries_take_params() {
        let s = bar_strategy(
            "sma-cross",
            &params(&[("fast", "3"), ("slow", "5"), ("qty", "2")]),
        );
        assert!(s.is_ok());
        let t = tick_strategy(
            "obi-taker",
            &params(&[("threshold", "0.3"), ("qty", "0.5"), ("hold_ms", "250")]),
        );
        assert!(t.is_ok());
        let m = tick_strategy("maker", &params(&[("qty", "1"), ("max_position", "3")]));
        assert!(m.is_ok());
    }

    #[test]
    fn errors_list_what_exists() {
        let e = bar_strategy("sma", &BTreeMap::new()).err().unwrap();
        assert!(e.contains("\"sma\"") && e.contains("sma-cross"), "{e}");
        let e = bar_strategy("maker", &BTreeMap::new()).err().unwrap();
        assert!(e.contains("is a tick strategy"), "{e}");
        let e = tick_strategy("nope", &BTreeMap::new()).err().unwrap();
        assert!(e.contains("obi-taker") && e.contains("maker"), "{e}");
        let e = tick_strategy("sma-cross", &BTreeMap::new()).err().unwrap();
        assert!(e.contains("is a bar strategy"), "{e}");
        let e = bar_strategy("sma-cross", &params(&[("period", "3")]))
            .err()
            .unwrap();
        assert!(
            e.contains("\"period\"") && e.contains("fast, slow, qty"),
            "{e}"
        );
        let e = tick_strategy("maker", &params(&[("threshold", "0.3")]))
            .err()
            .unwrap();
        assert!(e.contains("qty, max_position"), "{e}");
    }

    /// (strategy, params, a substring the error must contain)
    type BadCase = (
        &'static str,
        &'static [(&'static str, &'static str)],
        &'static str,
    );

    #[test]
    fn bad_values_are_errors_naming_the_param() {
        let bad: &[BadCase] = &[
            ("sma-cross", &[("fast", "x")], "fast"),
            (
                "sma-cross",
                &[("fast", "30"), ("slow", "10")],
                "fast < slow",
            ),
            ("sma-cross", &[("fast", "1"), ("slow", "10")], "fast < slow"),
            ("sma-cross", &[("qty", "0")], "qty must be positive"),
            ("sma-cross", &[("qty", "0.000000001")], "qty"),
        ];
        for (name, kv, needle) in bad {
            let e = bar_strategy(name, &params(kv)).err().unwrap();
            assert!(e.contains(needle), "{kv:?}: {e}");
        }
        let bad: &[BadCase] = &[
            ("obi-taker", &[("threshold", "1.5")], "threshold"),
            ("obi-taker", &[("threshold", "NaN")], "threshold"),
            ("obi-taker", &[("hold_ms", "-1")], "hold_ms"),
            ("obi-taker", &[("qty", "-1")], "qty must be positive"),
            ("maker", &[("max_position", "0.0001")], "max_position"),
        ];
        for (name, kv, needle) in bad {
            let e = tick_strategy(name, &params(kv)).err().unwrap();
            assert!(e.contains(needle), "{kv:?}: {e}");
        }
    }
}
