"""A copied db carries on where its strategy's module does not exist."""

from __future__ import annotations

import importlib.util
import signal
from pathlib import Path

from tests.conftest import (
    ROOT,
    SAMPLE,
    backtest_args,
    bars_in,
    invoke,
    njord_proc,
    user_strategies_env,
    wait_rows,
)


def test_continue_uses_the_stored_strategy_source(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    args = [
        *backtest_args(SAMPLE, path, "--no-report"),
        "--pace-ms",
        "20",
        "--set",
        'strategy.name="user_strategies:HoldLong"',
    ]
    proc = njord_proc(*args, cwd=ROOT, env=user_strategies_env())
    wait_rows(path, "SELECT 1 FROM equity LIMIT 1 OFFSET 19")  # 20 bars committed
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert importlib.util.find_spec("user_strategies") is None  # not importable here
    result = invoke("continue", str(path), "--quiet", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert bars_in(path) == 44_640
    assert invoke("audit", str(path)).exit_code == 0
