"""The live feed against the simulator, misbehaving on purpose."""

from __future__ import annotations

import random
import time

import pytest

from njord.adapters.binance import Backoff, BinanceClient
from njord.adapters.live_feed import LiveFeed
from njord.sim.faults import Fault, FaultConfig, Outage
from tests.sim.conftest import FIRST_BAR_MS, start

WEEK = 7 * 1440


def test_soak_a_week_with_faults_every_bar_once_in_order() -> None:
    faults = FaultConfig(
        seed=3,
        faults=[
            Fault(endpoint="GET /api/v3/klines", kind="429", every=40, retry_after_s=0.01),
            Fault(endpoint="GET /api/v3/klines", kind="500", every=55),
            Fault(endpoint="GET /api/v3/klines", kind="503", every=71),
            Fault(endpoint="GET /api/v3/klines", kind="drop", every=97, count=1),
        ],
        klines_outages=[Outage(start="2024-01-03T12:00:00", minutes=20)],
    )
    server = start(faults, speed=15_000)  # 250 market minutes per wall second
    logs: list[tuple[str, str]] = []
    try:
        feed = LiveFeed(
            BinanceClient(server.url, timeout_s=2),
            symbol="BTCUSDT",
            start_ms=FIRST_BAR_MS,
            max_bars=WEEK,
            poll_s=0.002,
            backoff=Backoff(base_s=0.005, cap_s=0.05, rng=random.Random(1)),
            log=lambda level, msg, ctx: logs.append((level, msg)),
        )
        started = time.monotonic()
        ts = [t for batch in feed.batches() for t in batch.ts_ms]
        took = time.monotonic() - started
        counts = dict(server.state.requests)
    finally:
        server.shutdown()
        server.server_close()
    assert ts == [FIRST_BAR_MS + i * 60_000 for i in range(WEEK)], "each bar once, in order"
    assert took < 120
    assert len(feed.lags_ms) == WEEK
    assert max(feed.lags_ms) > 0
    gaps = [m for level, m in logs if m.startswith("gap: no bar since 2024-01-03 11:59")]
    assert len(gaps) == 1, [m for _, m in logs if "poll failed" not in m]
    assert any(m.startswith("klines are back: backfilling from 2024-01-03 12:00") for _, m in logs)
    assert sum(1 for level, _ in logs if level == "WARNING") >= 3  # the injected failures
    print(
        f"soak: {WEEK} bars in {took:.1f}s, {counts.get('GET /api/v3/klines')} klines "
        f"requests, lag p50 {sorted(feed.lags_ms)[WEEK // 2]} ms (market time)"
    )


def test_permanent_5xx_backs_off_instead_of_busy_looping() -> None:
    faults = FaultConfig(faults=[Fault(endpoint="GET /api/v3/klines", kind="500", every=1)])
    server = start(faults, speed=60)
    deadline = time.monotonic() + 2.0

    class Stop(Exception):
        pass

    def sleep(seconds: float) -> None:
        if time.monotonic() + seconds > deadline:
            raise Stop
        time.sleep(seconds)

    base, cap = 0.05, 0.4
    try:
        feed = LiveFeed(
            BinanceClient(server.url),
            symbol="BTCUSDT",
            poll_s=0.01,
            backoff=Backoff(base_s=base, cap_s=cap, rng=random.Random(2), sleep=sleep),
        )
        with pytest.raises(Stop):
            list(feed.batches())
        requests_made = server.state.requests["GET /api/v3/klines"]
    finally:
        server.shutdown()
        server.server_close()
    # Each wait is at least half its ceiling: 0.025, 0.05, 0.1, then 0.2 a time, capped.
    floor: list[float] = []
    while sum(floor) < 2.0:
        floor.append(min(cap, base * 2 ** len(floor)) / 2)
    assert 3 <= requests_made <= len(floor) + 1, requests_made
