"""BinanceRouter on answers the simulator never gives: trades lagging an order's executed
quantity (Binance serves them from a database), and a stranger's archived order."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests

from njord.adapters.binance import Backoff, BinanceClient
from njord.adapters.binance_router import BinanceRouter
from njord.core.book import BarE8
from njord.core.reports import Ack, Execution
from njord.secrets import Secret
from tests.unit.test_filters import BTCUSDT

Answer = Callable[[dict[str, str]], tuple[int, Any]]


class FakeVenue(requests.Session):
    """Answers by route from lists of canned answers (the last one repeats)."""

    def __init__(self, routes: dict[str, list[Answer]]) -> None:
        super().__init__()
        self.routes = routes
        self.calls: list[str] = []

    def request(self, method: str | bytes, url: str | bytes, *a: Any, **kw: Any) -> Any:
        text = url.decode() if isinstance(url, bytes) else url
        path, _, query = text.split("://", 1)[1].partition("/")[2].partition("?")
        route = f"{method!s} /{path}"
        self.calls.append(route)
        params = dict(p.split("=", 1) for p in query.split("&") if p)
        answers = self.routes[route]
        status, body = (answers.pop(0) if len(answers) > 1 else answers[0])(params)
        response = requests.Response()
        response.status_code = status
        response._content = json.dumps(body).encode()
        return response


def _trade(trade_id: int, qty: str) -> dict[str, Any]:
    return {
        "id": trade_id,
        "orderId": 5,
        "price": "42000",
        "qty": qty,
        "commission": "0",
        "commissionAsset": "USDT",
        "time": 7,
    }


def _router(routes: dict[str, list[Answer]]) -> tuple[BinanceRouter, FakeVenue]:
    venue = FakeVenue(
        {
            "GET /api/v3/time": [lambda p: (200, {"serverTime": 0})],
            "GET /api/v3/exchangeInfo": [lambda p: (200, {"symbols": [BTCUSDT]})],
            "GET /api/v3/account": [lambda p: (200, {"balances": []})],  # start's signed read
            **routes,
        }
    )
    client = BinanceClient(
        "http://venue", api_key=Secret("k"), api_secret=Secret("s"), session=venue
    )
    router = BinanceRouter(client, symbol="BTCUSDT", backoff=Backoff(base_s=0.001, cap_s=0.002))
    router.start()
    return router, venue


def test_trades_lagging_the_executed_quantity_are_read_again() -> None:
    order = {
        "orderId": 5,
        "clientOrderId": "nj-lag",
        "status": "FILLED",
        "executedQty": "0.002",
        "time": 1,
        "updateTime": 2,
    }
    router, venue = _router(
        {
            "GET /api/v3/order": [lambda p: (200, order)],
            "GET /api/v3/myTrades": [
                lambda p: (200, [_trade(1, "0.001")]),
                lambda p: (200, [_trade(1, "0.001"), _trade(2, "0.001")]),
            ],
        }
    )
    found = router.query("nj-lag")
    assert found is not None
    assert isinstance(found[0], Ack)
    assert [r.trade_id for r in found if isinstance(r, Execution)] == ["1", "2"]
    assert venue.calls.count("GET /api/v3/myTrades") == 2


def test_a_trade_of_an_archived_order_is_nobodys() -> None:
    router, _ = _router(
        {
            "GET /api/v3/myTrades": [lambda p: (200, [_trade(9, "0.001")])],
            "GET /api/v3/order": [
                lambda p: (400, {"code": -2026, "msg": "Order was canceled or expired..."})
            ],
        }
    )
    fills = router.fills_since("")
    assert [(f.client_order_id, f.trade_id) for f in fills] == [("venue-order-5", "9")]


def test_a_canceled_order_whose_trades_lag_is_closed_only_once_they_are_read() -> None:
    # Partly filled, then canceled (a halt's cancel, say); its second trade is not readable
    # yet. Closing it now would make that trade, read later, one the book refuses.
    order = {
        "orderId": 5,
        "clientOrderId": "nj-lag",
        "status": "CANCELED",
        "executedQty": "0.002",
        "time": 1,
        "updateTime": 2,
    }
    one = [_trade(1, "0.001")]
    router, _ = _router(
        {
            "GET /api/v3/order": [lambda p: (200, order)],
            "GET /api/v3/myTrades": [
                *([lambda p: (200, one)] * 5),  # a query's read and its 4 retries
                lambda p: (200, [*one, _trade(2, "0.001")]),
            ],
            "GET /api/v3/openOrders": [lambda p: (200, [])],
        }
    )
    found = router.query("nj-lag")
    assert found is not None
    assert [type(r).__name__ for r in found] == ["Ack", "Execution"]  # no Canceled yet
    later = router.on_bar(BarE8(60_000, 1, 1, 1, 1))  # asks again the next bar
    assert [type(r).__name__ for r in later] == ["Ack", "Execution", "Execution", "Canceled"]
    assert router.on_bar(BarE8(120_000, 1, 1, 1, 1)) == []  # closed: no longer asked about
