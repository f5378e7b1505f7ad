"""Strategies that declare timeframes: the bars they get, when their orders fill."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from njord.core.time import TIMEFRAMES
from tests.conftest import backtest_args, invoke, query

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC, the sample's first minute


def aggregate(data: Path, timeframe: str, end_ms: int) -> list[str]:
    """The log line each bar should give, from pyarrow's own group_by of the minutes."""
    length = TIMEFRAMES[timeframe]
    table = pq.read_table(data)
    ts = pa.compute.cast(pa.compute.cast(table["ts_utc"], pa.timestamp("ms")), pa.int64())
    rows = pa.table(
        {"bucket": pa.compute.divide(ts, length), **{c: table[c] for c in ("open", "high")}}
        | {c: table[c] for c in ("low", "close", "volume")}
    ).filter(pa.compute.less(ts, end_ms))
    agg = rows.group_by("bucket", use_threads=False).aggregate(
        [
            ("open", "first"),
            ("high", "max"),
            ("low", "min"),
            ("close", "last"),
            ("volume", "sum"),
            ("open", "count"),
        ]
    )
    lines = []
    for k, a in enumerate(agg.sort_by("bucket").to_pylist()):
        v = a["volume_sum"]
        lines.append(
            f"{timeframe} {a['bucket'] * length} {a['open_first']} {a['high_max']} "
            f"{a['low_min']} {a['close_last']} {v} {a['open_count']} True {min(k + 1, 2)} "
            f"{a['close_last']}"
        )
    return lines


def logged(path: Path) -> list[str]:
    rows = query(path, "SELECT msg FROM logs WHERE component = 'strategy' ORDER BY seq")
    return [str(msg) for (msg,) in rows]


def same_bars(got: list[str], want: list[str]) -> None:
    """Prices and counts exactly; the volume, summed in another order, to 1e-9."""
    assert len(got) == len(want)
    for g, w in zip(got, want, strict=True):
        gs, ws = g.split(), w.split()
        assert gs[:6] + gs[7:] == ws[:6] + ws[7:]
        assert float(gs[6]) == pytest.approx(float(ws[6]), rel=1e-9)


def test_a_strategy_declaring_1m_and_1h_gets_hourly_bars_and_fills_on_the_minute(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    path = tmp_path / "hourly.db"
    args = backtest_args(sample_week, path, "--no-report", "--to", "2024-01-01T03:00")
    result = invoke(*args, "--set", 'strategy.name="user_strategies:Hourly"')
    assert result.exit_code == 0, result.output
    same_bars(logged(path), aggregate(sample_week, "1h", T0 + 3 * 3_600_000))
    # Decided on the 00:00 hour, at its last minute: filled at that minute's close.
    close_0059 = pq.read_table(sample_week).slice(59, 1)["close"][0].as_py()
    [(created, fill_ts, price)] = query(
        path,
        "SELECT o.created_ms, f.ts_ms, f.price_e8 FROM orders o "
        "JOIN fills f USING (client_order_id)",
    )
    assert created == fill_ts == T0 + 59 * 60_000
    assert 0 <= price / 1e8 - close_0059 <= close_0059 * 0.0001 + 0.01  # slippage, tick
    assert invoke("verify", str(path)).exit_code == 0
    status = json.loads(invoke("status", "--db", str(path), "--json").output)
    assert status["timeframes"] == ["1m", "1h"]
    # The export resamples the stored minutes the same way: the bars the strategy got.
    out = tmp_path / "out"
    result = invoke("export", "--db", str(path), "--out", str(out), "--timeframe", "1h")
    assert result.exit_code == 0, result.output
    exported = pq.read_table(out / "bars-1h.parquet").to_pylist()
    assert [f"{r['close']} {r['n_bars']} {r['complete']}" for r in exported] == [
        " ".join(line.split()[5:6] + line.split()[7:9]) for line in logged(path)
    ]
    assert [int(r["ts_utc"].timestamp() * 1000) for r in exported] == [
        int(line.split()[1]) for line in logged(path)
    ]


def test_config_overrides_the_declared_timeframes(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    path = tmp_path / "quarter.db"
    args = backtest_args(sample_week, path, "--no-report", "--to", "2024-01-01T01:00")
    args += ["--set", 'strategy.name="user_strategies:Hourly"']
    result = invoke(*args, "--set", 'strategy.timeframes=["15m"]')
    assert result.exit_code == 0, result.output
    same_bars(logged(path), aggregate(sample_week, "15m", T0 + 3_600_000))
    assert re.search(r"│ timeframes +│ 15m +│", invoke("status", "--db", str(path)).output)


def test_export_of_a_timeframe_needs_stored_bars(tmp_path: Path, sample_week: Path) -> None:
    path = tmp_path / "nobars.db"
    args = backtest_args(sample_week, path, "--no-report", "--to", "2024-01-01T01:00")
    assert invoke(*args, "--set", "store.store_bars=false").exit_code == 0
    result = invoke("export", "--db", str(path), "--out", str(tmp_path / "o"), "--timeframe", "1h")
    assert result.exit_code == 3
    assert "kept no bars to resample (store.store_bars = false)" in result.output
    bad = invoke("export", "--db", str(path), "--out", str(tmp_path / "o"), "--timeframe", "7m")
    assert bad.exit_code == 2


def test_an_unknown_timeframe_is_a_config_error(tmp_path: Path, sample_week: Path) -> None:
    path = tmp_path / "bad.db"
    result = invoke(*backtest_args(sample_week, path), "--set", 'strategy.timeframes=["7m"]')
    assert result.exit_code == 2
    assert "strategy.timeframes" in result.output
    assert not path.exists()


def test_a_strategy_declaring_an_unknown_timeframe_is_refused_before_any_db(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(Path(__file__).parent))
    path = tmp_path / "seven.db"
    result = invoke(
        *backtest_args(sample_week, path), "--set", 'strategy.name="user_strategies:SevenMinutes"'
    )
    assert result.exit_code == 2
    assert "declares timeframes ('1m', '7m'); each must be one of 1m, 3m" in result.output
    assert not path.exists()
