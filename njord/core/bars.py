"""The resampler: bars of every timeframe derived from 1-minute bars, on the UTC grid.

Backtest, paper and live all feed 1-minute bars through this one function of the
minutes, so every mode sees the same higher bars (a backtest on coarser data, e.g.
`data.timeframe = "1h"`, derives the longer ones from its own bars the same way). A bar is
emitted when its last minute arrives; when a gap jumps past a bar's end, the bar is
emitted as the jump is seen, flagged incomplete (its `n_bars` says how many input bars it
has). A bar still open when the data end is never emitted: it is not a bar yet.
"""

from __future__ import annotations

from njord.core.history import BarBuffer, Floats, History, Ints
from njord.core.time import MINUTE_MS, TIMEFRAMES, derives, timeframe_ms
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
        "base_ms",
        "length_ms",
        "minutes",
        "timeframe",
    )

    def __init__(self, timeframe: str, base_ms: int = MINUTE_MS) -> None:
        self.timeframe = timeframe
        self.length_ms = timeframe_ms(timeframe)
        self.base_ms = base_ms  # the length of the bars it is fed
        self.minutes = self.length_ms // base_ms  # input bars in a complete bar
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
        if ts_ms + self.base_ms == start + self.length_ms:
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


class Timeframes:
    """The bars a strategy declared, bar by bar, and the history it may look at.

    `step` takes each bar of the session's `base` timeframe (1-minute bars, or the data's
    longer bars) and returns what to deliver for it: the bar itself (if declared), then
    every derived bar it completed, shortest timeframe first. Every buffer is up to date
    before the first delivery of the step.
    """

    def __init__(
        self, symbol: str, timeframes: tuple[str, ...], history: int, base: str = "1m"
    ) -> None:
        if not timeframes:
            raise ValueError("a strategy must declare at least one timeframe")
        for tf in timeframes:
            if not derives(tf, base):  # ValueError names the timeframes there are
                raise ValueError(f"{tf} bars cannot be built from {base} bars")
        self.symbol = symbol
        self.base = base
        self.declared = tuple(sorted(set(timeframes), key=TIMEFRAMES.__getitem__))
        self.size = history
        self._base_declared = base in self.declared
        base_ms = timeframe_ms(base)
        self._resamplers = [Resampler(tf, base_ms) for tf in self.declared if tf != base]
        self._buffers = {tf: BarBuffer(history) for tf in self.declared} if history else {}
        self._base = self._buffers.get(base)

    @property
    def wants_batches(self) -> bool:
        """Whether `load` needs the base bars ahead of `step`."""
        return self._base is not None

    def load(
        self, ts: Ints, open_: Floats, high: Floats, low: Floats, close: Floats, volume: Floats
    ) -> None:
        """The next base bars `step` will see, in one piece (hidden until stepped on)."""
        if self._base is not None:
            self._base.load(ts, open_, high, low, close, volume)

    def step(self, bar: Bar) -> list[Bar]:
        if self._base is not None:
            self._base.end += 1
        if not self._resamplers:
            return [bar]  # base bars only: the common case, on every bar
        out = [bar] if self._base_declared else []
        for r in self._resamplers:
            done = r.add(
                bar.ts_ms,
                bar.open,
                bar.high,
                bar.low,
                bar.close,
                bar.volume,
                bar.n_filled > 0,
            )
            if done:
                out += done
                if self._buffers:
                    for built in done:
                        self._buffers[r.timeframe].append(built)
        return out  # resamplers go shortest first, each in time order

    def history(self, symbol: str, timeframe: str, n: int) -> History:
        buffer = self._buffers.get(timeframe)
        if symbol != self.symbol:
            raise ValueError(f"no bars of {symbol!r} in this session (it trades {self.symbol})")
        if buffer is None:
            if not self.size:
                raise ValueError("history needs the strategy to declare `history` (bars kept)")
            raise ValueError(
                f"no {timeframe} history: the strategy declares timeframes {self.declared}"
            )
        if not 0 <= n <= self.size:
            raise ValueError(f"history of {n} bars asked; the strategy keeps {self.size}")
        end = buffer.end
        return History(buffer, end - n if end > n else 0, end)  # on every bar: kept lean
