"""BinanceRouter beyond the router contract: the clock-skew guard, the auto-halt counter,
periodic upkeep, order_rtt_ms, and giving up without ever resending blindly."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from njord import sim
from njord.adapters.binance import Backoff, BinanceClient
from njord.adapters.binance_router import BinanceRouter, VenueStartError
from njord.core.money import E8
from njord.core.reports import Ack, Reject, Unknown
from njord.reasons import VenueCode
from njord.records import Order, OrderStatus, OrderType, Side
from njord.secrets import Secret
from njord.sim.faults import Fault, FaultConfig
from njord.sim.server import SimServer
from tests.conftest import SAMPLE
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextmanager
def venue(
    faults: FaultConfig | None = None, usdt: int = 10_000
) -> Iterator[tuple[SimServer, BinanceClient]]:
    server = sim.build(
        SAMPLE,
        speed=0,
        start_ms=FIRST_BAR_MS + 120 * 60_000,
        faults=faults,
        balances={"USDT": Decimal(usdt)},
        api_key=KEY,
        api_secret=SECRET,
    )
    server.start_in_thread()
    try:
        client = BinanceClient(
            server.url,
            api_key=Secret(KEY),
            api_secret=Secret(SECRET),
            recv_window_ms=500,
            max_wait_s=2.0,
        )
        yield server, client
    finally:
        server.shutdown()
        server.server_close()


def _router(
    client: BinanceClient, *, max_consecutive_failures: int = 5, clock: FakeClock | None = None
) -> BinanceRouter:
    router = BinanceRouter(
        client,
        symbol="BTCUSDT",
        retries=2,
        backoff=Backoff(base_s=0.01, cap_s=0.02),
        max_consecutive_failures=max_consecutive_failures,
        **({"clock": clock} if clock is not None else {}),
    )
    router.start()
    return router


def _order(coid: str, qty_e8: int = E8 // 1000, limit_e8: int | None = None) -> Order:
    return Order(
        client_order_id=coid,
        intent_id=1,
        symbol="BTCUSDT",
        side=Side.BUY,
        type=OrderType.MARKET if limit_e8 is None else OrderType.LIMIT,
        qty_e8=qty_e8,
        limit_e8=limit_e8,
        status=OrderStatus.NEW,
        created_ms=0,
    )


def test_a_skewed_venue_clock_is_an_alert_and_still_signs_right() -> None:
    with venue(FaultConfig(time_skew_ms=3_000)) as (_, client):
        router = _router(client)
        health = router.health
        assert health.skew_alert  # 3 s > recvWindow 500 ms / 2
        assert health.clock_offset_ms is not None
        assert 2_500 < health.clock_offset_ms < 3_500
        assert isinstance(router.submit(_order("nj-skew-1"))[0], Ack)


def test_the_session_does_not_start_when_the_clock_cannot_be_measured() -> None:
    client = BinanceClient("http://127.0.0.1:9", timeout_s=0.2)  # nothing listens there
    router = BinanceRouter(client, symbol="BTCUSDT", retries=1, backoff=Backoff(base_s=0.01))
    with pytest.raises(VenueStartError, match="cannot start against"):
        router.start()


def test_consecutive_failures_halt_and_a_success_resets_them() -> None:
    with venue(usdt=10) as (_, client):
        router = _router(client, max_consecutive_failures=3)
        for n in range(2):
            out = router.submit(_order(f"nj-poor-{n}"))  # 42 USDT of BTC with 10 USDT
            assert isinstance(out[0], Reject)
            assert out[0].reason == VenueCode.INSUFFICIENT_BALANCE.value
            assert out[0].code == "-2010"
        assert router.health.consecutive_failures == 2
        assert not router.health.halted
        resting = router.submit(_order("nj-poor-limit", qty_e8=20_000, limit_e8=30_000 * E8))
        assert [type(r) for r in resting] == [Ack]  # 6 USDT: it rests
        assert router.health.consecutive_failures == 0
        for n in range(3):
            router.submit(_order(f"nj-poor-again-{n}"))
        assert router.health.halted
        assert "VENUE_INSUFFICIENT_BALANCE" in router.health.last_error


def test_unknown_outcomes_that_never_clear_end_in_a_reject_never_a_blind_resend() -> None:
    always = Fault(endpoint="POST /api/v3/order", kind="500", every=1, executed=False)
    with venue(FaultConfig(faults=[always])) as (server, client):
        router = _router(client)
        out = router.submit(_order("nj-unknown-1"))
        assert isinstance(out[0], Reject)
        assert out[0].reason == VenueCode.OUTCOME_UNKNOWN.value
        requests = server.state.requests
        assert requests["POST /api/v3/order"] == 3  # retries=2: three sends in all
        assert requests["GET /api/v3/order"] >= 4  # a lookup before each, and the last
        assert router.health.consecutive_failures == 1


def test_nothing_is_sent_while_the_venue_cannot_say_what_it_holds() -> None:
    lookups_fail = Fault(endpoint="GET /api/v3/order", kind="503", every=1)
    with venue(FaultConfig(faults=[lookups_fail])) as (server, client):
        router = _router(client)
        out = router.submit(_order("nj-blind-1"))
        assert [type(r) for r in out] == [Unknown]
        assert server.state.requests["POST /api/v3/order"] == 0
        assert router.health.consecutive_failures == 1


def test_upkeep_measures_the_clock_every_ten_minutes_and_reads_filters_every_hour() -> None:
    clock = FakeClock()
    with venue() as (server, client):
        router = _router(client, clock=clock)
        counts = server.state.requests
        assert (counts["GET /api/v3/time"], counts["GET /api/v3/exchangeInfo"]) == (1, 1)
        router.maintain()
        clock.now += 601
        router.maintain()
        assert (counts["GET /api/v3/time"], counts["GET /api/v3/exchangeInfo"]) == (2, 1)
        clock.now += 3000
        router.maintain()
        assert (counts["GET /api/v3/time"], counts["GET /api/v3/exchangeInfo"]) == (3, 2)


def test_order_rtt_is_drained_once_per_order_sent() -> None:
    with venue() as (_, client):
        router = _router(client)
        router.submit(_order("nj-rtt-1"))
        router.submit(_order("nj-rtt-1"))  # answered by the lookup: nothing sent
        router.submit(_order("nj-rtt-2"))
        rtts = router.drain_rtt_ms()
        assert len(rtts) == 2
        assert all(0 < ms < 5_000 for ms in rtts)
        assert router.drain_rtt_ms() == []


def test_429_bursts_and_a_418_are_waited_out_with_nothing_sent_during_the_ban() -> None:
    """Issue 15's throttled path: the venue answers a burst of 429s on the order lookup and
    then bans the IP (418); the router sends nothing while a Retry-After runs, then places
    the order once. The request count shows there is no hot loop."""
    faults = FaultConfig(
        faults=[
            Fault(endpoint="GET /api/v3/order", kind="429", every=1, count=3, retry_after_s=0.3),
            Fault(endpoint="POST /api/v3/order", kind="418", every=1, count=1, retry_after_s=0.8),
        ]
    )
    with venue(faults) as (server, client):
        router = _router(client, max_consecutive_failures=20)
        router.retries = 6
        before = sum(server.state.requests.values())
        reports = router.submit(_order("nj-throttled-1"))
        assert isinstance(reports[0], Ack), reports
        requests = server.state.request_times
        every = sorted(t for times in requests.values() for t in times)
        ban = requests["POST /api/v3/order"][0]  # the 418 answer: banned from here on
        after_ban = [t for t in every if t > ban]
        assert after_ban, "the router resumed"
        assert after_ban[0] - ban >= 0.8  # nothing at all was sent during the ban
        lookups = requests["GET /api/v3/order"]
        assert all(b - a >= 0.3 for a, b in itertools.pairwise(lookups[:4]))
        # 3 refused lookups + 1 that found nothing, the banned POST, one lookup after the
        # ban and the POST that placed it: a handful, never a loop.
        assert sum(server.state.requests.values()) - before <= 8
        assert [o.client_order_id for o in server.state.exchange.orders.values()] == [
            "nj-throttled-1"
        ]
