"""A whole real month with real exchange outages: the resampler's daily bars against an
independent pandas `resample("1D")` of the same minutes (issue 16)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pytest

from njord.core.bars import Resampler
from njord.core.time import MINUTE_MS
from njord.data.history import HistoryFeed
from njord.data.importer import import_files
from tests.conftest import ROOT

MONTH = ROOT / "tests" / "fixtures" / "BTCUSDT-1m-2018-02.zip"


def _minutes(tmp_path: Path) -> pa.Table:
    out = tmp_path / "2018-02.parquet"
    import_files([MONTH], out=out, fmt=None, mapping={}, symbol="BTCUSDT")
    feed = HistoryFeed(out, symbol="BTCUSDT", gaps="none")  # the outages stay holes
    return pa.Table.from_batches(list(feed.checked_batches()))


@pytest.mark.parametrize("timeframe", ["1d", "4h", "1h"])
def test_bars_of_the_real_2018_02_month_match_pandas(tmp_path: Path, timeframe: str) -> None:
    table = _minutes(tmp_path)
    assert table.num_rows < 28 * 1440, "the month has real outages"
    resampler = Resampler(timeframe)
    got = [
        bar
        for r in table.to_pylist()
        for bar in resampler.add(
            r["ts_ms"], r["open"], r["high"], r["low"], r["close"], r["volume"], r["synthetic"]
        )
    ]
    frame = pd.DataFrame(
        {c: table.column(c).to_numpy() for c in ("open", "high", "low", "close", "volume")},
        index=pd.to_datetime(table.column("ts_ms").to_numpy(), unit="ms", utc=True),
    )
    rule = {"1d": "1D", "4h": "4h", "1h": "1h"}[timeframe]
    want = frame.resample(rule, label="left", closed="left").agg(
        {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum"}
    )
    counts = frame["open"].resample(rule, label="left", closed="left").count()
    want = want[counts > 0]  # a window the outage emptied is no bar at all
    # The last window of the month ends with the data: emitted only when its last minute
    # arrives, like every other.
    by_start = {int(ts.value // 1_000_000): row for ts, row in want.iterrows()}
    assert len(got) == len(by_start), (len(got), len(by_start))
    length = resampler.length_ms
    incomplete = 0
    for bar in got:
        row = by_start[bar.ts_ms]
        assert (bar.open, bar.high, bar.low, bar.close) == (
            row["open"],
            row["high"],
            row["low"],
            row["close"],
        )
        assert bar.volume == pytest.approx(row["volume"], rel=1e-12)
        assert bar.n_bars == counts[pd.Timestamp(bar.ts_ms, unit="ms", tz="UTC")]
        assert bar.complete == (bar.n_bars == length // MINUTE_MS)
        incomplete += not bar.complete
    assert incomplete > 0, "the outages leave incomplete bars, flagged"
