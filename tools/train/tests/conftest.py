"""Fixtures: a tiny synthetic dataset laid out exactly as docs/DATASET.md says, and trained models.

The dataset: two symbols of 5-minute bars, a close that switches between calm, trending and shock
blocks (so the guardian's regimes have something to find), eight real columns of the engine's
feature set computed roughly from it, labels as `qalpha dataset` defines them, a gap in one
symbol's train rows. Training runs are one or two epochs of tiny models: seconds on two cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from qalpha_train import cli

FEATURES = ["rsi_14", "macd", "macd_hist", "bb_pctb_20", "atr_14", "natr_14", "ret_1", "rvol_20"]
HORIZONS = [1, 5, 15]
FEE_BPS = 5.0
INTERVAL_MS = 300_000
T0_MS = 1_672_531_200_000  # 2023-01-01T00:00Z
ROWS = {"train": 300, "val": 100, "test": 100}
WARMUP = 20
WINDOW = 16
# Train rows of BTCUSDT removed to make a gap (windows must not cross it).
GAP = (150, 155)


def _ema(x: np.ndarray, span: int) -> np.ndarray:
    a = 2.0 / (span + 1)
    out = np.empty_like(x)
    out[0] = x[0]
    for i in range(1, len(x)):
        out[i] = a * x[i] + (1 - a) * out[i - 1]
    return out


def _rolling(x: np.ndarray, n: int, fn) -> np.ndarray:
    out = np.full(len(x), np.nan)
    for i in range(n - 1, len(x)):
        out[i] = fn(x[i - n + 1:i + 1])
    return out


def _symbol(rng: np.random.Generator, price: float) -> dict:
    n = WARMUP + sum(ROWS.values()) + max(HORIZONS)
    ret = np.empty(n)
    for start in range(0, n, 40):
        kind = rng.integers(3)
        m = min(40, n - start)
        if kind == 0:  # range
            ret[start:start + m] = rng.normal(0, 0.001, m)
        elif kind == 1:  # trend
            ret[start:start + m] = rng.normal(rng.choice([-1, 1]) * 0.0015, 0.0008, m)
        else:  # shock
            ret[start:start + m] = rng.normal(0, 0.008, m)
    close = price * np.exp(np.cumsum(ret))
    r1 = np.concatenate([[np.nan], close[1:] / close[:-1] - 1])
    macd = _ema(close, 12) - _ema(close, 26)
    sma = _rolling(close, 20, np.mean)
    sd = _rolling(close, 20, np.std)
    atr = _rolling(np.abs(np.concatenate([[0.0], np.diff(close)])), 14, np.mean)
    up = _rolling(np.maximum(np.nan_to_num(r1), 0), 14, np.mean)
    down = _rolling(np.maximum(-np.nan_to_num(r1), 0), 14, np.mean)
    feats = {
        "rsi_14": 100 - 100 / (1 + up / np.maximum(down, 1e-12)),
        "macd": macd,
        "macd_hist": macd - _ema(macd, 9),
        "bb_pctb_20": (close - (sma - 2 * sd)) / np.maximum(4 * sd, 1e-12),
        "atr_14": atr,
        "natr_14": 100 * atr / close,
        "ret_1": r1,
        "rvol_20": _rolling(np.nan_to_num(r1), 20, np.std),
    }
    fwd = {h: np.concatenate([close[h:] / close[:-h] - 1, np.full(h, np.nan)]) for h in HORIZONS}
    fee = FEE_BPS * 2 / 1e4
    f0 = fwd[HORIZONS[0]]
    action = np.where(f0 > fee, 1, np.where(f0 < -fee, -1, 0))
    reward = np.where(action != 0, action * f0 - fee, 0.0)
    # Drop warm-up (NaN features) and the last max(horizons) bars (undefined labels).
    keep = slice(WARMUP, n - max(HORIZONS))
    return {
        "open_time": (T0_MS + INTERVAL_MS * np.arange(n))[keep],
        "close": close[keep],
        "features": {k: v[keep] for k, v in feats.items()},
        "fwd": {h: v[keep] for h, v in fwd.items()},
        "action": action[keep],
        "reward": reward[keep],
    }


def write_dataset(out: Path, seed: int = 7) -> Path:
    """Writes DIR/{meta.json,train,val,test.parquet} (docs/DATASET.md) and returns DIR."""
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    symbols = {"BTCUSDT": _symbol(rng, 40_000.0), "ETHUSDT": _symbol(rng, 2_000.0)}
    bounds, start = {}, 0
    for split, n in ROWS.items():
        bounds[split] = (start, start + n)
        start += n
    schema = pa.schema(
        [("open_time", pa.int64()), ("symbol", pa.utf8()), ("close", pa.float64())]
        + [(f, pa.float32()) for f in FEATURES]
        + [(f"fwd_ret_{h}", pa.float32()) for h in HORIZONS]
        + [("action", pa.int8()), ("reward", pa.float32())]
    )

    def rows(sym: str, split: str) -> np.ndarray:
        a, b = bounds[split]
        idx = np.arange(a, min(b, len(symbols[sym]["close"])))
        if split == "train" and sym == "BTCUSDT":
            idx = idx[(idx < GAP[0]) | (idx >= GAP[1])]
        return idx

    train_raw = np.concatenate([
        np.stack([symbols[s]["features"][f][rows(s, "train")] for f in FEATURES], 1) for s in symbols
    ]).astype(np.float32).astype(np.float64)
    mean, std = train_raw.mean(0), train_raw.std(0)
    std[std == 0] = 1.0
    splits = {}
    for split in ROWS:
        with pq.ParquetWriter(out / f"{split}.parquet", schema) as w:
            times = []
            for sym, d in symbols.items():
                i = rows(sym, split)
                cols = {"open_time": d["open_time"][i], "symbol": [sym] * len(i), "close": d["close"][i]}
                cols.update({f: d["features"][f][i].astype(np.float32) for f in FEATURES})
                cols.update({f"fwd_ret_{h}": d["fwd"][h][i].astype(np.float32) for h in HORIZONS})
                cols["action"] = d["action"][i].astype(np.int8)
                cols["reward"] = d["reward"][i].astype(np.float32)
                w.write_table(pa.table(cols, schema=schema))  # one row group per symbol
                times.append(d["open_time"][i])
            t = np.concatenate(times)
            splits[split] = {"from_ms": int(t.min()), "to_ms": int(t.max()) + INTERVAL_MS, "rows": int(len(t))}
    meta = {
        "version": 1,
        "features": FEATURES,
        "normalization": {"mean": mean.tolist(), "std": std.tolist()},
        "normalization_fitted_on": "train",
        "horizons": HORIZONS,
        "fee_bps": FEE_BPS,
        "interval_ms": INTERVAL_MS,
        "symbols": list(symbols),
        "splits": splits,
        "sources": ["synthetic"],
        "generator": "tools/train/tests/conftest.py",
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return out


@pytest.fixture(scope="session")
def dataset(tmp_path_factory) -> Path:
    return write_dataset(tmp_path_factory.mktemp("dataset"))


TINY = ["--window", str(WINDOW), "--d-model", "16", "--batch-size", "64", "--seed", "3",
        "--accelerator", "cpu"]


def train_args(model: str, data: Path, out: Path, *extra: str) -> list:
    return ["train", "--model", model, "--data", str(data), "--out", str(out), *TINY, *extra]


@pytest.fixture(scope="session")
def trained(dataset, tmp_path_factory) -> Path:
    """OUT of one 1-epoch `train` of each model (checkpoints and OUT/models/*.onnx, *.json)."""
    out = tmp_path_factory.mktemp("trained")
    for model in cli.MODELS:
        assert cli.main(train_args(model, dataset, out, "--epochs", "1")) == 0
    return out
