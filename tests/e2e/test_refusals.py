"""Issue 12's refusals: data that lies, ordinary mistakes, one db convention (no tracebacks)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import backtest_args, invoke, write_bars

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MINUTE = 60_000


def _bars(path: Path, minutes: list[int]) -> Path:
    return write_bars(path, [(T0 + m * MINUTE, 100.0, 101.0, 99.0, 100.5, 1.0) for m in minutes])


def test_i12_17_strict_flag_refuses_gaps_and_excludes_fill(tmp_path: Path) -> None:
    data = _bars(tmp_path / "gap.parquet", [*range(30), *range(40, 70)])
    db = tmp_path / "s.db"
    # --strict wins over a config that forward-fills: the gap is refused as data (exit 3).
    strict = invoke(*backtest_args(data, db, "--set", 'data.gaps="forward"', "--strict"))
    assert strict.exit_code == 3, strict.output
    assert "gap of 10 bars after 2024-01-01 00:29" in strict.output
    both = invoke(*backtest_args(data, db, "--strict", "--fill", "none"))
    assert both.exit_code == 2
    assert both.output.strip() == (
        "error: --strict refuses gaps and --fill none handles them: give one"
    )
    assert not db.exists()
