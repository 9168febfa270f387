//! The model runtime: ONNX models run with `tract-onnx`, each described by a metadata JSON.
//!
//! A model ships as two files: `{name}.onnx` and `{name}.json` ([`ModelMeta`]: the feature names
//! in input order, their normalization, the window length, the input/output names and shapes, the
//! version and the training data range). [`Model::load`] reads both, checks the metadata against the
//! engine's feature set and against the ONNX graph, and refuses any mismatch with a
//! [`ModelError`] that names the file and the problem — a model trained on other columns must never
//! run on this engine's numbers.
//!
//! Loading is the cold path: the graph is parsed, given fixed input shapes, optimized and turned
//! into a runnable plan once, and one tract state is kept for every later run. Per bar, the
//! inference thread normalizes the engine's feature row into a [`FeatureWindow`]
//! ([`Model::normalize_row`], which maps the engine's column order to the model's through an index
//! built at load) and calls [`Model::run`] on the window. What a run allocates is documented on
//! [`Model::run`].
//!
//! ```no_run
//! use qalpha_strategy::features::standard::standard;
//! use qalpha_strategy::model::{FeatureWindow, Model};
//!
//! let set = standard();
//! let mut model = Model::load("guardian.onnx", "guardian.json", set.names())?;
//! let (w, f) = (model.meta().window, model.meta().features.len());
//! let mut window = FeatureWindow::new(w, f);
//! let engine_row = vec![0.0_f64; set.len()]; // filled by the feature set per bar
//! let finite = window.push_with(|row| model.normalize_row(&engine_row, row));
//! if finite {
//!     if let Some(input) = window.as_slice() {
//!         let outputs = model.run(input)?;
//!         println!("regime probabilities: {:?}", outputs[0]);
//!     }
//! }
//! # Ok::<(), qalpha_strategy::model::ModelError>(())
//! ```

mod meta;
mod runtime;

pub use meta::{normalize_row, InputSpec, ModelMeta, Normalization, OutputSpec, TrainedOn};
pub use runtime::{FeatureWindow, Model};

use std::path::PathBuf;

/// Why a model could not be loaded or run. Every variant names the file (or model) concerned.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("cannot read model file {}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("model metadata {} is not valid metadata JSON: {source} (see qalpha_strategy::model::ModelMeta for the fields)", path.display())]
    MetaFormat {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("model metadata {} does not fit: {problem}", path.display())]
    Mismatch { path: PathBuf, problem: Mismatch },
    #[error("tract could not load {}: {message}", path.display())]
    Onnx { path: PathBuf, message: String },
    #[error("model {model}: {problem}")]
    Run { model: String, problem: String },
}

/// What is wrong between a model's metadata, the engine's feature set and the ONNX graph.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Mismatch {
    #[error("features not in the engine's feature set: {}; retrain on the engine's columns or add these features to the set", .0.join(", "))]
    UnknownFeatures(Vec<String>),
    #[error("feature `{0}` is listed twice")]
    DuplicateFeature(String),
    #[error("`features` is empty")]
    NoFeatures,
    #[error("`window` is 0")]
    ZeroWindow,
    #[error("`normalization.{field}` has {got} values for {want} features (one per feature, in feature order)")]
    NormalizationLength {
        field: &'static str,
        got: usize,
        want: usize,
    },
    #[error("`normalization` for feature `{feature}` is mean {mean}, std {std}; the mean must be finite and the std finite and > 0")]
    BadNormalization {
        feature: String,
        mean: f64,
        std: f64,
    },
    #[error("`inputs` lists {0} inputs; the runtime feeds the feature window and at most one scalar condition")]
    InputCount(usize),
    #[error("`horizons` {0:?} must be non-empty, positive and increasing (bars ahead)")]
    Horizons(Vec<u32>),
    #[error("input `{name}` has shape {got:?}; expected {want:?} ([1, window, features] for the window, [1, 1] for a condition)")]
    InputShape {
        name: String,
        got: Vec<usize>,
        want: Vec<usize>,
    },
    #[error("input `{name}` has dtype `{dtype}`; only `f32` is supported")]
    InputDtype { name: String, dtype: String },
    #[error("`outputs` is empty")]
    NoOutputs,
    #[error("output `{name}` lists {got} names for a last dimension of {want}")]
    OutputNames {
        name: String,
        got: usize,
        want: usize,
    },
    #[error("the ONNX graph {what}: metadata says {meta}, graph has {graph}")]
    Graph {
        what: &'static str,
        meta: String,
        graph: String,
    },
}
