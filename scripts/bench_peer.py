"""The peer of issue 19's comparison: backtesting.py over the bench's bars (SMA 10/30, 0.998
of the cash in, a 0.1 % fee, fills at the bar's close, the last trade closed at the end), as
the issue measured it. It runs under an interpreter of its own with backtesting and pyarrow
installed (`scripts/bench.py --sizes peer --peer-python PATH`): neither is njord's
dependency. Prints one JSON line: the bars and the trades (the run must have traded).
"""

from __future__ import annotations

import json
import sys
from typing import Any

import pyarrow.parquet as pq
from backtesting import Strategy
from backtesting.lib import FractionalBacktest, crossover
from backtesting.test import SMA


class SmaCross(Strategy):
    fast, slow = 10, 30

    def init(self) -> None:
        self.fast_sma = self.I(SMA, self.data.Close, self.fast)
        self.slow_sma = self.I(SMA, self.data.Close, self.slow)

    def next(self) -> None:
        if crossover(self.fast_sma, self.slow_sma):
            if not self.position:
                self.buy(size=0.998)
        elif crossover(self.slow_sma, self.fast_sma):
            self.position.close()


def main(bars: str) -> dict[str, Any]:
    frame = pq.read_table(bars).to_pandas().set_index("ts_utc")
    frame.columns = [name.capitalize() for name in frame.columns]
    backtest = FractionalBacktest(
        frame,
        SmaCross,
        cash=10_000,
        commission=0.001,
        trade_on_close=True,
        finalize_trades=True,
    )
    stats = backtest.run()
    return {"bars": len(frame), "trades": int(stats["# Trades"])}


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1])))
