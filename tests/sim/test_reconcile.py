"""Reconciliation against the simulator: fills the session missed are found, and what it
cannot explain (a balance moved by hand, a stranger's open order or trade) is an external
event, recorded in the db with the policy applied."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
import requests

from njord import reconcile
from njord.adapters.binance import Backoff, BinanceClient
from njord.adapters.binance_router import BinanceRouter
from njord.core.filters import floor_to
from njord.core.money import E8
from njord.core.reconcile import BookView, OwnOrder, expected_after
from njord.core.reports import Ack, Execution, Report
from njord.records import Order, OrderStatus, OrderType, Side
from njord.secrets import Secret
from njord.sim.server import SimServer
from njord.store import db, external
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET


@pytest.fixture
def server(stepped: SimServer) -> SimServer:
    """The stepped simulator (tests/sim/conftest.py): two hours in, 10,000 USDT."""
    return stepped


def _client(server: SimServer) -> BinanceClient:
    return BinanceClient(
        server.url, api_key=Secret(KEY), api_secret=Secret(SECRET), recv_window_ms=500
    )


@pytest.fixture
def router(server: SimServer) -> BinanceRouter:
    router = BinanceRouter(_client(server), symbol="BTCUSDT", backoff=Backoff(base_s=0.01))
    router.start()
    return router


class LittleBook:
    """What a session's book holds, from the reports it applied: enough to reconcile."""

    def __init__(self, router: BinanceRouter) -> None:
        self.baseline = router.balances()
        self.cursor = router.last_trade_id()
        self.orders: dict[str, OwnOrder] = {}
        self.fills: list[tuple[Side, Execution]] = []

    def applied(self, order: Order, reports: list[Report]) -> None:
        acked = any(isinstance(r, Ack) for r in reports)
        status = OrderStatus.SUBMITTED if acked else OrderStatus.NEW
        self.orders[order.client_order_id] = OwnOrder(side=order.side, status=status)
        self.fills += [(order.side, r) for r in reports if isinstance(r, Execution)]

    def view(self) -> BookView:
        return BookView(
            symbol="BTCUSDT",
            base_asset="BTC",
            quote_asset="USDT",
            orders=self.orders,
            applied_trade_ids=frozenset(f.trade_id for _, f in self.fills),
            expected_e8=expected_after(self.baseline, self.fills, base="BTC", quote="USDT"),
        )


def _order(coid: str, *, limit_e8: int | None = None) -> Order:
    return Order(
        client_order_id=coid,
        intent_id=1,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET if limit_e8 is None else OrderType.LIMIT,
        qty_e8=E8 // 1000,
        limit_e8=limit_e8,
        status=OrderStatus.NEW,
        created_ms=0,
    )


def _price_e8(router: BinanceRouter) -> int:
    doc = router.client.public("GET", "/api/v3/ticker/price", {"symbol": "BTCUSDT"})
    return floor_to(int(Decimal(doc["price"]) * E8), router.filters.tick_e8)


def test_fills_made_while_the_session_was_down_are_found(
    server: SimServer, router: BinanceRouter
) -> None:
    book = LittleBook(router)
    resting = _order("nj-rest-1", limit_e8=_price_e8(router) - router.filters.tick_e8)
    book.applied(resting, router.submit(resting))  # acknowledged, resting
    lost = _order("nj-lost-1")
    router.submit(lost)  # filled, but the process died before it applied the reports
    book.applied(lost, [])
    venue_order = next(
        o for o in server.state.exchange.orders.values() if o.client_order_id == "nj-rest-1"
    )
    for _ in range(240):  # the session is down; the market moves on and fills the limit
        server.state.exchange.clock.advance(1)
        router.balances()  # any request lets the venue match the closed bars
        if venue_order.status == "FILLED":
            break
    result = reconcile.run(router, book.view(), cursor=book.cursor, policy="halt")
    rec = result.reconciliation
    assert {f.client_order_id for f in rec.missed} == {"nj-rest-1", "nj-lost-1"}
    assert [int(f.trade_id) for f in rec.missed] == sorted(int(f.trade_id) for f in rec.missed)
    assert rec.to_query == ["nj-lost-1", "nj-rest-1"]
    filled = {
        coid: sum(r.qty_e8 for r in reports if isinstance(r, Execution))
        for coid, reports in result.closed.items()
    }
    assert filled == {"nj-lost-1": E8 // 1000, "nj-rest-1": E8 // 1000}
    assert rec.external == []  # the balances are explained by the missed fills
    assert result.action == "none"
    assert rec.cursor == max(f.trade_id for f in rec.missed)


def test_a_balance_changed_by_hand_is_an_external_event(
    server: SimServer, router: BinanceRouter, tmp_path: Path
) -> None:
    book = LittleBook(router)
    requests.post(f"{server.url}/sim/balance?asset=USDT&delta=-250", timeout=5).raise_for_status()
    result = reconcile.run(router, book.view(), cursor=book.cursor, policy="halt")
    events = result.reconciliation.external
    assert [(e.kind, e.subject, e.venue_value, e.book_value) for e in events] == [
        ("balance", "USDT", "9750.00000000", "10000.00000000")
    ]
    assert result.action == "halt"

    conn = db.open_writer(tmp_path / "live.db", create=True, synchronous="NORMAL")
    with conn:
        external.record(
            conn,
            result.reconciliation,
            result.venue,
            symbol="BTCUSDT",
            bar_ts_ms=None,
            queried=0,
            action=result.action,
            policy="halt",
        )
    stored = external.events(conn)
    assert [(s.event, s.policy) for s in stored] == [(events[0], "halt")]
    assert external.baseline(conn) is None  # a halted run is not a baseline
    adopted = reconcile.run(router, book.view(), cursor=book.cursor, policy="adopt")
    assert adopted.action == "adopt"
    with conn:
        external.record(
            conn,
            adopted.reconciliation,
            adopted.venue,
            symbol="BTCUSDT",
            bar_ts_ms=FIRST_BAR_MS,
            queried=0,
            action=adopted.action,
            policy="adopt",
        )
    base = external.baseline(conn)
    assert base is not None
    assert base.balances_e8["USDT"] == 9750 * E8  # from here on the venue's view counts


def test_a_strangers_open_order_and_trade_are_external_events(
    server: SimServer, router: BinanceRouter
) -> None:
    book = LittleBook(router)
    mine = _order("nj-mine-1")
    book.applied(mine, router.submit(mine))
    web = _client(server)  # someone at the venue's web page, same account
    price = _price_e8(router)
    web.signed(
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.001",
            "price": str(Decimal(price // 2) / E8),
            "newClientOrderId": "web_resting",
        },
    )
    web.signed(
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "MARKET",
            "quantity": "0.0005",
            "newClientOrderId": "web_sold",
        },
    )
    result = reconcile.run(router, book.view(), cursor=book.cursor, policy="halt")
    kinds = sorted((e.kind, e.subject) for e in result.reconciliation.external)
    trade = next(e for e in result.reconciliation.external if e.kind == "trade")
    assert kinds == [
        ("balance", "BTC"),
        ("balance", "USDT"),
        ("open_order", "web_resting"),
        ("trade", trade.subject),
    ]
    assert "web_sold" in trade.venue_value
    assert result.reconciliation.missed == []  # our own fill was applied when it came
    assert result.action == "halt"


class RacingVenue:
    """A router whose venue fills an order between the first reads."""

    def __init__(self, fill: Execution) -> None:
        self.fill = fill
        self.calls = 0
        self.symbol = "BTCUSDT"
        self.client = self

    def now_ms(self) -> int:
        return 1

    def fills_since(self, cursor: str) -> list[Execution]:
        self.calls += 1
        return [self.fill] if self.calls == 2 and cursor == "" else []

    def balances(self) -> dict[str, int]:
        return {"USDT": 1}

    def open_orders(self) -> list[Report]:
        return []


def test_a_fill_landing_between_the_reads_makes_them_read_again() -> None:
    fill = Execution(client_order_id="a", ts_ms=1, qty_e8=1, price_e8=1, fee_e8=0, trade_id="5")
    venue = RacingVenue(fill)
    state = reconcile.fetch(venue, cursor="")  # type: ignore[arg-type]
    assert state.fills == [fill]
    assert venue.calls == 3  # before, between (the fill), and after again: quiet
