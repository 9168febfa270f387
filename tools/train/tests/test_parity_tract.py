"""PyTorch vs tract: the exported models run through the engine's runtime (`qalpha model-check`)
on the same real windows give the same outputs (max |torch − tract| < 1e-4).

Needs the Rust binary: ``QALPHA_BIN`` (default ``<repo>/target/debug/qalpha``, built with
``cargo build -p qalpha-tools``). A missing binary or subcommand **fails** (never skips): the suite
without it is ``pytest -m "not tract"``.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from exported import cases, load, torch_outputs
from qalpha_train import cli

pytestmark = pytest.mark.tract

REPO = Path(__file__).resolve().parents[3]
TOLERANCE = 1e-4


def qalpha_bin() -> Path:
    path = Path(os.environ.get("QALPHA_BIN", REPO / "target" / "debug" / "qalpha"))
    if not path.is_file():
        pytest.fail(
            f"{path}: no qalpha binary; build it (`cargo build -p qalpha-tools`) or set QALPHA_BIN, "
            "or deselect this test with -m 'not tract'",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def qalpha() -> Path:
    """The binary, checked before the (slower) training fixture runs."""
    return qalpha_bin()


def model_check(bin_: Path, *args: str) -> subprocess.CompletedProcess:
    r = subprocess.run([str(bin_), "model-check", *args], capture_output=True, text=True, timeout=600)
    if r.returncode != 0 and ("unrecognized subcommand" in r.stderr or "unexpected argument" in r.stderr):
        pytest.fail(f"{bin_} has no `model-check` subcommand (rebuild it): {r.stderr.strip()}", pytrace=False)
    return r


@pytest.mark.parametrize("model", cli.MODELS)
def test_tract_matches_pytorch(qalpha, trained, dataset, tmp_path, model):
    meta, net = load(trained, model)
    inputs = cases(dataset, meta)
    (tmp_path / "in.json").write_text(json.dumps({"cases": inputs}))
    models = trained / "models"
    r = model_check(qalpha, "--onnx", str(models / f"{model}.onnx"), "--meta", str(models / f"{model}.json"),
                    "--inputs", str(tmp_path / "in.json"), "--out", str(tmp_path / "out.json"))
    assert r.returncode == 0, f"qalpha model-check failed:\n{r.stderr}"
    got = json.loads((tmp_path / "out.json").read_text())["cases"]
    assert len(got) == len(inputs)
    for i, (case, tract) in enumerate(zip(inputs, got)):
        for name, want in torch_outputs(net, meta, case).items():
            have = np.asarray(tract[name], dtype=np.float32)
            assert have.shape == want.shape, f"{model}.{name} case {i}: {have.shape} vs {want.shape}"
            diff = float(np.abs(have - want).max())
            assert diff < TOLERANCE, f"{model}.{name} case {i}: max |tract − torch| = {diff}"


def test_trinity_loads_the_three_models_in_their_roles(qalpha, trained):
    r = model_check(qalpha, "--trinity", str(trained / "models"))
    assert r.returncode == 0, f"qalpha model-check --trinity failed:\n{r.stderr}"


@pytest.mark.parametrize("model", cli.MODELS)
def test_tract_runs_are_independent(qalpha, trained, dataset, tmp_path, model):
    """The same window run again, after other windows, gives the same outputs: the engine keeps one
    tract state for every run, and a stateful op (the Oracle's LSTM becomes a Scan, whose hidden
    state tract carries from one run into the next unless reset) must not leak between bars."""
    meta, _ = load(trained, model)
    a, b = cases(dataset, meta, n=2)
    (tmp_path / "in.json").write_text(json.dumps({"cases": [a, b, a, a]}))
    models = trained / "models"
    r = model_check(qalpha, "--onnx", str(models / f"{model}.onnx"), "--meta", str(models / f"{model}.json"),
                    "--inputs", str(tmp_path / "in.json"), "--out", str(tmp_path / "out.json"))
    assert r.returncode == 0, f"qalpha model-check failed:\n{r.stderr}"
    got = json.loads((tmp_path / "out.json").read_text())["cases"]
    for name in got[0]:
        first = np.asarray(got[0][name], dtype=np.float32)
        for i in (2, 3):
            diff = float(np.abs(np.asarray(got[i][name], dtype=np.float32) - first).max())
            assert diff <= 1e-7, (
                f"{model}.{name}: the same window gave outputs {diff:.2e} apart on run {i + 1}: "
                "state carried over from earlier runs (reset the tract state's op states per run)"
            )
