"""Tiny ONNX models, their metadata and reference outputs, for the Rust model runtime's tests.

Usage (from the repository root)::

    tools/train/.venv/bin/python tools/train/qalpha_train/make_test_models.py [OUT_DIR]

``OUT_DIR`` defaults to ``strategy/tests/models``. For each of ``guardian``, ``oracle`` and
``strategist`` it writes:

- ``{name}.onnx``: a graph built with ``onnx.helper`` (no torch), opset 18, one input ``window`` of
  shape ``[1, W, F]`` (W = 16 bars, F = 8 features, oldest bar first) and fixed random weights
  (seeded, so reruns write the same files):

  - guardian: Flatten → Gemm → Softmax → ``regime_probs`` ``[1, 3]`` (probabilities that sum to 1);
  - oracle: Flatten → Gemm → (first column as is, Softplus of the others) → MatMul with an
    upper-triangular ones matrix (a cumulative sum) → ``quantiles`` ``[1, 3]``, non-decreasing by
    construction (q10 ≤ q50 ≤ q90);
  - strategist: Flatten → Gemm → Relu → Gemm → ``action_logits`` ``[1, 3]``.

- ``{name}.json``: the metadata ``qalpha_strategy::model::ModelMeta`` reads (feature names in input
  order, normalization, window, input/output names and shapes, version, training range).
- ``{name}.reference.json``: a few raw feature windows (model feature order, before normalization),
  the normalized f32 model inputs, and the outputs ``onnx.reference.ReferenceEvaluator`` computes.

These stand in for trained models until the research pipeline (issue 8) ships real ones; the feature
names are real columns of ``qalpha_strategy::features::standard::standard()``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

WINDOW = 16
SEED = 20260601
OPSET = 18
VERSION = "0.0.1-test"
TRAINED_ON = {"from": "synthetic", "to": "synthetic"}

# Real columns of the engine's standard feature set, with a plausible scale for each (mean, std) so
# the normalization does something visible.
FEATURES: List[Tuple[str, float, float]] = [
    ("rsi_14", 50.0, 15.0),
    ("macd", 0.0, 25.0),
    ("macd_hist", 0.0, 8.0),
    ("bb_pctb_20", 0.5, 0.35),
    ("atr_14", 120.0, 60.0),
    ("natr_14", 0.25, 0.12),
    ("ret_1", 0.0, 0.002),
    ("rvol_20", 0.002, 0.001),
]
N_FEATURES = len(FEATURES)
N_REFERENCE = 4

INPUT_NAME = "window"
INPUT_SHAPE = [1, WINDOW, N_FEATURES]


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def _graph(
    name: str, nodes: List[onnx.NodeProto], inits: List[onnx.TensorProto], output: str
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        f"qalpha_test_{name}",
        [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, INPUT_SHAPE)],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, [1, 3])],
        initializer=inits,
    )
    model = helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", OPSET)],
        producer_name="qalpha_train.make_test_models",
    )
    # IR version 8 is what every opset-18 runtime reads; newer onnx defaults to a newer IR.
    model.ir_version = 8
    onnx.checker.check_model(model, full_check=True)
    return model


def _flatten_gemm(rng: np.random.Generator, prefix: str, n_out: int) -> Tuple[list, list]:
    n_in = WINDOW * N_FEATURES
    w = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_in, n_out))
    b = rng.normal(0.0, 0.1, size=(n_out,))
    nodes = [
        helper.make_node("Flatten", [INPUT_NAME], ["flat"], axis=1),
        helper.make_node("Gemm", ["flat", f"{prefix}_w", f"{prefix}_b"], [f"{prefix}_out"]),
    ]
    return nodes, [_init(f"{prefix}_w", w), _init(f"{prefix}_b", b)]


def guardian(rng: np.random.Generator) -> Tuple[onnx.ModelProto, dict]:
    nodes, inits = _flatten_gemm(rng, "fc", 3)
    nodes.append(helper.make_node("Softmax", ["fc_out"], ["regime_probs"], axis=-1))
    out = {"name": "regime_probs", "shape": [1, 3], "names": ["trend", "range", "shock"]}
    return _graph("guardian", nodes, inits, "regime_probs"), out


def oracle(rng: np.random.Generator) -> Tuple[onnx.ModelProto, dict]:
    nodes, inits = _flatten_gemm(rng, "fc", 3)
    # q10 = raw0, q50 = q10 + softplus(raw1), q90 = q50 + softplus(raw2): monotone by construction.
    keep = np.array([[1.0, 0.0, 0.0]])
    gaps = np.array([[0.0, 1.0, 1.0]])
    cumsum = np.triu(np.ones((3, 3)))
    inits += [_init("keep", keep), _init("gaps", gaps), _init("cumsum", cumsum)]
    nodes += [
        helper.make_node("Softplus", ["fc_out"], ["sp"]),
        helper.make_node("Mul", ["fc_out", "keep"], ["first"]),
        helper.make_node("Mul", ["sp", "gaps"], ["steps"]),
        helper.make_node("Add", ["first", "steps"], ["increments"]),
        helper.make_node("MatMul", ["increments", "cumsum"], ["quantiles"]),
    ]
    out = {"name": "quantiles", "shape": [1, 3], "names": ["q10", "q50", "q90"]}
    return _graph("oracle", nodes, inits, "quantiles"), out


def strategist(rng: np.random.Generator) -> Tuple[onnx.ModelProto, dict]:
    nodes, inits = _flatten_gemm(rng, "fc1", 16)
    w2 = rng.normal(0.0, 0.25, size=(16, 3))
    b2 = rng.normal(0.0, 0.1, size=(3,))
    inits += [_init("fc2_w", w2), _init("fc2_b", b2)]
    nodes += [
        helper.make_node("Relu", ["fc1_out"], ["hidden"]),
        helper.make_node("Gemm", ["hidden", "fc2_w", "fc2_b"], ["action_logits"]),
    ]
    out = {"name": "action_logits", "shape": [1, 3], "names": ["flat", "long", "short"]}
    return _graph("strategist", nodes, inits, "action_logits"), out


def metadata(name: str, output: dict) -> dict:
    return {
        "name": name,
        "version": VERSION,
        "features": [f for f, _, _ in FEATURES],
        "window": WINDOW,
        "normalization": {
            "mean": [m for _, m, _ in FEATURES],
            "std": [s for _, _, s in FEATURES],
        },
        "inputs": [{"name": INPUT_NAME, "shape": INPUT_SHAPE, "dtype": "f32"}],
        "outputs": [output],
        "trained_on": TRAINED_ON,
    }


def raw_windows(rng: np.random.Generator) -> np.ndarray:
    """`N_REFERENCE` raw windows `[W, F]` (f64, model feature order) around each feature's scale."""
    mean = np.array([m for _, m, _ in FEATURES])
    std = np.array([s for _, _, s in FEATURES])
    return mean + std * rng.normal(0.0, 1.2, size=(N_REFERENCE, WINDOW, N_FEATURES))


def reference(model: onnx.ModelProto, meta: dict, raw: np.ndarray) -> dict:
    mean = np.array(meta["normalization"]["mean"])
    std = np.array(meta["normalization"]["std"])
    # Normalized in f64, then rounded to f32: what `normalize_row` in the Rust runtime does.
    inputs = ((raw - mean) / std).astype(np.float32)
    session = ReferenceEvaluator(model)
    out_name = meta["outputs"][0]["name"]
    cases = []
    for r, x in zip(raw, inputs):
        (y,) = session.run(None, {INPUT_NAME: x[None, :, :]})
        cases.append(
            {
                "raw": r.tolist(),
                "input": x.astype(np.float64).ravel().tolist(),
                "outputs": {out_name: y.astype(np.float64).ravel().tolist()},
            }
        )
    return {
        "model": meta["name"],
        "evaluator": f"onnx.reference.ReferenceEvaluator (onnx {onnx.__version__})",
        "cases": cases,
    }


def main(argv: List[str]) -> int:
    out_dir = Path(argv[1]) if len(argv) > 1 else Path("strategy/tests/models")
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(SEED)
    builders = {"guardian": guardian, "oracle": oracle, "strategist": strategist}
    for name, build in builders.items():
        model, output = build(rng)
        meta = metadata(name, output)
        ref = reference(model, meta, raw_windows(rng))
        onnx.save(model, out_dir / f"{name}.onnx")
        files: Dict[str, dict] = {f"{name}.json": meta, f"{name}.reference.json": ref}
        for file, doc in files.items():
            (out_dir / file).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out_dir / name}.{{onnx,json,reference.json}}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
