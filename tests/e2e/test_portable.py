"""A copied db carries on where its strategy's module does not exist."""

from __future__ import annotations

import importlib.util
import os
import signal
import time
from pathlib import Path

from njord.errors import NjordError
from njord.store import db
from tests.conftest import ROOT, SAMPLE, backtest_args, invoke, njord_proc


def _bars(path: Path) -> int:
    try:
        conn = db.open_reader(path)
    except NjordError:
        return 0
    try:
        row = conn.execute("SELECT count(*) FROM equity").fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


def test_continue_uses_the_stored_strategy_source(tmp_path: Path) -> None:
    path = tmp_path / "s.db"
    env = {"PYTHONPATH": f"{ROOT / 'tests' / 'e2e'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    args = [
        *backtest_args(SAMPLE, path, "--no-report"),
        "--pace-ms",
        "20",
        "--set",
        'strategy.name="user_strategies:HoldLong"',
    ]
    proc = njord_proc(*args, cwd=ROOT, env=env)
    deadline = time.monotonic() + 30
    while _bars(path) < 20:
        assert time.monotonic() < deadline, "the session never started"
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert importlib.util.find_spec("user_strategies") is None  # not importable here
    result = invoke("continue", str(path), "--quiet", "--out", str(tmp_path / "o"))
    assert result.exit_code == 0, result.output
    assert _bars(path) == 44_640
    assert invoke("audit", str(path)).exit_code == 0
