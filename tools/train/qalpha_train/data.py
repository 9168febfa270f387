"""The dataset `qalpha dataset` writes (docs/DATASET.md), read for training.

``DIR/meta.json`` + ``DIR/{train,val,test}.parquet``. Features are standardized with exactly the
``meta.json`` normalization (computed in f64, rounded once to f32 — what the engine's
``normalize_row`` does), so a window built here is the window the engine feeds the exported model.

A window of ``W`` bars ending at row ``t`` holds rows ``t-W+1 ..= t`` of one symbol, oldest first. It
never crosses symbols or gaps: rows are split into *segments* of one symbol whose open times are
exactly ``interval_ms`` apart (the dataset drops warm-up and label-less rows, which leaves gaps), and
windows are taken inside a segment only.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import pyarrow.parquet as pq
import torch

SPLITS = ("train", "val", "test")

# Action labels of the Strategist's logits, in output order; the dataset's `action` column is
# 1 (long), -1 (short), 0 (flat).
ACTIONS = ("long", "short", "flat")
ACTION_POSITION = np.array([1.0, -1.0, 0.0])  # position of each action class


def action_class(action: np.ndarray) -> np.ndarray:
    """The dataset's `action` (1 / -1 / 0) as the class index of :data:`ACTIONS`."""
    a = np.asarray(action).astype(np.int64)
    out = np.full(a.shape, 2, dtype=np.int64)
    out[a == 1] = 0
    out[a == -1] = 1
    return out


class DatasetError(ValueError):
    """The dataset directory does not follow docs/DATASET.md; the message names file and field."""


@dataclass
class DatasetMeta:
    path: Path
    features: List[str]
    mean: np.ndarray  # f64 [F]
    std: np.ndarray  # f64 [F]
    horizons: List[int]
    fee_bps: float
    interval_ms: int
    raw: dict

    @property
    def fee(self) -> float:
        """The round-trip fee as a fraction of notional (``fee_bps`` × 2 / 10⁴)."""
        return self.fee_bps * 2.0 / 1e4

    @staticmethod
    def load(data_dir: Path) -> "DatasetMeta":
        path = Path(data_dir) / "meta.json"
        try:
            raw = json.loads(path.read_text())
        except FileNotFoundError:
            raise DatasetError(f"{path}: not found; write the dataset with `qalpha dataset --out DIR`")
        for key in ("features", "normalization", "horizons", "fee_bps", "interval_ms", "splits"):
            if key not in raw:
                raise DatasetError(f"{path}: missing `{key}` (see docs/DATASET.md)")
        features = list(raw["features"])
        mean = np.asarray(raw["normalization"]["mean"], dtype=np.float64)
        std = np.asarray(raw["normalization"]["std"], dtype=np.float64)
        if mean.shape != (len(features),) or std.shape != (len(features),):
            raise DatasetError(
                f"{path}: normalization mean/std need {len(features)} values (one per feature)"
            )
        if not (np.all(np.isfinite(mean)) and np.all(std > 0)):
            raise DatasetError(f"{path}: normalization must be finite with std > 0")
        horizons = [int(h) for h in raw["horizons"]]
        if not horizons or any(h <= 0 for h in horizons) or sorted(set(horizons)) != horizons:
            raise DatasetError(f"{path}: horizons must be increasing positive bar counts")
        return DatasetMeta(
            path=path,
            features=features,
            mean=mean,
            std=std,
            horizons=horizons,
            fee_bps=float(raw["fee_bps"]),
            interval_ms=int(raw["interval_ms"]),
            raw=raw,
        )

    def select(self, names: Optional[Sequence[str]]) -> "DatasetMeta":
        """The same metadata restricted to `names` (model input order), or all features."""
        if not names:
            return self
        missing = [n for n in names if n not in self.features]
        if missing:
            raise DatasetError(f"{self.path}: features {missing} are not in the dataset")
        idx = [self.features.index(n) for n in names]
        return DatasetMeta(
            self.path, list(names), self.mean[idx], self.std[idx], self.horizons,
            self.fee_bps, self.interval_ms, self.raw,
        )


def utc_date(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000.0, tz=timezone.utc).strftime("%Y-%m-%d")


class Split:
    """One split in memory: normalized features, labels and the valid window ends.

    Rows keep the file's order (each symbol's rows in time order). ``ends`` lists the rows at which
    a full ``window``-bar window ends inside one segment.
    """

    def __init__(self, data_dir: Path, split: str, meta: DatasetMeta, window: int):
        path = Path(data_dir) / f"{split}.parquet"
        if not path.exists():
            raise DatasetError(f"{path}: not found (splits are {', '.join(SPLITS)})")
        table = pq.read_table(path)
        cols = set(table.column_names)
        need = ["open_time", "symbol", "close", "action", "reward"]
        need += meta.features + [f"fwd_ret_{h}" for h in meta.horizons]
        missing = [c for c in need if c not in cols]
        if missing:
            raise DatasetError(f"{path}: missing columns {missing} (see docs/DATASET.md)")
        self.name = split
        self.window = window
        self.open_time = table["open_time"].to_numpy().astype(np.int64)
        self.symbol = np.asarray(table["symbol"].to_pylist(), dtype=object)
        self.close = table["close"].to_numpy().astype(np.float64)
        raw = np.stack(
            [table[f].to_numpy(zero_copy_only=False).astype(np.float64) for f in meta.features],
            axis=1,
        ) if len(table) else np.zeros((0, len(meta.features)))
        # f64 arithmetic, one rounding: the engine's `normalize_row`.
        self.x = ((raw - meta.mean) / meta.std).astype(np.float32)
        if not np.all(np.isfinite(self.x)):
            raise DatasetError(f"{path}: non-finite feature values (the dataset drops warm-up rows)")
        self.fwd = np.stack(
            [table[f"fwd_ret_{h}"].to_numpy().astype(np.float64) for h in meta.horizons], axis=1
        ) if len(table) else np.zeros((0, len(meta.horizons)))
        self.action = action_class(table["action"].to_numpy())
        self.reward = table["reward"].to_numpy().astype(np.float64)
        self.n = len(table)
        # Segments: same symbol, consecutive bars.
        brk = np.ones(self.n, dtype=bool)
        if self.n > 1:
            brk[1:] = (self.symbol[1:] != self.symbol[:-1]) | (
                np.diff(self.open_time) != meta.interval_ms
            )
        self.seg_start = np.maximum.accumulate(np.where(brk, np.arange(self.n), 0))
        self.ends = np.nonzero(np.arange(self.n) - self.seg_start >= window - 1)[0]
        seg_id = np.cumsum(brk) - 1
        self.seg_id = seg_id
        # The last row of each row's segment.
        last = np.empty(self.n, dtype=np.int64)
        if self.n:
            ends_of_seg = np.nonzero(np.append(brk[1:], True))[0]
            last = ends_of_seg[seg_id]
        self.seg_end = last

    def __len__(self) -> int:
        return len(self.ends)

    def windows(self, ends: np.ndarray) -> np.ndarray:
        """Windows ``[len(ends), W, F]`` ending at rows ``ends`` (each a valid window end)."""
        idx = np.asarray(ends)[:, None] - self.window + 1 + np.arange(self.window)[None, :]
        return self.x[idx]

    def window_stats(self, ends: np.ndarray) -> Dict[str, np.ndarray]:
        """Realized volatility (std of log returns) and |log return| of the close over each window."""
        idx = np.asarray(ends)[:, None] - self.window + 1 + np.arange(self.window)[None, :]
        logc = np.log(self.close[idx])
        r = np.diff(logc, axis=1)
        return {"rvol": r.std(axis=1), "absret": np.abs(logc[:, -1] - logc[:, 0])}


class Dataset:
    """The dataset directory: metadata and the three splits (loaded on demand)."""

    def __init__(self, data_dir: Path, window: int, features: Optional[Sequence[str]] = None):
        self.dir = Path(data_dir)
        self.meta = DatasetMeta.load(self.dir).select(features)
        self.window = window
        self._splits: Dict[str, Split] = {}

    def split(self, name: str) -> Split:
        if name not in self._splits:
            s = Split(self.dir, name, self.meta, self.window)
            if len(s) == 0:
                raise DatasetError(
                    f"{self.dir / (name + '.parquet')}: no window of {self.window} consecutive bars"
                )
            self._splits[name] = s
        return self._splits[name]

    def trained_on(self) -> Dict[str, str]:
        """First and last bar dates (UTC, inclusive) of the train split."""
        t = self.split("train").open_time
        return {"from": utc_date(int(t.min())), "to": utc_date(int(t.max()))}


class IndexSet(torch.utils.data.Dataset):
    """Sample indices; the batch is gathered in one vectorized step by the collate function (so
    Lightning's DistributedSampler shards indices, not tensors)."""

    def __init__(self, n: int):
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> int:
        return i


def loader(n: int, collate, batch_size: int, shuffle: bool, workers: int, seed: int):
    g = torch.Generator()
    g.manual_seed(seed)
    return torch.utils.data.DataLoader(
        IndexSet(n),
        batch_size=batch_size,
        shuffle=shuffle,
        collate_fn=collate,
        num_workers=workers,
        generator=g,
        persistent_workers=workers > 0,
    )
