//! The three models of the Trinity, loaded and checked for their roles, each with its feature
//! window; [`TrinityModels::run`] turns one inference pass into [`Signals`].
//!
//! Roles are checked by output *names and labels*, never by position, so a retrained model may order
//! its outputs or labels differently:
//!
//! | model | reads | must output |
//! |---|---|---|
//! | `guardian` | the window | `regime_probs [1, R]` with a `shock` label; `change_score [1, 1]` |
//! | `oracle` | the window | `quantiles [1, H, Q]` (or `[1, Q]`, one horizon) labelled `qNN` with `q50`, and `horizons` when H > 1 |
//! | `strategist` | the window + `target_return [1, 1]` | `action_logits [1, 3]` labelled `long`, `short`, `flat` |

use std::path::{Path, PathBuf};

use crate::model::{FeatureWindow, Model, ModelError, OutputSpec};

use super::decision::Signals;
use super::TrinityError;

/// One model with its window.
struct Slot {
    model: Model,
    window: FeatureWindow,
    /// Whether every row in the window is finite (rows pushed while features warm up are not).
    finite_rows: usize,
}

impl Slot {
    fn load(dir: &Path, name: &str, features: &[String]) -> Result<Slot, TrinityError> {
        let model = Model::load(
            dir.join(format!("{name}.onnx")),
            dir.join(format!("{name}.json")),
            features,
        )?;
        let window = FeatureWindow::new(model.meta().window, model.meta().features.len());
        Ok(Slot {
            model,
            window,
            finite_rows: 0,
        })
    }

    fn push(&mut self, row: &[f64]) {
        let model = &self.model;
        let finite = self.window.push_with(|out| model.normalize_row(row, out));
        self.finite_rows = if finite {
            (self.finite_rows + 1).min(self.model.meta().window)
        } else {
            0
        };
    }

    fn rewrite_newest(&mut self, row: &[f64]) {
        let model = &self.model;
        let finite = self
            .window
            .rewrite_newest(|out| model.normalize_row(row, out));
        if !finite {
            self.finite_rows = 0;
        }
    }

    fn ready(&self) -> bool {
        self.finite_rows == self.model.meta().window
    }
}

/// Where each signal sits in the models' outputs (indices fixed at load).
#[derive(Clone, Copy, Debug)]
struct Layout {
    g_regime: usize,
    g_shock: usize,
    g_change: usize,
    o_quantiles: usize,
    /// Offset of the chosen horizon's row in the flattened quantiles.
    o_row: usize,
    o_lo: usize,
    o_mid: usize,
    o_hi: usize,
    s_logits: usize,
    s_long: usize,
    s_short: usize,
    s_flat: usize,
}

/// Guardian, Oracle and Strategist, checked for their roles.
pub struct TrinityModels {
    guardian: Slot,
    oracle: Slot,
    strategist: Slot,
    layout: Layout,
    /// Bars ahead of the Oracle horizon in use.
    horizon_bars: u32,
}

impl std::fmt::Debug for TrinityModels {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TrinityModels")
            .field("guardian", &self.guardian.model)
            .field("oracle", &self.oracle.model)
            .field("strategist", &self.strategist.model)
            .field("horizon_bars", &self.horizon_bars)
            .finish()
    }
}

impl TrinityModels {
    /// Loads `guardian`, `oracle` and `strategist` (`.onnx` + `.json`) from `dir`, checked against
    /// the engine's columns `features` and for their roles (see the module docs). `horizon`: bars
    /// ahead of the Oracle horizon to use (`None`: its first).
    pub fn load(
        dir: &Path,
        features: &[String],
        horizon: Option<u32>,
    ) -> Result<TrinityModels, TrinityError> {
        let guardian = Slot::load(dir, "guardian", features)?;
        let oracle = Slot::load(dir, "oracle", features)?;
        let strategist = Slot::load(dir, "strategist", features)?;

        let role = |slot: &Slot, problem: String| TrinityError::Role {
            path: slot.model.meta().path.clone(),
            problem,
        };
        let output = |slot: &Slot, name: &str, shape: &str| {
            slot.model
                .meta()
                .output(name)
                .map(|(i, spec)| (i, spec.clone()))
                .ok_or_else(|| role(slot, format!("no output `{name}` {shape}")))
        };
        let label = |slot: &Slot, spec: &OutputSpec, want: &str| {
            labels(spec).iter().position(|l| l == want).ok_or_else(|| {
                role(
                    slot,
                    format!("output `{}` has no `{want}` label", spec.name),
                )
            })
        };

        // Guardian.
        let g = &guardian;
        let (g_regime, regime) = output(g, "regime_probs", "[1, regimes]")?;
        let g_shock = label(g, &regime, "shock")?;
        let (g_change, change) = output(g, "change_score", "[1, 1]")?;
        if change.shape.iter().product::<usize>() != 1 {
            return Err(role(
                g,
                format!(
                    "`change_score` has shape {:?}; expected [1, 1]",
                    change.shape
                ),
            ));
        }
        if g.model.meta().condition().is_some() {
            return Err(role(g, "the guardian takes no condition input".into()));
        }

        // Oracle.
        let o = &oracle;
        let (o_quantiles, q) = output(o, "quantiles", "[1, horizons, quantiles]")?;
        let levels: Vec<Option<f64>> = labels(&q).iter().map(|l| quantile_level(l)).collect();
        if levels.is_empty() || levels.iter().any(Option::is_none) {
            return Err(role(
                o,
                format!(
                    "`quantiles` labels must all be qNN (q10, q50, q90), got {:?}",
                    q.names
                ),
            ));
        }
        let levels: Vec<f64> = levels.into_iter().flatten().collect();
        let o_mid = levels
            .iter()
            .position(|&l| (l - 0.5).abs() < 1e-9)
            .ok_or_else(|| role(o, "`quantiles` has no q50 (the median)".into()))?;
        let by = |better: fn(f64, f64) -> bool| {
            (0..levels.len())
                .reduce(|a, b| if better(levels[b], levels[a]) { b } else { a })
                .unwrap_or(0)
        };
        let (o_lo, o_hi) = (by(|a, b| a < b), by(|a, b| a > b));
        if levels[o_lo] >= 0.5 || levels[o_hi] <= 0.5 {
            return Err(role(
                o,
                "`quantiles` needs a level below and one above q50".into(),
            ));
        }
        let n_q = levels.len();
        let n_h = match q.shape.as_slice() {
            [1, h, qn] if *qn == n_q => *h,
            [1, qn] if *qn == n_q => 1,
            s => {
                return Err(role(
                    o,
                    format!("`quantiles` has shape {s:?}; expected [1, horizons, {n_q}]"),
                ))
            }
        };
        let horizons: Vec<u32> = match (&o.model.meta().horizons, n_h) {
            (Some(h), n) if h.len() == n => h.clone(),
            (None, 1) => vec![1],
            (h, n) => {
                return Err(role(
                    o,
                    format!("`horizons` {h:?} must list the {n} horizon(s) of `quantiles`"),
                ))
            }
        };
        let h_index = match horizon {
            None => 0,
            Some(want) => horizons.iter().position(|&h| h == want).ok_or_else(|| {
                TrinityError::Param(format!(
                    "trinity: horizon={want} is not one of the oracle's horizons {horizons:?}"
                ))
            })?,
        };

        // Strategist.
        let s = &strategist;
        if s.model.meta().condition().is_none() {
            return Err(role(
                s,
                "the strategist needs a condition input `target_return` [1, 1]".into(),
            ));
        }
        let (s_logits, logits) = output(s, "action_logits", "[1, 3]")?;
        if logits.shape != [1, 3] {
            return Err(role(
                s,
                format!(
                    "`action_logits` has shape {:?}; expected [1, 3]",
                    logits.shape
                ),
            ));
        }
        let layout = Layout {
            g_regime,
            g_shock,
            g_change,
            o_quantiles,
            o_row: h_index * n_q,
            o_lo,
            o_mid,
            o_hi,
            s_logits,
            s_long: label(s, &logits, "long")?,
            s_short: label(s, &logits, "short")?,
            s_flat: label(s, &logits, "flat")?,
        };
        Ok(TrinityModels {
            horizon_bars: horizons[h_index],
            guardian,
            oracle,
            strategist,
            layout,
        })
    }

    /// Bars ahead of the Oracle horizon in use.
    pub fn horizon_bars(&self) -> u32 {
        self.horizon_bars
    }

    /// Longest window of the three (bars of finite features before the first run).
    pub fn max_window(&self) -> usize {
        self.slots()
            .map(|s| s.model.meta().window)
            .max()
            .unwrap_or(0)
    }

    /// The model files, for reports.
    pub fn paths(&self) -> [PathBuf; 3] {
        [&self.guardian, &self.oracle, &self.strategist].map(|s| s.model.meta().path.clone())
    }

    fn slots(&self) -> impl Iterator<Item = &Slot> {
        [&self.guardian, &self.oracle, &self.strategist].into_iter()
    }

    fn slots_mut(&mut self) -> [&mut Slot; 3] {
        [&mut self.guardian, &mut self.oracle, &mut self.strategist]
    }

    /// One closed bar's engine row (the columns given to [`TrinityModels::load`]) into every window.
    pub fn push(&mut self, row: &[f64]) {
        for s in self.slots_mut() {
            s.push(row);
        }
    }

    /// Rewrites the newest row of every window (a timed run refreshing its order-flow columns).
    pub fn rewrite_newest(&mut self, row: &[f64]) {
        for s in self.slots_mut() {
            s.rewrite_newest(row);
        }
    }

    /// Whether every window is full of finite rows.
    pub fn ready(&self) -> bool {
        self.slots().all(Slot::ready)
    }

    /// Runs the three models on their windows (`ready()` must hold) and reads the signals.
    pub fn run(&mut self, target_return: f32) -> Result<Signals, ModelError> {
        let l = self.layout;
        let (p_shock, change) = {
            let g = &mut self.guardian;
            let input = g.window.as_slice().unwrap_or(&[]);
            let out = g.model.run(input)?;
            (
                f64::from(out[l.g_regime][l.g_shock]),
                f64::from(out[l.g_change][0]),
            )
        };
        let (q_lo, q50, q_hi) = {
            let o = &mut self.oracle;
            let input = o.window.as_slice().unwrap_or(&[]);
            let q = &o.model.run(input)?[l.o_quantiles][l.o_row..];
            (
                f64::from(q[l.o_lo]),
                f64::from(q[l.o_mid]),
                f64::from(q[l.o_hi]),
            )
        };
        let (p_long, p_short, p_flat) = {
            let s = &mut self.strategist;
            let input = s.window.as_slice().unwrap_or(&[]);
            let z = &s.model.run_conditioned(input, &[target_return])?[l.s_logits];
            let (a, b, c) = (
                f64::from(z[l.s_long]),
                f64::from(z[l.s_short]),
                f64::from(z[l.s_flat]),
            );
            let m = a.max(b).max(c);
            let (ea, eb, ec) = ((a - m).exp(), (b - m).exp(), (c - m).exp());
            let sum = ea + eb + ec;
            (ea / sum, eb / sum, ec / sum)
        };
        Ok(Signals {
            p_shock,
            change,
            q_lo,
            q50,
            q_hi,
            p_long,
            p_short,
            p_flat,
        })
    }
}

fn labels(spec: &OutputSpec) -> &[String] {
    spec.names.as_deref().unwrap_or(&[])
}

/// `q10` → 0.10, `q50` → 0.5, `q975` → 0.975 (the digits are the decimals of the level).
fn quantile_level(label: &str) -> Option<f64> {
    let digits = label.strip_prefix('q')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    format!("0.{digits}").parse().ok().filter(|l| *l > 0.0)
}

#[cfg(test)]
mod tests {
    use super::quantile_level;

    #[test]
    fn quantile_labels() {
        assert_eq!(quantile_level("q10"), Some(0.1));
        assert_eq!(quantile_level("q50"), Some(0.5));
        assert_eq!(quantile_level("q975"), Some(0.975));
        assert_eq!(quantile_level("q05"), Some(0.05));
        for bad in ["median", "q", "q-1", "p50", "q00"] {
            assert_eq!(quantile_level(bad), None, "{bad}");
        }
    }
}
