"""Kline dumps of any interval: the bar length is detected, recorded, and checked."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from njord.data.importer import import_files
from njord.data.klines import recorded_timeframe
from njord.errors import DataError
from tests.conftest import ROOT, invoke

FIX = ROOT / "tests" / "fixtures"


def hourly(path: Path, *, micro: bool, length_ms: int = 3_600_000) -> Path:
    """Binance's 12-column layout with a longer interval, built from the real 1m rows."""
    rows = [
        line.split(",") for line in (FIX / "BTCUSDT-1m-2024-01-head120.csv").read_text().split()
    ]
    scale = 1000 if micro else 1
    out = []
    for k in range(0, 120, 60):
        hour = rows[k : k + 60]
        t = int(hour[0][0]) * scale
        o, c = hour[0][1], hour[-1][4]
        h = max(hour, key=lambda r: float(r[2]))[2]
        lo = min(hour, key=lambda r: float(r[3]))[3]
        v = f"{sum(float(r[5]) for r in hour):.8f}"
        close_time = t + length_ms * scale - 1
        out.append(f"{t},{o},{h},{lo},{c},{v},{close_time},0,60,0,0,0")
    path.write_text("\n".join(out) + "\n")
    return path


@pytest.mark.parametrize("micro", [False, True])
def test_an_hourly_dump_is_recorded_as_hourly_bars(tmp_path: Path, micro: bool) -> None:
    src = hourly(tmp_path / "BTCUSDT-1h-2024-01.csv", micro=micro)
    out = tmp_path / "h.parquet"
    result = invoke("data", "import", str(src), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "imported 2 1h bars" in result.output
    assert recorded_timeframe(pq.read_schema(out)) == "1h"
    # A 1-minute session refuses it rather than reading 59-minute gaps into it.
    db = tmp_path / "s.db"
    ran = invoke("backtest", "--set", f'data.path="{out}"', "--db", str(db), "--quiet")
    assert ran.exit_code == 3
    assert "holds 1h bars (so recorded at import)" in ran.output
    assert not db.exists()


def test_minute_klines_are_recorded_as_such(tmp_path: Path) -> None:
    out = tmp_path / "m.parquet"
    src = FIX / "BTCUSDT-1m-2024-01-head120.csv"
    report = import_files([src], out=out, fmt=None, mapping={}, symbol="BTCUSDT")
    assert report.timeframe == "1m"
    assert recorded_timeframe(pq.read_schema(out)) == "1m"


def test_mixed_or_unknown_intervals_are_refused(tmp_path: Path) -> None:
    minute = FIX / "BTCUSDT-1m-2024-01-head120.csv"
    hour = hourly(tmp_path / "h.csv", micro=False)
    out = tmp_path / "x.parquet"
    with pytest.raises(DataError, match=r"bars of different lengths \(.*1m, h.csv 1h\)"):
        import_files([minute, hour], out=out, fmt=None, mapping={}, symbol="X")
    six = hourly(tmp_path / "six.csv", micro=False, length_ms=6 * 3_600_000)
    with pytest.raises(DataError, match="klines of 21600000 ms; njord takes intervals 1m, 3m"):
        import_files([six], out=out, fmt=None, mapping={}, symbol="X")
    assert not out.exists()
