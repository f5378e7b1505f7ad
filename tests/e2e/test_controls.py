from __future__ import annotations

import signal
import time
from pathlib import Path

from njord.store import db, reads
from tests.conftest import (
    ROOT,
    SAMPLE,
    backtest_args,
    invoke,
    njord_proc,
    query,
    user_strategies_env,
    wait_rows,
)


def test_daily_loss_breach_halts_and_later_intents_are_blocked(tmp_path: Path) -> None:
    db_path = tmp_path / "s.db"
    args = backtest_args(SAMPLE, db_path, "--set", "risk.daily_loss_limit=20")
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    assert "HALTED" in result.output
    conn = db.open_reader(db_path)
    change = conn.execute("SELECT to_state, changed_by, reason FROM state_changes").fetchone()
    assert change == ("HALTED", "risk", "DAILY_LOSS_LIMIT")
    blocked = conn.execute(
        "SELECT count(*) FROM v_blocked_intents WHERE reason = 'HALTED'"
    ).fetchone()[0]
    assert blocked > 0
    assert reads.session_status(conn).risk.blocks["HALTED"] == blocked


def test_resume_without_confirm_is_refused_and_changes_nothing(
    tmp_path: Path, sample_week: Path
) -> None:
    db_path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, db_path)).exit_code == 0
    before = db_path.read_bytes()
    result = invoke("resume", "--db", str(db_path))
    assert result.exit_code == 2
    assert "--confirm" in result.output
    assert db_path.read_bytes() == before


def _start_paced(tmp_path: Path, strategy: str, *extra: str):  # type: ignore[no-untyped-def]
    db_path = tmp_path / "s.db"
    args = [
        *backtest_args(SAMPLE, db_path),
        "--pace-ms",
        "50",
        "--set",
        f'strategy.name="user_strategies:{strategy}"',
        *extra,
    ]
    return db_path, njord_proc(*args, cwd=ROOT, env=user_strategies_env())


def test_halt_from_another_process_takes_effect_within_one_second(tmp_path: Path) -> None:
    db_path, proc = _start_paced(tmp_path, "EveryBar")
    try:
        wait_rows(db_path, "SELECT 1 FROM intents WHERE allowed = 1 LIMIT 1")
        halt = njord_proc("halt", "--db", str(db_path), "--reason", "latency test", cwd=ROOT)
        assert halt.wait(timeout=30) == 0
        posted = time.monotonic()
        wait_rows(db_path, "SELECT 1 FROM intents WHERE reason = 'HALTED' LIMIT 1")
        seen = time.monotonic() - posted
        latency_ms = query(db_path, "SELECT applied_ms - posted_ms FROM controls")[0][0]
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    print(
        f"halt: first HALTED verdict {seen * 1000:.0f} ms after the command; stored "
        f"posted->applied {latency_ms} ms"
    )
    assert seen < 1.0
    assert isinstance(latency_ms, int)
    assert latency_ms < 1000


def test_flatten_closes_through_the_normal_path_then_halts_and_is_idempotent(
    tmp_path: Path,
) -> None:
    db_path, proc = _start_paced(tmp_path, "HoldLong")
    try:
        wait_rows(db_path, "SELECT 1 FROM positions WHERE qty_e8 > 0")
        assert invoke("flatten", "--db", str(db_path)).exit_code == 0
        # Applied in a bar's first phase, settled (filled, HALTED naming it) in its third.
        wait_rows(db_path, "SELECT 1 FROM state_changes WHERE reason LIKE '%flatten: %'")
        assert invoke("flatten", "--db", str(db_path)).exit_code == 0
        wait_rows(
            db_path, "SELECT 1 FROM state_changes WHERE reason LIKE '%flatten: %' LIMIT 1 OFFSET 1"
        )
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert query(db_path, "SELECT qty_e8 FROM positions") == [(0,)]
    assert query(db_path, "SELECT state FROM trading_state") == [("HALTED",)]
    closing = query(
        db_path,
        "SELECT o.side, o.status, i.reason FROM orders o JOIN intents i USING (intent_id) "
        "WHERE i.tag = 'flatten'",
    )
    assert closing == [("SELL", "FILLED", "OK")]  # risk verdict, router, fill: the normal path
    trades = query(db_path, "SELECT count(*) FROM trades")[0][0]
    assert trades == 1


def test_halted_session_stays_halted_after_kill_and_continue(tmp_path: Path) -> None:
    db_path, proc = _start_paced(tmp_path, "EveryBar")
    try:
        wait_rows(db_path, "SELECT 1 FROM intents WHERE allowed = 1 LIMIT 1")
        assert invoke("halt", "--db", str(db_path)).exit_code == 0
        wait_rows(db_path, "SELECT 1 FROM intents WHERE reason = 'HALTED' LIMIT 1")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    fills_at_kill = query(db_path, "SELECT count(*) FROM fills")
    cont = njord_proc(
        "continue",
        str(db_path),
        "--quiet",
        "--out",
        str(tmp_path / "o"),
        cwd=ROOT,
        env=user_strategies_env(),
    )
    _, err = cont.communicate(timeout=120)
    # continue replays to the kill point and refuses (exit 4) unless the rebuilt trading
    # state and daily-loss counter equal the committed ones.
    assert cont.returncode == 0, err
    assert query(db_path, "SELECT state FROM trading_state") == [("HALTED",)]
    assert query(db_path, "SELECT count(*) FROM state_changes") == [(1,)]
    assert query(db_path, "SELECT count(*) FROM fills") == fills_at_kill
    assert query(db_path, "SELECT bars FROM account") == [(44_640,)]
