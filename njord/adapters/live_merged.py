"""Several symbols' live bars as one BarFeed: one `LiveFeed` per symbol, merged by minute.

Each symbol keeps its own feed (its klines polls, each in a thread of its own; its
backfill, backoff, stall and gap handling). A minute is handed to the loop once every
symbol's feed has a bar at or after it, as one batch whose rows carry their symbol, in
session order: a symbol that has no bar that minute (a gap the venue never filled) is
left out of it. A symbol whose klines stop altogether (the venue halted its trading)
holds the minutes back until they are `skip_after_bars` minutes old by the venue's clock;
then they go on without it, and it joins again from its next bar. The session's limits
(`--bars`, `--for`) are the merge's: a minute is handed out whole or not at all, so a
session that stops carries on from a whole minute. Nothing waits past the loop's deadline.
"""

from __future__ import annotations

import time
from collections import deque

import pyarrow as pa

from njord.adapters.live_feed import Limited, LiveFeed, Log
from njord.core.time import MINUTE_MS
from njord.data.history import BarBatch
from njord.data.merged import PerSymbol
from njord.data.qc import QcSummary, utc

# How often the symbols' feeds are looked at while a minute is incomplete: their requests
# run in threads of their own, so this only bounds how late a complete minute is seen.
LOOK_S = 0.02


class MergedLiveFeed(PerSymbol[LiveFeed], Limited):
    """BarFeed over one `LiveFeed` per symbol, in session order (the feeds set no limits
    of their own: `max_bars` and `deadline` are the merge's)."""

    def __init__(
        self,
        feeds: list[LiveFeed],
        *,
        max_bars: int | None = None,
        deadline: float | None = None,
        skip_after_bars: int = 30,
        log: Log | None = None,
    ) -> None:
        super().__init__(feeds)
        self.symbols = tuple(f.symbol for f in feeds)
        self.symbol = self.symbols[0]
        self.max_bars = max_bars
        self.deadline = deadline
        self.skip_after_bars = skip_after_bars
        self.log = log or (lambda level, msg, ctx: None)
        self.emitted = 0
        self.finished = False
        self._held: list[deque[BarBatch]] = [deque() for _ in feeds]
        self._last: int | None = None  # the last minute handed out
        self._left_out: set[str] = set()  # symbols whose stalled klines minutes went on without

    def start_at(self, ms: int | None) -> None:
        """Every symbol's first bar to ask for (None: the venue's latest)."""
        for feed in self.feeds:
            feed.start_at(ms)

    @property
    def summary(self) -> QcSummary:
        out = QcSummary(policy="live")
        for feed in self.feeds:
            out.bars_in += feed.summary.bars_in
            out.bars_out += feed.summary.bars_out
            out.gaps += feed.summary.gaps
            out.missing_bars += feed.summary.missing_bars
        return out

    def poll(self, deadline: float) -> BarBatch | None:
        """The next complete minute, or None when none is complete by `deadline`."""
        while True:
            if self._ended():
                self.finished = True  # what is held is not handed out: a minute is whole
                return None
            for held, feed in zip(self._held, self.feeds, strict=True):
                if not held:
                    bar = feed.poll(time.monotonic())  # takes an answer, or asks: no wait
                    if bar is not None and (self._last is None or bar.ts_ms[0] > self._last):
                        held.append(bar)
            if any(self._held) and (all(self._held) or self._stalled_past()):
                return self._minute()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(LOOK_S, left))

    def _stalled_past(self) -> bool:
        """Whether every symbol holding nothing has answered, `skip_after_bars` minutes
        or more after the earliest minute held closed (by the venue's clock in that
        answer), with no bar from it on: its klines stopped, it is not merely slower (a
        feed backfilling, or not answered yet, has a clock behind that or none)."""
        minute = min(held[0].ts_ms[0] for held in self._held if held)
        limit = minute + MINUTE_MS + self.skip_after_bars * MINUTE_MS
        late = [feed for held, feed in zip(self._held, self.feeds, strict=True) if not held]
        return all(feed.venue_now_ms >= limit for feed in late)

    def _minute(self) -> BarBatch:
        """The earliest minute any symbol holds, every symbol's bar of it in session order."""
        minute = min(held[0].ts_ms[0] for held in self._held if held)
        parts, lags = [], []
        for held, feed in zip(self._held, self.feeds, strict=True):
            symbol = feed.symbol
            if not held:  # stalled past the limit: the minutes go on without it
                if symbol not in self._left_out:
                    self._left_out.add(symbol)
                    self.log(
                        "WARNING",
                        f"{symbol}: no bar since before {utc(minute)}; the session's "
                        "minutes go on without it until its klines come back",
                        {"symbol": symbol, "from_ms": minute},
                    )
                if feed.next_ms is not None and feed.next_ms <= minute:
                    feed.start_at(minute + MINUTE_MS)  # never a minute already handed out
                continue
            if held[0].ts_ms[0] != minute:
                continue
            bar = held.popleft()
            if symbol in self._left_out:
                self._left_out.discard(symbol)
                self.log("INFO", f"{symbol}: bars again from {utc(minute)}", {"symbol": symbol})
            parts.append(bar.arrow.append_column("symbol", pa.array([symbol], pa.string())))
            if bar.lag_ms is not None:
                lags.append(bar.lag_ms)
        self._last = minute
        self.emitted += 1
        rows = pa.Table.from_batches(parts).combine_chunks().to_batches()[0]
        return BarBatch(rows, lag_ms=max(lags) if lags else None)
