"""ONNX export and the metadata JSON the engine checks (``qalpha_strategy::model::ModelMeta``).

Each model becomes ``{name}.onnx`` — the dynamo exporter, opset 18, fixed shapes (batch 1), input
``window [1, W, F]`` f32 oldest bar first (plus ``target_return [1, 1]`` for the Strategist) — and
``{name}.json`` with exactly ``ModelMeta``'s fields (it refuses unknown ones): ``name``, ``version``,
``features``, ``window``, ``normalization {mean, std}``, ``inputs``, ``outputs``, ``trained_on
{from, to}`` and, for the Oracle, ``horizons``.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Dict, List, Tuple

import onnx
import torch
from torch import nn

from . import __version__
from .data import ACTIONS, Dataset
from .guardian import Guardian, regime_names
from .oracle import Oracle, quantile_label
from .strategist import Strategist

OPSET = 18
WINDOW_INPUT = "window"
CONDITION_INPUT = "target_return"


def roles(name: str, net: nn.Module, horizons: List[int]) -> Tuple[List[dict], List[dict], Dict]:
    """(inputs minus the window, outputs, extra metadata) of a model, as the engine's roles want."""
    if isinstance(net, Guardian):
        if not bool(net.regimes_fitted):
            raise ValueError(f"{name}: the guardian's regimes were never fitted (qalpha_train.guardian.fit_regimes)")
        return [], [
            {"name": "regime_probs", "shape": [1, net.regimes], "names": regime_names(net.regimes)},
            {"name": "change_score", "shape": [1, 1]},
        ], {}
    if isinstance(net, Oracle):
        if len(horizons) != net.horizons:
            raise ValueError(f"{name}: {net.horizons} horizons in the model, {len(horizons)} in the dataset")
        return [], [
            {
                "name": "quantiles",
                "shape": [1, net.horizons, len(net.quantiles)],
                "names": [quantile_label(q) for q in net.quantiles],
            }
        ], {"horizons": list(horizons)}
    if isinstance(net, Strategist):
        return [{"name": CONDITION_INPUT, "shape": [1, 1], "dtype": "f32"}], [
            {"name": "action_logits", "shape": [1, 3], "names": list(ACTIONS)}
        ], {}
    raise TypeError(f"not a qalpha model: {type(net).__name__}")


def metadata(name: str, net: nn.Module, data: Dataset, version: str = __version__) -> dict:
    extra_inputs, outputs, extra = roles(name, net, data.meta.horizons)
    f = len(data.meta.features)
    meta = {
        "name": name,
        "version": version,
        "features": list(data.meta.features),
        "window": data.window,
        "normalization": {"mean": [float(v) for v in data.meta.mean], "std": [float(v) for v in data.meta.std]},
        "inputs": [{"name": WINDOW_INPUT, "shape": [1, data.window, f], "dtype": "f32"}] + extra_inputs,
        "outputs": outputs,
        "trained_on": data.trained_on(),
    }
    meta.update(extra)
    return meta


def example_inputs(meta: dict) -> Tuple[torch.Tensor, ...]:
    w = torch.zeros(meta["inputs"][0]["shape"], dtype=torch.float32)
    if len(meta["inputs"]) > 1:
        return (w, torch.full((1, 1), 0.002))
    return (w,)


def export(name: str, net: nn.Module, data: Dataset, out_dir: Path, version: str = __version__) -> Tuple[Path, Path]:
    """Writes ``out_dir/{name}.onnx`` and ``out_dir/{name}.json``; returns their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta = metadata(name, net, data, version)
    net = net.cpu().eval()
    onnx_path, meta_path = out_dir / f"{name}.onnx", out_dir / f"{name}.json"
    # The exporter logs a warning per torchvision op it cannot register; torchvision is not used.
    logging.getLogger("torch.onnx._internal.exporter._registration").setLevel(logging.ERROR)
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            net,
            example_inputs(meta),
            dynamo=True,
            opset_version=OPSET,
            input_names=[i["name"] for i in meta["inputs"]],
            output_names=[o["name"] for o in meta["outputs"]],
            external_data=False,
            verbose=False,
        )
    program.save(str(onnx_path), external_data=False)
    model = onnx.load(str(onnx_path))
    onnx.checker.check_model(model, full_check=True)
    got = [o.name for o in model.graph.output]
    want = [o["name"] for o in meta["outputs"]]
    if got != want:
        raise RuntimeError(f"{onnx_path}: graph outputs {got}, metadata says {want}")
    meta_path.write_text(json.dumps(meta, indent=1) + "\n")
    return onnx_path, meta_path
