"""Export: valid opset-18 ONNX, the engine's metadata exactly, onnxruntime = PyTorch."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import HORIZONS, WINDOW
from exported import cases, load, torch_outputs
from qalpha_train import cli

# `qalpha_strategy::model::ModelMeta` (deny_unknown_fields) and its nested structs.
META_FIELDS = {"name", "version", "features", "window", "normalization", "inputs", "outputs", "trained_on"}
OPTIONAL_FIELDS = {"horizons"}


@pytest.mark.parametrize("model", cli.MODELS)
def test_onnx_is_valid_opset_18_with_fixed_shapes(trained, model):
    m = onnx.load(str(trained / "models" / f"{model}.onnx"))
    onnx.checker.check_model(m, full_check=True)
    assert {o.domain: o.version for o in m.opset_import}[""] == 18
    meta = json.loads((trained / "models" / f"{model}.json").read_text())
    for spec, vi in zip(meta["inputs"] + meta["outputs"], list(m.graph.input) + list(m.graph.output)):
        assert vi.name == spec["name"]
        dims = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        assert dims == spec["shape"], f"{model}: {vi.name} {dims}"
        assert vi.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert len(m.graph.input) == len(meta["inputs"])
    assert len(m.graph.output) == len(meta["outputs"])


@pytest.mark.parametrize("model", cli.MODELS)
def test_metadata_has_exactly_the_engines_fields(trained, dataset, model):
    meta = json.loads((trained / "models" / f"{model}.json").read_text())
    ds = json.loads((dataset / "meta.json").read_text())
    assert META_FIELDS <= set(meta) <= META_FIELDS | OPTIONAL_FIELDS
    assert set(meta["normalization"]) == {"mean", "std"}
    assert set(meta["trained_on"]) == {"from", "to"}
    for i in meta["inputs"]:
        assert set(i) == {"name", "shape", "dtype"} and i["dtype"] == "f32"
    for o in meta["outputs"]:
        assert {"name", "shape"} <= set(o) <= {"name", "shape", "names"}
        if "names" in o:
            assert len(o["names"]) == o["shape"][-1]
    assert meta["name"] == model and isinstance(meta["version"], str)
    assert meta["window"] == WINDOW
    assert meta["features"] == ds["features"]
    assert meta["normalization"] == ds["normalization"]
    assert meta["inputs"][0] == {"name": "window", "shape": [1, WINDOW, len(ds["features"])], "dtype": "f32"}
    assert meta["trained_on"] == {"from": "2023-01-01", "to": "2023-01-02"}


def test_roles_the_engine_requires(trained):
    def meta(m):
        return json.loads((trained / "models" / f"{m}.json").read_text())

    g = {o["name"]: o for o in meta("guardian")["outputs"]}
    assert "shock" in g["regime_probs"]["names"] and g["regime_probs"]["shape"] == [1, 3]
    assert g["change_score"]["shape"] == [1, 1]
    assert len(meta("guardian")["inputs"]) == 1 and "horizons" not in meta("guardian")

    o = meta("oracle")
    assert o["outputs"] == [{"name": "quantiles", "shape": [1, len(HORIZONS), 3], "names": ["q10", "q50", "q90"]}]
    assert o["horizons"] == HORIZONS and len(o["inputs"]) == 1

    s = meta("strategist")
    assert s["inputs"][1] == {"name": "target_return", "shape": [1, 1], "dtype": "f32"}
    assert s["outputs"] == [{"name": "action_logits", "shape": [1, 3], "names": ["long", "short", "flat"]}]


@pytest.mark.parametrize("model", cli.MODELS)
def test_onnxruntime_matches_pytorch(trained, dataset, model):
    meta, net = load(trained, model)
    session = ort.InferenceSession(str(trained / "models" / f"{model}.onnx"), providers=["CPUExecutionProvider"])
    for case in cases(dataset, meta):
        feeds = {"window": np.asarray(case["window"], dtype=np.float32).reshape(meta["inputs"][0]["shape"])}
        if case["condition"] is not None:
            feeds["target_return"] = np.array([[case["condition"]]], dtype=np.float32)
        got = dict(zip([o["name"] for o in meta["outputs"]], session.run(None, feeds)))
        for name, want in torch_outputs(net, meta, case).items():
            diff = np.abs(got[name].ravel() - want).max()
            assert diff < 1e-4, f"{model}.{name}: max |ort − torch| = {diff}"
        if model == "guardian":
            assert 0 < got["change_score"].item() < 1
            assert abs(got["regime_probs"].sum() - 1) < 1e-5
        if model == "oracle":
            assert (np.diff(got["quantiles"], axis=-1) >= 0).all()


def test_export_command_from_a_checkpoint(trained, dataset, tmp_path):
    # last.ckpt of the guardian has no fitted regimes: export fits them first.
    for model in cli.MODELS:
        assert cli.main(["export", "--model", model, "--ckpt", str(trained / model / "last.ckpt"),
                         "--data", str(dataset), "--out", str(tmp_path), "--version", "9.9.9"]) == 0
        meta = json.loads((tmp_path / f"{model}.json").read_text())
        assert meta["version"] == "9.9.9" and meta["window"] == WINDOW
        onnx.checker.check_model(onnx.load(str(tmp_path / f"{model}.onnx")))


def test_tensorboard_logs_and_checkpoints(trained):
    for model in cli.MODELS:
        assert (trained / model / "best_model.ckpt").exists()
        assert (trained / model / "last.ckpt").exists()
        assert list((trained / model / "tb").glob("events.out.tfevents.*")), f"{model}: no TensorBoard events"
