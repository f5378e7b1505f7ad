"""The resampler against independent aggregations: random gaps, the UTC grid, real data."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any, get_args

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from njord.core.bars import Resampler
from njord.core.time import DAY_MS, MINUTE_MS, TIMEFRAMES, Timeframe
from njord.data.history import HistoryFeed
from njord.data.importer import import_files
from njord.records import Bar
from tests.conftest import ROOT

Minute = tuple[int, float, float, float, float, float, bool]
HIGHER = [tf for tf in TIMEFRAMES if tf != "1m"]


def feed(timeframe: str, minutes: list[Minute]) -> list[tuple[int, Bar]]:
    """(ts of the minute that emitted it, bar) for every bar the resampler emits."""
    r = Resampler(timeframe)
    return [(m[0], bar) for m in minutes for bar in r.add(*m)]


def expected(timeframe: str, minutes: list[Minute]) -> list[tuple[int, Bar]]:
    """The same bars, by grouping the minutes on their window: no state machine."""
    length = TIMEFRAMES[timeframe]
    out = []
    groups = [list(g) for _, g in groupby(minutes, key=lambda m: m[0] // length)]
    for k, group in enumerate(groups):
        start = group[0][0] // length * length
        last_minute = start + length - MINUTE_MS
        if group[-1][0] == last_minute:
            emitted_at = last_minute
        elif k + 1 < len(groups):
            emitted_at = groups[k + 1][0][0]  # the first minute past the window
        else:
            continue  # still open when the data end: not a bar yet
        volume = 0.0
        for m in group:
            volume += m[5]
        bar = Bar(
            start,
            group[0][1],
            max(m[2] for m in group),
            min(m[3] for m in group),
            group[-1][4],
            volume,
            timeframe,
            len(group),
            sum(1 for m in group if m[6]),
            len(group) == length // MINUTE_MS,
        )
        out.append((emitted_at, bar))
    return out


@st.composite
def minute_streams(draw: Any) -> list[Minute]:
    start = 19_675 * DAY_MS + draw(st.integers(0, 3 * 24 * 60)) * MINUTE_MS
    steps = draw(
        st.lists(
            st.one_of(st.just(1), st.just(1), st.integers(1, 400), st.integers(400, 3000)),
            min_size=1,
            max_size=300,
        )
    )
    out: list[Minute] = []
    ts = start
    for step in steps:
        o, c = draw(st.integers(1, 10_000)), draw(st.integers(1, 10_000))  # cents
        h = max(o, c) + draw(st.integers(0, 500))
        lo = min(o, c) - draw(st.integers(0, min(o, c) - 1))
        v = draw(st.integers(0, 10**6)) / 1000
        out.append((ts, o / 100, h / 100, lo / 100, c / 100, v, draw(st.booleans())))
        ts += step * MINUTE_MS
    return out


@settings(max_examples=150, deadline=None)
@given(minute_streams(), st.sampled_from(HIGHER))
def test_every_emitted_bar_is_the_aggregate_of_its_minutes(
    minutes: list[Minute], timeframe: str
) -> None:
    assert feed(timeframe, minutes) == expected(timeframe, minutes)


def _continuous(first: str, hours: int) -> list[Minute]:
    t0 = int(datetime.fromisoformat(first).replace(tzinfo=UTC).timestamp() * 1000)
    return [
        (t0 + i * MINUTE_MS, 100.0 + i, 101.0 + i, 99.0 + i, 100.5 + i, 1.0, False)
        for i in range(hours * 60)
    ]


def _utc(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


def test_bars_sit_on_the_utc_grid_through_a_whole_day() -> None:
    # 2024-03-31 is a daylight-saving day in Europe; UTC has none: 24 one-hour bars.
    minutes = _continuous("2024-03-30T23:07", 25)  # to 2024-04-01 00:06
    hourly = [(_utc(at), _utc(b.ts_ms), b.n_bars, b.complete) for at, b in feed("1h", minutes)]
    # The data began at 23:07: that hour ends on time but holds 53 minutes, flagged.
    assert hourly[0] == ("2024-03-30 23:59", "2024-03-30 23:00", 53, False)
    assert hourly[1] == ("2024-03-31 00:59", "2024-03-31 00:00", 60, True)
    assert hourly[-1] == ("2024-03-31 23:59", "2024-03-31 23:00", 60, True)
    assert len(hourly) == 25
    assert all(h[3] for h in hourly[1:])
    daily = [(_utc(at), _utc(b.ts_ms), b.n_bars, b.complete) for at, b in feed("1d", minutes)]
    assert daily == [
        ("2024-03-30 23:59", "2024-03-30 00:00", 53, False),
        ("2024-03-31 23:59", "2024-03-31 00:00", 1440, True),
    ]
    day = feed("1d", minutes)[1][1]
    first, last = minutes[53], minutes[53 + 1439]
    assert (day.open, day.high, day.low, day.close) == (first[1], last[2], first[3], last[4])


def test_four_hour_and_daily_bars_across_month_ends() -> None:
    minutes = _continuous("2024-01-31T20:00", 8) + _continuous("2024-02-29T20:00", 8)
    four = [(_utc(b.ts_ms), b.n_bars, b.complete) for _, b in feed("4h", minutes)]
    assert four == [
        ("2024-01-31 20:00", 240, True),
        ("2024-02-01 00:00", 240, True),
        ("2024-02-29 20:00", 240, True),  # the leap day
        ("2024-03-01 00:00", 240, True),
    ]
    daily = [(_utc(at), _utc(b.ts_ms), b.n_bars) for at, b in feed("1d", minutes)]
    assert daily == [
        ("2024-01-31 23:59", "2024-01-31 00:00", 240),
        ("2024-02-29 20:00", "2024-02-01 00:00", 240),  # emitted when the jump is seen
        ("2024-02-29 23:59", "2024-02-29 00:00", 240),
    ]


@pytest.mark.parametrize("gaps", ["none", "forward"])
def test_real_bars_with_an_exchange_outage_match_an_arrow_group_by(
    tmp_path: Path, gaps: str
) -> None:
    """120 real 2018-02 minutes around Binance's 15-minute outage, through the real import
    and feed, resampled, against pyarrow's own hash aggregation of the same minutes."""
    out = tmp_path / "b.parquet"
    src = ROOT / "tests" / "fixtures" / "BTCUSDT-1m-2018-02-gap.csv"
    import_files([src], out=out, fmt=None, mapping={}, symbol="BTCUSDT")
    fed = HistoryFeed(out, symbol="BTCUSDT", gaps=gaps)  # type: ignore[arg-type]
    table = pa.Table.from_batches(list(fed.checked_batches()))
    rows = table.to_pylist()
    minutes = [
        (r["ts_ms"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["synthetic"])
        for r in rows
    ]
    for timeframe in ("3m", "5m", "15m", "30m", "1h"):
        length = TIMEFRAMES[timeframe]
        got = [b for _, b in feed(timeframe, minutes)]
        assert got, timeframe
        keyed = table.append_column("bucket", pa.array([r["ts_ms"] // length for r in rows]))
        agg = (
            keyed.group_by("bucket", use_threads=False)
            .aggregate(
                [
                    ("open", "first"),
                    ("high", "max"),
                    ("low", "min"),
                    ("close", "last"),
                    ("volume", "sum"),
                    ("ts_ms", "count"),
                    ("synthetic", "sum"),
                ]
            )
            .sort_by("bucket")
            .to_pylist()
        )
        by_start = {a["bucket"] * length: a for a in agg}
        for bar in got:
            a = by_start[bar.ts_ms]
            assert (bar.open, bar.high, bar.low, bar.close) == (
                a["open_first"],
                a["high_max"],
                a["low_min"],
                a["close_last"],
            )
            assert bar.volume == pytest.approx(a["volume_sum"], rel=1e-12)
            assert (bar.n_bars, bar.n_filled) == (a["ts_ms_count"], a["synthetic_sum"] or 0)
            assert bar.complete == (bar.n_bars == length // MINUTE_MS)
    quarter = [b for _, b in feed("15m", minutes) if _utc(b.ts_ms) == "2018-02-10 06:00"]
    # The outage: 06:00-06:14 never traded. Skipped, the bucket never exists; filled, it
    # is 15 flat minutes at the last close, all counted in n_filled.
    assert [(b.n_bars, b.n_filled) for b in quarter] == ([] if gaps == "none" else [(15, 15)])


def test_the_config_literal_names_exactly_the_timeframes_there_are() -> None:
    assert get_args(Timeframe) == tuple(TIMEFRAMES)
