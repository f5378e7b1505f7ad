"""Contract tests: every adapter of a port passes the same checks."""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from njord.adapters.sim_router import PaperBroker
from njord.config import RiskConfig, risk_limits
from njord.contract import bar_feed_checks, risk_engine_checks, store_checks
from njord.core.book import BarE8
from njord.core.execution import CostModel, SymbolRules
from njord.core.money import E8
from njord.core.risk import PreTradeRisk
from njord.data.history import HistoryFeed, StoredFeed
from njord.data.polled import Polled
from njord.loop import FixedPacing, LivePacing, NoPacing
from njord.ports import BarFeed, RiskEngine
from njord.records import Order, OrderStatus, OrderType, Side
from njord.store import db, venue
from njord.store.venue import PaperJournal
from tests.conftest import ROOT

GAPPY = ROOT / "tests" / "fixtures" / "BTCUSDT-1m-2018-02-gap.csv"


def _history(tmp: Path) -> BarFeed:
    from njord.data.importer import import_files

    out = tmp / "gap.parquet"
    import_files([GAPPY], out=out, fmt=None, mapping={}, symbol="X")
    return Polled(HistoryFeed(out, symbol="X", gaps="none"))


def _stored(tmp: Path) -> BarFeed:
    source = _history(tmp)
    assert isinstance(source, Polled)
    blobs = [b.ipc_bytes() for b in source.source.batches()]
    return Polled(StoredFeed(blobs, symbol="X", events=source.events))


@pytest.mark.parametrize("make", [_history, _stored], ids=["history", "stored"])
def test_bar_feed_contract(tmp_path: Path, make: Callable[[Path], BarFeed]) -> None:
    failed = [
        (name, detail) for name, ok, detail in bar_feed_checks(make(tmp_path), live=False) if not ok
    ]
    assert failed == []


ENGINES: list[Callable[[], RiskEngine]] = [
    lambda: PreTradeRisk(risk_limits(RiskConfig(), mode="backtest"))
]


def test_the_paper_broker_answers_after_a_restart_from_its_journal(tmp_path: Path) -> None:
    """What the paper broker executed survives the process: a new broker on the same db
    answers `query` with the same reports, and a resubmit executes nothing (but is
    counted: the crash tests assert no id is ever sent twice)."""
    conn = db.open_writer(tmp_path / "paper.db", create=True, synchronous="NORMAL")
    first = PaperBroker(CostModel(commission_bps=Decimal(10)), SymbolRules(), PaperJournal(conn))
    first.on_bar(BarE8(0, 100 * E8, 100 * E8, 100 * E8, 100 * E8))
    answered = first.submit(_order())
    again = PaperBroker(CostModel(commission_bps=Decimal(10)), SymbolRules(), PaperJournal(conn))
    assert again.query("c-market") == answered
    assert again.query("c-never") is None
    assert again.open_orders() == []
    assert again.submit(_order()) == answered
    assert venue.duplicate_sends(conn) == 1
    conn.close()


@pytest.mark.parametrize("make", ENGINES, ids=["rules"])
def test_risk_engine_contract(make: Callable[[], RiskEngine]) -> None:
    assert [(n, d) for n, ok, d in risk_engine_checks(make()) if not ok] == []


def test_snapshot_and_portfolio_store_contract(tmp_path: Path) -> None:
    assert [(n, d) for n, ok, d in store_checks(tmp_path) if not ok] == []


def _order() -> Order:
    return Order(
        client_order_id="c-market",
        intent_id=1,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET,
        qty_e8=E8,
        limit_e8=None,
        status=OrderStatus.NEW,
        created_ms=0,
    )


def test_pacer_contract() -> None:
    """Pacers never tell session time; a backtest is not paced and never waits; a slowed
    one spaces bars by its interval; live pacing commits every phase and leaves the
    waiting to the feed."""
    none, live, fixed = NoPacing(), LivePacing(), FixedPacing(0.05)
    assert (none.paced, live.paced, fixed.paced) == (False, True, True)
    assert none.next_bar_at() == 0.0
    assert live.next_bar_at() == 0.0
    first = fixed.next_bar_at()
    assert first <= time.monotonic()  # the first bar at once
    assert fixed.next_bar_at() == pytest.approx(first + 0.05)
    assert fixed.next_bar_at() == pytest.approx(first + 0.10)
