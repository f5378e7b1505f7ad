from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner, Result

from njord.cli import cli

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "BTCUSDT-1m-2024-01.parquet"

# What Python and the dev tools leave anywhere; everything else a test writes goes to tmp_path.
TOOL_CACHES = frozenset(
    {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache", ".hypothesis", ".venv"}
)


_BEFORE = pytest.StashKey[set[str] | None]()


def untracked_files() -> set[str] | None:
    """Files in the checkout that git does not track, ignored ones included (runs/ is
    ignored), less tool caches; None outside a git checkout."""
    skip = [f"--exclude={name}/" for name in sorted(TOOL_CACHES)]  # git need not walk them
    done = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "--others", "-z", *skip],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        return None
    return {name for name in done.stdout.decode().split("\0") if name}


def pytest_sessionstart(session: pytest.Session) -> None:
    session.config.stash[_BEFORE] = untracked_files()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """The suite leaves nothing in the checkout: a test that does fails the session."""
    before, after = session.config.stash.get(_BEFORE, None), untracked_files()
    if before is None or after is None:
        return
    gained = sorted(after - before)
    if gained:
        shown = ", ".join(gained[:5]) + (f" and {len(gained) - 5} more" if len(gained) > 5 else "")
        print(f"\nthe test session left files in the checkout: {shown}", file=sys.stderr)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


@pytest.fixture
def sample_week(tmp_path: Path) -> Path:
    """The first 3 days of the real sample month: fast, still real."""
    table = pq.read_table(SAMPLE).slice(0, 3 * 1440)
    path = tmp_path / "week.parquet"
    pq.write_table(table, path)
    return path


def write_bars(path: Path, rows: list[tuple[int, float, float, float, float, float]]) -> Path:
    ts, o, h, lo, c, v = zip(*rows, strict=True)
    table = pa.table(
        {
            "ts_utc": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "open": pa.array(o, pa.float64()),
            "high": pa.array(h, pa.float64()),
            "low": pa.array(lo, pa.float64()),
            "close": pa.array(c, pa.float64()),
            "volume": pa.array(v, pa.float64()),
        }
    )
    pq.write_table(table, path)
    return path


@pytest.fixture
def user_strategies(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """tests/e2e's user-style strategies importable by name in this test only: the module
    is dropped afterwards, so a later test that needs it unimportable still finds it so."""
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "e2e"))
    yield
    sys.modules.pop("user_strategies", None)


def user_strategies_env() -> dict[str, str]:
    """For a subprocess: tests/e2e on PYTHONPATH, where the user-style strategies live."""
    return {"PYTHONPATH": f"{ROOT / 'tests' / 'e2e'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def wait_rows(db_path: Path, sql: str, timeout: float = 30.0) -> list[tuple[object, ...]]:
    """Poll a db another process is creating or writing until `sql` returns rows."""
    import apsw

    from njord.errors import NjordError

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            rows = query(db_path, sql) if db_path.exists() else []
        except (NjordError, apsw.Error):  # not a session db yet
            rows = []
        if rows:
            return rows
        time.sleep(0.01)
    raise AssertionError(f"no rows for {sql} within {timeout}s")


def bars_in(db_path: Path) -> int:
    """Bars committed to a session db (0 before it exists: how far a killed run got)."""
    if not db_path.exists():
        return 0
    (count,) = query(db_path, "SELECT count(*) FROM equity")[0]
    return int(str(count))


def query(db_path: Path, sql: str) -> list[tuple[object, ...]]:
    """Rows of one query on a session db, through a read-only connection."""
    from njord.store import db

    conn = db.open_reader(db_path)
    try:
        return [tuple(r) for r in conn.execute(sql)]
    finally:
        conn.close()


def invoke(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(cli, list(args), env=env, catch_exceptions=False)


_STARTUP: list[float] = []


def startup_s() -> float:
    """How long `python -m njord` takes to reach a command on this machine now (imports
    included), measured once per test session: the median of three. Tests that kill or
    time a subprocess add it, instead of assuming an interpreter starts in a fixed time."""
    if not _STARTUP:
        took = []
        for _ in range(3):
            started = time.monotonic()
            subprocess.run(
                [sys.executable, "-m", "njord", "--version"], check=True, capture_output=True
            )
            took.append(time.monotonic() - started)
        _STARTUP.append(sorted(took)[1])
    return _STARTUP[0]


def njord_proc(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    full_env = {**os.environ, **(env or {})}
    return subprocess.Popen(
        [sys.executable, "-m", "njord", *args],
        cwd=cwd,
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def backtest_args(data: Path, db: Path, *extra: str) -> list[str]:
    return [
        "backtest",
        "--set",
        f'data.path="{data}"',
        "--db",
        str(db),
        "--out",
        str(db.parent / "out"),
        "--quiet",
        *extra,
    ]


def run_killable(args: list[str], env: dict[str, str] | None = None) -> int:
    """One `njord` run that may SIGKILL itself (NJORD_KILL_AT): its exit code, 0 or -9."""
    proc = njord_proc(*args, cwd=ROOT, env=env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode in (0, -9), err
    return proc.returncode
