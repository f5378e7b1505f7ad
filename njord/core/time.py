"""Bar lengths and the UTC grid: the one place that knows how long a bar is.

Every timestamp is UTC epoch milliseconds of a bar's open. Bars of a timeframe sit on
that timeframe's grid (a 1h bar opens at :00, a 1d bar at 00:00 UTC); with no leap
seconds and no daylight saving in UTC, the grid is plain integer arithmetic.
"""

from __future__ import annotations

from typing import Literal

MINUTE_MS = 60_000
HOUR_MS = 60 * MINUTE_MS
DAY_MS = 24 * HOUR_MS

Timeframe = Literal["1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "1d"]
# The timeframes a session can derive from 1-minute bars, shortest first (the same names
# as `Timeframe`, which typed config uses; a test keeps the two equal).
TIMEFRAMES: dict[str, int] = {
    "1m": MINUTE_MS,
    "3m": 3 * MINUTE_MS,
    "5m": 5 * MINUTE_MS,
    "15m": 15 * MINUTE_MS,
    "30m": 30 * MINUTE_MS,
    "1h": HOUR_MS,
    "2h": 2 * HOUR_MS,
    "4h": 4 * HOUR_MS,
    "1d": DAY_MS,
}


def timeframe_ms(timeframe: str) -> int:
    """The length of one bar of `timeframe`; ValueError names the ones there are."""
    try:
        return TIMEFRAMES[timeframe]
    except KeyError:
        known = ", ".join(TIMEFRAMES)
        raise ValueError(f"unknown timeframe {timeframe!r}; one of {known}") from None


def bucket_start(ts_ms: int, length_ms: int) -> int:
    """The open of the bar of length `length_ms` that contains `ts_ms`."""
    return ts_ms - ts_ms % length_ms


def bar_index(ts_ms: int, length_ms: int) -> int:
    """Whole bars of `length_ms` since the epoch: the bar number in client order ids (the
    minute, in a session of 1-minute bars)."""
    return ts_ms // length_ms


def derives(timeframe: str, base: str) -> bool:
    """Whether bars of `timeframe` can be built from whole bars of `base` on the UTC grid
    (a 1h session can give 4h and 1d bars, never 1m or 5m ones)."""
    length, step = timeframe_ms(timeframe), timeframe_ms(base)
    return length >= step and length % step == 0


def day_index(ts_ms: int) -> int:
    """Whole UTC days since the epoch: the day of daily loss limits and rollups."""
    return ts_ms // DAY_MS
