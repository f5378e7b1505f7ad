"""Binance's own Python connector against the simulator, unchanged and unpatched.

If the simulator answers this independent client as Binance would (status, code, message,
headers) at a replay speed of 60 and at 0, njord's client cannot be fooled by a quirk the
two share. Error cases are one table: case, HTTP status, code, message.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from binance.error import ClientError, ServerError
from binance.lib.authentication import hmac_hashing
from binance.lib.utils import encoded_string, get_timestamp
from binance.spot import Spot

from njord.sim.faults import Fault, FaultConfig
from njord.sim.server import SimServer
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET, start_pair

SPEEDS = [60.0, 0.0]


@pytest.fixture(params=SPEEDS, ids=["speed60", "speed0"])
def pair(request: pytest.FixtureRequest, eth_bars: Path) -> Iterator[SimServer]:
    server = start_pair(eth_bars, speed=request.param)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture(params=SPEEDS, ids=["speed60", "speed0"], scope="module")
def shared_pair(request: pytest.FixtureRequest, eth_bars: Path) -> Iterator[SimServer]:
    """One simulator per speed for the whole error table: no case leaves an open order."""
    server = start_pair(eth_bars, speed=request.param)
    yield server
    server.shutdown()
    server.server_close()


def spot(server: SimServer, *, key: str = KEY, secret: str = SECRET, **kwargs: Any) -> Spot:
    return Spot(api_key=key, api_secret=secret, base_url=server.url, **kwargs)


def raw_signed(client: Spot, method: str, path: str, payload: dict[str, Any]) -> Any:
    """A signed call whose `timestamp` we choose, signed by the connector's own helpers."""
    payload["signature"] = hmac_hashing(SECRET, encoded_string(payload))
    return client.send_request(method, path, payload)


def last_close(client: Spot, symbol: str = "BTCUSDT") -> Decimal:
    return Decimal(client.ticker_price(symbol=symbol)["price"])


LIMIT = {"symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC"}


def _resting(c: Spot, **extra: Any) -> dict[str, Any]:
    price = f"{(last_close(c) * Decimal('0.8')).quantize(Decimal('0.01'))}"
    return dict(c.new_order(**{**LIMIT, "quantity": "0.01", "price": price, **extra}))


def _crossing_maker(c: Spot) -> Any:
    price = f"{(last_close(c) * Decimal('1.1')).quantize(Decimal('0.01'))}"
    return c.new_order(
        symbol="BTCUSDT", side="BUY", type="LIMIT_MAKER", quantity="0.01", price=price
    )


def _duplicate(c: Spot) -> Any:
    first = _resting(c, newClientOrderId="same-id")
    try:
        return _resting(c, newClientOrderId="same-id")
    finally:
        c.cancel_order("BTCUSDT", orderId=first["orderId"])


ILLEGAL = "Illegal characters found in parameter '{}'; legal range is '{}'."
INTEGER, DECIMAL = "^[0-9]{1,20}$", "^([0-9]{1,20})(\\.[0-9]{1,20})?$"
MANDATORY = "Mandatory parameter '{}' was not sent, was empty/null, or malformed."

ERRORS: list[tuple[str, Callable[[Spot], Any], int, int, str]] = [
    (
        "limit=abc",
        lambda c: c.klines("BTCUSDT", "1m", limit="abc"),
        400,
        -1100,
        ILLEGAL.format("limit", INTEGER),
    ),
    (
        "startTime=abc",
        lambda c: c.klines("BTCUSDT", "1m", startTime="abc"),
        400,
        -1100,
        ILLEGAL.format("startTime", INTEGER),
    ),
    (
        "orderId=abc",
        lambda c: c.get_order("BTCUSDT", orderId="abc"),
        400,
        -1100,
        ILLEGAL.format("orderId", INTEGER),
    ),
    (
        "timestamp=abc",
        lambda c: raw_signed(c, "GET", "/api/v3/account", {"timestamp": "abc"}),
        400,
        -1100,
        ILLEGAL.format("timestamp", INTEGER),
    ),
    (
        "recvWindow=abc",
        lambda c: c.account(recvWindow="abc"),
        400,
        -1100,
        ILLEGAL.format("recvWindow", "^[0-9]{1,20}(\\.[0-9]{1,3})?$"),
    ),
    (
        "newClientOrderId of 37 characters",
        lambda c: _resting(c, newClientOrderId="x" * 37),
        400,
        -1100,
        ILLEGAL.format("newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$"),
    ),
    (
        "newClientOrderId with a space",
        lambda c: _resting(c, newClientOrderId="a b"),
        400,
        -1100,
        ILLEGAL.format("newClientOrderId", "^[a-zA-Z0-9-_]{1,36}$"),
    ),
    (
        "quantity=1e-3",
        lambda c: c.new_order("BTCUSDT", "BUY", "MARKET", quantity="1e-3"),
        400,
        -1100,
        ILLEGAL.format("quantity", DECIMAL),
    ),
    (
        "exchangeInfo unknown symbol",
        lambda c: c.exchange_info(symbol="NOPEUSDT"),
        400,
        -1121,
        "Invalid symbol.",
    ),
    (
        "openOrders unknown symbol",
        lambda c: c.get_open_orders(symbol="NOPEUSDT"),
        400,
        -1121,
        "Invalid symbol.",
    ),
    (
        "klines without symbol",
        lambda c: c.query("/api/v3/klines", {"interval": "1m"}),
        400,
        -1102,
        MANDATORY.format("symbol"),
    ),
    (
        "klines interval 6h",
        lambda c: c.klines("BTCUSDT", "6h"),
        400,
        -1120,
        "Invalid interval.",
    ),
    (
        "unknown timeInForce",
        lambda c: _resting(c, timeInForce="GTX"),
        400,
        -1115,
        "Invalid timeInForce.",
    ),
    (
        "LIMIT without timeInForce",
        lambda c: c.new_order("BTCUSDT", "BUY", "LIMIT", quantity="0.01", price="30000"),
        400,
        -1102,
        MANDATORY.format("timeInForce"),
    ),
    (
        "LIMIT_MAKER that would take",
        _crossing_maker,
        400,
        -2010,
        "Order would immediately match and take.",
    ),
    ("duplicate open client order id", _duplicate, 400, -2010, "Duplicate order sent."),
    (
        "insufficient balance",
        lambda c: c.new_order("BTCUSDT", "BUY", "MARKET", quantity="50"),
        400,
        -2010,
        "Account has insufficient balance for requested action.",
    ),
    (
        "lot size",
        lambda c: c.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.000001"),
        400,
        -1013,
        "Filter failure: LOT_SIZE",
    ),
    (
        "wrong secret",
        lambda c: spot_like(c, secret="wrong").account(),
        400,
        -1022,
        "Signature for this request is not valid.",
    ),
    (
        "wrong key",
        lambda c: spot_like(c, key="not-the-key").account(),
        401,
        -2015,
        "Invalid API-key, IP, or permissions for action.",
    ),
    (
        "no key",
        lambda c: spot_like(c, key="").account(),
        401,
        -2014,
        "API-key format invalid.",
    ),
    (
        "timestamp outside recvWindow",
        lambda c: raw_signed(c, "GET", "/api/v3/account", {"timestamp": get_timestamp() - 70_000}),
        400,
        -1021,
        "Timestamp for this request is outside of the recvWindow.",
    ),
    (
        "timestamp ahead",
        lambda c: raw_signed(c, "GET", "/api/v3/account", {"timestamp": get_timestamp() + 5_000}),
        400,
        -1021,
        "Timestamp for this request was 1000ms ahead of the server's time.",
    ),
    (
        "query an unknown order",
        lambda c: c.get_order("BTCUSDT", orderId=999_999),
        400,
        -2013,
        "Order does not exist.",
    ),
    (
        "cancel an unknown order",
        lambda c: c.cancel_order("BTCUSDT", orderId=999_999),
        400,
        -2011,
        "Unknown order sent.",
    ),
    (
        "cancel all with none open",
        lambda c: c.cancel_open_orders("ETHUSDT"),
        400,
        -2011,
        "Unknown order sent.",
    ),
]


def spot_like(client: Spot, **kwargs: Any) -> Spot:
    return Spot(
        api_key=kwargs.get("key", KEY),
        api_secret=kwargs.get("secret", SECRET),
        base_url=client.base_url,
    )


@pytest.mark.parametrize(
    ("case", "call", "status", "code", "message"), ERRORS, ids=[e[0] for e in ERRORS]
)
def test_errors_answer_as_binance_does(
    shared_pair: SimServer,
    case: str,
    call: Callable[[Spot], Any],
    status: int,
    code: int,
    message: str,
) -> None:
    with pytest.raises(ClientError) as err:
        call(spot(shared_pair))
    got = err.value
    assert (got.status_code, got.error_code, got.error_message) == (status, code, message), case


def test_every_endpoint_through_the_official_client(pair: SimServer) -> None:
    c = spot(pair, show_limit_usage=True)
    assert c.ping()["data"] == {}
    server_ms = c.time()["data"]["serverTime"]
    assert abs(server_ms - time.time() * 1000) < 2_000  # the venue clock is wall time
    info = c.exchange_info(symbols=["BTCUSDT", "ETHUSDT"])
    assert info["limit_usage"]["x-mbx-used-weight-1m"] == "22"  # ping 1, time 1, exchangeInfo 20
    symbols = {s["symbol"]: s for s in info["data"]["symbols"]}
    lots = {n: {f["filterType"]: f for f in s["filters"]}["LOT_SIZE"] for n, s in symbols.items()}
    assert (lots["BTCUSDT"]["stepSize"], lots["ETHUSDT"]["stepSize"]) == (
        "0.00001000",
        "0.00010000",
    )
    assert symbols["BTCUSDT"]["quoteOrderQtyMarketAllowed"] is True
    c = spot(pair)
    prices = {
        t["symbol"]: Decimal(t["price"]) for t in c.ticker_price(symbols=["BTCUSDT", "ETHUSDT"])
    }
    book = c.book_ticker(symbol="ETHUSDT")
    assert Decimal(book["bidPrice"]) == prices["ETHUSDT"] == Decimal(book["askPrice"])
    assert c.new_order_test("BTCUSDT", "BUY", "MARKET", quantity="0.01") == {}

    buy = c.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01")
    fill = buy["fills"][0]
    assert (buy["status"], fill["commissionAsset"], fill["commission"]) == (
        "FILLED",
        "BTC",
        "0.00001000",  # 10 bps of the 0.01 BTC received
    )
    spend = c.new_order("ETHUSDT", "BUY", "MARKET", quoteOrderQty="100")
    spent = Decimal(spend["cummulativeQuoteQty"])
    assert spent <= 100 < spent + prices["ETHUSDT"] * Decimal("0.0001"), "closest, not over"
    assert spend["origQuoteOrderQty"] == "100.00000000"
    sell = c.new_order("ETHUSDT", "SELL", "MARKET", quantity="0.01")
    assert sell["fills"][0]["commissionAsset"] == "USDT"
    ids = {buy["clientOrderId"], spend["clientOrderId"], sell["clientOrderId"]}
    assert len(ids) == 3, "generated ids are unique"
    assert all(len(i) == 22 for i in ids), "and as long as Binance's"

    far = (prices["BTCUSDT"] * Decimal("0.8")).quantize(Decimal("0.01"))
    before = c.account()
    rest = c.new_order(**{**LIMIT, "quantity": "0.01", "price": f"{far}"})
    held = {b["asset"]: Decimal(b["locked"]) for b in c.account()["balances"]}
    assert held["USDT"] == far * Decimal("0.01")  # qty x price, no commission held
    assert c.get_order("BTCUSDT", orderId=rest["orderId"])["status"] == "NEW"
    ioc = c.new_order(**{**LIMIT, "timeInForce": "IOC", "quantity": "0.01", "price": f"{far}"})
    fok = c.new_order(**{**LIMIT, "timeInForce": "FOK", "quantity": "0.01", "price": f"{far}"})
    assert (ioc["status"], fok["status"]) == ("EXPIRED", "EXPIRED")
    maker = c.new_order("BTCUSDT", "BUY", "LIMIT_MAKER", quantity="0.01", price=f"{far}")
    assert [o["orderId"] for o in c.get_open_orders()] == [rest["orderId"], maker["orderId"]]
    assert c.get_open_orders(symbol="ETHUSDT") == []
    canceled = c.cancel_order("BTCUSDT", orderId=rest["orderId"])
    assert canceled["status"] == "CANCELED"
    assert canceled["updateTime"] >= canceled["time"]
    assert [o["status"] for o in c.cancel_open_orders("BTCUSDT")] == ["CANCELED"]
    after = {b["asset"]: b for b in c.account()["balances"]}
    assert after["USDT"]["locked"] == "0.00000000"
    assert {b["asset"] for b in before["balances"]} == {"BTC", "ETH", "USDT"}
    trades = c.my_trades("BTCUSDT")
    assert [t["orderId"] for t in trades] == [buy["orderId"]]
    assert trades[0]["isMaker"] is False


@pytest.mark.parametrize("interval", ["1m", "3m", "5m", "15m", "30m", "1h", "4h", "1d"])
def test_klines_intervals_aggregate_on_utc_boundaries(pair: SimServer, interval: str) -> None:
    c = spot(pair)
    minutes = c.klines("BTCUSDT", "1m", startTime=FIRST_BAR_MS, endTime=FIRST_BAR_MS + 3600_000)
    bars = c.klines("BTCUSDT", interval, startTime=FIRST_BAR_MS)
    size = bars[0][6] + 1 - bars[0][0]
    assert all(b[0] % size == 0 for b in bars), "UTC boundaries"
    closed = [b for b in bars if b[6] < FIRST_BAR_MS + 120 * 60_000]
    if closed and size <= 3600_000:
        first = minutes[: size // 60_000]
        assert closed[0][1:5] == [
            first[0][1],
            max(first, key=lambda b: Decimal(b[2]))[2],
            min(first, key=lambda b: Decimal(b[3]))[3],
            first[-1][4],
        ]
    now = int(pair.state.exchange.clock.now_ms())
    assert bars[-1][6] >= now, "the open bar comes last, its closeTime in the future"
    ended = c.klines("BTCUSDT", interval, startTime=FIRST_BAR_MS, endTime=now)
    assert all(b[6] < pair.state.exchange.clock.now_ms() for b in ended), "closed bars only"


def test_request_weight_429_then_an_escalating_418(pair: SimServer) -> None:
    c = spot(pair)
    for _ in range(75):  # openOrders without a symbol weighs 80: 75 x 80 = 6000
        c.get_open_orders()
    with pytest.raises(ClientError) as limited:
        c.get_open_orders()
    assert (limited.value.status_code, limited.value.error_code) == (429, -1003)
    assert int(limited.value.header["Retry-After"]) > 0
    with pytest.raises(ClientError) as banned:  # the 429 ignored: banned
        c.ping()
    assert (banned.value.status_code, banned.value.error_code) == (418, -1003)
    assert int(banned.value.header["Retry-After"]) == 120
    assert banned.value.error_message.startswith("Way too much request weight used; IP banned")


def test_orders_count_and_limit_per_10_seconds(pair: SimServer) -> None:
    c = spot(pair, show_limit_usage=True)
    far = (last_close(spot(pair)) * Decimal("0.8")).quantize(Decimal("0.01"))
    order = {**LIMIT, "timeInForce": "IOC", "quantity": "0.01", "price": f"{far}"}
    for n in range(1, 101):
        usage = c.new_order(**order)["limit_usage"]
        assert usage["x-mbx-order-count-10s"] == str(n)
        assert usage["x-mbx-order-count-1d"] == str(n)
    with pytest.raises(ClientError) as err:
        c.new_order(**order)
    assert (err.value.status_code, err.value.error_code, err.value.error_message) == (
        429,
        -1015,
        "Too many new orders; current limit is 100 orders per 10 SECOND.",
    )
    assert err.value.header["X-MBX-ORDER-COUNT-10S"] == "100"


@pytest.mark.parametrize("executed", [True, False])
def test_a_5xx_does_not_say_whether_the_order_executed(eth_bars: Path, executed: bool) -> None:
    fault = Fault(endpoint="POST /api/v3/order", kind="503", every=1, executed=executed)
    server = start_pair(eth_bars, speed=0, faults=FaultConfig(faults=[fault]))
    try:
        c = spot(server)
        with pytest.raises(ServerError) as err:
            c.new_order("BTCUSDT", "BUY", "MARKET", quantity="0.01", newClientOrderId="nj-5xx")
        try:
            status = c.get_order("BTCUSDT", origClientOrderId="nj-5xx")["status"]
        except ClientError as e:
            status = str(e.error_code)
    finally:
        server.shutdown()
        server.server_close()
    assert (err.value.status_code, err.value.message) == (
        503,
        '{"code":-1000,"msg":"Unknown error, please check your request or try again later."}',
    )
    assert status == ("FILLED" if executed else "-2013")
