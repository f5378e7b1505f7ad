"""Backtests on coarser data: a session of 1h bars (no 1-minute data), end to end."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from njord.core.money import E8
from njord.core.time import HOUR_MS
from njord.store import db, reads
from tests.conftest import ROOT, backtest_args, invoke, query

# 168 hourly bars, 2024-01-01 to 01-07, aggregated from the real 1-minute sample month
# (tests/fixtures/README.md).
HOURLY = ROOT / "tests" / "fixtures" / "BTCUSDT-1h-2024-01-first7d.csv"
HOURLY_SMA = ("--set", 'strategy.timeframes=["1h"]', "--set", "strategy.params={fast=3,slow=8}")


@pytest.fixture
def hourly(tmp_path: Path) -> Path:
    out = tmp_path / "hourly.parquet"
    result = invoke("data", "import", str(HOURLY), "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "imported 168 1h bars" in result.output
    assert result.output.endswith("; no gaps\n")  # an hour between 1h bars is no gap
    return out


def test_a_backtest_runs_on_hourly_bars(tmp_path: Path, hourly: Path) -> None:
    path = tmp_path / "h.db"
    args = backtest_args(hourly, path, "--set", 'data.timeframe="1h"', *HOURLY_SMA)
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    [(bars,)] = query(path, "SELECT count(*) FROM equity")
    assert bars == 168
    fills = query(
        path, "SELECT f.ts_ms, o.client_order_id FROM fills f JOIN orders o USING (client_order_id)"
    )
    assert len(fills) >= 2
    for ts, coid in fills:
        assert ts % HOUR_MS == 0  # fills happen on the hourly bars
        assert coid.split("-")[1] == str(ts // HOUR_MS)  # the bar number, in hours
    out = tmp_path / "out"
    assert {"trades.csv", "equity.csv", "fills.csv"} <= {p.name for p in out.iterdir()}
    assert invoke("audit", str(path)).exit_code == 0
    verified = invoke("verify", str(path))
    assert verified.exit_code == 0, verified.output
    # The span reaches the end of the last hour: 7 days, not 6 days 23 h 1 min.
    conn = db.open_reader(path)
    try:
        assert reads.metrics(conn, 10_000 * E8).days == 7.0
    finally:
        conn.close()


def test_a_gap_in_hourly_bars_is_counted_in_hours(tmp_path: Path) -> None:
    rows = HOURLY.read_text().splitlines()
    src = tmp_path / "BTCUSDT-1h-gap.csv"
    src.write_text("\n".join(rows[:10] + rows[13:30]) + "\n")  # 3 hours missing
    data = tmp_path / "gap.parquet"
    assert invoke("data", "import", str(src), "--out", str(data)).exit_code == 0
    args = backtest_args(data, tmp_path / "s.db", "--set", 'data.timeframe="1h"', *HOURLY_SMA)
    strict = invoke(*args)
    assert strict.exit_code == 3
    assert "gap of 3 bars after 2024-01-01 09:00" in strict.output
    path = tmp_path / "f.db"
    filled = backtest_args(data, path, "--set", 'data.timeframe="1h"', "--fill", "forward")
    assert invoke(*filled, *HOURLY_SMA).exit_code == 0
    stamps = [ts for (ts,) in query(path, "SELECT ts_ms FROM equity ORDER BY ts_ms")]
    assert stamps == list(range(stamps[0], stamps[0] + 30 * HOUR_MS, HOUR_MS))


def test_data_of_another_bar_length_is_refused(tmp_path: Path, hourly: Path) -> None:
    minutes = tmp_path / "m.parquet"
    src = ROOT / "tests" / "fixtures" / "BTCUSDT-1m-2024-01-head120.csv"
    assert invoke("data", "import", str(src), "--out", str(minutes)).exit_code == 0
    path = tmp_path / "s.db"
    result = invoke(*backtest_args(minutes, path, "--set", 'data.timeframe="1h"', *HOURLY_SMA))
    assert result.exit_code == 3
    assert "holds 1m bars (so recorded at import), not the 1h bars data.timeframe" in result.output
    # ... and a 1-minute session refuses the hourly file, naming the way to run it.
    result = invoke(*backtest_args(hourly, path, *HOURLY_SMA[2:]))
    assert result.exit_code == 3
    assert 'or backtest on these bars with data.timeframe = "1h"' in result.output
    assert not path.exists()


def test_a_strategy_asking_for_shorter_bars_than_the_data_is_a_config_error(
    tmp_path: Path, hourly: Path
) -> None:
    path = tmp_path / "s.db"
    on_hours = backtest_args(hourly, path, "--set", 'data.timeframe="1h"')
    result = invoke(*on_hours)  # sma_crossover declares 1m bars
    assert result.exit_code == 2
    assert "the strategy asks for 1m bars, but data.timeframe is 1h" in result.output
    result = invoke(*on_hours, "--set", 'strategy.timeframes=["1h", "4h", "30m"]')
    assert result.exit_code == 2
    assert "strategy.timeframes asks for 1h, 4h, 30m bars" in result.output
    assert not path.exists()


def test_longer_bars_are_derived_from_hourly_data(
    tmp_path: Path, hourly: Path, user_strategies: None
) -> None:
    path = tmp_path / "d.db"
    args = backtest_args(hourly, path, "--set", 'data.timeframe="1h"')
    args += ["--set", 'strategy.name="user_strategies:Hourly"']
    result = invoke(*args, "--set", 'strategy.timeframes=["1h", "4h"]')
    assert result.exit_code == 0, result.output
    logged = [str(m) for (m,) in query(path, "SELECT msg FROM logs WHERE component = 'strategy'")]
    four = [line.split() for line in logged if line.startswith("4h ")]
    assert len(four) == 42  # 168 hours
    assert all(f[7] == "4" and f[8] == "True" for f in four)  # n_bars: 4 hourly bars each
    assert int(four[1][1]) - int(four[0][1]) == 4 * HOUR_MS
    # export --timeframe builds the same 4h bars from the stored hours ...
    out = tmp_path / "x"
    result = invoke("export", "--db", str(path), "--out", str(out), "--timeframe", "4h")
    assert result.exit_code == 0, result.output
    exported = pq.read_table(out / "bars-4h.parquet").to_pylist()
    assert [(r["close"], r["n_bars"], r["complete"]) for r in exported] == [
        (float(f[5]), 4, True) for f in four
    ]
    # ... and has no 15m bars to give.
    shorter = tmp_path / "y"
    result = invoke("export", "--db", str(path), "--out", str(shorter), "--timeframe", "15m")
    assert result.exit_code == 2
    assert "--timeframe 15m: the session's bars are 1h" in result.output
    assert not shorter.exists()


def test_shadow_and_paper_run_on_minutes(tmp_path: Path) -> None:
    result = invoke("paper", "--db", str(tmp_path / "p.db"), "--set", 'data.timeframe="1h"')
    assert result.exit_code == 2
    assert "live-market sessions run on the venue's 1-minute bars" in result.output
    assert not (tmp_path / "p.db").exists()
