"""Several symbols' history as one BarFeed: per-symbol Parquet streams merged by minute.

Each symbol keeps its own `HistoryFeed` (its files, its QC, its gap policy: a minute a
symbol lacks is that symbol's gap only). The merge holds at most one pending batch per
symbol and hands out every row up to the earliest of their last minutes, in (minute,
session order) order, so a minute's bars are never split across batches and memory stays
bounded by the symbols' batch size, not by the history's length.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Generic, Protocol, TypeVar

import numpy as np
import pyarrow as pa

from njord.data.columns import numbers
from njord.data.history import BarBatch, HistoryFeed
from njord.data.qc import QcEvent, QcSummary
from njord.manifest import DataSource


class SymbolFeed(Protocol):
    """One symbol's bars: what a merge of several reports of each."""

    @property
    def symbol(self) -> str: ...

    @property
    def events(self) -> list[QcEvent]: ...

    def sources(self) -> list[DataSource]: ...


F = TypeVar("F", bound=SymbolFeed)


class PerSymbol(Generic[F]):
    """A merge of one feed per symbol (history or live): what QC found in each feed,
    labelled with its symbol, and every feed's sources."""

    def __init__(self, feeds: list[F]) -> None:
        self.feeds = feeds

    @property
    def events(self) -> list[QcEvent]:
        return [
            QcEvent(e.kind, e.from_ts_ms, e.to_ts_ms, e.bars, f.symbol)
            for f in self.feeds
            for e in f.events
        ]

    def sources(self) -> list[DataSource]:
        return [s for f in self.feeds for s in f.sources()]


class MergedFeed(PerSymbol[HistoryFeed]):
    """BarFeed over several `HistoryFeed`s, one per symbol, in session order."""

    def __init__(self, feeds: list[HistoryFeed]) -> None:
        super().__init__(feeds)
        self.symbols = tuple(f.symbol for f in feeds)
        self.symbol = self.symbols[0]

    def fresh(self) -> MergedFeed:
        return MergedFeed([f.fresh() for f in self.feeds])

    @property
    def summary(self) -> QcSummary:
        """The symbols' QC counts, summed (their events say which symbol each is of)."""
        out = QcSummary(policy=self.feeds[0].summary.policy)
        for f in self.feeds:
            s = f.summary
            out.bars_in += s.bars_in
            out.bars_out += s.bars_out
            out.gaps += s.gaps
            out.missing_bars += s.missing_bars
            out.filled_bars += s.filled_bars
            out.duplicates += s.duplicates
            firsts = [m for m in (out.first_gap_ms, s.first_gap_ms) if m is not None]
            lasts = [m for m in (out.last_gap_ms, s.last_gap_ms) if m is not None]
            out.first_gap_ms = min(firsts) if firsts else None
            out.last_gap_ms = max(lasts) if lasts else None
        return out

    def batches(self) -> Iterator[BarBatch]:
        for batch in self.checked_batches():
            yield BarBatch(batch)

    def checked_batches(self) -> Iterator[pa.RecordBatch]:
        streams = [f.checked_batches() for f in self.feeds]
        pending: list[pa.RecordBatch | None] = [None] * len(streams)
        live = list(range(len(streams)))
        while True:
            for k in list(live):
                if pending[k] is None:
                    pending[k] = next(streams[k], None)
                    if pending[k] is None:
                        live.remove(k)
            held = [(k, b) for k, b in enumerate(pending) if b is not None]
            if not held:
                return
            # Every symbol still streaming has bars up to its pending batch's last minute
            # at least: rows up to the earliest of those are complete minutes.
            lasts = [int(numbers(b.column("ts_ms"))[-1]) for k, b in held if k in live]
            cutoff = (
                min(lasts) if lasts else max(int(numbers(b.column("ts_ms"))[-1]) for _, b in held)
            )
            parts = []
            for k, b in held:
                ts = numbers(b.column("ts_ms"))
                cut = int(np.searchsorted(ts, cutoff, side="right"))
                if cut:
                    parts.append(_labelled(b.slice(0, cut), self.symbols[k]))
                pending[k] = b.slice(cut) if cut < len(b) else None
            yield _by_minute(parts)


def _labelled(batch: pa.RecordBatch, symbol: str) -> pa.RecordBatch:
    return batch.append_column("symbol", pa.array([symbol] * len(batch), pa.string()))


def _by_minute(parts: list[pa.RecordBatch]) -> pa.RecordBatch:
    """The symbols' rows in (minute, session order) order: a stable sort by minute of the
    rows laid out symbol after symbol."""
    table = pa.Table.from_batches(parts).combine_chunks()
    order = np.argsort(numbers(table.column("ts_ms").chunk(0)), kind="stable")
    return table.take(pa.array(order)).to_batches()[0]
