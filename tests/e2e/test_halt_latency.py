"""Issue 13: a halt takes effect within 1 s while a restarted session rebuilds.

The rebuild holds no write transaction (it reads the decision log and the stored bars), so
`njord halt` from another process posts at once, and the halt applies at the first new
bar, before the strategy decides anything there. The halt is run from inside the rebuild
itself (user_strategies.HaltsDuringRebuild), so it lands in that phase every time.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

from tests.conftest import ROOT, SAMPLE, njord_proc, query, startup_s, user_strategies_env

KILLED_AT = 20_000  # bars committed when the first run dies


def _backtest(db: Path, strategy: str, *extra: str) -> list[str]:
    """A backtest of the sample month with a strategy of tests/e2e/user_strategies.py."""
    return [
        "backtest",
        "--config",
        str(ROOT / "config.toml"),
        "--set",
        f'data.path="{SAMPLE}"',
        "--strategy",
        f"user_strategies:{strategy}",
        *extra,
        "--db",
        str(db),
        "--out",
        str(db.parent / "out"),
        "--quiet",
        "--no-report",
    ]


def _backtest_killed_at(db: Path, bars: int) -> None:
    args = _backtest(db, "HaltsDuringRebuild")
    proc = njord_proc(*args, cwd=ROOT, env=user_strategies_env())
    while True:
        if db.exists():
            try:
                (count,) = query(db, "SELECT count(*) FROM equity")[0]
            except Exception:  # not a session db yet
                count = 0
            if isinstance(count, int) and count >= bars:
                break
        assert proc.poll() is None, "the backtest ended before it could be killed"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()


def test_a_halt_posted_while_a_restart_rebuilds_answers_within_1s_and_applies_first(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.db"
    _backtest_killed_at(db, KILLED_AT)
    (done,) = query(db, "SELECT count(*) FROM equity")[0]
    assert isinstance(done, int)
    env = {**user_strategies_env(), "NJORD_TEST_HALT_DB": str(db)}
    carry = njord_proc(
        "continue", str(db), "--quiet", "--out", str(tmp_path / "o"), cwd=ROOT, env=env
    )
    _, err = carry.communicate(timeout=120)
    assert carry.returncode == 0, err
    code, took, *rest = Path(f"{db}.halt").read_text().split(maxsplit=2)
    assert code == "0", rest
    answered = float(took) - startup_s()  # the halt's own interpreter start is not latency
    print(f"halt answered during the rebuild in {answered * 1000:.0f} ms (+ interpreter start)")
    assert answered < 1.0
    assert query(db, "SELECT count(*) FROM logs WHERE msg LIKE 'rebuilt without the venue%'")[0][0]
    # Applied at the first new bar, before the strategy decided there.
    (applied_at,) = query(db, "SELECT bar_ts_ms FROM controls WHERE reason = 'during rebuild'")[0]
    first_new = query(db, f"SELECT ts_ms FROM equity ORDER BY ts_ms LIMIT 1 OFFSET {done}")[0][0]
    assert applied_at == first_new
    assert query(db, "SELECT state FROM trading_state") == [("HALTED",)]


def test_controls_applied_between_bars_verify(tmp_path: Path) -> None:
    # A paced session applies a halt posted while it waits for its next bar, after the last
    # bar's decisions. verify used to re-apply it before them (and refuse the db, exit 4),
    # and a resume in the same wait after it, in another order than the session's.
    db = tmp_path / "between.db"
    args = _backtest(db, "HaltsBetweenBars", "--to", "2024-01-01T00:02", "--pace-ms", "3000")
    env = {**user_strategies_env(), "NJORD_TEST_HALT_DB": str(db)}
    proc = njord_proc(*args, cwd=ROOT, env=env)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    applied = query(db, "SELECT command, bar_ts_ms FROM controls ORDER BY seq")
    assert [command for command, _ in applied] == ["halt", "resume"]
    # Usually both in one wait; a loaded machine may push the resume into a later one.
    at = applied[0][1]
    assert isinstance(at, int)
    assert at % 60_000 == 1  # the halt applied between bars, after `at - 1`
    decided = query(db, "SELECT bar_ts_ms, reason FROM intents ORDER BY intent_id")
    assert (at - 1, "OK") in decided  # that bar's decision came before the halt
    changes = query(db, "SELECT to_state FROM state_changes ORDER BY seq")
    assert changes == [("HALTED",), ("ACTIVE",)]
    verified = njord_proc("verify", str(db), cwd=ROOT, env=user_strategies_env())
    out, err = verified.communicate(timeout=120)
    assert verified.returncode == 0, out + err
