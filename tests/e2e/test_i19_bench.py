"""Issue 19: scripts/bench.py measures njord against a floor in the same run, and a
backtest starts without what it does not use. No timing is asserted here (speed lives in
the bench): only that the bench runs on a fresh copy and reports, and what is imported."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT, TOOL_CACHES, backtest_args


def test_i19_bench_floor_and_year_from_a_fresh_copy(tmp_path: Path) -> None:
    clone = tmp_path / "clone"  # what a fresh clone holds: no .bench/, no runs/
    tracked = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z"], capture_output=True, check=True
    ).stdout.decode()
    for name in filter(None, tracked.split("\0")):
        if (ROOT / name).is_file() and not TOOL_CACHES.intersection(Path(name).parts):
            (clone / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, clone / name)
    bench = [sys.executable, str(clone / "scripts" / "bench.py"), "--bars", "2000"]
    done = subprocess.run(
        [*bench, "--sizes", "floor,year", "--repeat", "2", "--json"],
        cwd=clone,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads(done.stdout)
    assert results["floor"]["bars"] == results["year"]["bars"] == 2000
    assert results["floor"]["orders"] > 0  # the floor trades, as the backtest does
    assert len(results["year"]["wall_s_runs"]) == 2
    assert results["ratios"]["year_over_floor_wall"] > 0
    assert (clone / ".bench" / "bars-2000.parquet").is_file()


def test_i19_bench_paper_of_two_symbols_and_two_strategies_reports_its_latency() -> None:
    """`--sizes paper`: the issue's two symbols and two strategies, on the loopback simulator
    the script starts itself (port 0) and stops."""
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--sizes", "paper", "--bars", "60"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    figures = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert figures["paper.bars"] == "60"
    assert int(figures["paper.orders"]) >= 8  # each strategy trades every 12th bar
    assert 0 < float(figures["paper.decision_p50_ms"]) <= float(figures["paper.decision_p99_ms"])


def test_i19_bench_refuses_an_unknown_size() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--sizes", "decade"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--sizes takes month, year, year2, floor" in done.stderr


@pytest.mark.parametrize("extra", [[], ["--peer-python", "no-such-python"]])
def test_i19_bench_peer_needs_an_interpreter_with_backtesting(
    extra: list[str], tmp_path: Path
) -> None:
    """backtesting.py is never njord's dependency: `--sizes peer` runs it under a Python
    the user names, and is refused before anything runs without one."""
    bench = [sys.executable, str(ROOT / "scripts" / "bench.py"), "--work", str(tmp_path)]
    done = subprocess.run(
        [*bench, "--sizes", "peer", *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "--sizes peer needs --peer-python: a Python with backtesting installed" in done.stderr
    assert not list(tmp_path.iterdir())


def test_i19_a_backtest_imports_neither_pandas_nor_pyarrow_compute(
    tmp_path: Path, sample_week: Path
) -> None:
    """pyarrow imports pandas the first time it converts a Python value (half a second);
    the bar feed, QC and the exports go through buffers instead (njord.data.columns)."""
    args = backtest_args(sample_week, tmp_path / "s.db", "--json", "--no-report")
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "njord", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines()}
    assert "pyarrow" in imported  # the test sees imports at all
    assert not {"pandas", "pyarrow.compute", "rich", "textual"} & imported
    assert json.loads(done.stdout)["status"]["bars"] == 3 * 1440


# Output buffered as in a terminal-less run (the tests' own environment may unbuffer it).
BUFFERED = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
ENDS = """
import atexit, sys, threading, time
from pathlib import Path
from njord.cli import end

out = Path(sys.argv[1])
atexit.register(lambda: (out / "atexit").write_text("ran"))
def late() -> None:
    time.sleep(0.3)
    (out / "thread").write_text("joined")
threading.Thread(target=late).start()
# An executor never shut down: its idle worker is told to stop by threading's own exit
# callbacks, before threads are joined (a plain join would wait for it forever).
from concurrent.futures import ThreadPoolExecutor
pool = ThreadPoolExecutor(1)
pool.submit(lambda: None).result()
sys.stdout.write("buffered, no newline")
end({code})
"""


@pytest.mark.parametrize(
    ("code", "status", "stderr"),
    [("3", 3, ""), ("'no such db'", 1, "no such db\n"), ("None", 0, "")],
)
def test_i19_the_command_ends_without_teardown_but_with_what_teardown_does(
    tmp_path: Path, code: str, status: int, stderr: str
) -> None:
    """`njord` ends with os._exit (Python's teardown of pyarrow and numpy is a fifth of a
    second); exit handlers, other threads and buffered output are still seen to."""
    done = subprocess.run(
        [sys.executable, "-c", ENDS.format(code=code), str(tmp_path)],
        cwd=ROOT,
        env=BUFFERED,
        capture_output=True,
        text=True,
        check=False,
        timeout=20,
    )
    assert (done.returncode, done.stdout, done.stderr) == (status, "buffered, no newline", stderr)
    assert (tmp_path / "atexit").read_text() == "ran"
    assert (tmp_path / "thread").read_text() == "joined"


def test_i19_output_to_a_closed_pipe_exits_120_without_a_traceback(tmp_path: Path) -> None:
    """`njord ... | head -1`: the reader is gone when the last output is flushed (closed
    before the child starts, so there is no race to lose)."""
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", "from njord.cli import end; print('x'); end(0)"],
            cwd=ROOT,
            env=BUFFERED,
            stdout=write_end,
            stderr=subprocess.PIPE,
        )
    finally:
        os.close(write_end)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 120
    assert stderr == b""
