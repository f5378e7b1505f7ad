"""Issue 12, sessions: continue, resume and verify do what they say."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import apsw
import pytest

from tests.conftest import ROOT, backtest_args, bars_in, invoke, njord_proc, wait_rows


def _paced_backtest_stopped(data: Path, path: Path, how: signal.Signals, *extra: str) -> None:
    """A backtest that commits every bar, ended by `how` once 20 bars are committed."""
    args = [*backtest_args(data, path, "--no-report"), "--pace-ms", "20", *extra]
    proc = njord_proc(*args, "--set", "runtime.commit_every=1", cwd=ROOT)
    wait_rows(path, "SELECT 1 FROM equity LIMIT 1 OFFSET 19")
    proc.send_signal(how)
    proc.communicate(timeout=60)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "crashed"])
def test_i12_11_verify_checks_the_bars_an_unfinished_session_has(
    sample_week: Path, tmp_path: Path, how: signal.Signals
) -> None:
    path = tmp_path / "s.db"
    _paced_backtest_stopped(sample_week, path, how)
    bars = bars_in(path)
    result = invoke("verify", str(path))
    assert result.exit_code == 0, result.output
    assert re.search(
        rf"incomplete: {bars} bars verified identical, session stopped at 2024-01-01 \d\d:\d\d",
        result.output,
    )
    tampered = apsw.Connection(str(path))
    tampered.execute(
        "UPDATE equity SET cash_e8 = cash_e8 + 1 WHERE ts_ms = (SELECT max(ts_ms) FROM equity)"
    )
    tampered.close()
    diverged = invoke("verify", str(path))
    assert diverged.exit_code == 4
    assert "equity curve differs" in diverged.output


def _docs_example() -> str:
    """The strategy docs/strategies.md shows, verbatim."""
    text = (ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert found is not None
    assert "class DipBuyer" in found.group(1)
    return found.group(1)


def _njord_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """njord in a process whose PYTHONPATH holds njord only: `module` cannot be imported."""
    probe = (
        f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is not None)"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    assert subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT).returncode == 0
    return subprocess.run(
        [sys.executable, "-m", "njord", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_i12_12_the_docs_strategy_verifies_and_continues_without_its_module(
    sample_week: Path, tmp_path: Path
) -> None:
    modules = tmp_path / "mods"
    modules.mkdir()
    (modules / "dipdoc.py").write_text(_docs_example(), encoding="utf-8")
    path = tmp_path / "s.db"
    args = [*backtest_args(sample_week, path, "--no-report"), "--pace-ms", "20"]
    args += ["--set", 'strategy.name="dipdoc:DipBuyer"', "--set", "runtime.commit_every=1"]
    args += ["--set", "strategy.params.lookback=5", "--set", "strategy.params.hold=3"]
    proc = njord_proc(*args, cwd=ROOT, env={"PYTHONPATH": f"{ROOT}:{modules}"})
    wait_rows(path, "SELECT 1 FROM fills LIMIT 1 OFFSET 1")  # it traded: a buy and its exit
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _njord_without("dipdoc", "verify", str(path))
    assert partial.returncode == 0, partial.stderr
    assert "incomplete:" in partial.stdout
    carried = _njord_without(
        "dipdoc", "continue", str(path), "--quiet", "--out", str(tmp_path / "o")
    )
    assert carried.returncode == 0, carried.stderr
    assert bars_in(path) == 3 * 1440
    whole = _njord_without("dipdoc", "verify", str(path))
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.startswith("verified: ")
