"""A finite bar source (history, stored bars) as the loop's BarFeed: polled, never waited on."""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from typing import Protocol

from njord.data.history import BarBatch
from njord.data.qc import QcEvent, QcSummary


class Batches(Protocol):
    @property
    def events(self) -> list[QcEvent]: ...

    @property
    def summary(self) -> QcSummary: ...

    def batches(self) -> Iterator[BarBatch]: ...


class Polled:
    """`poll` hands out the next batch at once; `finished` once there is none. A restart
    takes the bars it already committed with `through`, and the loop polls the rest."""

    def __init__(self, source: Batches) -> None:
        self.source = source
        self._it = source.batches()
        self._held: BarBatch | None = None
        self.finished = False

    @property
    def events(self) -> list[QcEvent]:
        return self.source.events

    @property
    def summary(self) -> QcSummary:
        return self.source.summary

    def poll(self, deadline: float) -> BarBatch | None:
        if self._held is not None:
            batch, self._held = self._held, None
            return batch
        following = next(self._it, None)
        if following is None:
            self.finished = True
        return following

    def through(self, last_ms: int, *, after_ms: int | None = None) -> Iterator[BarBatch]:
        """The batches up to and including the bar at `last_ms` (the last one cut there),
        from the first bar after `after_ms` (a restart from a snapshot); the bars after
        `last_ms` stay for `poll`, their batch marked to start after it."""
        while not self.finished:
            batch = self.poll(0.0)
            if batch is None:
                return
            if after_ms is not None and batch.ts_ms[0] <= after_ms:
                skip = bisect.bisect_right(batch.ts_ms, after_ms)
                if skip == batch.n:
                    continue
                batch = BarBatch(batch.arrow.slice(skip), lag_ms=batch.lag_ms)
            if batch.ts_ms[-1] <= last_ms:
                yield batch
                continue
            cut = bisect.bisect_right(batch.ts_ms, last_ms)
            if cut:
                head = BarBatch(batch.arrow.slice(0, cut), lag_ms=batch.lag_ms)
                yield head
            batch.first = cut
            self._held = batch
            return
