"""Bad input to the session commands: one line, the documented exit code, nothing written."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import ROOT, SAMPLE, backtest_args, invoke


@pytest.fixture
def finished(tmp_path: Path, sample_week: Path) -> Path:
    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    return path


def _paper(db: Path, *extra: str) -> list[str]:
    # The venue URL is never reached: every case is refused before the first request.
    return [
        "paper",
        "--config",
        str(ROOT / "config.toml"),
        "--db",
        str(db),
        "--set",
        'venue.base_url="http://127.0.0.1:9"',
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--for", "5x"), "--for takes a duration like 55m, 2h or 90s, got '5x'"),
        (("--for", "5m", "--until", "2030-01-01"), "--for and --until exclude each other"),
        (("--bars", "0"), "--bars must be >= 1, got 0"),
    ],
)
def test_live_session_arguments(tmp_path: Path, extra: tuple[str, ...], needle: str) -> None:
    db = tmp_path / "p.db"
    result = invoke(*_paper(db, *extra))
    assert result.exit_code == 2
    assert needle in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()


def test_paper_refuses_a_backtest_db_and_continue_a_finished_one(finished: Path) -> None:
    before = finished.read_bytes()
    paper = invoke(*_paper(finished, "--bars", "1"))
    assert paper.exit_code == 2
    assert "holds a backtest session, not a paper one" in paper.output
    again = invoke("continue", str(finished), "--quiet")
    assert again.exit_code == 2
    assert "already finished" in again.output
    assert finished.read_bytes() == before


def test_exchange_sim_key_without_secret() -> None:
    result = invoke("exchange-sim", "--data", str(SAMPLE), "--api-key", "k")
    assert result.exit_code == 2
    assert "--api-key and --api-secret go together" in result.output


def test_backtest_refuses_a_live_mode_config(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = invoke(*backtest_args(SAMPLE, db, "--set", 'runtime.mode="paper"'))
    assert result.exit_code == 2
    assert "runtime.mode is 'paper'; `njord backtest` runs backtests" in result.output
    assert not db.exists()
