//! A model's metadata JSON: what the model reads and writes, checked against the engine at load.
//!
//! ```json
//! {
//!   "name": "guardian",
//!   "version": "1.2.0",
//!   "features": ["rsi_14", "macd", "atr_14"],
//!   "window": 16,
//!   "normalization": { "mean": [50.0, 0.0, 120.0], "std": [15.0, 25.0, 60.0] },
//!   "inputs": [{ "name": "window", "shape": [1, 16, 3], "dtype": "f32" }],
//!   "outputs": [{ "name": "regime_probs", "shape": [1, 3], "names": ["trend", "range", "shock"] }],
//!   "trained_on": { "from": "2023-01-01", "to": "2025-06-30" }
//! }
//! ```
//!
//! Unknown fields are refused (a typo must not silently drop a setting). The first input is the
//! feature window, `[1, window, features.len()]`, row-major with the oldest bar first and the
//! features in the order of `features`; a model with another layout is refused rather than fed a
//! transposed window. A second input, when present, is a scalar **condition** of shape `[1, 1]`
//! (the Strategist's target return); the runtime feeds it through [`super::Model::run_conditioned`].
//! `horizons` (optional) names the bars ahead of each horizon row of a per-horizon output (the
//! Oracle's quantiles `[1, horizons.len(), quantiles]`).

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::{Mismatch, ModelError};

/// The metadata of one model (`{name}.json` next to `{name}.onnx`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelMeta {
    /// The model's role (`oracle`, `strategist`, `guardian`) or any other name.
    pub name: String,
    pub version: String,
    /// Feature column names in the model's input order; each must be a column of the engine's set.
    pub features: Vec<String>,
    /// Bars per input window.
    pub window: usize,
    pub normalization: Normalization,
    /// The feature window `[1, window, features.len()]` `f32`, optionally followed by one scalar
    /// condition `[1, 1]` `f32` (the Strategist's target return).
    pub inputs: Vec<InputSpec>,
    /// Bars ahead of each horizon of a per-horizon output (the Oracle's), when the model has them.
    #[serde(default)]
    pub horizons: Option<Vec<u32>>,
    /// The graph's outputs, in the graph's order.
    pub outputs: Vec<OutputSpec>,
    pub trained_on: TrainedOn,
    /// The file this was read from (empty when built in code); named by every error.
    #[serde(skip)]
    pub path: PathBuf,
}

/// Per-feature standardization: the model reads `(x − mean) / std`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Normalization {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InputSpec {
    pub name: String,
    pub shape: Vec<usize>,
    /// Only `"f32"`.
    pub dtype: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    pub name: String,
    pub shape: Vec<usize>,
    /// Labels of the last dimension (quantile levels, regime names, actions), when it has them.
    #[serde(default)]
    pub names: Option<Vec<String>>,
}

/// The training data range, as the research pipeline wrote it (dates or timestamps).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TrainedOn {
    pub from: String,
    pub to: String,
}

impl ModelMeta {
    /// Reads and parses a metadata file (no checks beyond the format; see [`ModelMeta::check`]).
    pub fn load(path: impl AsRef<Path>) -> Result<ModelMeta, ModelError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let mut meta: ModelMeta =
            serde_json::from_str(&text).map_err(|source| ModelError::MetaFormat {
                path: path.to_path_buf(),
                source,
            })?;
        meta.path = path.to_path_buf();
        Ok(meta)
    }

    /// Checks the metadata on its own and against the engine's feature columns: every feature
    /// exists in `available_features` (all missing ones are named), no feature twice, one finite
    /// mean and positive std per feature, one `f32` input of shape `[1, window, features.len()]`,
    /// output label counts that fit their shapes.
    pub fn check(&self, available_features: &[String]) -> Result<(), ModelError> {
        self.check_inner(available_features)
            .map_err(|problem| self.mismatch(problem))
    }

    /// The index of each model feature in the engine's row (`available_features` order).
    pub fn feature_index(&self, available_features: &[String]) -> Result<Vec<usize>, ModelError> {
        let mut missing = Vec::new();
        let index: Vec<usize> = self
            .features
            .iter()
            .filter_map(|f| {
                let at = available_features.iter().position(|a| a == f);
                if at.is_none() {
                    missing.push(f.clone());
                }
                at
            })
            .collect();
        if missing.is_empty() {
            Ok(index)
        } else {
            Err(self.mismatch(Mismatch::UnknownFeatures(missing)))
        }
    }

    /// The input shape the runtime feeds: `[1, window, features.len()]`.
    pub fn expected_input_shape(&self) -> Vec<usize> {
        vec![1, self.window, self.features.len()]
    }

    /// The scalar condition input (`[1, 1]`, the Strategist's target return), when the model has one.
    pub fn condition(&self) -> Option<&InputSpec> {
        self.inputs.get(1)
    }

    /// The output called `name`: its index in the graph's outputs and its spec.
    pub fn output(&self, name: &str) -> Option<(usize, &OutputSpec)> {
        self.outputs
            .iter()
            .enumerate()
            .find(|(_, o)| o.name == name)
    }

    pub(crate) fn mismatch(&self, problem: Mismatch) -> ModelError {
        ModelError::Mismatch {
            path: self.path.clone(),
            problem,
        }
    }

    fn check_inner(&self, available: &[String]) -> Result<(), Mismatch> {
        let n = self.features.len();
        if n == 0 {
            return Err(Mismatch::NoFeatures);
        }
        if self.window == 0 {
            return Err(Mismatch::ZeroWindow);
        }
        let missing: Vec<String> = self
            .features
            .iter()
            .filter(|f| !available.contains(f))
            .cloned()
            .collect();
        if !missing.is_empty() {
            return Err(Mismatch::UnknownFeatures(missing));
        }
        for (i, f) in self.features.iter().enumerate() {
            if self.features[..i].contains(f) {
                return Err(Mismatch::DuplicateFeature(f.clone()));
            }
        }
        let norm = &self.normalization;
        for (field, got) in [("mean", norm.mean.len()), ("std", norm.std.len())] {
            if got != n {
                return Err(Mismatch::NormalizationLength {
                    field,
                    got,
                    want: n,
                });
            }
        }
        for ((feature, &mean), &std) in self.features.iter().zip(&norm.mean).zip(&norm.std) {
            // `!(std > 0.0)` also catches NaN.
            if !mean.is_finite() || !std.is_finite() || std <= 0.0 {
                return Err(Mismatch::BadNormalization {
                    feature: feature.clone(),
                    mean,
                    std,
                });
            }
        }
        let (input, condition) = match self.inputs.as_slice() {
            [input] => (input, None),
            [input, condition] => (input, Some(condition)),
            other => return Err(Mismatch::InputCount(other.len())),
        };
        let shapes = [(input, self.expected_input_shape())]
            .into_iter()
            .chain(condition.map(|c| (c, vec![1, 1])));
        for (spec, want) in shapes {
            if spec.shape != want {
                return Err(Mismatch::InputShape {
                    name: spec.name.clone(),
                    got: spec.shape.clone(),
                    want,
                });
            }
            if spec.dtype != "f32" {
                return Err(Mismatch::InputDtype {
                    name: spec.name.clone(),
                    dtype: spec.dtype.clone(),
                });
            }
        }
        if let Some(h) = &self.horizons {
            if h.is_empty() || h.contains(&0) || h.windows(2).any(|w| w[0] >= w[1]) {
                return Err(Mismatch::Horizons(h.clone()));
            }
        }
        if self.outputs.is_empty() {
            return Err(Mismatch::NoOutputs);
        }
        for out in &self.outputs {
            let last = out.shape.last().copied().unwrap_or(1);
            if let Some(names) = &out.names {
                if names.len() != last {
                    return Err(Mismatch::OutputNames {
                        name: out.name.clone(),
                        got: names.len(),
                        want: last,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Normalizes one bar for the model: `out[i] = (row[index[i]] − mean[i]) / std[i]` as `f32`, where
/// `row` is the engine's feature row (its column order), `index` maps each model feature to its
/// engine column ([`ModelMeta::feature_index`], built once at load) and `out` is one row of the
/// model's window (`features.len()` values). Returns whether every value is finite — features are
/// NaN until warm, and a window holding NaN must not be run.
///
/// Allocation-free; computed in `f64` and rounded once, as the exporter's reference does.
///
/// # Panics
/// When `index`, `out` and the metadata disagree in length or an index is outside `row`; all are
/// fixed at load, so this is a programming error.
pub fn normalize_row(meta: &ModelMeta, index: &[usize], row: &[f64], out: &mut [f32]) -> bool {
    assert_eq!(
        index.len(),
        out.len(),
        "normalize_row: index and out lengths differ"
    );
    let norm = &meta.normalization;
    let mut finite = true;
    for (((o, &col), &mean), &std) in out.iter_mut().zip(index).zip(&norm.mean).zip(&norm.std) {
        let v = ((row[col] - mean) / std) as f32;
        finite &= v.is_finite();
        *o = v;
    }
    finite
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meta() -> ModelMeta {
        serde_json::from_str(
            r#"{"name":"t","version":"1","features":["a","b"],"window":3,
                "normalization":{"mean":[1.0,0.0],"std":[2.0,0.5]},
                "inputs":[{"name":"x","shape":[1,3,2],"dtype":"f32"}],
                "outputs":[{"name":"y","shape":[1,2],"names":["lo","hi"]}],
                "trained_on":{"from":"2024-01-01","to":"2024-12-31"}}"#,
        )
        .unwrap()
    }

    fn engine() -> Vec<String> {
        ["z", "b", "a"].map(String::from).to_vec()
    }

    #[test]
    fn accepts_a_consistent_meta_and_maps_engine_order_to_model_order() {
        let m = meta();
        m.check(&engine()).unwrap();
        let index = m.feature_index(&engine()).unwrap();
        assert_eq!(index, [2, 1]);
        let mut out = [0.0_f32; 2];
        assert!(normalize_row(&m, &index, &[9.0, 1.0, 5.0], &mut out));
        assert_eq!(out, [2.0, 2.0]);
        assert!(!normalize_row(&m, &index, &[9.0, f64::NAN, 5.0], &mut out));
    }

    #[test]
    fn refuses_unknown_fields_and_each_inconsistency() {
        let text = r#"{"name":"t","version":"1","features":[],"window":3,"extra":1}"#;
        assert!(serde_json::from_str::<ModelMeta>(text).is_err());

        let problem = |edit: fn(&mut ModelMeta)| {
            let mut m = meta();
            edit(&mut m);
            match m.check(&engine()) {
                Err(ModelError::Mismatch { problem, .. }) => problem,
                other => panic!("expected a mismatch, got {other:?}"),
            }
        };
        assert!(matches!(
            problem(|m| m.features[1] = "q".into()),
            Mismatch::UnknownFeatures(v) if v == ["q"]
        ));
        assert!(matches!(
            problem(|m| m.features[1] = "a".into()),
            Mismatch::DuplicateFeature(_)
        ));
        assert!(matches!(
            problem(|m| m.normalization.std.push(1.0)),
            Mismatch::NormalizationLength { field: "std", .. }
        ));
        assert!(matches!(
            problem(|m| m.normalization.std[0] = 0.0),
            Mismatch::BadNormalization { .. }
        ));
        assert!(matches!(
            problem(|m| m.window = 4),
            Mismatch::InputShape { .. }
        ));
        assert!(matches!(
            problem(|m| m.inputs[0].dtype = "f16".into()),
            Mismatch::InputDtype { .. }
        ));
        let condition = |shape: Vec<usize>| InputSpec {
            name: "c".into(),
            shape,
            dtype: "f32".into(),
        };
        let mut m = meta();
        m.inputs.push(condition(vec![1, 1]));
        m.check(&engine()).unwrap();
        assert_eq!(m.condition().unwrap().name, "c");
        m.inputs[1] = condition(vec![1, 2]);
        assert!(m.check(&engine()).is_err());
        m.inputs[1] = condition(vec![1, 1]);
        m.inputs.push(condition(vec![1, 1]));
        assert!(m.check(&engine()).is_err());
        assert!(matches!(
            problem(|m| m.horizons = Some(vec![5, 1])),
            Mismatch::Horizons(_)
        ));
        assert!(matches!(
            problem(|m| m.horizons = Some(vec![])),
            Mismatch::Horizons(_)
        ));
        assert!(matches!(
            problem(|m| m.outputs[0].names = Some(vec!["x".into()])),
            Mismatch::OutputNames {
                got: 1,
                want: 2,
                ..
            }
        ));
    }
}
