from __future__ import annotations

from pathlib import Path

from njord.store import db, reads
from tests.conftest import SAMPLE, backtest_args, invoke


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
    assert reads.status(conn)["risk"]["blocks"]["HALTED"] == blocked


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


def test_halt_posted_to_a_stopped_session_is_applied_on_continue(
    tmp_path: Path, sample_week: Path
) -> None:
    db_path = tmp_path / "s.db"
    args = backtest_args(sample_week, db_path, "--to", "2024-01-02")
    assert invoke(*args).exit_code == 0
    assert invoke("halt", "--db", str(db_path), "--reason", "test").exit_code == 0
    conn = db.open_reader(db_path)
    assert conn.execute("SELECT command, applied_ms FROM controls").fetchone() == ("halt", None)
