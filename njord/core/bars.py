"""The resampler: bars of every timeframe derived from 1-minute bars, on the UTC grid.

Backtest, paper and live all feed 1-minute bars through this one function of the
minutes, so every mode sees the same higher bars (a backtest on coarser data, e.g.
`data.timeframe = "1h"`, derives the longer ones from its own bars the same way). A bar is
emitted when its last minute arrives; when a gap jumps past a bar's end, the bar is
emitted as the jump is seen, flagged incomplete (its `n_bars` says how many input bars it
has). A bar still open when the data end is never emitted: it is not a bar yet.
"""

from __future__ import annotations

from typing import Annotated

import msgspec

from njord.core.history import BarBuffer, BufferSnapshot, Floats, History, Ints
from njord.core.time import MINUTE_MS, TIMEFRAMES, derives, timeframe_ms
from njord.errors import StrategyError
from njord.records import Bar

# The layout of a `Timeframes` snapshot; bumped when old snapshots cannot be read.
SNAPSHOT_FORMAT = 1


class PartialBar(msgspec.Struct, frozen=True, array_like=True, forbid_unknown_fields=True):
    """A resampler's bar in progress: `n` input bars so far (0: none, the rest zeros)."""

    n: Annotated[int, msgspec.Meta(ge=0)]
    start_ms: int
    filled: Annotated[int, msgspec.Meta(ge=0)]
    open: float
    high: float
    low: float
    close: float
    volume: float


class TimeframesSnapshot(
    msgspec.Struct,
    frozen=True,
    array_like=True,
    forbid_unknown_fields=True,
    tag="njord.timeframes",
):
    """What a strategy was fed, as of one bar: every derived timeframe's bar in progress
    and, per declared timeframe, the last `history` bars `ctx.history` can show."""

    format: int
    symbol: str
    base: str
    declared: tuple[str, ...]
    history: int
    partial: tuple[PartialBar, ...]  # one per derived timeframe, shortest first
    buffers: tuple[BufferSnapshot, ...]  # one per declared timeframe when history > 0


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

    def snapshot(self) -> PartialBar:
        if not self._n:  # the fields still hold the last bar: not state, and not bytes
            return PartialBar(0, 0, 0, 0.0, 0.0, 0.0, 0.0, 0.0)
        return PartialBar(
            self._n,
            self._start,
            self._filled,
            self._open,
            self._high,
            self._low,
            self._close,
            self._volume,
        )

    def restore(self, partial: PartialBar) -> None:
        if partial.n >= self.minutes or partial.start_ms % self.length_ms:
            raise ValueError(
                f"a {self.timeframe} bar in progress with {partial.n} bars from "
                f"{partial.start_ms}: not one this timeframe can hold"
            )
        self._n, self._start, self._filled = partial.n, partial.start_ms, partial.filled
        self._open, self._high, self._low = partial.open, partial.high, partial.low
        self._close, self._volume = partial.close, partial.volume

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

    def of(self, symbol: str) -> Timeframes:
        """The timeframes of `symbol`'s bars: a one-symbol session has only these."""
        return self

    @property
    def base_only(self) -> bool:
        """Only the base timeframe declared: `step` delivers each bar as it comes."""
        return not self._resamplers

    @property
    def base_buffer(self) -> BarBuffer | None:
        """The base bars' history, when kept: a base-only step only advances its end."""
        return self._base

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

    def snapshot(self) -> bytes:
        """Everything `step` and `history` depend on, as of the last stepped bar: the
        bars in progress and the last `history` bars of each timeframe (numpy columns
        as exact bytes). Same state, same bytes; bounded by `history`, not the run."""
        state = TimeframesSnapshot(
            format=SNAPSHOT_FORMAT,
            symbol=self.symbol,
            base=self.base,
            declared=self.declared,
            history=self.size,
            partial=tuple(r.snapshot() for r in self._resamplers),
            buffers=tuple(self._buffers[tf].snapshot() for tf in self._buffers),
        )
        return msgspec.msgpack.encode(state)

    def restore(self, data: bytes) -> None:
        """Continue from a `snapshot` of a `Timeframes` built with the same arguments:
        the next `load` and `step` take the bars after the snapshot's last. StrategyError
        when the bytes are not such a snapshot, and then nothing has changed."""
        state = self._decode(data)
        base_ms = timeframe_ms(self.base)
        resamplers = [Resampler(r.timeframe, base_ms) for r in self._resamplers]
        buffers = {tf: BarBuffer(self.size) for tf in self._buffers}
        try:
            for r, partial in zip(resamplers, state.partial, strict=True):
                r.restore(partial)
            for buffer, kept in zip(buffers.values(), state.buffers, strict=True):
                buffer.restore(kept)
        except ValueError as e:
            raise StrategyError(f"timeframes snapshot does not hold: {e}") from e
        self._resamplers, self._buffers = resamplers, buffers
        self._base = buffers.get(self.base)

    def _decode(self, data: bytes) -> TimeframesSnapshot:
        try:
            state = msgspec.msgpack.decode(data, type=TimeframesSnapshot)
        except msgspec.DecodeError as e:
            raise StrategyError(f"not a njord timeframes snapshot: {e}") from e
        if state.format != SNAPSHOT_FORMAT:
            raise StrategyError(
                f"timeframes snapshot has format {state.format}; "
                f"this njord reads format {SNAPSHOT_FORMAT}"
            )
        mine = (self.symbol, self.base, self.declared, self.size)
        theirs = (state.symbol, state.base, state.declared, state.history)
        if theirs != mine:
            raise StrategyError(
                "timeframes snapshot of (symbol, base, timeframes, history) "
                f"{theirs} cannot restore {mine}"
            )
        if len(state.partial) != len(self._resamplers) or len(state.buffers) != len(self._buffers):
            raise StrategyError("timeframes snapshot does not hold one entry per timeframe")
        return state

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


class SymbolFrames:
    """The timeframes of a session with several symbols: one `Timeframes` per symbol, in
    session order, each stepped on its own symbol's bars only."""

    def __init__(self, frames: list[Timeframes]) -> None:
        self.frames = frames
        self.by_symbol = {f.symbol: f for f in frames}
        first = frames[0]
        self.symbol, self.base, self.declared = first.symbol, first.base, first.declared
        self.wants_batches = first.wants_batches

    def of(self, symbol: str) -> Timeframes:
        return self.by_symbol[symbol]

    def history(self, symbol: str, timeframe: str, n: int) -> History:
        frames = self.by_symbol.get(symbol)
        if frames is None:
            held = ", ".join(self.by_symbol)
            raise ValueError(f"no bars of {symbol!r} in this session (it trades {held})")
        return frames.history(symbol, timeframe, n)

    def snapshot(self) -> bytes:
        """Each symbol's snapshot, in session order."""
        return msgspec.msgpack.encode([f.snapshot() for f in self.frames])

    def restore(self, data: bytes) -> None:
        try:
            parts = msgspec.msgpack.decode(data, type=list[bytes])
        except msgspec.DecodeError as e:
            raise StrategyError(f"not a njord several-symbol timeframes snapshot: {e}") from e
        if len(parts) != len(self.frames):
            raise StrategyError(
                f"timeframes snapshot of {len(parts)} symbols cannot restore {len(self.frames)}"
            )
        for frames, part in zip(self.frames, parts, strict=True):
            frames.restore(part)
