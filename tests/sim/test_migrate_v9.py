"""Issue 17: a session made before several strategies, symbols and reloads (schema 9)
opens, audits and verifies unchanged after `njord migrate`, and carries on trading."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import apsw
import pytest

from njord.sim.server import SimServer
from tests.conftest import ROOT, SAMPLE, invoke, query
from tests.sim.conftest import frozen_market
from tests.sim.test_paper import session_args

FIXTURE = ROOT / "tests" / "fixtures" / "session-v9-paper.db"
SMA = ("--set", "strategy.params.fast=3", "--set", "strategy.params.slow=7")


def _as_is(path: Path, sql: str) -> list[tuple[object, ...]]:
    """Read without njord's store, which opens an older db only to migrate it."""
    conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
    try:
        return [tuple(row) for row in conn.execute(sql)]
    finally:
        conn.close()


@pytest.fixture
def market() -> Iterator[SimServer]:
    with frozen_market(SAMPLE, 120) as server:
        yield server


def test_a_schema_9_paper_session_migrates_verifies_and_carries_on(
    market: SimServer, tmp_path: Path
) -> None:
    old = tmp_path / "old.db"
    shutil.copyfile(FIXTURE, old)
    assert _as_is(old, "PRAGMA user_version") == [(9,)]
    before = _as_is(old, "SELECT * FROM decisions ORDER BY seq")
    refused = invoke("audit", str(old))  # a reader never migrates
    assert refused.exit_code == 2
    assert "njord migrate" in refused.output
    assert invoke("migrate", str(old)).exit_code == 0
    assert query(old, "SELECT * FROM decisions ORDER BY seq") == before  # the log as it was
    assert query(old, "SELECT symbol FROM paper_market") == [("",)]
    assert invoke("audit", str(old)).exit_code == 0
    verified = invoke("verify", str(old))
    assert verified.exit_code == 0, verified.output
    assert "60 bars verified identical" in verified.output
    # Carried on by the same command, on the market's next hour: it ends where a session
    # run by this njord from the start does.
    args = session_args("paper", old, market.url, *SMA, "--bars", "60")
    assert invoke(*args).exit_code == 0
    fresh = tmp_path / "fresh.db"
    assert invoke(*session_args("paper", fresh, market.url, *SMA, "--bars", "120")).exit_code == 0
    for sql in (
        "SELECT ts_ms, close_e8, cash_e8, position_e8, equity_e8 FROM equity ORDER BY ts_ms",
        "SELECT ts_ms, side, qty_e8, price_e8, fee_e8 FROM fills ORDER BY fill_id",
    ):
        assert query(old, sql) == query(fresh, sql), sql
    assert len(query(old, "SELECT 1 FROM equity")) == 120
    assert invoke("verify", str(old)).exit_code == 0
