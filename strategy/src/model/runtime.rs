//! [`Model`]: one ONNX graph loaded once with tract and run per bar; [`FeatureWindow`]: the rolling
//! window of normalized feature rows the inference thread fills and hands to [`Model::run`].
//!
//! Load is the cold path (parse, fix shapes, optimize, plan: milliseconds). A run reuses the tract
//! state spawned at load, the input tensor and the output buffers; see [`Model::run`] for what is
//! still allocated per run.

use std::path::Path;
use std::sync::Arc;

use tract_onnx::prelude::*;

use super::meta::{normalize_row, ModelMeta};
use super::{Mismatch, ModelError};

/// A loaded, optimized model with its metadata and a reusable run state.
pub struct Model {
    meta: ModelMeta,
    /// Engine column of each model feature, in the model's feature order.
    feature_index: Vec<usize>,
    state: TypedSimpleState,
    /// The input tensor, reused across runs while tract hands it back (see [`Model::run`]).
    input: Arc<Tensor>,
    /// The condition tensor `[1, 1]` of a model with a second input (see [`Model::run_conditioned`]).
    condition: Option<Arc<Tensor>>,
    /// One buffer per output, in the graph's (and the metadata's) order.
    outputs: Vec<Vec<f32>>,
}

impl std::fmt::Debug for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Model")
            .field("name", &self.meta.name)
            .field("version", &self.meta.version)
            .field("path", &self.meta.path)
            .finish_non_exhaustive()
    }
}

impl Model {
    /// Loads `onnx_path` described by `meta_path`, checked against the engine's feature columns
    /// `available_features` (the order of the rows later given to [`Model::normalize_row`]).
    ///
    /// Refuses, naming the file and the problem: an unreadable file, metadata that is not valid
    /// (unknown fields included) or does not fit the engine ([`ModelMeta::check`]), an ONNX graph
    /// tract cannot load, and a graph whose input/output names or shapes differ from the metadata.
    pub fn load(
        onnx_path: impl AsRef<Path>,
        meta_path: impl AsRef<Path>,
        available_features: &[String],
    ) -> Result<Model, ModelError> {
        let onnx_path = onnx_path.as_ref();
        let meta = ModelMeta::load(meta_path)?;
        meta.check(available_features)?;
        let feature_index = meta.feature_index(available_features)?;
        let input_shape = meta.expected_input_shape();

        let tract_err = |e: TractError| ModelError::Onnx {
            path: onnx_path.to_path_buf(),
            message: format!("{e:#}"),
        };
        if let Err(source) = std::fs::metadata(onnx_path) {
            return Err(ModelError::Io {
                path: onnx_path.to_path_buf(),
                source,
            });
        }
        let graph = onnx().model_for_path(onnx_path).map_err(tract_err)?;
        check_graph_signature(&meta, &graph)?;
        let mut graph = graph
            .with_input_fact(0, f32::fact(&input_shape).into())
            .map_err(tract_err)?;
        if meta.condition().is_some() {
            graph = graph
                .with_input_fact(1, f32::fact([1, 1]).into())
                .map_err(tract_err)?;
        }
        // Runs are independent windows, never a stream: recurrent ops (an LSTM becomes a Scan) must
        // start from their initial state on every run instead of carrying the last run's hidden
        // state into the next — which would make a bar's outputs depend on the bars run before.
        let mut typed = graph
            .into_typed()
            .and_then(|g| g.into_decluttered())
            .map_err(tract_err)?;
        reset_recurrent_state_every_run(&mut typed);
        let optimized = typed.into_optimized().map_err(tract_err)?;
        check_graph_output_shapes(&meta, &optimized)?;
        let runnable = optimized.into_runnable().map_err(tract_err)?;
        let state = runnable.spawn().map_err(tract_err)?;

        let input = Tensor::zero::<f32>(&input_shape).map_err(tract_err)?;
        let condition = match meta.condition() {
            Some(_) => Some(Arc::new(Tensor::zero::<f32>(&[1, 1]).map_err(tract_err)?)),
            None => None,
        };
        let outputs = meta
            .outputs
            .iter()
            .map(|o| vec![0.0; o.shape.iter().product()])
            .collect();
        Ok(Model {
            meta,
            feature_index,
            state,
            input: Arc::new(input),
            condition,
            outputs,
        })
    }

    pub fn meta(&self) -> &ModelMeta {
        &self.meta
    }

    /// Engine column of each model feature (built at load).
    pub fn feature_index(&self) -> &[usize] {
        &self.feature_index
    }

    /// Values per window: `window × features`.
    pub fn input_len(&self) -> usize {
        self.meta.window * self.meta.features.len()
    }

    /// Normalizes the engine's feature row (`available_features` order, as given to
    /// [`Model::load`]) into one model row `out` (`features.len()` values, model order). Returns
    /// whether every value is finite. See [`normalize_row`].
    pub fn normalize_row(&self, engine_row: &[f64], out: &mut [f32]) -> bool {
        normalize_row(&self.meta, &self.feature_index, engine_row, out)
    }

    /// Runs the model on one window: `window × features` values, row-major, oldest bar first, each
    /// row normalized in the model's feature order (e.g. [`FeatureWindow::as_slice`]). Returns one
    /// slice per output, in the metadata's order, each `shape.iter().product()` values, valid until
    /// the next run.
    ///
    /// Allocation: the window is copied into an input tensor kept across runs, and the outputs into
    /// buffers kept across runs. What remains per run is tract's: the output tensor of each
    /// evaluated node of the plan (a few small `Vec`s for these graph sizes) and its per-run value
    /// table; the plan, the weights (packed at optimization) and the op states are reused.
    pub fn run(&mut self, window: &[f32]) -> Result<&[Vec<f32>], ModelError> {
        if let Some(c) = self.meta.condition() {
            return Err(self.run_error(format!(
                "the model has a condition input `{}`; use run_conditioned",
                c.name
            )));
        }
        self.run_inner(window, None)
    }

    /// Runs a model with a condition input (the Strategist: the window and the target return, a
    /// `[1, 1]` value). Same contract as [`Model::run`] otherwise.
    pub fn run_conditioned(
        &mut self,
        window: &[f32],
        condition: &[f32],
    ) -> Result<&[Vec<f32>], ModelError> {
        if self.meta.condition().is_none() {
            return Err(self.run_error("the model has no condition input; use run".into()));
        }
        if condition.len() != 1 {
            return Err(self.run_error(format!(
                "condition has {} values; expected 1",
                condition.len()
            )));
        }
        self.run_inner(window, Some(condition))
    }

    fn run_inner(
        &mut self,
        window: &[f32],
        condition: Option<&[f32]>,
    ) -> Result<&[Vec<f32>], ModelError> {
        let want = self.input_len();
        if window.len() != want {
            return Err(self.run_error(format!(
                "window has {} values; expected window × features = {} × {} = {want}",
                window.len(),
                self.meta.window,
                self.meta.features.len()
            )));
        }
        // tract drops its reference to the input during the run, so the tensor is ours again
        // afterwards; if a graph ever keeps it (an input wired straight to an output), a fresh one
        // is made for that run.
        if Arc::get_mut(&mut self.input).is_none() {
            let fresh = Tensor::zero::<f32>(&self.meta.expected_input_shape())
                .map_err(|e| self.run_error(format!("{e:#}")))?;
            self.input = Arc::new(fresh);
        }
        if let Some(tensor) = Arc::get_mut(&mut self.input) {
            let mut view =
                tensor
                    .to_plain_array_view_mut::<f32>()
                    .map_err(|e| ModelError::Run {
                        model: self.meta.name.clone(),
                        problem: format!("{e:#}"),
                    })?;
            for (dst, src) in view.iter_mut().zip(window) {
                *dst = *src;
            }
        }
        let mut inputs = tvec!(TValue::from_const(Arc::clone(&self.input)));
        if let (Some(slot), Some(value)) = (self.condition.as_mut(), condition) {
            if Arc::get_mut(slot).is_none() {
                *slot = Arc::new(Tensor::zero::<f32>(&[1, 1]).map_err(|e| ModelError::Run {
                    model: self.meta.name.clone(),
                    problem: format!("{e:#}"),
                })?);
            }
            if let Some(t) = Arc::get_mut(slot) {
                if let Ok(mut v) = t.to_plain_array_view_mut::<f32>() {
                    v.iter_mut().for_each(|d| *d = value[0]);
                }
            }
            inputs.push(TValue::from_const(Arc::clone(slot)));
        }
        let results = self
            .state
            .run(inputs)
            .map_err(|e| self.run_error(format!("tract run failed: {e:#}")))?;
        if results.len() != self.outputs.len() {
            return Err(self.run_error(format!(
                "graph returned {} outputs; metadata lists {}",
                results.len(),
                self.outputs.len()
            )));
        }
        for ((value, buf), spec) in results
            .iter()
            .zip(&mut self.outputs)
            .zip(&self.meta.outputs)
        {
            let view = value
                .to_plain_array_view::<f32>()
                .map_err(|e| ModelError::Run {
                    model: self.meta.name.clone(),
                    problem: format!("output `{}` is not f32: {e:#}", spec.name),
                })?;
            if view.len() != buf.len() {
                return Err(ModelError::Run {
                    model: self.meta.name.clone(),
                    problem: format!(
                        "output `{}` has {} values; metadata shape {:?} has {}",
                        spec.name,
                        view.len(),
                        spec.shape,
                        buf.len()
                    ),
                });
            }
            for (dst, src) in buf.iter_mut().zip(view.iter()) {
                *dst = *src;
            }
        }
        Ok(&self.outputs)
    }

    fn run_error(&self, problem: String) -> ModelError {
        ModelError::Run {
            model: format!("{} ({})", self.meta.name, self.meta.path.display()),
            problem,
        }
    }
}

/// Sets `reset_every_turn` on every `Scan` (recurrent loops: LSTM, GRU and RNN imports), in nested
/// bodies too, so each run starts from the initial state.
fn reset_recurrent_state_every_run(model: &mut TypedModel) {
    use tract_onnx::tract_core::ops::scan::Scan;
    for node in model.nodes_mut() {
        if let Some(scan) = node.op_as_mut::<Scan>() {
            scan.reset_every_turn = true;
            reset_recurrent_state_every_run(&mut scan.body);
        }
    }
}

/// The graph's one input and its outputs must carry the metadata's names, in the metadata's order,
/// and a concrete declared input shape must be the metadata's.
fn check_graph_signature(meta: &ModelMeta, graph: &InferenceModel) -> Result<(), ModelError> {
    let names = |outlets: TractResult<&[OutletId]>| -> Vec<String> {
        outlets
            .map(|outlets| {
                outlets
                    .iter()
                    .map(|&o| {
                        graph
                            .outlet_label(o)
                            .unwrap_or(&graph.node(o.node).name)
                            .to_string()
                    })
                    .collect()
            })
            .unwrap_or_default()
    };
    let graph_inputs = names(graph.input_outlets());
    let meta_inputs: Vec<String> = meta.inputs.iter().map(|i| i.name.clone()).collect();
    if graph_inputs != meta_inputs {
        return Err(meta.mismatch(Mismatch::Graph {
            what: "inputs differ",
            meta: format!("{meta_inputs:?}"),
            graph: format!("{graph_inputs:?}"),
        }));
    }
    // A graph that declares a concrete input shape must declare the metadata's; an open one (a
    // symbolic batch or window) takes the metadata's shape at load.
    let declared = graph
        .input_fact(0)
        .ok()
        .and_then(|f| f.shape.as_concrete_finite().ok().flatten());
    if let Some(declared) = declared {
        let want = meta.expected_input_shape();
        if declared.as_slice() != want.as_slice() {
            return Err(meta.mismatch(Mismatch::Graph {
                what: "input shape differs",
                meta: format!("`{}` {want:?}", meta_inputs[0]),
                graph: format!("{:?}", declared.as_slice()),
            }));
        }
    }
    let graph_outputs = names(graph.output_outlets());
    let meta_outputs: Vec<String> = meta.outputs.iter().map(|o| o.name.clone()).collect();
    if graph_outputs != meta_outputs {
        return Err(meta.mismatch(Mismatch::Graph {
            what: "outputs differ",
            meta: format!("{meta_outputs:?}"),
            graph: format!("{graph_outputs:?}"),
        }));
    }
    Ok(())
}

/// With the input shape fixed, every output shape must be concrete and equal to the metadata's.
fn check_graph_output_shapes(meta: &ModelMeta, model: &TypedModel) -> Result<(), ModelError> {
    let outlets = model.output_outlets().map_err(|e| ModelError::Onnx {
        path: meta.path.clone(),
        message: format!("{e:#}"),
    })?;
    for (&outlet, spec) in outlets.iter().zip(&meta.outputs) {
        let shape = model
            .outlet_fact(outlet)
            .ok()
            .and_then(|f| f.shape.as_concrete().map(|s| s.to_vec()));
        if shape.as_deref() != Some(spec.shape.as_slice()) {
            return Err(meta.mismatch(Mismatch::Graph {
                what: "output shape differs",
                meta: format!("`{}` {:?}", spec.name, spec.shape),
                graph: match shape {
                    Some(s) => format!("{s:?}"),
                    None => "a symbolic shape".into(),
                },
            }));
        }
    }
    Ok(())
}

/// The last `window` normalized feature rows (`window × features` `f32`), rolled one row per bar.
///
/// Each row is written twice, at its slot and at slot + `window`, so the rows oldest-first are
/// always one contiguous slice ([`FeatureWindow::as_slice`]) with no copy on read — the inference
/// thread pushes and runs with no allocation after [`FeatureWindow::new`].
#[derive(Debug, Clone)]
pub struct FeatureWindow {
    rows: usize,
    width: usize,
    /// `2 × rows × width`: the ring and its mirror.
    buf: Vec<f32>,
    /// Slot the next row goes to; also the oldest row once full.
    next: usize,
    filled: usize,
}

impl FeatureWindow {
    /// A window of `rows` bars of `width` features.
    ///
    /// # Panics
    /// When `rows` or `width` is 0.
    pub fn new(rows: usize, width: usize) -> FeatureWindow {
        assert!(
            rows > 0 && width > 0,
            "FeatureWindow needs rows and width > 0"
        );
        FeatureWindow {
            rows,
            width,
            buf: vec![0.0; 2 * rows * width],
            next: 0,
            filled: 0,
        }
    }

    /// Appends one bar: `fill` writes the new row (`width` values) in place, e.g. with
    /// [`Model::normalize_row`]; its result is returned. The oldest row drops out once full.
    pub fn push_with<R>(&mut self, fill: impl FnOnce(&mut [f32]) -> R) -> R {
        let start = self.next * self.width;
        let result = fill(&mut self.buf[start..start + self.width]);
        let mirror = (self.next + self.rows) * self.width;
        self.buf.copy_within(start..start + self.width, mirror);
        self.next = (self.next + 1) % self.rows;
        self.filled = (self.filled + 1).min(self.rows);
        result
    }

    /// Rewrites the newest row in place (`fill` as in [`FeatureWindow::push_with`]): a run between
    /// bars refreshes the columns that change per event. With no row yet it pushes one.
    pub fn rewrite_newest<R>(&mut self, fill: impl FnOnce(&mut [f32]) -> R) -> R {
        if self.filled == 0 {
            return self.push_with(fill);
        }
        let newest = (self.next + self.rows - 1) % self.rows;
        let start = newest * self.width;
        let result = fill(&mut self.buf[start..start + self.width]);
        let mirror = (newest + self.rows) * self.width;
        self.buf.copy_within(start..start + self.width, mirror);
        result
    }

    /// Appends one bar copied from `row` (`width` values).
    ///
    /// # Panics
    /// When `row.len() != width`.
    pub fn push(&mut self, row: &[f32]) {
        self.push_with(|dst| dst.copy_from_slice(row));
    }

    /// The rows oldest first, `rows × width` values, once `rows` bars have been pushed.
    pub fn as_slice(&self) -> Option<&[f32]> {
        self.is_full()
            .then(|| &self.buf[self.next * self.width..(self.next + self.rows) * self.width])
    }

    pub fn is_full(&self) -> bool {
        self.filled == self.rows
    }

    /// Bars pushed since the start or the last [`FeatureWindow::clear`], up to `rows`.
    pub fn len(&self) -> usize {
        self.filled
    }

    pub fn is_empty(&self) -> bool {
        self.filled == 0
    }

    /// Forgets every row (after a gap in the data, say): the window fills again from empty.
    pub fn clear(&mut self) {
        self.next = 0;
        self.filled = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_rolls_oldest_first_without_copy_on_read() {
        let mut w = FeatureWindow::new(3, 2);
        assert!(w.as_slice().is_none());
        for bar in 0..3 {
            w.push(&[bar as f32, 10.0 + bar as f32]);
        }
        assert_eq!(w.as_slice().unwrap(), [0.0, 10.0, 1.0, 11.0, 2.0, 12.0]);
        for bar in 3..8 {
            w.push(&[bar as f32, 10.0 + bar as f32]);
            let b = bar as f32;
            let want = [b - 2.0, b + 8.0, b - 1.0, b + 9.0, b, b + 10.0];
            assert_eq!(w.as_slice().unwrap(), want, "after bar {bar}");
        }
        w.rewrite_newest(|row| row.copy_from_slice(&[70.0, 80.0]));
        assert_eq!(w.as_slice().unwrap(), [5.0, 15.0, 6.0, 16.0, 70.0, 80.0]);
        w.push(&[8.0, 18.0]);
        assert_eq!(w.as_slice().unwrap(), [6.0, 16.0, 70.0, 80.0, 8.0, 18.0]);
        w.clear();
        assert!(w.is_empty() && w.as_slice().is_none());
    }
}
