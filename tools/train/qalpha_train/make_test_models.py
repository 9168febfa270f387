"""Tiny ONNX models, their metadata and reference outputs, for the Rust model runtime's tests.

Usage (from the repository root)::

    tools/train/.venv/bin/python tools/train/qalpha_train/make_test_models.py [OUT_DIR]

``OUT_DIR`` defaults to ``strategy/tests/models``. For each of ``guardian``, ``oracle`` and
``strategist`` it writes:

- ``{name}.onnx``: a graph built with ``onnx.helper`` (no torch), opset 18, one input ``window`` of
  shape ``[1, W, F]`` (W = 16 bars, F = 8 features, oldest bar first) and fixed random weights
  (seeded, so reruns write the same files):

  - guardian: Flatten → Gemm → Softmax → ``regime_probs`` ``[1, 3]`` (probabilities that sum to 1),
    and Flatten → Gemm → Sigmoid → ``change_score`` ``[1, 1]`` (in (0, 1));
  - oracle: Flatten → Gemm (9) → Reshape ``[1, 3, 3]`` (horizons × quantiles) → (first column as
    is, Softplus of the others) → MatMul with an upper-triangular ones matrix (a cumulative sum) →
    ``quantiles`` ``[1, 3, 3]``, non-decreasing along the last axis by construction
    (q10 ≤ q50 ≤ q90 at each horizon; horizons 1, 5 and 15 bars in the metadata);
  - strategist: a second input ``target_return`` ``[1, 1]`` (the return-to-go the Decision
    Transformer is conditioned on), Flatten(window) ‖ 100 × target_return → Gemm → Relu → Gemm →
    ``action_logits`` ``[1, 3]``.

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
CONDITION_NAME = "target_return"
# Target returns the strategist's reference cases are conditioned on.
CONDITIONS = [0.0, 0.002, -0.002, 0.01]
INPUT_SHAPE = [1, WINDOW, N_FEATURES]


def _init(name: str, array: np.ndarray) -> onnx.TensorProto:
    return numpy_helper.from_array(array.astype(np.float32), name)


def _graph(
    name: str,
    nodes: List[onnx.NodeProto],
    inits: List[onnx.TensorProto],
    outputs: List[dict],
    condition: bool = False,
) -> onnx.ModelProto:
    inputs = [helper.make_tensor_value_info(INPUT_NAME, TensorProto.FLOAT, INPUT_SHAPE)]
    if condition:
        inputs.append(helper.make_tensor_value_info(CONDITION_NAME, TensorProto.FLOAT, [1, 1]))
    graph = helper.make_graph(
        nodes,
        f"qalpha_test_{name}",
        inputs,
        [helper.make_tensor_value_info(o["name"], TensorProto.FLOAT, o["shape"]) for o in outputs],
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
    n_in = WINDOW * N_FEATURES
    wc = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_in, 1))
    bc = rng.normal(0.0, 0.1, size=(1,))
    inits += [_init("change_w", wc), _init("change_b", bc)]
    nodes += [
        helper.make_node("Softmax", ["fc_out"], ["regime_probs"], axis=-1),
        helper.make_node("Gemm", ["flat", "change_w", "change_b"], ["change_logit"]),
        helper.make_node("Sigmoid", ["change_logit"], ["change_score"]),
    ]
    outs = [
        {"name": "regime_probs", "shape": [1, 3], "names": ["trend", "range", "shock"]},
        {"name": "change_score", "shape": [1, 1]},
    ]
    return _graph("guardian", nodes, inits, outs), {"outputs": outs}


def oracle(rng: np.random.Generator) -> Tuple[onnx.ModelProto, dict]:
    nodes, inits = _flatten_gemm(rng, "fc", 9)
    # Per horizon: q10 = raw0, q50 = q10 + softplus(raw1), q90 = q50 + softplus(raw2): monotone by
    # construction. Scaled to returns of a few basis points.
    keep = np.array([[1.0, 0.0, 0.0]])
    gaps = np.array([[0.0, 1.0, 1.0]])
    cumsum = np.triu(np.ones((3, 3))) * 0.002
    shape = np.array([1, 3, 3], dtype=np.int64)
    inits += [
        _init("keep", keep),
        _init("gaps", gaps),
        _init("cumsum", cumsum),
        numpy_helper.from_array(shape, "shape"),
    ]
    nodes += [
        helper.make_node("Reshape", ["fc_out", "shape"], ["raw"]),
        helper.make_node("Softplus", ["raw"], ["sp"]),
        helper.make_node("Mul", ["raw", "keep"], ["first"]),
        helper.make_node("Mul", ["sp", "gaps"], ["steps"]),
        helper.make_node("Add", ["first", "steps"], ["increments"]),
        helper.make_node("MatMul", ["increments", "cumsum"], ["quantiles"]),
    ]
    outs = [{"name": "quantiles", "shape": [1, 3, 3], "names": ["q10", "q50", "q90"]}]
    return _graph("oracle", nodes, inits, outs), {"outputs": outs, "horizons": [1, 5, 15]}


def strategist(rng: np.random.Generator) -> Tuple[onnx.ModelProto, dict]:
    n_in = WINDOW * N_FEATURES
    w1 = rng.normal(0.0, 1.0 / np.sqrt(n_in), size=(n_in + 1, 16))
    b1 = rng.normal(0.0, 0.1, size=(16,))
    w2 = rng.normal(0.0, 0.25, size=(16, 3))
    b2 = rng.normal(0.0, 0.1, size=(3,))
    inits = [
        _init("fc1_w", w1),
        _init("fc1_b", b1),
        _init("fc2_w", w2),
        _init("fc2_b", b2),
        _init("rtg_scale", np.array([[100.0]])),
    ]
    nodes = [
        helper.make_node("Flatten", [INPUT_NAME], ["flat"], axis=1),
        helper.make_node("Mul", [CONDITION_NAME, "rtg_scale"], ["rtg"]),
        helper.make_node("Concat", ["flat", "rtg"], ["state"], axis=1),
        helper.make_node("Gemm", ["state", "fc1_w", "fc1_b"], ["fc1_out"]),
        helper.make_node("Relu", ["fc1_out"], ["hidden"]),
        helper.make_node("Gemm", ["hidden", "fc2_w", "fc2_b"], ["action_logits"]),
    ]
    outs = [{"name": "action_logits", "shape": [1, 3], "names": ["flat", "long", "short"]}]
    graph = _graph("strategist", nodes, inits, outs, condition=True)
    return graph, {"outputs": outs, "condition": True}


def metadata(name: str, spec: dict) -> dict:
    inputs = [{"name": INPUT_NAME, "shape": INPUT_SHAPE, "dtype": "f32"}]
    if spec.get("condition"):
        inputs.append({"name": CONDITION_NAME, "shape": [1, 1], "dtype": "f32"})
    meta = {
        "name": name,
        "version": VERSION,
        "features": [f for f, _, _ in FEATURES],
        "window": WINDOW,
        "normalization": {
            "mean": [m for _, m, _ in FEATURES],
            "std": [s for _, _, s in FEATURES],
        },
        "inputs": inputs,
        "outputs": spec["outputs"],
        "trained_on": TRAINED_ON,
    }
    if "horizons" in spec:
        meta["horizons"] = spec["horizons"]
    return meta


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
    names = [o["name"] for o in meta["outputs"]]
    conditioned = len(meta["inputs"]) > 1
    cases = []
    for i, (r, x) in enumerate(zip(raw, inputs)):
        feeds = {INPUT_NAME: x[None, :, :]}
        case = {"raw": r.tolist(), "input": x.astype(np.float64).ravel().tolist()}
        if conditioned:
            target = np.float32(CONDITIONS[i % len(CONDITIONS)])
            feeds[CONDITION_NAME] = np.array([[target]], dtype=np.float32)
            case["condition"] = float(target)
        ys = session.run(None, feeds)
        case["outputs"] = {n: y.astype(np.float64).ravel().tolist() for n, y in zip(names, ys)}
        cases.append(case)
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
        model, spec = build(rng)
        meta = metadata(name, spec)
        ref = reference(model, meta, raw_windows(rng))
        onnx.save(model, out_dir / f"{name}.onnx")
        files: Dict[str, dict] = {f"{name}.json": meta, f"{name}.reference.json": ref}
        for file, doc in files.items():
            (out_dir / file).write_text(json.dumps(doc, indent=1) + "\n")
        print(f"wrote {out_dir / name}.{{onnx,json,reference.json}}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
