"""Each injected fault behaves as documented, seen through the real client."""

from __future__ import annotations

import random
import time
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from njord import sim
from njord.adapters.binance import Backoff, BinanceClient, VenueError, VenueUnreachable
from njord.adapters.live_feed import LiveFeed
from njord.errors import ConfigError
from njord.secrets import Secret
from njord.sim.faults import Fault, FaultConfig, Outage, load
from njord.sim.server import SimServer
from tests.conftest import SAMPLE
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET


def _server(config: FaultConfig, speed: float = 0) -> SimServer:
    server = sim.build(
        SAMPLE,
        speed=speed,
        start_ms=FIRST_BAR_MS + 120 * 60_000,
        faults=config,
        balances={"USDT": Decimal(10_000)},
        api_key=KEY,
        api_secret=SECRET,
    )
    server.start_in_thread()
    return server


def _client(server: SimServer, timeout_s: float = 5) -> BinanceClient:
    client = BinanceClient(
        server.url, api_key=Secret(KEY), api_secret=Secret(SECRET), timeout_s=timeout_s
    )
    client.sync_time()
    return client


ORDER = {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.01"}


@pytest.mark.parametrize(
    ("fault", "expect_unknown", "executed"),
    [
        (Fault(endpoint="POST /api/v3/order", kind="503", every=1, executed=True), True, True),
        (Fault(endpoint="POST /api/v3/order", kind="503", every=1, executed=False), True, False),
        (Fault(endpoint="POST /api/v3/order", kind="drop", every=1, executed=True), True, True),
        (Fault(endpoint="POST /api/v3/order", kind="timeout", every=1, seconds=1.0), True, False),
    ],
)
def test_unknown_outcomes_are_resolved_by_client_order_id(
    fault: Fault, expect_unknown: bool, executed: bool
) -> None:
    server = _server(FaultConfig(faults=[fault]))
    try:
        client = _client(server, timeout_s=0.5)
        with pytest.raises((VenueError, VenueUnreachable)) as err:
            client.signed("POST", "/api/v3/order", {**ORDER, "newClientOrderId": "nj-x-1"})
        error = err.value
        assert not isinstance(error, VenueError) or error.outcome_unknown == expect_unknown
        # The rule: never resend blindly; look the order up by its client order id.
        lookup = {"symbol": "BTCUSDT", "origClientOrderId": "nj-x-1"}
        if executed:
            assert client.signed("GET", "/api/v3/order", lookup)["status"] == "FILLED"
        else:
            with pytest.raises(VenueError, match="-2013"):
                client.signed("GET", "/api/v3/order", lookup)
    finally:
        server.shutdown()
        server.server_close()


def test_418_and_429_carry_retry_after() -> None:
    server = _server(
        FaultConfig(
            faults=[
                Fault(endpoint="GET /api/v3/ping", kind="418", every=1, count=1, retry_after_s=120),
                Fault(endpoint="GET /api/v3/ping", kind="429", every=1, count=1, retry_after_s=3),
            ]
        )
    )
    try:
        first = requests.get(f"{server.url}/api/v3/ping", timeout=5)
        second = requests.get(f"{server.url}/api/v3/ping", timeout=5)
        third = requests.get(f"{server.url}/api/v3/ping", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert (first.status_code, first.headers["Retry-After"]) == (418, "120")
    assert (second.status_code, second.headers["Retry-After"]) == (429, "3")
    assert third.status_code == 200


def test_partial_fills_over_several_bars_and_time_skew() -> None:
    server = _server(FaultConfig(partial_fill_parts=3, time_skew_ms=2500))
    try:
        client = _client(server)
        skew = client.server_time_ms() - time.time_ns() // 1_000_000
        assert 2500 - 1000 < skew <= 2500  # the venue clock (wall time), skewed
        price = "42603.94"  # below the last close; the next three bars trade down through it
        order = client.signed(
            "POST",
            "/api/v3/order",
            {**ORDER, "type": "LIMIT", "timeInForce": "GTC", "quantity": "0.03", "price": price},
        )
        seen = []
        for _ in range(3):
            requests.post(f"{server.url}/sim/advance?minutes=1", timeout=5)
            got = client.signed(
                "GET", "/api/v3/order", {"symbol": "BTCUSDT", "orderId": order["orderId"]}
            )
            seen.append((got["status"], got["executedQty"]))
        trades = client.signed("GET", "/api/v3/myTrades", {"symbol": "BTCUSDT"})
    finally:
        server.shutdown()
        server.server_close()
    assert seen == [
        ("PARTIALLY_FILLED", "0.01000000"),
        ("PARTIALLY_FILLED", "0.02000000"),
        ("FILLED", "0.03000000"),
    ]
    assert len(trades) == 3


def test_missing_klines_become_a_surfaced_gap() -> None:
    outage = Outage(start="2024-01-01T00:30:00", minutes=10, missing=True)
    server = sim.build(
        SAMPLE, speed=6_000, start_ms=FIRST_BAR_MS, faults=FaultConfig(klines_outages=[outage])
    )
    server.start_in_thread()
    try:
        feed = LiveFeed(
            BinanceClient(server.url),
            symbol="BTCUSDT",
            start_ms=FIRST_BAR_MS,
            max_bars=60,
            poll_s=0.005,
            skip_after_bars=15,
            backoff=Backoff(base_s=0.01, cap_s=0.05, rng=random.Random(0)),
        )
        ts = [t for batch in feed.batches() for t in batch.ts_ms]
    finally:
        server.shutdown()
        server.server_close()
    assert FIRST_BAR_MS + 30 * 60_000 not in ts
    assert ts[30] == FIRST_BAR_MS + 40 * 60_000  # the 10 missing minutes were skipped
    assert [(e.kind, e.bars) for e in feed.events] == [("gap", 10), ("skipped", 10)]


def test_the_weight_limit_can_be_raised_for_a_soak_and_says_so(tmp_path: Path) -> None:
    server = _server(FaultConfig(weight_limit_1m=40))
    try:
        info = requests.get(f"{server.url}/api/v3/exchangeInfo", timeout=5)
        again = requests.get(f"{server.url}/api/v3/exchangeInfo", timeout=5)
        over = requests.get(f"{server.url}/api/v3/ping", timeout=5)
    finally:
        server.shutdown()
        server.server_close()
    assert info.json()["rateLimits"][0]["limit"] == 40
    assert again.status_code == 200
    assert (over.status_code, over.json()["code"]) == (429, -1003)
    assert "current limit is 40 request weight per 1 MINUTE" in over.json()["msg"]
    bad = tmp_path / "f.toml"
    bad.write_text("weight_limit_1m = 0\n")
    with pytest.raises(ConfigError, match="weight_limit_1m"):
        load(bad)
