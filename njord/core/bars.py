"""The resampler: bars of every timeframe derived from 1-minute bars, on the UTC grid.

Backtest, paper and live all feed 1-minute bars through this one function of the
minutes, so every mode sees the same higher bars. A bar is emitted when its last minute
arrives; when a gap jumps past a bar's end, the bar is emitted as the jump is seen,
flagged incomplete (its `n_bars` says how many minutes it has). A bar still open when the
data end is never emitted: it is not a bar yet.
"""

from __future__ import annotations

from njord.core.time import MINUTE_MS, timeframe_ms
from njord.records import Bar


class Resampler:
    """One timeframe's bars from a stream of 1-minute bars, strictly increasing in time."""

    __slots__ = (
        "_close",
        "_filled",
        "_high",
        "_low",
        "_n",
        "_open",
        "_start",
        "_volume",
        "length_ms",
        "minutes",
        "timeframe",
    )

    def __init__(self, timeframe: str) -> None:
        self.timeframe = timeframe
        self.length_ms = timeframe_ms(timeframe)
        self.minutes = self.length_ms // MINUTE_MS
        self._n = 0
        self._start = self._filled = 0
        self._open = self._high = self._low = self._close = self._volume = 0.0

    def add(
        self,
        ts_ms: int,
        open_: float,
        high: float,
        low: float,
        close: float,
        volume: float,
        filled: bool,
    ) -> list[Bar]:
        """Take one minute; return the bars it completes (none, one, or a stale one the
        minute jumped past followed by the minute's own)."""
        out: list[Bar] = []
        start = ts_ms - ts_ms % self.length_ms
        if self._n and start != self._start:
            out.append(self._emit())
        if self._n:
            self._high = max(self._high, high)
            self._low = min(self._low, low)
            self._volume += volume
        else:
            self._start, self._open, self._high, self._low = start, open_, high, low
            self._volume, self._filled = volume, 0
        self._close = close
        self._n += 1
        self._filled += filled
        if ts_ms + MINUTE_MS == start + self.length_ms:
            out.append(self._emit())
        return out

    def _emit(self) -> Bar:
        n, self._n = self._n, 0
        return Bar(
            self._start,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
            self.timeframe,
            n,
            self._filled,
            n == self.minutes,
        )
