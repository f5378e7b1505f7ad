"""Contract tests: every adapter of a port passes the same checks."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import msgspec
import pytest

from njord.adapters.sim_router import SimRouter
from njord.config import RiskConfig
from njord.contract import bar_feed_checks
from njord.core.book import BarE8, Book, BookState
from njord.core.execution import CostModel, SymbolRules
from njord.core.money import E8
from njord.core.risk import RiskInputs, Rules
from njord.data.history import HistoryFeed, StoredFeed
from njord.ports import BarFeed, OrderRouter, RiskEngine
from njord.reasons import TradingState
from njord.records import Order, OrderIntent, OrderStatus, OrderType, Side
from njord.store import db
from njord.store.portfolio import SqlitePortfolioStore, SqliteSnapshotStore
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


def _order(kind: OrderType, side: Side, limit: int | None = None) -> Order:
    return Order(
        client_order_id="c1",
        intent_id=1,
        symbol="X",
        side=side,
        type=kind,
        qty_e8=E8,
        limit_e8=limit,
        status=OrderStatus.SUBMITTED,
        created_ms=0,
    )


ROUTERS: list[Callable[[], OrderRouter]] = [
    lambda: SimRouter(CostModel(commission_bps=Decimal(10)), SymbolRules())
]


@pytest.mark.parametrize("make", ROUTERS, ids=["sim"])
def test_order_router_contract(make: Callable[[], OrderRouter]) -> None:
    router = make()
    bar = BarE8(0, 100 * E8, 101 * E8, 99 * E8, 100 * E8)
    market = router.submit(_order(OrderType.MARKET, Side.BUY), bar)
    assert len(market) == 1, "one aggregated fill per order"
    assert market[0].qty_e8 == E8
    assert market[0].fee_e8 > 0
    limit = _order(OrderType.LIMIT, Side.BUY, 95 * E8)
    assert router.submit(limit, bar) == [], "a limit rests"
    assert router.on_bar(BarE8(60_000, 98 * E8, 99 * E8, 96 * E8, 97 * E8), [limit]) == []
    crossed = router.on_bar(BarE8(120_000, 96 * E8, 96 * E8, 94 * E8, 95 * E8), [limit])
    assert [(e.client_order_id, e.price_e8) for e in crossed] == [("c1", 95 * E8)]


ENGINES: list[Callable[[], RiskEngine]] = [lambda: Rules(RiskConfig(), mode="backtest")]


@pytest.mark.parametrize("make", ENGINES, ids=["rules"])
def test_risk_engine_contract(make: Callable[[], RiskEngine]) -> None:
    engine = make()
    inputs = RiskInputs(
        state=TradingState.HALTED,
        symbol="BTCUSDT",
        notional_e8=E8,
        reduces=False,
        opens_position=True,
        open_positions=0,
        daily_realised_e8=0,
        orders_last_minute=0,
    )
    first, again = engine.check(inputs), engine.check(inputs)
    assert first == again, "pure: the same inputs give the same verdict"
    assert first.inputs == msgspec.structs.asdict(inputs), "the verdict records its inputs"


def _busy_book() -> BookState:
    """A book with lots on both sides of a partial close, an open limit and counters."""
    book = Book(
        symbol="BTCUSDT",
        initial_cash_e8=10_000 * E8,
        costs=CostModel(),
        rules=SymbolRules(),
        risk=Rules(RiskConfig(), mode="backtest"),
        allow_short=False,
        order_key="k",
    )
    router = SimRouter(CostModel(commission_bps=Decimal(10)), SymbolRules())
    for ts, qty in ((60_000, "0.1"), (120_000, "0.05")):
        bar = BarE8(ts, 100 * E8, 100 * E8, 100 * E8, 100 * E8)
        book.start_bar(bar, router)
        book.decide(bar, [OrderIntent(symbol="BTCUSDT", side=Side.BUY, qty=Decimal(qty))], router)
        book.end_bar(bar)
    bar = BarE8(180_000, 100 * E8, 100 * E8, 100 * E8, 100 * E8)
    book.decide(
        bar,
        [
            OrderIntent(symbol="BTCUSDT", side=Side.SELL, qty=Decimal("0.12")),
            OrderIntent(
                symbol="BTCUSDT",
                side=Side.BUY,
                qty=Decimal("0.01"),
                type=OrderType.LIMIT,
                limit_price=Decimal("90"),
            ),
            OrderIntent(symbol="ETHUSDT", side=Side.BUY, qty=Decimal("1")),
        ],
        router,
    )
    book.end_bar(bar)
    return book.snapshot()


def test_snapshot_store_contract(tmp_path: Path) -> None:
    conn = db.open_writer(tmp_path / "s.db", create=True)
    store = SqliteSnapshotStore(conn)
    state = _busy_book()
    assert state.lots
    assert state.open_orders
    assert state.counters
    snapshot_id = store.save(state, bar_ts_ms=180_000, decision_seq=0)
    restored = store.load(snapshot_id)
    assert restored == state
    assert msgspec.msgpack.encode(restored) == msgspec.msgpack.encode(state), "byte-identical"
    book = Book(
        symbol="BTCUSDT",
        initial_cash_e8=1,
        costs=CostModel(),
        rules=SymbolRules(),
        risk=Rules(RiskConfig(), mode="backtest"),
        allow_short=False,
        order_key="k",
    )
    book.restore(restored)
    assert msgspec.msgpack.encode(book.snapshot()) == msgspec.msgpack.encode(state)
    assert store.ids() == [snapshot_id]


def test_portfolio_store_contract(tmp_path: Path) -> None:
    conn = db.open_writer(tmp_path / "s.db", create=True)
    store = SqlitePortfolioStore(conn)
    state = _busy_book()
    conn.execute("PRAGMA foreign_keys = OFF")  # the lots' fills are not part of this contract
    with conn:
        store.save(state, symbol="BTCUSDT")
    assert store.differences(state) == []
    changed = msgspec.structs.replace(state, cash_e8=state.cash_e8 + 1)
    assert store.differences(changed) == [
        f"cash_e8: stored {state.cash_e8}, in memory {state.cash_e8 + 1}"
    ]
