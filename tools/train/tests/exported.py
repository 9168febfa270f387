"""Helpers shared by the export and parity tests: real windows of a split and PyTorch's outputs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from qalpha_train import cli
from qalpha_train.data import Dataset

TARGETS = [0.0, 0.002, -0.002, 0.01]


def load(out: Path, model: str):
    """(metadata dict, torch net in eval mode) of a trained model in OUT."""
    meta = json.loads((out / "models" / f"{model}.json").read_text())
    net = cli.load_module(model, out / model / "best_model.ckpt").net.eval()
    return meta, net


def cases(data_dir: Path, meta: dict, n: int = 4) -> List[dict]:
    """``n`` real windows of the test split (normalized, row-major) with a condition when the model has one."""
    data = Dataset(data_dir, meta["window"], meta["features"])
    split = data.split("test")
    ends = split.ends[np.linspace(0, len(split) - 1, n).astype(int)]
    conditioned = len(meta["inputs"]) > 1
    return [
        {"window": w.ravel().tolist(), "condition": TARGETS[i % len(TARGETS)] if conditioned else None}
        for i, w in enumerate(split.windows(ends))
    ]


@torch.no_grad()
def torch_outputs(net, meta: dict, case: dict) -> Dict[str, np.ndarray]:
    w = torch.tensor(case["window"], dtype=torch.float32).view(meta["inputs"][0]["shape"])
    args = (w,) if case["condition"] is None else (w, torch.tensor([[case["condition"]]], dtype=torch.float32))
    out = net(*args)
    out = out if isinstance(out, tuple) else (out,)
    return {o["name"]: y.numpy().ravel() for o, y in zip(meta["outputs"], out)}
