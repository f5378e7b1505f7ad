"""Binance trade dumps (`trades`, `aggTrades`) to 1-minute bars, streamed.

A month of trades is tens of millions of rows: the CSV is read in blocks, each block
aggregated per minute with Arrow, and finished minutes written as they come, so memory
is one block plus one minute whatever the file's length. Quantities are summed as exact
e8 integers, so a bar's volume does not depend on where the blocks happen to split.
Minutes without a trade repeat the last close with zero volume and `filled` set.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Literal

import numpy as np
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from njord.core.money import E8
from njord.core.time import MINUTE_MS
from njord.data.history import BATCH_ROWS
from njord.data.importer import BAR_SCHEMA, ImportReport
from njord.data.qc import check_values, utc
from njord.errors import DataError

Layout = Literal["trades", "aggTrades"]
COLUMNS: dict[Layout, tuple[str, ...]] = {
    "trades": ("id", "price", "qty", "quote_qty", "time", "is_buyer_maker", "is_best_match"),
    "aggTrades": (
        "agg_trade_id",
        "price",
        "quantity",
        "first_trade_id",
        "last_trade_id",
        "transact_time",
        "is_buyer_maker",
        "is_best_match",
    ),
}
# (time, quantity) column of each layout; price is "price" in both.
FIELDS: dict[Layout, tuple[str, str]] = {
    "trades": ("time", "qty"),
    "aggTrades": ("transact_time", "quantity"),
}
TRADE_BAR_SCHEMA = BAR_SCHEMA.append(pa.field("filled", pa.bool_()))
BLOCK_BYTES = 1 << 20  # 1 MiB of CSV per block, about 15,000 trades: larger blocks made
# the CSV reader hold several times the block in memory


def layout(path: Path) -> Layout | None:
    """Which trade layout a file has, from its name or its first line; None if neither."""
    name = path.name
    if "-aggTrades-" in name:
        return "aggTrades"
    if "-trades-" in name:
        return "trades"
    if not path.exists() or path.suffix.lower() not in (".csv", ".zip"):
        return None
    try:
        with _open(path) as fh:
            first = fh.readline().decode("utf-8", "replace").strip()
    except (OSError, zipfile.BadZipFile, DataError):
        return None
    fields = first.split(",")
    for kind, names in COLUMNS.items():
        if [f.strip().lower() for f in fields] == list(names):
            return kind
    if first[:1].isdigit() and len(fields) == 7:
        return "trades"
    if first[:1].isdigit() and len(fields) == 8:
        return "aggTrades"
    return None


def _open(path: Path) -> io.BufferedIOBase:
    if path.name.lower().endswith(".zip"):
        archive = zipfile.ZipFile(path)
        names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if len(names) != 1:
            raise DataError(f"{path} must hold exactly one .csv, found {len(names)}")
        return archive.open(names[0])  # type: ignore[return-value]
    return path.open("rb")


class _Minutes:
    """Per-minute aggregates across blocks: the open minute waits for the next block."""

    def __init__(self, writer: pq.ParquetWriter, symbol: str, source: str) -> None:
        self.writer, self.symbol, self.source = writer, symbol, source
        self.rows_in = self.rows_out = 0
        self.first_ms: int | None = None
        self.last_ms: int | None = None  # the last minute written
        self.last_close = 0.0
        self.open: dict[str, np.ndarray] | None = None  # the unfinished minute, one row
        self.pending: list[dict[str, np.ndarray]] = []
        self.pending_rows = 0

    def add(self, minute: np.ndarray, price: np.ndarray, qty_e8: np.ndarray) -> None:
        table = pa.table({"m": minute, "p": price, "q": qty_e8})
        agg = table.group_by("m", use_threads=False).aggregate(
            [
                ("p", "first"),
                ("p", "max"),
                ("p", "min"),
                ("p", "last"),
                ("q", "sum"),
                ("p", "count"),
            ]
        )
        cols = {
            "m": agg["m"].to_numpy().copy(),
            "o": agg["p_first"].to_numpy().copy(),
            "h": agg["p_max"].to_numpy().copy(),
            "l": agg["p_min"].to_numpy().copy(),
            "c": agg["p_last"].to_numpy().copy(),
            "v": agg["q_sum"].to_numpy().copy(),
            "n": agg["p_count"].to_numpy().copy(),
        }
        if self.open is not None:
            if cols["m"][0] == self.open["m"][0]:  # the minute spans the block boundary
                merged = self.open
                cols["o"][0] = merged["o"][0]
                cols["h"][0] = max(cols["h"][0], merged["h"][0])
                cols["l"][0] = min(cols["l"][0], merged["l"][0])
                cols["v"][0] += merged["v"][0]
                cols["n"][0] += merged["n"][0]
            else:
                self._finish(self.open)
        self.open = {k: v[-1:].copy() for k, v in cols.items()}
        if len(cols["m"]) > 1:
            self._finish({k: v[:-1] for k, v in cols.items()})

    def _finish(self, cols: dict[str, np.ndarray]) -> None:
        """Minutes that can take no more trades: filled over gaps, queued for writing."""
        m = cols["m"]
        first = m[0] if self.last_ms is None else self.last_ms + MINUTE_MS
        full = np.arange(first, m[-1] + MINUTE_MS, MINUTE_MS, dtype=np.int64)
        pos = np.searchsorted(m, full, side="right") - 1
        present = pos >= 0
        present[present] = m[pos[present]] == full[present]
        prev_close = np.where(pos >= 0, cols["c"][np.maximum(pos, 0)], self.last_close)
        out = {"m": full, "filled": ~present}
        for k in ("o", "h", "l", "c"):
            out[k] = np.where(present, cols[k][np.maximum(pos, 0)], prev_close)
        out["v"] = np.where(present, cols["v"][np.maximum(pos, 0)], 0)
        out["n"] = np.where(present, cols["n"][np.maximum(pos, 0)], 0)
        self.last_ms = int(full[-1])
        self.last_close = float(out["c"][-1])
        if self.first_ms is None:
            self.first_ms = int(full[0])
        self.pending.append(out)
        self.pending_rows += len(full)
        if self.pending_rows >= BATCH_ROWS:
            self.flush()

    def close(self) -> None:
        if self.open is not None:
            self._finish(self.open)
            self.open = None
        self.flush()

    def flush(self) -> None:
        if not self.pending:
            return
        cols = {k: np.concatenate([p[k] for p in self.pending]) for k in self.pending[0]}
        self.pending, self.pending_rows = [], 0
        n = len(cols["m"])
        batch = pa.record_batch(
            {
                "ts_utc": pa.array(cols["m"], pa.int64()).cast(pa.timestamp("ms", tz="UTC")),
                "symbol": pa.array([self.symbol] * n, pa.string()),
                "open": cols["o"],
                "high": cols["h"],
                "low": cols["l"],
                "close": cols["c"],
                "volume": cols["v"] / E8,
                "ntrades": pa.array(cols["n"], pa.int64()),
                "source": pa.array([self.source] * n, pa.string()),
                "filled": cols["filled"],
            },
            schema=TRADE_BAR_SCHEMA,
        )
        checked = pa.record_batch(
            {
                "ts_ms": pa.array(cols["m"], pa.int64()),
                **{c: batch.column(c) for c in ("open", "high", "low", "close", "volume")},
            }
        )
        check_values(checked, prev_ts=None, source=self.source)
        self.writer.write_batch(batch, row_group_size=BATCH_ROWS)
        self.rows_out += n


def import_trades(inputs: list[Path], *, out: Path, symbol: str) -> ImportReport:
    """Trade dumps, in time order (Binance's monthly files are), to 1-minute bars."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    source = ", ".join(str(p) for p in inputs)
    try:
        with pq.ParquetWriter(partial, TRADE_BAR_SCHEMA, compression="zstd") as writer:
            minutes = _Minutes(writer, symbol, ", ".join(p.name for p in inputs))
            prev_ms: int | None = None
            for path in inputs:
                prev_ms = _stream(path, minutes, prev_ms)
            minutes.close()
    except BaseException:
        partial.unlink(missing_ok=True)  # nothing written on bad input
        raise
    if minutes.first_ms is None or minutes.last_ms is None:
        partial.unlink()
        raise DataError(f"{source} holds no trades")
    partial.replace(out)
    return ImportReport(
        rows_in=minutes.rows_in,
        rows_out=minutes.rows_out,
        duplicates_dropped=0,
        first_ts_ms=minutes.first_ms,
        last_ts_ms=minutes.last_ms,
        out=str(out),
    )


def _stream(path: Path, minutes: _Minutes, prev_ms: int | None) -> int | None:
    kind = layout(path)
    if kind is None:
        raise DataError(f"{path} is not a Binance trades or aggTrades CSV")
    time_col, qty_col = FIELDS[kind]
    with _open(path) as fh:
        first = fh.readline()
    header = not first[:1].isdigit()
    names = list(COLUMNS[kind])
    read = pcsv.ReadOptions(
        column_names=names, skip_rows=1 if header else 0, block_size=BLOCK_BYTES
    )
    types = {time_col: pa.int64(), "price": pa.float64(), qty_col: pa.float64()}
    convert = pcsv.ConvertOptions(column_types=types, include_columns=[time_col, "price", qty_col])
    try:
        with _open(path) as fh:
            for block in pcsv.open_csv(fh, read_options=read, convert_options=convert):
                prev_ms = _block(path, block, time_col, qty_col, minutes, prev_ms)
    except (pa.ArrowInvalid, zipfile.BadZipFile) as e:
        raise DataError(f"{path} is not a readable {kind} CSV: {e}") from e
    return prev_ms


def _block(
    path: Path,
    block: pa.RecordBatch,
    time_col: str,
    qty_col: str,
    minutes: _Minutes,
    prev_ms: int | None,
) -> int | None:
    if not len(block):
        return prev_ms
    t = block.column(time_col).to_numpy()
    # Spot dumps switched to microseconds on 2025-01-01; detect per row.
    t = np.where(t > 10**14, t // 1000, t)
    price = block.column("price").to_numpy()
    qty = block.column(qty_col).to_numpy()
    bad = ~np.isfinite(price) | (price <= 0) | ~np.isfinite(qty) | (qty < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise DataError(
            f"{path}: trade at {utc(int(t[i]))} has price {price[i]} and quantity {qty[i]}"
        )
    back = np.diff(t, prepend=t[0] if prev_ms is None else prev_ms) < 0
    if back.any():
        i = int(np.argmax(back))
        raise DataError(
            f"{path}: trade at {utc(int(t[i]))} comes after one at "
            f"{utc(int(t[i - 1]) if i else prev_ms or 0)}; trade dumps must be in time order"
        )
    minutes.rows_in += len(t)
    minutes.add(t - t % MINUTE_MS, price, np.round(qty * E8).astype(np.int64))
    return int(t[-1])
