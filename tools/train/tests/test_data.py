"""Reading the dataset: normalization as the engine does it, windows inside one segment."""

import json

import numpy as np
import pytest

from conftest import GAP, INTERVAL_MS, WINDOW, write_dataset
from qalpha_train.data import Dataset, DatasetError, action_class


def test_windows_never_cross_symbols_or_gaps(dataset):
    split = Dataset(dataset, WINDOW).split("train")
    idx = split.ends[:, None] - WINDOW + 1 + np.arange(WINDOW)[None, :]
    assert (split.symbol[idx] == split.symbol[idx[:, :1]]).all()
    assert (np.diff(split.open_time[idx], axis=1) == INTERVAL_MS).all()
    # BTCUSDT: two segments around the gap, ETHUSDT: one (300 rows).
    btc = 300 - (GAP[1] - GAP[0])
    want = (GAP[0] - WINDOW + 1) + (300 - GAP[1] - WINDOW + 1) + (300 - WINDOW + 1)
    assert split.n == btc + 300
    assert len(split) == want


def test_normalization_is_metas_in_f64_rounded_once(dataset):
    data = Dataset(dataset, WINDOW)
    meta = json.loads((dataset / "meta.json").read_text())
    split = data.split("val")
    import pyarrow.parquet as pq

    raw = pq.read_table(dataset / "val.parquet")
    for j, f in enumerate(meta["features"]):
        col = raw[f].to_numpy().astype(np.float64)
        want = ((col - meta["normalization"]["mean"][j]) / meta["normalization"]["std"][j]).astype(np.float32)
        assert np.array_equal(split.x[:, j], want)
    w = split.windows(split.ends[:3])
    assert w.shape == (3, WINDOW, len(meta["features"])) and w.dtype == np.float32
    assert np.array_equal(w[0, -1], split.x[split.ends[0]])  # newest bar last


def test_feature_subset_keeps_model_order(dataset):
    data = Dataset(dataset, WINDOW, ["rvol_20", "rsi_14"])
    meta = json.loads((dataset / "meta.json").read_text())
    assert data.meta.features == ["rvol_20", "rsi_14"]
    assert data.meta.mean.tolist() == [meta["normalization"]["mean"][7], meta["normalization"]["mean"][0]]
    with pytest.raises(DatasetError, match="nope"):
        Dataset(dataset, WINDOW, ["nope"])


def test_errors_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match="meta.json"):
        Dataset(tmp_path, WINDOW)
    d = write_dataset(tmp_path / "d")
    (d / "test.parquet").unlink()
    with pytest.raises(DatasetError, match="test.parquet"):
        Dataset(d, WINDOW).split("test")
    with pytest.raises(DatasetError, match="no window"):
        Dataset(d, 10_000).split("train")


def test_action_classes_follow_the_logit_labels():
    assert action_class(np.array([1, -1, 0], dtype=np.int8)).tolist() == [0, 1, 2]  # long, short, flat
