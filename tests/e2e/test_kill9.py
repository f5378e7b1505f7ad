"""kill -9 at random instants, continue until done: the result must not show it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE, invoke, startup_s

STATE_TABLES = (
    "SELECT state, changed_by, reason FROM trading_state",
    "SELECT from_state, to_state, changed_by, reason, ts_ms FROM state_changes ORDER BY seq",
    "SELECT day, daily_realised_e8, last_block, counters FROM risk_state",
    "SELECT cash_e8, realised_e8, fees_e8, peak_equity_e8, last_bar_ms, bars, next_intent "
    "FROM account",
    "SELECT * FROM positions",
    "SELECT * FROM lots ORDER BY lot_seq",
)


def _args(db: Path, commit_every: int) -> list[str]:
    return [
        "backtest",
        "--config",
        str(ROOT / "config.toml"),
        "--set",
        f'data.path="{SAMPLE}"',
        "--to",
        "2024-01-08",
        "--set",
        f"runtime.commit_every={commit_every}",
        "--set",
        "risk.daily_loss_limit=60",  # a halt mid-run: state tables must survive too
        "--db",
        str(db),
        "--out",
        str(db.parent / "out"),
        "--quiet",
    ]


def _run(args: list[str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "njord", *args],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def _state(db: Path) -> list[list[tuple[object, ...]]]:
    from njord.store import db as store

    conn = store.open_reader(db)
    try:
        return [[tuple(r) for r in conn.execute(sql)] for sql in STATE_TABLES]
    finally:
        conn.close()


def _exports(db: Path, out: Path) -> dict[str, bytes]:
    assert invoke("export", "--db", str(db), "--out", str(out)).exit_code == 0
    return {n: (out / n).read_bytes() for n in ("trades.csv", "orders.csv", "equity.csv")}


def _has_session(db: Path) -> bool:
    from njord.errors import NjordError
    from njord.store import db as store
    from njord.store.runs import SqliteManifestStore

    if not db.exists():
        return False
    try:
        conn = store.open_reader(db)
    except NjordError:
        return False  # killed before the schema committed: start it again
    try:
        return SqliteManifestStore(conn).load() is not None
    finally:
        conn.close()


def _bars(db: Path) -> int:
    """The bars the session has committed (0 before it holds one)."""
    from njord.store import db as store

    if not _has_session(db):
        return 0
    conn = store.open_reader(db)
    try:
        row = conn.execute("SELECT count(*) FROM equity").fetchone()
        return int(row[0]) if row else 0
    finally:
        conn.close()


def _crash_round(tmp: Path, commit_every: int, rng: random.Random, window: float) -> int:
    """One session killed at random instants and continued until it completes."""
    crashed = tmp / "s.db"
    kills, reach = 0, window
    for _ in range(60):
        args = (
            ["continue", str(crashed), "--quiet"]
            if _has_session(crashed)
            else _args(crashed, commit_every)
        )
        before = _bars(crashed)
        proc = _run(args)
        # A kill before the interpreter has even imported njord proves nothing: the
        # instants are spread over the work that follows the start-up.
        time.sleep(startup_s() + rng.uniform(0.0, reach))
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            # Only kills that hit a session with committed bars count; earlier ones are
            # still made (they test a killed creation) but prove less.
            kills += _has_session(crashed)
            # On a machine slower than when start-up was timed, every attempt could die
            # before its first new bar: one that made none gives the next one longer.
            reach = window if _bars(crashed) > before else reach * 1.5
            continue
        _, err = proc.communicate()
        if proc.returncode == 0 or "already finished" in err:
            return kills
        assert "holds no session" in err or "no session db" in err, err
    raise AssertionError("the session never completed")


@pytest.mark.parametrize("commit_every", [1, 1000])
def test_kill9_at_random_instants_then_continue(tmp_path: Path, commit_every: int) -> None:
    seed = int(os.environ.get("NJORD_CRASH_SEED", random.SystemRandom().randrange(10**9)))
    print(f"kill-point seed {seed} (rerun with NJORD_CRASH_SEED={seed})")
    rng = random.Random(seed)
    reference = tmp_path / "ref" / "s.db"
    assert _run(_args(reference, commit_every)).wait(timeout=120) == 0
    expected = _exports(reference, tmp_path / "ref-out"), _state(reference)
    window = 1.6 if commit_every == 1 else 1.2
    kills, rounds = 0, 0
    while kills < 10:
        rounds += 1
        work = tmp_path / f"round{rounds}"
        kills += _crash_round(work, commit_every, rng, window)
        got = _exports(work / "s.db", work / "out2"), _state(work / "s.db")
        assert got == expected, f"round {rounds} differs (seed {seed})"
        assert invoke("audit", str(work / "s.db")).exit_code == 0
    print(f"commit_every={commit_every}: {kills} kills over {rounds} rounds, all identical")


def test_backup_while_writing_audits_and_continues_to_the_same_result(tmp_path: Path) -> None:
    original = tmp_path / "orig" / "s.db"
    proc = _run(_args(original, 1))
    deadline = time.monotonic() + 30
    while not _has_session(original) or _bars(original) < 500:
        assert time.monotonic() < deadline, "the session never started"
        time.sleep(0.02)
    copy = tmp_path / "copy" / "s.db"
    copy.parent.mkdir()
    result = invoke("backup", str(original), str(copy))
    assert result.exit_code == 0, result.output
    assert proc.wait(timeout=120) == 0
    copied_bars = _bars(copy)
    assert 500 <= copied_bars < 10_080  # taken mid-run
    assert invoke("audit", str(copy)).exit_code == 0
    done = _run(["continue", str(copy), "--quiet"])
    _, err = done.communicate(timeout=120)
    assert done.returncode == 0, err
    assert _exports(copy, tmp_path / "c") == _exports(original, tmp_path / "o")
    assert _state(copy) == _state(original)
    assert invoke("backup", str(original), str(copy)).exit_code == 2  # never overwrites
