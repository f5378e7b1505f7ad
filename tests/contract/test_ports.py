"""Contract tests: every adapter of a port passes the same checks."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from njord.adapters.sim_router import SimRouter
from njord.config import RiskConfig, risk_limits
from njord.contract import bar_feed_checks, order_router_checks, risk_engine_checks, store_checks
from njord.core.execution import CostModel, SymbolRules
from njord.core.risk import PreTradeRisk
from njord.data.history import HistoryFeed, StoredFeed
from njord.ports import BarFeed, OrderRouter, RiskEngine
from tests.conftest import ROOT

GAPPY = ROOT / "tests" / "fixtures" / "BTCUSDT-1m-2018-02-gap.csv"


def _history(tmp: Path) -> BarFeed:
    from njord.data.importer import import_files

    out = tmp / "gap.parquet"
    import_files([GAPPY], out=out, fmt=None, mapping={}, symbol="X")
    return HistoryFeed(out, symbol="X", gaps="none")


def _stored(tmp: Path) -> BarFeed:
    source = _history(tmp)
    assert isinstance(source, HistoryFeed)
    blobs = [b.ipc_bytes() for b in source.batches()]
    return StoredFeed(blobs, symbol="X", events=source.events)


@pytest.mark.parametrize("make", [_history, _stored], ids=["history", "stored"])
def test_bar_feed_contract(tmp_path: Path, make: Callable[[Path], BarFeed]) -> None:
    failed = [
        (name, detail) for name, ok, detail in bar_feed_checks(make(tmp_path), live=False) if not ok
    ]
    assert failed == []


ROUTERS: list[Callable[[], OrderRouter]] = [
    lambda: SimRouter(CostModel(commission_bps=Decimal(10)), SymbolRules())
]
ENGINES: list[Callable[[], RiskEngine]] = [
    lambda: PreTradeRisk(risk_limits(RiskConfig(), mode="backtest"))
]


@pytest.mark.parametrize("make", ROUTERS, ids=["sim/paper"])
def test_order_router_contract(make: Callable[[], OrderRouter]) -> None:
    assert [(n, d) for n, ok, d in order_router_checks(make()) if not ok] == []


@pytest.mark.parametrize("make", ENGINES, ids=["rules"])
def test_risk_engine_contract(make: Callable[[], RiskEngine]) -> None:
    assert [(n, d) for n, ok, d in risk_engine_checks(make()) if not ok] == []


def test_snapshot_and_portfolio_store_contract(tmp_path: Path) -> None:
    assert [(n, d) for n, ok, d in store_checks(tmp_path) if not ok] == []
