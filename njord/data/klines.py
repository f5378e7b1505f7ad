"""The bar length of a Binance kline dump: every row says it, as close_time - open_time.

Binance writes the same 12 columns for every interval, so a 1h file would otherwise pass
for 1-minute bars with 59-minute gaps. The import detects the interval and records it in
the Parquet file's metadata; the history feed reads it back.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from njord.core.time import TIMEFRAMES
from njord.errors import DataError

METADATA_KEY = b"njord.timeframe"
_BY_LENGTH = {length: name for name, length in TIMEFRAMES.items()}


def kline_timeframe(table: pa.Table, path: Path) -> str:
    """The timeframe of a kline table with Binance's open_time and close_time columns."""
    open_ = pc.cast(table.column("open_time"), pa.int64())
    close = pc.cast(table.column("close_time"), pa.int64())
    # Spot dumps switched to microseconds on 2025-01-01; the span scales with them.
    micro = pc.greater(open_, 10**14)
    span = pc.subtract(close, open_)
    span_ms = pc.if_else(micro, pc.divide(pc.add(span, 1), 1000), pc.add(span, 1))
    lengths = sorted(pc.unique(span_ms).to_pylist())
    if len(lengths) != 1:
        raise DataError(f"{path}: klines of more than one interval ({len(lengths)} lengths)")
    name = _BY_LENGTH.get(lengths[0])
    if name is None:
        raise DataError(
            f"{path}: klines of {lengths[0]} ms; njord takes intervals {', '.join(TIMEFRAMES)}"
        )
    return name


def with_timeframe(table: pa.Table, timeframe: str) -> pa.Table:
    return table.replace_schema_metadata({METADATA_KEY: timeframe.encode()})


def recorded_timeframe(schema: pa.Schema) -> str:
    """What the import recorded; files from elsewhere are taken as 1-minute bars."""
    value: bytes = (schema.metadata or {}).get(METADATA_KEY, b"1m")
    return value.decode()
