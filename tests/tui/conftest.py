"""Session dbs made by real backtests, for the TUI to open."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import backtest_args, invoke


@pytest.fixture
def finished(tmp_path: Path, sample_week: Path) -> Path:
    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    return path


@pytest.fixture
def halted(tmp_path: Path, sample_week: Path) -> Path:
    """A session the daily-loss rail halted: blocked verdicts, an alert, warnings."""
    path = tmp_path / "halted.db"
    args = backtest_args(sample_week, path, "--no-report", "--set", "risk.daily_loss_limit=20")
    assert invoke(*args).exit_code == 0
    return path
