"""Issue 13: kill -9 at seeded instants in every phase of a paper bar, then carry on.

Each run of the same `njord paper` command is killed by `NJORD_KILL_AT` (njord.killpoints)
the n-th time it reaches a phase boundary: after phase 1 committed the NEW orders and
before anything was sent (`decided`), after the broker answered and before phase 3
committed (`sent`), or after phase 3 (`committed`). The same command carries on until the
market's bars are all in; the end state must equal an uninterrupted run's, and the paper
broker must never have been sent an order id twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from njord.sim.server import SimServer
from tests.conftest import SAMPLE, bars_in, query, run_killable
from tests.sim.conftest import assert_ends_as, frozen_market, kill_in_every_phase
from tests.sim.test_paper import live_args

BARS = 400
KILLS = 50
COMPARED = (
    "SELECT ts_ms, close_e8, cash_e8, position_e8, equity_e8 FROM equity ORDER BY ts_ms",
    "SELECT * FROM fills ORDER BY fill_id",
    "SELECT client_order_id, side, qty_e8, status, filled_qty_e8, avg_price_e8 FROM orders "
    "ORDER BY intent_id",
    "SELECT intent_id, bar_ts_ms, seq, side, qty_e8, allowed, reason FROM intents",
    "SELECT * FROM account",
    "SELECT * FROM lots",
)


@pytest.fixture
def market() -> Iterator[SimServer]:
    with frozen_market(SAMPLE, BARS) as server:
        yield server


def _paper(db: Path, url: str, kill_at: str | None, *limit: str) -> int:
    """`limit`: as in test_paper_symbols._paper (the reference run's is its bar count)."""
    args = live_args(
        "paper",
        db,
        url,
        *(limit or ("--for", "1.5s")),
        "--set",
        "strategy.params.fast=3",
        "--set",
        "strategy.params.slow=7",
    )
    return run_killable(list(args), {"NJORD_KILL_AT": kill_at} if kill_at else None)


def test_kill_9_in_every_phase_loses_nothing_and_sends_nothing_twice(
    market: SimServer, tmp_path: Path
) -> None:
    reference = tmp_path / "ref.db"
    assert _paper(reference, market.url, None, "--bars", str(BARS)) == 0
    assert bars_in(reference) == BARS
    orders = query(reference, "SELECT count(*) FROM orders")[0][0]
    assert isinstance(orders, int)
    assert orders > 10  # enough bars with orders to kill in
    crashed = tmp_path / "crash.db"

    def run(kill_at: str | None) -> int:
        return _paper(crashed, market.url, kill_at)

    kills = kill_in_every_phase(run, crashed, bars=BARS, kills=KILLS, seed=13, most=8)
    assert sum(kills.values()) == KILLS
    assert all(kills.values())
    assert_ends_as(crashed, reference, COMPARED, BARS)
