"""TA-Lib reference values for the Rust feature library's required columns.

Usage (from tools/train)::

    python -m qalpha_train.ta_reference IN.csv OUT.csv

``IN.csv`` is a kline CSV in either layout of ``strategy/src/bars.rs``: Binance's 12 columns
(``open_time,open,high,low,close,volume,close_time,quote_volume,count,…``, epoch ms) or the short
``timestamp,open,high,low,close,volume``, each with or without a header row. The header is detected
as bars.rs does it: a first line whose first field is not an integer. ``OUT.csv`` gets ``open_time``
followed by :data:`REQUIRED` (the column names of ``qalpha_strategy::features::standard::REQUIRED``,
same order); NaN is an empty cell and every other value is written with ``repr`` so it reads back
bit-exact.

TA-Lib runs with its defaults (no unstable period, TA-Lib's own seeding), which is what the
streaming Rust indicators reproduce.
"""

from __future__ import annotations

import math
import sys
from typing import Dict, List, Sequence, TextIO

import numpy as np
import talib
from talib import MA_Type

# Same order as qalpha_strategy::features::standard::REQUIRED.
REQUIRED = (
    "sma_20",
    "ema_12",
    "ema_26",
    "macd",
    "macd_signal",
    "macd_hist",
    "bb_upper",
    "bb_middle",
    "bb_lower",
    "adx_14",
    "plus_di_14",
    "minus_di_14",
    "cci_20",
    "aroon_up_14",
    "aroon_down_14",
    "rsi_14",
    "stoch_k",
    "stoch_d",
    "willr_14",
    "roc_10",
    "mom_10",
    "ultosc",
    "atr_14",
    "natr_14",
    "mfi_14",
    "obv",
    "ad",
)


class KlineError(ValueError):
    """A kline file that could not be read; the message names the file and line."""


class Klines:
    """The OHLCV columns of a kline file, as float64 arrays (TA-Lib's input type)."""

    def __init__(self, open_time: List[int], ohlcv: List[List[float]]):
        self.open_time = open_time
        cols = np.array(ohlcv, dtype=np.float64).reshape(-1, 5)
        self.open = np.ascontiguousarray(cols[:, 0])
        self.high = np.ascontiguousarray(cols[:, 1])
        self.low = np.ascontiguousarray(cols[:, 2])
        self.close = np.ascontiguousarray(cols[:, 3])
        self.volume = np.ascontiguousarray(cols[:, 4])

    def __len__(self) -> int:
        return len(self.open_time)


def _is_u64(s: str) -> bool:
    s = s.strip()
    return s.isascii() and s.isdigit()


def _number(s: str) -> float | None:
    try:
        v = float(s.strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def parse_klines(lines: TextIO, origin: str) -> Klines:
    """Parses kline CSV text; ``origin`` names it in errors. Mirrors bars.rs ``parse_klines``."""
    open_time: List[int] = []
    rows: List[List[float]] = []
    for i, raw in enumerate(lines):
        line = raw.strip()
        if not line:
            continue
        where = f"{origin}:{i + 1}"
        f = line.split(",")
        if not _is_u64(f[0]):
            if i == 0:
                continue  # the header row
            raise KlineError(f"{where}: not a kline row: {line!r}")
        if len(f) < 6:
            raise KlineError(f"{where}: {len(f)} fields, need at least 6")
        vals = []
        for k, name in enumerate(("open", "high", "low", "close", "volume"), start=1):
            v = _number(f[k])
            if v is None:
                raise KlineError(f"{where}: {name} {f[k]!r} is not a number")
            vals.append(v)
        o, h, lo, c, _ = vals
        if not (lo <= o <= h and lo <= c <= h):
            raise KlineError(f"{where}: inconsistent OHLC {line!r}")
        open_time.append(int(f[0].strip()))
        rows.append(vals)
    return Klines(open_time, rows)


def read_klines(path: str) -> Klines:
    with open(path, encoding="utf-8") as fh:
        return parse_klines(fh, path)


def compute(k: Klines) -> Dict[str, np.ndarray]:
    """Every :data:`REQUIRED` column, computed by TA-Lib over the whole series."""
    h, lo, c, v = k.high, k.low, k.close, k.volume
    out: Dict[str, np.ndarray] = {}
    out["sma_20"] = talib.SMA(c, timeperiod=20)
    out["ema_12"] = talib.EMA(c, timeperiod=12)
    out["ema_26"] = talib.EMA(c, timeperiod=26)
    macd, signal, hist = talib.MACD(c, fastperiod=12, slowperiod=26, signalperiod=9)
    out["macd"], out["macd_signal"], out["macd_hist"] = macd, signal, hist
    upper, middle, lower = talib.BBANDS(
        c, timeperiod=20, nbdevup=2.0, nbdevdn=2.0, matype=MA_Type.SMA
    )
    out["bb_upper"], out["bb_middle"], out["bb_lower"] = upper, middle, lower
    out["adx_14"] = talib.ADX(h, lo, c, timeperiod=14)
    out["plus_di_14"] = talib.PLUS_DI(h, lo, c, timeperiod=14)
    out["minus_di_14"] = talib.MINUS_DI(h, lo, c, timeperiod=14)
    out["cci_20"] = talib.CCI(h, lo, c, timeperiod=20)
    # TA-Lib returns (aroondown, aroonup).
    down, up = talib.AROON(h, lo, timeperiod=14)
    out["aroon_up_14"], out["aroon_down_14"] = up, down
    out["rsi_14"] = talib.RSI(c, timeperiod=14)
    slowk, slowd = talib.STOCH(
        h,
        lo,
        c,
        fastk_period=14,
        slowk_period=3,
        slowk_matype=MA_Type.SMA,
        slowd_period=3,
        slowd_matype=MA_Type.SMA,
    )
    out["stoch_k"], out["stoch_d"] = slowk, slowd
    out["willr_14"] = talib.WILLR(h, lo, c, timeperiod=14)
    out["roc_10"] = talib.ROC(c, timeperiod=10)
    out["mom_10"] = talib.MOM(c, timeperiod=10)
    out["ultosc"] = talib.ULTOSC(h, lo, c, timeperiod1=7, timeperiod2=14, timeperiod3=28)
    out["atr_14"] = talib.ATR(h, lo, c, timeperiod=14)
    out["natr_14"] = talib.NATR(h, lo, c, timeperiod=14)
    out["mfi_14"] = talib.MFI(h, lo, c, v, timeperiod=14)
    out["obv"] = talib.OBV(c, v)
    out["ad"] = talib.AD(h, lo, c, v)
    missing = [n for n in REQUIRED if n not in out]
    assert not missing, f"columns not computed: {missing}"
    return out


def _cell(x: float) -> str:
    x = float(x)
    return "" if math.isnan(x) else repr(x)


def write_csv(k: Klines, cols: Dict[str, np.ndarray], out: TextIO) -> None:
    out.write("open_time," + ",".join(REQUIRED) + "\n")
    arrays = [cols[n] for n in REQUIRED]
    for i, t in enumerate(k.open_time):
        out.write(str(t))
        for a in arrays:
            out.write(",")
            out.write(_cell(a[i]))
        out.write("\n")


def main(argv: Sequence[str]) -> int:
    if len(argv) != 2:
        print(
            "usage: python -m qalpha_train.ta_reference IN.csv OUT.csv",
            file=sys.stderr,
        )
        return 2
    src, dst = argv
    try:
        k = read_klines(src)
    except (OSError, ValueError) as e:  # KlineError, or a file that is not UTF-8
        print(f"error: {e}", file=sys.stderr)
        return 1
    cols = compute(k)
    with open(dst, "w", encoding="utf-8", newline="\n") as fh:
        write_csv(k, cols, fh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
