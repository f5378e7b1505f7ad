"""The client's rate limiting and error classification: it waits before the venue would
refuse, honours Retry-After by sending nothing, and maps every error to a stable code."""

from __future__ import annotations

from decimal import Decimal

import pytest

from njord import sim
from njord.adapters.binance import (
    BinanceClient,
    Throttled,
    VenueError,
    VenueUnreachable,
    classify,
)
from njord.adapters.binance_limits import RateLimiter, Window
from njord.reasons import VenueCode
from njord.secrets import Secret
from njord.sim.faults import Fault, FaultConfig
from njord.sim.server import SimServer
from tests.conftest import SAMPLE
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_window_waits_until_enough_weight_leaves_it() -> None:
    w = Window(100, 60.0)
    w.sent(0.0, 50)
    w.sent(10.0, 40)
    assert w.wait_s(20.0, 10, 100) == 0.0
    assert w.wait_s(20.0, 11, 100) == pytest.approx(40.0)  # the first 50 leave at t=60
    assert w.used(20.0) == 90  # asking about the future forgot nothing


def test_weight_the_venue_counted_for_others_holds_for_a_window() -> None:
    clock = FakeClock()
    limiter = RateLimiter(weight_1m=100, headroom=1.0, clock=clock)
    limiter.sent("GET /api/v3/time", 1)
    limiter.observed({"X-MBX-USED-WEIGHT-1M": "95"})  # 94 from another process on this IP
    assert limiter.wait_s("GET /api/v3/account", 20) == pytest.approx(60.0)
    clock.now += 60.0
    assert limiter.wait_s("GET /api/v3/account", 20) == 0.0


def test_orders_are_held_back_by_the_ten_second_count() -> None:
    clock = FakeClock()
    limiter = RateLimiter(orders_10s=10, headroom=0.9, clock=clock)
    for _ in range(9):
        assert limiter.wait_s("POST /api/v3/order", 1) == 0.0
        limiter.sent("POST /api/v3/order", 1)
    assert limiter.wait_s("POST /api/v3/order", 1) == pytest.approx(10.0)
    assert limiter.wait_s("GET /api/v3/order", 4) == 0.0  # a query is not an order


def _server(faults: FaultConfig) -> SimServer:
    server = sim.build(
        SAMPLE,
        speed=0,
        start_ms=FIRST_BAR_MS + 120 * 60_000,
        faults=faults,
        balances={"USDT": Decimal(10_000)},
        api_key=KEY,
        api_secret=SECRET,
    )
    server.start_in_thread()
    return server


def _client(server: SimServer, **kw: float) -> BinanceClient:
    return BinanceClient(server.url, api_key=Secret(KEY), api_secret=Secret(SECRET), **kw)


def test_the_client_stops_before_the_venue_would_refuse() -> None:
    server = _server(FaultConfig(weight_limit_1m=200))
    try:
        client = _client(server, max_wait_s=0.0)
        client.limiter.set_limits(weight_1m=200, orders_10s=100, orders_1d=200_000)
        sent = 0
        with pytest.raises(Throttled):  # noqa: PT012 - it is the loop that ends in the error
            while sent < 20:
                client.signed("GET", "/api/v3/account")
                sent += 1
        assert sent == 9
        # 90% of 200 is 180: nine account reads of weight 20, and not one 429 from the venue
        assert server.state.requests["GET /api/v3/account"] == 9
    finally:
        server.shutdown()
        server.server_close()


def test_nothing_is_sent_while_a_retry_after_runs() -> None:
    fault = Fault(endpoint="GET /api/v3/time", kind="429", every=1, count=1, retry_after_s=0.5)
    server = _server(FaultConfig(faults=[fault]))
    try:
        client = _client(server, max_wait_s=0.0)
        with pytest.raises(VenueError) as first:
            client.server_time_ms()
        assert first.value.status == 429
        with pytest.raises(Throttled):
            client.server_time_ms()
        assert server.state.requests["GET /api/v3/time"] == 1
        client.max_wait_s = 1.0
        client.server_time_ms()  # waits the rest of the Retry-After, then sends
        times = server.state.request_times["GET /api/v3/time"]
        assert times[1] - times[0] >= 0.5
    finally:
        server.shutdown()
        server.server_close()


@pytest.mark.parametrize(
    ("error", "code", "retryable", "unknown"),
    [
        (VenueUnreachable("timeout"), VenueCode.UNREACHABLE, True, True),
        (VenueError(503, -1000, "Unknown error"), VenueCode.OUTCOME_UNKNOWN, True, True),
        (VenueError(400, -1007, "Timeout waiting"), VenueCode.OUTCOME_UNKNOWN, True, True),
        (VenueError(429, -1003, "Too many requests"), VenueCode.RATE_LIMITED, True, False),
        (VenueError(418, -1003, "IP banned"), VenueCode.IP_BANNED, True, False),
        (VenueError(429, -1015, "Too many new orders"), VenueCode.TOO_MANY_ORDERS, True, False),
        (VenueError(400, -1021, "outside recvWindow"), VenueCode.CLOCK_SKEW, True, False),
        (VenueError(400, -1022, "Signature"), VenueCode.BAD_SIGNATURE, False, False),
        (VenueError(401, -2015, "Invalid API-key"), VenueCode.AUTH, False, False),
        (
            VenueError(400, -1013, "Filter failure: LOT_SIZE"),
            VenueCode.FILTER_FAILURE,
            False,
            False,
        ),
        (VenueError(400, -1102, "Mandatory parameter"), VenueCode.BAD_REQUEST, False, False),
        (VenueError(400, -2010, "Duplicate order sent."), VenueCode.DUPLICATE_ORDER, False, True),
        (
            VenueError(400, -2010, "Account has insufficient balance for requested action."),
            VenueCode.INSUFFICIENT_BALANCE,
            False,
            False,
        ),
        (VenueError(400, -2010, "Market is closed."), VenueCode.MARKET_CLOSED, False, False),
        (VenueError(400, -2010, "Price * QTY is zero"), VenueCode.ORDER_REJECTED, False, False),
        (VenueError(400, -2011, "Unknown order sent."), VenueCode.CANCEL_REJECTED, False, False),
        (VenueError(400, -2013, "Order does not exist."), VenueCode.NO_SUCH_ORDER, False, False),
        (VenueError(400, -9999, "new"), VenueCode.ERROR, False, False),
        (Throttled(3.0, "POST /api/v3/order"), VenueCode.THROTTLED, True, False),
    ],
)
def test_errors_map_to_stable_codes(
    error: VenueError | VenueUnreachable, code: VenueCode, retryable: bool, unknown: bool
) -> None:
    outcome = classify(error)
    assert (outcome.code, outcome.retryable, outcome.unknown) == (code, retryable, unknown)


def test_every_venue_code_is_documented() -> None:
    from tests.conftest import ROOT

    doc = (ROOT / "docs" / "reasons.md").read_text()
    assert [c for c in VenueCode if f"`{c.value}`" not in doc] == []


def test_a_retry_after_holds_every_route_until_it_ends() -> None:
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)
    limiter.told_to_wait(120.0)  # a 418 ban
    limiter.told_to_wait(1.0)  # a later, shorter 429 does not shorten it
    assert limiter.wait_s("GET /api/v3/time", 1) == pytest.approx(120.0)
    assert limiter.wait_s("POST /api/v3/order", 1) == pytest.approx(120.0)
    clock.now += 120.0
    assert limiter.wait_s("GET /api/v3/time", 1) == 0.0
