"""Issue 12, items 1-4 and 14: operator controls do what they say, or refuse cleanly."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

from tests.conftest import (
    ROOT,
    backtest_args,
    invoke,
    njord_proc,
    query,
    user_strategies_env,
    wait_rows,
    write_bars,
)

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def _two_prices(path: Path, entry: float, later: float, bars: int = 3000) -> Path:
    """One bar at `entry`, then `bars` bars at `later`: the flatten's price is known."""
    rows = [(T0 + i * 60_000, p, p, p, p, 1.0) for i, p in enumerate([entry] + [later] * bars)]
    return write_bars(path, rows)


def _paced(work: Path, data: Path, *sets: str) -> tuple[Path, subprocess.Popen[str]]:
    """A slowed backtest of HoldLong (buys 0.01 on its first bar and holds)."""
    work.mkdir(exist_ok=True)
    db_path = work / "s.db"
    args = [*backtest_args(data, db_path), "--pace-ms", "20"]
    args += ["--set", 'strategy.name="user_strategies:HoldLong"']
    for item in sets:
        args += ["--set", item]
    return db_path, njord_proc(*args, cwd=ROOT, env=user_strategies_env())


def _flatten_when_long(db_path: Path, proc: subprocess.Popen[str]) -> None:
    try:
        wait_rows(db_path, "SELECT 1 FROM positions WHERE qty_e8 > 0")
        result = invoke("flatten", "--db", str(db_path))
        assert result.exit_code == 0, result.output
        assert "posted" in result.output
        wait_rows(db_path, "SELECT 1 FROM controls WHERE applied_ms IS NOT NULL")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_i12_01_flatten_past_the_notional_cap_ends_flat(tmp_path: Path) -> None:
    # The repro: a long worth 9,516 against risk.notional_cap = 9501. The cap
    # refused the closing SELL; the position stayed open and flatten said nothing.
    data = _two_prices(tmp_path / "bars.parquet", 950_000.0, 951_600.0)
    db_path, proc = _paced(tmp_path, data, "risk.notional_cap=9501")
    _flatten_when_long(db_path, proc)
    assert query(db_path, "SELECT qty_e8 FROM positions") == [(0,)]
    closing = query(
        db_path,
        "SELECT reason, json_extract(rule_inputs, '$.notional_e8') FROM intents "
        "WHERE tag = 'flatten'",
    )
    assert closing == [("OK", 9_516 * 10**8)]
    assert query(db_path, "SELECT state FROM trading_state") == [("HALTED",)]


def test_i12_02_flatten_reports_flat_or_what_stayed_open_and_why(tmp_path: Path) -> None:
    flat = _two_prices(tmp_path / "flat.parquet", 950_000.0, 951_600.0)
    db_path, proc = _paced(tmp_path / "a", flat, "risk.notional_cap=9501")
    _flatten_when_long(db_path, proc)
    assert _reported(db_path) == ("operator; flatten: flat", "flatten: flat")
    assert query(db_path, "SELECT kind FROM alerts") == []
    # Dust: 0.01 bought at 1,100 is worth 5 at 500, under costs.min_notional = 10.
    dust = _two_prices(tmp_path / "dust.parquet", 1_100.0, 500.0)
    db_path, proc = _paced(tmp_path / "b", dust)
    _flatten_when_long(db_path, proc)
    outcome = "0.01 BTCUSDT stayed open: closing order refused BELOW_MIN_NOTIONAL"
    assert _reported(db_path) == (f"operator; flatten: {outcome}", f"flatten: {outcome}")
    assert query(db_path, "SELECT kind, msg, cleared_ms FROM alerts") == [
        ("flatten_refused", f"flatten: {outcome}", None)
    ]
    assert query(db_path, "SELECT state FROM trading_state") == [("HALTED",)]


def _reported(db_path: Path) -> tuple[object, object]:
    """The flatten's state-change reason and its log record."""
    (change,) = query(db_path, "SELECT reason FROM state_changes WHERE reason LIKE '%flatten%'")
    (record,) = query(db_path, "SELECT msg FROM logs WHERE msg LIKE 'flatten:%'")
    return change[0], record[0]
