"""Quality control of bar batches (SPEC §5), vectorised with numpy over the Arrow buffers
(njord.data.columns: no pandas import, no pyarrow.compute).

Every batch passes `check_values` (grid, order, duplicates, OHLC, null/NaN/inf/negative);
`GapPolicy` then refuses, fills or skips the missing bars (minutes, or the longer bars of
a session on coarser data), carrying state across batch boundaries so a stream of batches
behaves exactly like one table.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

import msgspec
import numpy as np
import numpy.typing as npt
import pyarrow as pa

from njord.core.time import MINUTE_MS, timeframe_ms
from njord.data.columns import Bools, from_flags, from_numbers, nulls, numbers
from njord.errors import DataError

PRICE_COLUMNS = ("open", "high", "low", "close")
BAR_COLUMNS = ("ts_ms", "open", "high", "low", "close", "volume")


def utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


class QcEvent(msgspec.Struct, frozen=True):
    kind: Literal["gap", "duplicate", "filled", "skipped"]
    from_ts_ms: int
    to_ts_ms: int
    bars: int
    symbol: str = ""  # a several-symbol session's: whose bars; "" the session's only symbol


class QcSummary(msgspec.Struct, kw_only=True):
    policy: str
    bars_in: int = 0
    bars_out: int = 0
    gaps: int = 0
    missing_bars: int = 0
    filled_bars: int = 0
    duplicates: int = 0
    first_gap_ms: int | None = None
    last_gap_ms: int | None = None


def _first(mask: Bools) -> int:
    return int(np.argmax(mask))


def check_values(
    batch: pa.RecordBatch, *, prev_ts: int | None, source: str, timeframe: str = "1m"
) -> None:
    """Refuse a batch whose rows could not be real bars of `timeframe`. Names the first
    bad row."""
    ts = batch.column("ts_ms")
    if ts.null_count:
        raise DataError(f"{source}: row {_first(nulls(ts)) + 1} has no timestamp")
    for name in (*PRICE_COLUMNS, "volume"):
        col = batch.column(name)
        values = numbers(col)
        bad = ~np.isfinite(values) | (values < 0) | nulls(col)  # an empty cell is bad too
        if bad.any():
            i = _first(bad)
            value = col[i].as_py()
            what = (
                f"no {name} (an empty cell)"
                if value is None
                else f"{name} = {value} (NaN, inf or negative)"
            )
            raise DataError(f"{source}: bar {utc(ts[i].as_py())} has {what}")
    high, low = batch.column("high"), batch.column("low")
    open_, close = numbers(batch.column("open")), numbers(batch.column("close"))
    bad = (numbers(high) < np.maximum(open_, close)) | (numbers(low) > np.minimum(open_, close))
    if bad.any():
        i = _first(bad)
        raise DataError(
            f"{source}: bar {utc(ts[i].as_py())} is inconsistent: high {high[i].as_py()} "
            f"low {low[i].as_py()} open {batch.column('open')[i].as_py()} "
            f"close {batch.column('close')[i].as_py()}"
        )
    stamps = numbers(ts)
    off_grid = stamps % timeframe_ms(timeframe) != 0
    if off_grid.any():
        i = _first(off_grid)
        raise DataError(f"{source}: timestamp {ts[i].as_py()} is not on the {timeframe} grid")
    _check_order(stamps, prev_ts=prev_ts, source=source)


def check_symbol(column: pa.Array | pa.ChunkedArray, *, want: str, source: str, by: str) -> None:
    """Refuse bars labelled with another symbol than the one they are used as."""
    import pyarrow.compute as pc

    held = sorted(pc.unique(column).drop_null().to_pylist())
    if any(s != want for s in held):
        raise DataError(f"{source}: data holds {', '.join(held)}, {by} {want}")


def _check_order(ts: npt.NDArray[Any], *, prev_ts: int | None, source: str) -> None:
    if prev_ts is not None and len(ts) and ts[0] <= prev_ts:
        _order_error(prev_ts, int(ts[0]), source)
    bad = np.diff(ts) <= 0
    if bad.any():
        i = _first(bad) + 1
        _order_error(int(ts[i - 1]), int(ts[i]), source)


def _order_error(before: int, after: int, source: str) -> None:
    what = "duplicate" if before == after else "out-of-order"
    raise DataError(
        f"{source}: {what} timestamp {utc(after)} after {utc(before)} "
        "(import the data again with `njord data import` to sort and de-duplicate)"
    )


def gap_indices(
    ts: pa.Array, prev_ts: int | None, bar_ms: int = MINUTE_MS
) -> list[tuple[int, int, int]]:
    """(row index, previous ts, ts) for every row that follows a gap in bars of `bar_ms`."""
    found: list[tuple[int, int, int]] = []
    stamps = numbers(ts)
    if prev_ts is not None and len(stamps) and stamps[0] - prev_ts > bar_ms:
        found.append((0, prev_ts, int(stamps[0])))
    for after in np.flatnonzero(np.diff(stamps) > bar_ms).tolist():
        i = after + 1
        found.append((i, int(stamps[i - 1]), int(stamps[i])))
    return found


class GapPolicy:
    """Applies `data.gaps` to a stream of checked batches of bars `bar_ms` long."""

    def __init__(
        self,
        policy: Literal["strict", "forward", "none"],
        summary: QcSummary,
        bar_ms: int = MINUTE_MS,
    ) -> None:
        self.policy = policy
        self.summary = summary
        self.bar_ms = bar_ms
        self.events: list[QcEvent] = []
        self.prev_ts: int | None = None
        self._prev_close: float | None = None

    def apply(self, batch: pa.RecordBatch, source: str) -> pa.RecordBatch:
        ts = batch.column("ts_ms")
        gaps = gap_indices(ts, self.prev_ts, self.bar_ms)
        for _, before, after in gaps:
            self._record(before, after, source)
        if gaps and self.policy == "forward":
            batch = self._fill(batch, gaps)
        if len(batch):
            self.prev_ts = batch.column("ts_ms")[-1].as_py()
            self._prev_close = batch.column("close")[-1].as_py()
        return batch

    def _record(self, before: int, after: int, source: str) -> None:
        step = self.bar_ms
        missing = (after - before) // step - 1
        if self.policy == "strict":
            raise DataError(
                f"{source}: gap of {missing} bars after {utc(before)} (next bar {utc(after)}); "
                "choose a gap policy with --fill forward|none or data.gaps"
            )
        s = self.summary
        s.gaps += 1
        s.missing_bars += missing
        if s.first_gap_ms is None:
            s.first_gap_ms = before + step
        s.last_gap_ms = before + step
        self.events.append(QcEvent("gap", before + step, after - step, missing))
        kind: Literal["filled", "skipped"] = "filled" if self.policy == "forward" else "skipped"
        self.events.append(QcEvent(kind, before + step, after - step, missing))
        if self.policy == "forward":
            s.filled_bars += missing

    def _fill(self, batch: pa.RecordBatch, gaps: list[tuple[int, int, int]]) -> pa.RecordBatch:
        pieces: list[pa.RecordBatch] = []
        start = 0
        closes = batch.column("close")
        for i, before, after in gaps:
            pieces.append(batch.slice(start, i - start))
            last = closes[i - 1].as_py() if i > 0 else self._prev_close
            assert last is not None
            pieces.append(_flat_bars(before + self.bar_ms, after, self.bar_ms, last, batch.schema))
            start = i
        pieces.append(batch.slice(start))
        table = pa.Table.from_batches(pieces, schema=batch.schema).combine_chunks()
        return table.to_batches()[0]


def _flat_bars(
    first_ms: int, stop_ms: int, step_ms: int, close: float, schema: pa.Schema
) -> pa.RecordBatch:
    ts = np.arange(first_ms, stop_ms, step_ms, dtype=np.int64)
    n = len(ts)
    columns = {
        "ts_ms": from_numbers(ts, pa.int64()),
        **{name: from_numbers(np.full(n, close), pa.float64()) for name in PRICE_COLUMNS},
        "volume": from_numbers(np.zeros(n), pa.float64()),
        "synthetic": from_flags(np.ones(n, np.bool_)),
    }
    return pa.RecordBatch.from_arrays([columns[f.name] for f in schema], schema=schema)
