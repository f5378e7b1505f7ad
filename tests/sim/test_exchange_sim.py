"""The simulator driven by a plain `requests` client that signs per the reference facts."""

from __future__ import annotations

import hashlib
import hmac
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import requests

from njord.sim.server import SimServer
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET


def _server_time(base: str) -> int:
    return int(requests.get(f"{base}/api/v3/time", timeout=5).json()["serverTime"])


def call(
    server: SimServer,
    method: str,
    path: str,
    params: dict[str, Any],
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
) -> requests.Response:
    """Sign exactly the bytes sent: the encoded query, then `&signature=`."""
    base = server.url
    full = {
        **params,
        "recvWindow": 5000,
        "timestamp": timestamp if timestamp is not None else _server_time(base),
    }
    query = urlencode(full)
    signature = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    return requests.request(
        method,
        f"{base}{path}?{query}&signature={signature}",
        headers={"X-MBX-APIKEY": KEY},
        timeout=5,
    )


def test_public_endpoints(stepped: SimServer) -> None:
    base = stepped.url
    assert requests.get(f"{base}/api/v3/ping", timeout=5).json() == {}
    now = requests.get(f"{base}/sim/clock", timeout=5).json()["now_ms"]
    assert now == FIRST_BAR_MS + 120 * 60_000
    info = requests.get(f"{base}/api/v3/exchangeInfo", timeout=5)
    assert info.headers["X-MBX-USED-WEIGHT-1M"]
    symbol = info.json()["symbols"][0]
    assert {f["filterType"] for f in symbol["filters"]} == {
        "PRICE_FILTER",
        "LOT_SIZE",
        "MARKET_LOT_SIZE",
        "NOTIONAL",
        "MAX_NUM_ORDERS",
    }
    assert info.json()["rateLimits"][0]["rateLimitType"] == "REQUEST_WEIGHT"
    bars = requests.get(
        f"{base}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=5
    ).json()
    assert len(bars) == 121  # the bars closed by now, then the open one
    assert bars[0][0] == FIRST_BAR_MS
    assert bars[0][1] == "42283.58000000"
    assert bars[-2][6] < now < bars[-1][6]
    page = requests.get(
        f"{base}/api/v3/klines",
        params={
            "symbol": "BTCUSDT",
            "interval": "1m",
            "startTime": FIRST_BAR_MS + 60_000,
            "endTime": FIRST_BAR_MS + 10 * 60_000,
            "limit": 3,
        },
        timeout=5,
    ).json()
    assert [b[0] for b in page] == [FIRST_BAR_MS + k * 60_000 for k in (1, 2, 3)]
    requests.post(f"{base}/sim/advance?minutes=5", timeout=5)
    assert (
        len(
            requests.get(
                f"{base}/api/v3/klines", params={"symbol": "BTCUSDT", "interval": "1m"}, timeout=5
            ).json()
        )
        == 126
    )


def test_signed_endpoints_round_trip(stepped: SimServer) -> None:
    buy = call(
        stepped,
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "MARKET",
            "quantity": "0.01",
            "newClientOrderId": "nj-test-1",
        },
    )
    assert buy.status_code == 200, buy.text
    assert buy.json()["status"] == "FILLED"
    assert len(buy.json()["fills"]) == 1
    rest = call(
        stepped,
        "POST",
        "/api/v3/order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.01",
            "price": "30000.00",
            "newClientOrderId": "nj-test-2",
        },
    ).json()
    assert rest["status"] == "NEW"
    open_orders = call(stepped, "GET", "/api/v3/openOrders", {"symbol": "BTCUSDT"}).json()
    assert [o["clientOrderId"] for o in open_orders] == ["nj-test-2"]
    got = call(
        stepped, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "origClientOrderId": "nj-test-2"}
    ).json()
    assert got["orderId"] == rest["orderId"]
    canceled = call(
        stepped, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": rest["orderId"]}
    ).json()
    assert canceled["status"] == "CANCELED"
    again = call(
        stepped, "DELETE", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": rest["orderId"]}
    )
    assert (again.status_code, again.json()["code"]) == (400, -2011)
    account = call(stepped, "GET", "/api/v3/account", {}).json()
    balances = {b["asset"]: b for b in account["balances"]}
    assert balances["BTC"]["free"] == "0.00999000"  # the commission is paid in BTC
    assert balances["USDT"]["locked"] == "0.00000000"
    trades = call(stepped, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}).json()
    assert [t["orderId"] for t in trades] == [buy.json()["orderId"]]
    missing = call(stepped, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": 999})
    assert missing.json()["code"] == -2013


def test_limit_orders_take_at_once_or_rest_until_a_bar_reaches_them(stepped: SimServer) -> None:
    market = stepped.state.exchange.markets["BTCUSDT"]
    close = Decimal(str(market.rows[119][4]))  # the latest closed bar
    nxt = market.rows[120]  # the bar forming now
    limit = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}
    taker = call(
        stepped, "POST", "/api/v3/order", {**limit, "quantity": "0.01", "price": f"{close + 100}"}
    ).json()
    # marketable on arrival: filled at once, as taker, at the market (not the limit)
    assert (taker["status"], taker["fills"][0]["price"]) == ("FILLED", f"{close:.8f}")
    below = min(Decimal(str(nxt[1])), close) - Decimal("0.01")
    assert Decimal(str(nxt[3])) <= below, "the sample's next bar trades below the close"
    order = call(
        stepped, "POST", "/api/v3/order", {**limit, "quantity": "0.01", "price": f"{below}"}
    ).json()
    assert order["status"] == "NEW"
    requests.post(f"{stepped.url}/sim/advance?minutes=1", timeout=5)
    filled = call(
        stepped, "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]}
    ).json()
    assert filled["status"] == "FILLED"
    assert filled["updateTime"] >= filled["time"]
    assert Decimal(filled["cummulativeQuoteQty"]) == below * Decimal("0.01")
    trades = call(stepped, "GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"}).json()
    assert [t["isMaker"] for t in trades] == [False, True]


def test_documented_rejections(stepped: SimServer) -> None:
    order = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}
    bad_sig = call(stepped, "POST", "/api/v3/order", order, secret="wrong")
    assert (bad_sig.status_code, bad_sig.json()["code"]) == (400, -1022)
    stale = call(
        stepped, "POST", "/api/v3/order", order, timestamp=_server_time(stepped.url) - 10_000
    )
    assert stale.json() == {
        "code": -1021,
        "msg": "Timestamp for this request is outside of the recvWindow.",
    }
    lot = call(stepped, "POST", "/api/v3/order", {**order, "quantity": "0.000001"})
    assert lot.json() == {"code": -1013, "msg": "Filter failure: LOT_SIZE"}
    limit = {
        "symbol": "BTCUSDT",
        "side": "BUY",
        "type": "LIMIT",
        "timeInForce": "GTC",
        "quantity": "0.01",
        "price": "30000.00",
        "newClientOrderId": "dup",
    }
    assert call(stepped, "POST", "/api/v3/order", limit).status_code == 200
    dup = call(stepped, "POST", "/api/v3/order", limit)
    assert (dup.status_code, dup.json()) == (400, {"code": -2010, "msg": "Duplicate order sent."})
    broke = call(stepped, "POST", "/api/v3/order", {**order, "quantity": "5"})
    assert broke.json()["code"] == -2010
    assert "insufficient balance" in broke.json()["msg"]
    no_key = requests.get(f"{stepped.url}/api/v3/account", timeout=5)
    assert no_key.json()["code"] == -2014
    tick = call(
        stepped, "POST", "/api/v3/order", {**limit, "price": "30000.001", "newClientOrderId": "t"}
    )
    assert tick.json()["msg"] == "Filter failure: PRICE_FILTER"


def test_used_weight_header_counts(stepped: SimServer) -> None:
    first = requests.get(f"{stepped.url}/api/v3/exchangeInfo", timeout=5)
    second = requests.get(f"{stepped.url}/api/v3/exchangeInfo", timeout=5)
    assert (
        int(second.headers["X-MBX-USED-WEIGHT-1M"]) - int(first.headers["X-MBX-USED-WEIGHT-1M"])
        == 20
    )
