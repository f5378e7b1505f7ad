from __future__ import annotations

import os
import shutil
from pathlib import Path

import apsw
import pytest

from njord.store import db
from njord.store.portfolio import SqliteSnapshotStore
from tests.conftest import SAMPLE, backtest_args, invoke, run_killable, user_strategies_env


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real month, commit every 500 bars: many commits, snapshots and fills."""
    path = tmp_path_factory.mktemp("finished") / "s.db"
    result = invoke(*backtest_args(SAMPLE, path, "--set", "runtime.commit_every=500"))
    assert result.exit_code == 0, result.output
    return path


def _copy(finished: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "copy.db"
    shutil.copyfile(finished, copy)
    return copy


def _sql(path: Path, sql: str) -> None:
    conn = apsw.Connection(str(path))
    conn.execute(sql)
    conn.close()


def test_audit_passes_on_a_finished_session(finished: Path) -> None:
    result = invoke("audit", str(finished))
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    ("tamper", "needle"),
    [
        (
            "UPDATE fills SET price_e8 = price_e8 + 1 WHERE fill_id = 7",
            "fills: fill_id 7 differs from decision",
        ),
        (
            "DELETE FROM logs WHERE seq = (SELECT min(seq) FROM logs)",
            "logs: log record 1 is missing",
        ),
        (
            "UPDATE positions SET qty_e8 = qty_e8 + 100000",
            "positions: BTCUSDT (qty_e8, cost_e8) stored",
        ),
        (
            "UPDATE equity SET equity_e8 = equity_e8 + 1 WHERE ts_ms = 1704499980000",
            "equity: rows",
        ),
        (
            "UPDATE decisions SET payload = replace(payload, 'BUY', 'SELL') WHERE seq = 5",
            "decision #5",
        ),
    ],
)
def test_tampering_is_found_and_named(
    finished: Path, tmp_path: Path, tamper: str, needle: str
) -> None:
    copy = _copy(finished, tmp_path)
    _sql(copy, tamper)
    result = invoke("audit", str(copy))
    assert result.exit_code == 4
    assert needle in result.output


def test_replay_from_every_snapshot_reproduces_the_stored_state(finished: Path) -> None:
    conn = db.open_reader(finished)
    ids = SqliteSnapshotStore(conn).ids()
    conn.close()
    assert len(ids) > 10
    for snapshot_id in ids:
        result = invoke("replay", "--db", str(finished), "--from-snapshot", str(snapshot_id))
        assert result.exit_code == 0, (snapshot_id, result.output)


def test_replay_finds_an_edited_account(finished: Path, tmp_path: Path) -> None:
    copy = _copy(finished, tmp_path)
    _sql(copy, "UPDATE account SET cash_e8 = cash_e8 - 1")
    result = invoke("replay", "--db", str(copy))
    assert result.exit_code == 4
    assert "cash_e8: stored" in result.output


def test_verify_passes_and_fails_when_stored_bars_are_altered(
    finished: Path, tmp_path: Path
) -> None:
    assert invoke("verify", str(finished)).exit_code == 0
    copy = _copy(finished, tmp_path)
    _sql(
        copy,
        "UPDATE bar_chunks SET sha256 = 'x' || substr(sha256, 2) WHERE first_ts_ms = "
        "(SELECT min(first_ts_ms) FROM bar_chunks)",
    )
    result = invoke("verify", str(copy))
    assert result.exit_code == 4
    assert "were altered" in result.output


def test_diff_against_itself_and_against_other_slippage(finished: Path, tmp_path: Path) -> None:
    same = invoke("diff", str(finished), str(finished))
    assert same.exit_code == 0
    assert "no divergence" in same.output
    other = tmp_path / "slip.db"
    args = backtest_args(
        SAMPLE, other, "--set", "runtime.commit_every=500", "--set", "costs.slippage_bps=5"
    )
    assert invoke(*args).exit_code == 0
    result = invoke("diff", str(finished), str(other), "--json")
    import json

    report = json.loads(result.output)
    assert report["first"]["what"] == "fill"
    assert report["first"]["cause"] == "different fill price"
    assert report["first"]["bar_utc"] == "2024-01-01 00:46"
    assert invoke("diff", str(finished), str(finished), "--check").exit_code == 0
    checked = invoke("diff", str(finished), str(other), "--check")
    assert checked.exit_code == 4
    assert "the sessions diverge from 2024-01-01 00:46 (fill)" in checked.output


@pytest.mark.parametrize(
    ("make", "code", "needle"),
    [
        (lambda p: p.write_bytes(b"\x00" * 4096), 2, "is not a SQLite database"),
        (lambda p: apsw.Connection(str(p)).execute("CREATE TABLE t (x)"), 2, "another application"),
    ],
)
@pytest.mark.parametrize("command", ["audit", "verify", "continue"])
def test_bad_files_for_session_commands(
    tmp_path: Path, make, code: int, needle: str, command: str
) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.db"
    make(path)
    before = path.read_bytes()
    result = invoke(command, str(path))
    assert result.exit_code == code
    assert needle in result.output
    assert path.read_bytes() == before


def test_truncated_and_newer_dbs_for_audit(finished: Path, tmp_path: Path) -> None:
    copy = _copy(finished, tmp_path)
    data = copy.read_bytes()
    copy.write_bytes(data[: len(data) // 3])
    result = invoke("audit", str(copy))
    assert result.exit_code == 4
    assert "truncated" in result.output
    newer = tmp_path / "newer.db"
    shutil.copyfile(finished, newer)
    _sql(newer, "PRAGMA user_version = 99")
    result = invoke("audit", str(newer))
    assert result.exit_code == 2
    assert "newer than this njord" in result.output


def test_a_paced_session_killed_between_its_decisions_and_its_fills_verifies(
    tmp_path: Path, sample_week: Path, user_strategies: None
) -> None:
    # A paced bar commits its decisions (phase 1) before it sends and books fills: killed
    # in between, the bar is decided but not committed, and verify re-runs the committed
    # bars only. It used to count that bar's decisions and fail ("stored N, re-run N-2").
    path = tmp_path / "paced.db"
    args = backtest_args(sample_week, path, "--no-report", "--pace-ms", "1")
    args += ["--set", 'strategy.name="user_strategies:EveryBar"', "--set", "runtime.commit_every=1"]
    env = {**os.environ, **user_strategies_env(), "NJORD_KILL_AT": "decided:6"}
    assert run_killable(args, env=env) == -9
    result = invoke("verify", str(path))
    assert result.exit_code == 0, result.output
    assert "incomplete" in result.output
