"""Independent reference for the backtester's `sma-cross`: the same rules run by backtesting.py.

Usage::

    tools/train/.venv/bin/python tools/train/qalpha_train/ref_sma_cross.py KLINES.csv FAST SLOW OUT.json

Reads a Binance kline CSV (the 12-column archive layout or `timestamp,open,high,low,close,volume`,
header or not), runs backtesting.py with these conventions, and writes its trades as JSON:

- the rules of `qalpha_strategy::baselines::SmaCross`: on each closed bar with enough history
  (including the first such bar: see ``sma``),
  long if SMA(fast) > SMA(slow), short if <, unchanged if equal; when the signal differs from the
  position, close it and open one unit the other way;
- orders placed in ``next()`` fill at the **next bar's open** (``trade_on_close=False``);
- ``finalize_trades=True``: the trade open at the end is closed at the last bar's close;
- one unit per trade (cash large enough never to bind), so prices and bars are compared, not
  sizing; commission (a fraction of each fill's notional) from ``QALPHA_REF_COMMISSION``,
  default 0.

The SMAs are pandas rolling means in float; the engine compares exact sums. A disagreement can
only come from a near-tie the float rounding decides differently — the test reports it if so.
"""

from __future__ import annotations

import json
import os
import sys

import pandas as pd
from backtesting import Backtest, Strategy

FULL = [
    "open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
    "count", "taker_buy_volume", "taker_buy_quote_volume", "ignore",
]
SHORT = ["timestamp", "open", "high", "low", "close", "volume"]


def read_klines(path: str) -> pd.DataFrame:
    with open(path) as f:
        first = f.readline().strip().split(",")
    header = not first[0].strip().isdigit()
    names = FULL if len(first) >= 12 else SHORT
    df = pd.read_csv(path, header=0 if header else None, names=names)
    t = pd.to_datetime(df[names[0]].astype("int64"), unit="ms", utc=True)
    out = pd.DataFrame(
        {
            "Open": df["open"].astype(float).values,
            "High": df["high"].astype(float).values,
            "Low": df["low"].astype(float).values,
            "Close": df["close"].astype(float).values,
            "Volume": df["volume"].astype(float).values,
        },
        index=pd.DatetimeIndex(t),
    )
    return out


def sma(values, n, warm):
    # backtesting.py starts calling next() one bar *after* every indicator is defined, which would
    # skip the first bar with enough history. The first `warm - 1` bars (before SMA(slow) exists)
    # are therefore 0 in both SMAs (fast == slow: "equal", no signal) so next() runs from the start
    # and decides on the first bar with enough history too.
    out = pd.Series(values).rolling(n).mean().values.copy()
    out[: warm - 1] = 0.0
    return out


def main(argv: list) -> int:
    path, fast, slow, out = argv[1], int(argv[2]), int(argv[3]), argv[4]
    data = read_klines(path)

    class SmaCross(Strategy):
        def init(self):
            self.fast = self.I(sma, self.data.Close, fast, slow)
            self.slow = self.I(sma, self.data.Close, slow, slow)

        def next(self):
            f, s = self.fast[-1], self.slow[-1]
            if f > s and not self.position.is_long:
                self.position.close()
                self.buy(size=1)
            elif f < s and not self.position.is_short:
                self.position.close()
                self.sell(size=1)

    bt = Backtest(
        data,
        SmaCross,
        cash=1e12,
        commission=float(os.environ.get("QALPHA_REF_COMMISSION", "0")),
        exclusive_orders=False,
        trade_on_close=False,
        finalize_trades=True,
    )
    stats = bt.run()
    trades = stats["_trades"]
    ms = lambda ts: int(pd.Timestamp(ts).value // 1_000_000)  # noqa: E731
    rows = [
        {
            "side": "long" if int(r.Size) > 0 else "short",
            "entry_bar": int(r.EntryBar),
            "exit_bar": int(r.ExitBar),
            "entry_time": ms(r.EntryTime),
            "exit_time": ms(r.ExitTime),
            "entry_price": float(r.EntryPrice),
            "exit_price": float(r.ExitPrice),
            "pnl": float(r.PnL),
        }
        for r in trades.itertuples()
    ]
    with open(out, "w") as f:
        json.dump({"bars": len(data), "trades": rows}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
