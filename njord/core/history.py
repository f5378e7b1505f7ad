"""What a strategy can look back on: the last bars of a timeframe as numpy arrays.

The loop keeps one `BarBuffer` per (symbol, timeframe), sized by the strategy's
`history`; `ctx.history` hands out `History` views of it, never copies. A view is valid
for the bar it was asked at: the buffer compacts in place as it fills, so keep numbers,
not views, from one bar to the next.
"""

from __future__ import annotations

import msgspec
import numpy as np
import numpy.typing as npt

from njord.records import Bar

Floats = npt.NDArray[np.float64]
Ints = npt.NDArray[np.int64]


class BufferSnapshot(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """A buffer's last visible bars, its columns as little-endian bytes: exact, and the
    same bytes on every machine."""

    ts: bytes  # int64
    open: bytes  # float64, as are the others
    high: bytes
    low: bytes
    close: bytes
    volume: bytes


_COLUMNS = ("ts", "open", "high", "low", "close", "volume")


class BarBuffer:
    """The last `size` bars of one timeframe, contiguous so any tail is a plain slice.

    Bars are written past the visible end ahead of time (a whole batch of 1-minute bars at
    once, the cheap way) and revealed one by one by `reveal`; a view never reaches past
    the bar being decided on.
    """

    __slots__ = ("close", "end", "high", "low", "open", "size", "ts", "volume")

    def __init__(self, size: int) -> None:
        self.size = size
        self.end = 0  # bars [0, end) are visible
        self.ts: Ints = np.zeros(0, np.int64)
        self.open: Floats = np.zeros(0)
        self.high: Floats = np.zeros(0)
        self.low: Floats = np.zeros(0)
        self.close: Floats = np.zeros(0)
        self.volume: Floats = np.zeros(0)

    def load(
        self, ts: Ints, open_: Floats, high: Floats, low: Floats, close: Floats, volume: Floats
    ) -> None:
        """Keep the visible tail and queue these bars behind it, still hidden."""
        keep = min(self.end, self.size)
        lo = self.end - keep
        self.ts = np.concatenate((self.ts[lo : self.end], ts))
        self.open = np.concatenate((self.open[lo : self.end], open_))
        self.high = np.concatenate((self.high[lo : self.end], high))
        self.low = np.concatenate((self.low[lo : self.end], low))
        self.close = np.concatenate((self.close[lo : self.end], close))
        self.volume = np.concatenate((self.volume[lo : self.end], volume))
        self.end = keep
        self._seal(False)

    def append(self, bar: Bar) -> None:
        """Write one bar and show it (derived timeframes: a few bars an hour)."""
        if self.end == len(self.ts):
            grown = max(2 * self.size, 64)
            keep = min(self.end, self.size)
            lo = self.end - keep
            for name in ("ts", "open", "high", "low", "close", "volume"):
                old = getattr(self, name)
                new = np.zeros(keep + grown, old.dtype)
                new[:keep] = old[lo : self.end]
                setattr(self, name, new)
            self.end = keep
        i = self.end
        self._seal(True)
        self.ts[i] = bar.ts_ms
        self.open[i] = bar.open
        self.high[i] = bar.high
        self.low[i] = bar.low
        self.close[i] = bar.close
        self.volume[i] = bar.volume
        self._seal(False)
        self.end = i + 1

    def snapshot(self) -> BufferSnapshot:
        """The last `size` visible bars (fewer at the start), nothing hidden or older:
        all `ctx.history` can show, and never more than `size` bars."""
        lo = max(self.end - self.size, 0)
        ts = self.ts[lo : self.end].astype("<i8").tobytes()
        floats = (getattr(self, c)[lo : self.end].astype("<f8").tobytes() for c in _COLUMNS[1:])
        return BufferSnapshot(ts, *floats)

    def restore(self, snapshot: BufferSnapshot) -> None:
        """Show exactly the snapshot's bars; the next `load` or `append` goes after them."""
        ts = np.frombuffer(snapshot.ts, "<i8").astype(np.int64)
        columns = [
            np.frombuffer(getattr(snapshot, c), "<f8").astype(np.float64) for c in _COLUMNS[1:]
        ]
        if any(len(c) != len(ts) for c in columns) or len(ts) > self.size:
            lengths = [len(ts), *(len(c) for c in columns)]
            raise ValueError(f"bar columns of lengths {lengths} for a buffer of {self.size}")
        if np.any(np.diff(ts) <= 0):
            raise ValueError("bar times that do not increase")
        for name, column in zip(_COLUMNS, (ts, *columns), strict=True):
            setattr(self, name, column)
        self.end = len(ts)
        self._seal(False)

    def _seal(self, writeable: bool) -> None:
        # Views of a read-only array are read-only: a strategy cannot rewrite the bars
        # it was shown, and no view pays for the flag.
        for column in (self.ts, self.open, self.high, self.low, self.close, self.volume):
            column.flags.writeable = writeable


class History(msgspec.Struct, frozen=True, gc=False):
    """The last n completed bars, oldest first (fewer at the start of a session). Arrays
    are read-only views: sliced when asked for, so an unused column costs nothing. (A
    Struct: built on every bar, and its C constructor is a third of a Python one.)"""

    _buffer: BarBuffer
    _lo: int
    _hi: int

    def __len__(self) -> int:
        return self._hi - self._lo

    def since(self, ts_ms: int) -> History:
        """Only the bars that open at `ts_ms` or later (a walk-forward window's strategy
        sees what its own backtest, starting there, would have)."""
        skip = int(np.searchsorted(self.ts, ts_ms))
        return History(self._buffer, self._lo + skip, self._hi) if skip else self

    @property
    def ts(self) -> Ints:
        return self._buffer.ts[self._lo : self._hi]

    @property
    def open(self) -> Floats:
        return self._buffer.open[self._lo : self._hi]

    @property
    def high(self) -> Floats:
        return self._buffer.high[self._lo : self._hi]

    @property
    def low(self) -> Floats:
        return self._buffer.low[self._lo : self._hi]

    @property
    def close(self) -> Floats:
        return self._buffer.close[self._lo : self._hi]

    @property
    def volume(self) -> Floats:
        return self._buffer.volume[self._lo : self._hi]
