"""The history BarFeed: Parquet files streamed as record batches, checked and gap-handled.

Never one Python object per bar for the whole range: each batch becomes plain column
lists for the loop, and is dropped once processed.
"""

from __future__ import annotations

import bisect
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.ipc as ipc
import pyarrow.parquet as pq

from njord.core.history import Floats, Ints
from njord.core.money import E8
from njord.core.time import timeframe_ms
from njord.data.columns import flags, from_flags, nulls, numbers
from njord.data.klines import recorded_timeframe
from njord.data.qc import GapPolicy, QcEvent, QcSummary, check_symbol, check_values
from njord.errors import ConfigError, DataError
from njord.manifest import DataSource, file_sha256

BATCH_ROWS = 10_080  # one week of minutes: bounded memory, few Python-level calls
REQUIRED = ("ts_utc", "open", "high", "low", "close", "volume")
STORED_SCHEMA = pa.schema(
    [
        ("ts_ms", pa.int64()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("synthetic", pa.bool_()),
    ]
)


class BarBatch:
    """One batch of checked bars as Python lists: what the loop iterates over."""

    __slots__ = (
        "arrow",
        "close",
        "close_e8",
        "filled",
        "first",
        "high",
        "high_e8",
        "lag_ms",
        "low",
        "low_e8",
        "n",
        "open",
        "open_e8",
        "symbol",
        "ts_ms",
        "volume",
    )

    def __init__(self, batch: pa.RecordBatch, *, lag_ms: int | None = None) -> None:
        self.arrow = batch
        self.lag_ms = lag_ms  # live feeds: venue time at emission minus the bar's close
        self.first = 0  # the first bar still to process (a restart resumes mid-batch)
        self.n = len(batch)
        self.ts_ms: list[int] = batch.column("ts_ms").to_pylist()
        self.open: list[float] = batch.column("open").to_pylist()
        self.high: list[float] = batch.column("high").to_pylist()
        self.low: list[float] = batch.column("low").to_pylist()
        self.close: list[float] = batch.column("close").to_pylist()
        self.volume: list[float] = batch.column("volume").to_pylist()
        self.filled: list[int] = _ints(batch.column("synthetic"))
        self.open_e8 = _e8(batch.column("open"))
        self.high_e8 = _e8(batch.column("high"))
        self.low_e8 = _e8(batch.column("low"))
        self.close_e8 = _e8(batch.column("close"))
        # Several symbols' bars (njord.data.merged): each row's symbol, rows in (minute,
        # session order) order, a minute never split across batches. None: one symbol.
        names = batch.schema.names
        self.symbol: list[str] | None = (
            batch.column("symbol").to_pylist() if "symbol" in names else None
        )

    def steps(self) -> Iterator[tuple[int, int]]:
        """The rows of each minute still to process, as [start, end) ranges."""
        symbol = self.symbol
        if symbol is None:
            for i in range(self.first, self.n):
                yield i, i + 1
            return
        ts, i = self.ts_ms, self.first
        while i < self.n:
            j = i + 1
            while j < self.n and ts[j] == ts[i]:
                j += 1
            yield i, j
            i = j

    def arrays(
        self, symbol: str | None = None
    ) -> tuple[Ints, Floats, Floats, Floats, Floats, Floats]:
        """The columns as numpy arrays (zero-copy views) for bar history, from the first
        bar still to process; `symbol`: that symbol's rows only (copies)."""
        arrow = self.arrow.slice(self.first)
        if symbol is not None:
            rows = np.flatnonzero(np.asarray(arrow.column("symbol").to_pylist()) == symbol)
            arrow = arrow.take(pa.array(rows))
        col = arrow.column
        return (
            numbers(col("ts_ms")),
            numbers(col("open")),
            numbers(col("high")),
            numbers(col("low")),
            numbers(col("close")),
            numbers(col("volume")),
        )

    def ipc_bytes(self) -> bytes:
        return ipc_bytes(self.arrow)


# Bars stored compressed: half the bytes a year of them takes in the session db (and a
# tenth of a second less to write them); readers decompress whatever a chunk says it is.
_STORED = ipc.IpcWriteOptions(compression="zstd")


def ipc_bytes(batch: pa.RecordBatch) -> bytes:
    """A batch as an Arrow IPC stream: how bars are stored in a session db."""
    sink = io.BytesIO()
    with ipc.new_stream(sink, batch.schema, options=_STORED) as writer:
        writer.write_batch(batch)
    return sink.getvalue()


def _e8(col: pa.Array) -> list[int]:
    # Rounded half to even, as pyarrow.compute.round did: the same integers, bit for bit.
    scaled: list[int] = np.round(numbers(col) * float(E8)).astype(np.int64).tolist()
    return scaled


def _ints(col: pa.Array) -> list[int]:
    if col.null_count:  # nulls kept as pyarrow casts them (the import never writes any)
        import pyarrow.compute as pc

        held: list[int] = pc.cast(col, pa.int8()).to_pylist()
        return held
    ints: list[int] = flags(col).astype(np.int8).tolist()
    return ints


def parquet_files(path: Path) -> list[Path]:
    if not path.exists():
        # A relative path is read from where njord runs, not from the config file's folder:
        # say so, since a config run from elsewhere is how one meets this.
        where = "" if path.is_absolute() else f", read from the working directory {Path.cwd()}"
        raise ConfigError(f"data file {path} does not exist (data.path{where})")
    files = sorted(path.glob("*.parquet")) if path.is_dir() else [path]
    if not files:
        raise ConfigError(f"no .parquet files in {path} (data.path)")
    return files


class HistoryFeed:
    """BarFeed over Parquet history, restricted to [start_ms, end_ms)."""

    def __init__(
        self,
        path: Path,
        *,
        symbol: str,
        gaps: Literal["strict", "forward", "none"],
        start_ms: int | None = None,
        end_ms: int | None = None,
        timeframe: str = "1m",
    ) -> None:
        self.files = parquet_files(path)
        self.symbol = symbol
        self.start_ms = start_ms
        self.end_ms = end_ms
        self.timeframe = timeframe  # data.timeframe: the bar length every file must hold
        self.summary = QcSummary(policy=gaps)
        self.gap_policy = GapPolicy(gaps, self.summary, timeframe_ms(timeframe))
        self._readers = [self._open(f) for f in self.files]
        self._columns = {
            f: [*REQUIRED, "filled"] if "filled" in r.schema_arrow.names else list(REQUIRED)
            for f, r in zip(self.files, self._readers, strict=True)
        }
        self._path = path

    def fresh(self) -> HistoryFeed:
        """The same feed from its first bar, with its own QC counters."""
        return HistoryFeed(
            self._path,
            symbol=self.symbol,
            gaps=self.gap_policy.policy,
            start_ms=self.start_ms,
            end_ms=self.end_ms,
            timeframe=self.timeframe,
        )

    def _open(self, file: Path) -> pq.ParquetFile:
        try:
            reader = pq.ParquetFile(file)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{file} is not a readable Parquet file: {e}") from e
        missing = [c for c in REQUIRED if c not in reader.schema_arrow.names]
        if missing:
            raise DataError(
                f"{file} lacks column(s) {', '.join(missing)}; the bar schema is "
                f"{', '.join(REQUIRED)} (convert it with `njord data import --map`)"
            )
        if "symbol" in reader.schema_arrow.names and not _labelled(reader, self.symbol):
            held = reader.read(columns=["symbol"]).column("symbol")
            check_symbol(held, want=self.symbol, source=str(file), by="config trades")
        held = recorded_timeframe(reader.schema_arrow)
        if held == self.timeframe:
            return reader
        if self.timeframe == "1m":
            raise DataError(
                f"{file} holds {held} bars (so recorded at import); this session runs on "
                f"1-minute bars: import 1-minute klines or trades and declare {held} in "
                f'strategy.timeframes, or backtest on these bars with data.timeframe = "{held}"'
            )
        raise DataError(
            f"{file} holds {held} bars (so recorded at import), not the {self.timeframe} bars "
            f'data.timeframe names: set data.timeframe = "{held}" (longer bars are derived '
            "from it with strategy.timeframes)"
        )

    @property
    def events(self) -> list[QcEvent]:
        return self.gap_policy.events

    def sources(self) -> list[DataSource]:
        return [
            DataSource(path=str(f), sha256=file_sha256(f), rows=r.metadata.num_rows)
            for f, r in zip(self.files, self._readers, strict=True)
        ]

    def batches(self) -> Iterator[BarBatch]:
        for batch in self.checked_batches():
            yield BarBatch(batch)

    def checked_batches(self) -> Iterator[pa.RecordBatch]:
        for file, reader in zip(self.files, self._readers, strict=True):
            # One row group at a time: a reader iterating the whole file keeps buffers of
            # every group it passed, and memory then grows with the length of the history.
            for group in range(reader.metadata.num_row_groups):
                for raw in reader.iter_batches(
                    batch_size=BATCH_ROWS, columns=self._columns[file], row_groups=[group]
                ):
                    batch = self._checked(_normalise(raw, file), str(file))
                    if len(batch):
                        yield batch

    def _checked(self, batch: pa.RecordBatch, source: str) -> pa.RecordBatch:
        batch = _in_range(batch, self.start_ms, self.end_ms)
        if not len(batch):
            return batch
        self.summary.bars_in += len(batch)
        check_values(
            batch, prev_ts=self.gap_policy.prev_ts, source=source, timeframe=self.timeframe
        )
        batch = self.gap_policy.apply(batch, source)
        self.summary.bars_out += len(batch)
        return batch


def _labelled(reader: pq.ParquetFile, symbol: str) -> bool:
    """Whether the file's statistics show that every bar is labelled `symbol`, so that
    the column need not be read (nulls are not a label)."""
    meta = reader.metadata
    for group in range(meta.num_row_groups):
        chunks = meta.row_group(group)
        for k in range(chunks.num_columns):
            chunk = chunks.column(k)
            if chunk.path_in_schema != "symbol":
                continue
            stats = chunk.statistics
            if stats is None or not stats.has_min_max or not stats.min == stats.max == symbol:
                return False
    return True


def _normalise(raw: pa.RecordBatch, file: Path) -> pa.RecordBatch:
    ts = raw.column("ts_utc")
    cols = [raw.column(c) for c in REQUIRED[1:]]
    if not _is_ms(ts.type) or any(c.type != pa.float64() for c in cols):
        ts, cols = _cast(raw, file)
    elif ts.type != pa.int64():
        ts = ts.view(pa.int64())  # ms since the epoch in UTC, whatever zone it names
    # Minutes an import already filled (trades -> bars: no trade that minute) stay marked.
    filled = raw.column("filled") if "filled" in raw.schema.names else None
    cols.append(from_flags(np.zeros(len(raw), np.bool_)) if filled is None else filled)
    return pa.RecordBatch.from_arrays([ts, *cols], schema=STORED_SCHEMA)


def _is_ms(kind: pa.DataType) -> bool:
    return bool(kind == pa.int64() or (pa.types.is_timestamp(kind) and kind.unit == "ms"))


def _cast(raw: pa.RecordBatch, file: Path) -> tuple[pa.Array, list[pa.Array]]:
    """Columns of other types than the import writes, cast to the bar schema."""
    import pyarrow.compute as pc

    try:
        ts = pc.cast(pc.cast(raw.column("ts_utc"), pa.timestamp("ms", tz="UTC")), pa.int64())
        return ts, [pc.cast(raw.column(c), pa.float64()) for c in REQUIRED[1:]]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as e:
        raise DataError(f"{file}: columns have the wrong types for the bar schema: {e}") from e


def _in_range(batch: pa.RecordBatch, start_ms: int | None, end_ms: int | None) -> pa.RecordBatch:
    if start_ms is None and end_ms is None:
        return batch
    ts = batch.column("ts_ms")
    values = numbers(ts)
    keep = ~nulls(ts)  # a bar without a time is in no range
    if start_ms is not None:
        keep &= values >= start_ms
    if end_ms is not None:
        keep &= values < end_ms
    rows = np.flatnonzero(keep)
    if len(rows) == 0 or rows[-1] - rows[0] == len(rows) - 1:  # one run: sorted bars
        return batch.slice(int(rows[0]), len(rows)) if len(rows) else batch.slice(0, 0)
    return batch.filter(from_flags(keep))


def read_ipc(blob: bytes) -> pa.RecordBatch:
    with ipc.open_stream(io.BytesIO(blob)) as reader:
        batches = list(reader)
    return batches[0]


class StoredFeed:
    """BarFeed over bars kept in a session db (`verify`, `continue` without the source)."""

    def __init__(
        self,
        blobs: list[bytes],
        *,
        symbol: str,
        events: list[QcEvent] | None = None,
        until_ms: int | None = None,
    ) -> None:
        self.symbol = symbol
        self.summary = QcSummary(policy="stored")
        self._blobs = blobs
        # A chunk is stored whole with the bar that opens it; an unfinished session may
        # have committed only part of its last chunk. `until_ms`: the last committed bar.
        self._until_ms = until_ms
        self._events = events or []  # what QC found when the bars were first stored

    @property
    def events(self) -> list[QcEvent]:
        return self._events

    def sources(self) -> list[DataSource]:
        return []

    def batches(self) -> Iterator[BarBatch]:
        for blob in self._blobs:
            batch = read_ipc(blob)
            if self._until_ms is not None:
                ts = batch.column("ts_ms").to_pylist()
                batch = batch.slice(0, bisect.bisect_right(ts, self._until_ms))
                if len(batch) == 0:
                    return
            yield BarBatch(batch)
