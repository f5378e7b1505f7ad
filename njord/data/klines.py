"""The bar length of a Binance kline dump: every row says it, as close_time - open_time.

Binance writes the same 12 columns for every interval, so a 1h file would otherwise pass
for 1-minute bars with 59-minute gaps. The import detects the interval and records it in
the Parquet file's metadata; the history feed reads it back.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa

from njord.core.time import TIMEFRAMES
from njord.errors import DataError

METADATA_KEY = b"njord.timeframe"
_BY_LENGTH = {length: name for name, length in TIMEFRAMES.items()}


def kline_timeframe(table: pa.Table, path: Path) -> str:
    """The timeframe of a kline table with Binance's open_time and close_time columns."""
    import pyarrow.compute as pc  # not at the top: the history feed imports this module

    open_ = pc.cast(table.column("open_time"), pa.int64())
    close = pc.cast(table.column("close_time"), pa.int64())
    # Spot dumps switched to microseconds on 2025-01-01; the span scales with them.
    micro = pc.greater(open_, 10**14)
    span = pc.subtract(close, open_)
    span_ms = pc.if_else(micro, pc.divide(pc.add(span, 1), 1000), pc.add(span, 1))
    # Binance cuts a kline short when trading halts inside it (2018-02 has one of 14.8 s and
    # one of 1 s among 1-minute bars): the interval is the usual span, and no kline may be
    # longer than it. Mixed intervals leave longer spans than the usual one: refused.
    counts = pc.value_counts(span_ms).to_pylist()
    usual = max(counts, key=lambda c: (c["counts"], c["values"]))["values"]
    longer = [c["values"] for c in counts if c["values"] > usual]
    if longer:
        raise DataError(f"{path}: klines of more than one interval ({usual} ms and {longer[0]} ms)")
    name = _BY_LENGTH.get(usual)
    if name is None:
        raise DataError(
            f"{path}: klines of {usual} ms; njord takes intervals {', '.join(TIMEFRAMES)}"
        )
    return name


def with_timeframe(table: pa.Table, timeframe: str) -> pa.Table:
    return table.replace_schema_metadata({METADATA_KEY: timeframe.encode()})


def recorded_timeframe(schema: pa.Schema) -> str:
    """What the import recorded; files from elsewhere are taken as 1-minute bars."""
    value: bytes = (schema.metadata or {}).get(METADATA_KEY, b"1m")
    return value.decode()
