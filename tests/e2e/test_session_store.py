"""The session store as a facade: the coordinator's transactions and its errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from njord import launch, wiring
from njord.cli import load_config
from njord.store import audit, db
from tests.conftest import query


@pytest.fixture
def opened(tmp_path: Path, sample_week: Path) -> launch.Launch:
    """A fresh backtest session, leased and not yet run."""
    config = load_config(None, (f'data.path="{sample_week}"',), "NJORD_").config
    run = launch.backtest(
        config, env_prefix="NJORD_", db_path=tmp_path / "s.db", out_dir=tmp_path / "o", echo=False
    )
    run.session.writer.write_now(run.session.log.drain())
    return run


def test_a_bar_transaction_commits_its_bar_or_nothing(opened: launch.Launch) -> None:
    session = opened.session
    writer = session.writer
    book = wiring.build_book(session.config, session.manifest)
    with writer.bar_transaction(book):
        writer.add_equity(60_000, 1, 2, 0, 3)
    assert not writer.in_transaction

    def failing_bar() -> None:
        with writer.bar_transaction(book):
            writer.add_equity(120_000, 1, 2, 0, 3)
            raise RuntimeError("strategy blew up")

    with pytest.raises(RuntimeError, match="strategy blew up"):
        failing_bar()
    assert not writer.in_transaction
    with writer.bar_transaction(book):  # the chain carries on from the committed head
        writer.add_equity(120_000, 4, 5, 0, 6)
    session.close()
    assert query(session.path, "SELECT ts_ms, equity_e8 FROM equity") == [(60_000, 3), (120_000, 6)]
    conn = db.open_reader(session.path)
    try:
        assert [problem for _, problem in audit.audit(conn)] == [None] * 4
    finally:
        conn.close()
