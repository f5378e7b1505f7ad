"""`njord data fetch`: klines over REST, page by page, into the bar schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from njord.adapters.binance import Backoff, BinanceClient, VenueError, VenueUnreachable
from njord.core.time import MINUTE_MS
from njord.data.importer import BAR_SCHEMA, ImportReport, write_bars
from njord.errors import DataError

PAGE = 1000


def fetch(
    base_url: str,
    *,
    symbol: str,
    start_ms: int,
    end_ms: int,
    out: Path,
    progress: Callable[[int, int], None],
    attempts: int = 8,
) -> ImportReport:
    client = BinanceClient(base_url)
    backoff = Backoff()
    rows: list[list[str | int]] = []
    total = (end_ms - start_ms) // MINUTE_MS
    cursor = start_ms
    while cursor < end_ms:
        params = {
            "symbol": symbol,
            "interval": "1m",
            "startTime": cursor,
            "endTime": end_ms - 1,
            "limit": PAGE,
        }
        try:
            page = client.public("GET", "/api/v3/klines", params)
            server_now = client.market_now_ms()
        except (VenueError, VenueUnreachable) as e:
            if (isinstance(e, VenueError) and not e.retryable) or backoff.failures >= attempts:
                raise DataError(f"klines fetch failed at {cursor}: {e}") from e
            backoff.failed(e.retry_after_s if isinstance(e, VenueError) else None)
            continue
        backoff.succeeded()
        closed = [r for r in page if int(r[6]) < server_now]
        if not closed:
            break
        rows += closed
        cursor = int(closed[-1][0]) + MINUTE_MS
        progress(len(rows), total)
    if not rows:
        raise DataError(f"the venue returned no closed {symbol} bars in that range")
    n = len(rows)
    table = pa.table(
        {
            "ts_utc": pa.array([int(str(r[0])) for r in rows], pa.timestamp("ms", tz="UTC")),
            "symbol": pa.array([symbol] * n, pa.string()),
            **{
                name: pa.array([float(str(r[i])) for r in rows], pa.float64())
                for i, name in enumerate(("open", "high", "low", "close", "volume"), start=1)
            },
            "ntrades": pa.array([int(str(r[8])) for r in rows], pa.int64()),
            "source": pa.array([base_url] * n, pa.string()),
        },
        schema=BAR_SCHEMA,
    )
    return write_bars(table, out, source=base_url)
