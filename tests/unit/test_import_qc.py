from __future__ import annotations

import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from njord.data.history import HistoryFeed
from njord.data.importer import import_files
from njord.errors import DataError
from tests.conftest import ROOT, invoke

FIX = ROOT / "tests" / "fixtures"


def test_binance_ms_and_us_timestamps_give_the_same_schema(tmp_path: Path) -> None:
    ms = import_files(
        [FIX / "BTCUSDT-1m-2024-01-head120.csv"],
        out=tmp_path / "a.parquet",
        fmt=None,
        mapping={},
        symbol="BTCUSDT",
    )
    us = import_files(
        [FIX / "BTCUSDT-1m-2025-01-head120.csv"],
        out=tmp_path / "b.parquet",
        fmt=None,
        mapping={},
        symbol="BTCUSDT",
    )
    assert ms.first_ts_ms == 1_704_067_200_000
    assert us.first_ts_ms == 1_735_689_600_000  # microseconds detected and scaled
    first = pq.read_table(tmp_path / "a.parquet").slice(0, 1).to_pylist()[0]
    assert first["open"] == 42283.58
    assert first["ntrades"] > 0


def test_zipped_and_headed_binance_files(tmp_path: Path) -> None:
    raw = (FIX / "BTCUSDT-1m-2024-01-head120.csv").read_text()
    zipped = tmp_path / "m.zip"
    with zipfile.ZipFile(zipped, "w") as z:
        z.writestr("m.csv", raw)
    headed = tmp_path / "h.csv"
    header = "open_time,open,high,low,close,volume,close_time,qv,n,tb,tq,ignore\n"
    headed.write_text(header + raw)
    a = import_files([zipped], out=tmp_path / "z.parquet", fmt=None, mapping={}, symbol="X")
    b = import_files([headed], out=tmp_path / "h.parquet", fmt="binance", mapping={}, symbol="X")
    assert (a.rows_out, b.rows_out) == (120, 120)
    assert (
        pq.read_table(tmp_path / "z.parquet")
        .column("close")
        .equals(pq.read_table(tmp_path / "h.parquet").column("close"))
    )


def test_generic_csv_with_a_column_map(tmp_path: Path) -> None:
    src = tmp_path / "g.csv"
    src.write_text(
        "time,o,h,l,c,vol\n2024-01-01 00:00:00,1,2,0.5,1.5,10\n2024-01-01 00:01:00,1.5,2,1,1.8,3\n"
    )
    result = invoke(
        "data",
        "import",
        str(src),
        "--out",
        str(tmp_path / "g.parquet"),
        "--map",
        "ts=time,open=o,high=h,low=l,close=c,volume=vol",
    )
    assert result.exit_code == 0, result.output
    assert "imported 2 bars" in result.output
    result = invoke("data", "import", str(src), "--out", str(tmp_path / "x.parquet"))
    assert result.exit_code == 3
    assert "no column for 'ts'" in result.output
    assert "--map ts=COLUMN" in result.output


def test_overlapping_imports_are_deduplicated_and_conflicts_refused(tmp_path: Path) -> None:
    src = FIX / "BTCUSDT-1m-2024-01-head120.csv"
    report = import_files([src, src], out=tmp_path / "d.parquet", fmt=None, mapping={}, symbol="X")
    assert (report.rows_in, report.rows_out, report.duplicates_dropped) == (240, 120, 120)
    lines = src.read_text().splitlines()
    changed = lines[5].split(",")
    changed[4] = "1.0"  # same minute, a different close
    other = tmp_path / "o.csv"
    other.write_text(",".join(changed) + "\n")
    with pytest.raises(DataError, match="two different bars for 2024-01-01 00:05"):
        import_files([src, other], out=tmp_path / "e.parquet", fmt=None, mapping={}, symbol="X")


def test_real_exchange_gap_under_each_policy(tmp_path: Path) -> None:
    out = tmp_path / "gap.parquet"
    import_files([FIX / "BTCUSDT-1m-2018-02-gap.csv"], out=out, fmt=None, mapping={}, symbol="X")
    with pytest.raises(DataError, match="gap of 15 bars after 2018-02-10 05:59"):
        list(HistoryFeed(out, symbol="X", gaps="strict").batches())
    forward = HistoryFeed(out, symbol="X", gaps="forward")
    bars = [b for batch in forward.batches() for b in zip(batch.ts_ms, batch.close, strict=True)]
    assert len(bars) == 135
    filled = [c for ts, c in bars if 1_518_242_400_000 <= ts < 1_518_243_300_000]
    assert len(set(filled)) == 1  # flat at the last close before the gap
    assert forward.summary.filled_bars == 15
    skip = HistoryFeed(out, symbol="X", gaps="none")
    assert sum(b.n for b in skip.batches()) == 120
    assert [(e.kind, e.bars) for e in skip.events] == [("gap", 15), ("skipped", 15)]


@pytest.mark.parametrize(
    ("name", "symbol"),
    [
        ("ETHUSDT-1m-2024-01.csv", "ETHUSDT"),
        ("SOLUSDT-1h-2024-01-05.csv", "SOLUSDT"),
        ("bars.csv", "BTCUSDT"),
    ],
)
def test_a_binance_dump_is_labelled_with_the_symbol_its_name_starts_with(
    tmp_path: Path, name: str, symbol: str
) -> None:
    src = tmp_path / name
    src.write_text((FIX / "BTCUSDT-1m-2024-01-head120.csv").read_text())
    result = invoke("data", "import", str(src), "--out", str(tmp_path / "o.parquet"))
    assert result.exit_code == 0, result.output
    assert set(pq.read_table(tmp_path / "o.parquet").column("symbol").to_pylist()) == {symbol}
