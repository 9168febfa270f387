//! The bar feature library: streaming indicators, O(1) per bar, with TA-Lib's definitions — the
//! same seeding (first value at the same bar), smoothing (Wilder where TA-Lib uses it) and formulas —
//! so a model trained on features computed here sees the same numbers live. Values are `NaN` during
//! warm-up (written as empty cells in CSVs).
//!
//! Every indicator implements [`Indicator`]; [`FeatureSet::standard`] is the set the models use, with
//! stable column names (`sma_20`, `macd_signal`, …).

use crate::bars::Bar;

pub mod extra;
pub mod oscillators;
mod range;
pub mod standard;
pub mod trend;
pub mod volume;

/// A streaming bar indicator.
pub trait Indicator: Send {
    /// Column names, in output order (one per value).
    fn names(&self) -> Vec<String>;
    /// One closed bar. O(1), no allocation.
    fn update(&mut self, b: &Bar);
    /// Writes the current values into `out` (`out.len() == names().len()`); `NaN` while warming up.
    fn write(&self, out: &mut [f64]);
}

/// An ordered set of indicators with a fixed column layout.
pub struct FeatureSet {
    items: Vec<(Box<dyn Indicator>, usize)>,
    names: Vec<String>,
}

impl FeatureSet {
    pub fn new(items: Vec<Box<dyn Indicator>>) -> Self {
        let mut names = Vec::new();
        let items = items
            .into_iter()
            .map(|i| {
                let n = i.names();
                let w = n.len();
                names.extend(n);
                (i, w)
            })
            .collect();
        Self { items, names }
    }

    /// Column names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// Updates every indicator with a closed bar and writes the row into `row` (resized once).
    pub fn update(&mut self, b: &Bar, row: &mut Vec<f64>) {
        row.resize(self.names.len(), f64::NAN);
        let mut at = 0;
        for (ind, w) in &mut self.items {
            ind.update(b);
            ind.write(&mut row[at..at + *w]);
            at += *w;
        }
    }
}
