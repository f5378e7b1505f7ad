"""Several symbols' live bars as one BarFeed: one `LiveFeed` per symbol, merged by minute.

Each symbol keeps its own feed (its klines polls, each in a thread of its own; its
backfill, backoff, stall and gap handling). A minute is handed to the loop once every
symbol's feed has a bar at or after it (or has ended), as one batch whose rows carry their
symbol, in session order: a symbol that has no bar that minute (a gap the venue never
filled) is left out of it, and a symbol whose klines are late holds the minute back
until they come, as one symbol's feed does. Nothing waits past the loop's deadline.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator

import pyarrow as pa

from njord.adapters.live_feed import LiveFeed
from njord.data.history import BarBatch
from njord.data.qc import QcEvent, QcSummary
from njord.manifest import DataSource

# How often the symbols' feeds are looked at while a minute is incomplete: their requests
# run in threads of their own, so this only bounds how late a complete minute is seen.
LOOK_S = 0.02


class MergedLiveFeed:
    """BarFeed over one `LiveFeed` per symbol, in session order."""

    def __init__(self, feeds: list[LiveFeed]) -> None:
        self.feeds = feeds
        self.symbols = tuple(f.symbol for f in feeds)
        self.symbol = self.symbols[0]
        self._held: list[deque[BarBatch]] = [deque() for _ in feeds]
        self.finished = False

    def start_at(self, ms: int | None) -> None:
        """Every symbol's first bar to ask for (None: the venue's latest)."""
        for feed in self.feeds:
            feed.next_ms = ms

    @property
    def summary(self) -> QcSummary:
        out = QcSummary(policy="live")
        for feed in self.feeds:
            out.bars_in += feed.summary.bars_in
            out.bars_out += feed.summary.bars_out
            out.gaps += feed.summary.gaps
            out.missing_bars += feed.summary.missing_bars
        return out

    @property
    def events(self) -> list[QcEvent]:
        return [
            QcEvent(e.kind, e.from_ts_ms, e.to_ts_ms, e.bars, f.symbol)
            for f in self.feeds
            for e in f.events
        ]

    def sources(self) -> list[DataSource]:
        return [s for f in self.feeds for s in f.sources()]

    def poll(self, deadline: float) -> BarBatch | None:
        """The next complete minute, or None when none is complete by `deadline`."""
        while True:
            for held, feed in zip(self._held, self.feeds, strict=True):
                if not held and not feed.finished:
                    bar = feed.poll(time.monotonic())  # takes an answer, or asks: no wait
                    if bar is not None:
                        held.append(bar)
            if all(
                held or feed.finished for held, feed in zip(self._held, self.feeds, strict=True)
            ):
                if not any(self._held):
                    self.finished = True
                    return None
                return self._minute()
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            time.sleep(min(LOOK_S, left))

    def batches(self) -> Iterator[BarBatch]:
        """Every minute until the feeds end, waiting as long as it takes (tests, tools)."""
        while not self.finished:
            batch = self.poll(float("inf"))
            if batch is not None:
                yield batch

    def _minute(self) -> BarBatch:
        """The earliest minute any symbol holds, every symbol's bar of it in session order."""
        minute = min(held[0].ts_ms[0] for held in self._held if held)
        parts, lags = [], []
        for held, symbol in zip(self._held, self.symbols, strict=True):
            if held and held[0].ts_ms[0] == minute:
                bar = held.popleft()
                parts.append(bar.arrow.append_column("symbol", pa.array([symbol], pa.string())))
                if bar.lag_ms is not None:
                    lags.append(bar.lag_ms)
        rows = pa.Table.from_batches(parts).combine_chunks().to_batches()[0]
        return BarBatch(rows, lag_ms=max(lags) if lags else None)
