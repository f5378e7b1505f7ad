"""The live feed against the simulator, misbehaving on purpose."""

from __future__ import annotations

import random
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow.parquet as pq
import pytest
import requests

from njord import sim
from njord.adapters.binance import Backoff, BinanceClient
from njord.adapters.binance_limits import RateLimiter
from njord.adapters.live_feed import LiveFeed
from njord.sim.faults import Fault, FaultConfig, Outage
from njord.sim.server import SimServer
from tests.conftest import SAMPLE
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET, start

WEEK = 7 * 1440


def _soak_feed(server: SimServer, symbol: str) -> Soaked:
    logs: list[tuple[str, str]] = []
    # The simulator's weight limit is raised for this replay; the client's own limiter,
    # which throttles before a venue would, is given the same budget.
    client = BinanceClient(server.url, timeout_s=2, limiter=RateLimiter(weight_1m=10**9))
    feed = LiveFeed(
        client,
        symbol=symbol,
        start_ms=FIRST_BAR_MS,
        max_bars=WEEK,
        poll_s=0.002,
        backoff=Backoff(base_s=0.005, cap_s=0.05, rng=random.Random(1)),
        log=lambda level, msg, ctx: logs.append((level, msg)),
    )
    ts = [t for batch in feed.batches() for t in batch.ts_ms]
    return Soaked(ts=ts, lags_ms=feed.lags_ms, logs=logs)


class Soaked(NamedTuple):
    ts: list[int]
    lags_ms: list[int]
    logs: list[tuple[str, str]]


@pytest.mark.parametrize(
    "symbols", [("BTCUSDT",), ("BTCUSDT", "ETHUSDT")], ids=["one-symbol", "two-symbols"]
)
def test_soak_a_week_with_faults_every_bar_once_in_order(
    eth_bars_month: Path, symbols: tuple[str, ...]
) -> None:
    faults = FaultConfig(
        seed=3,
        # A week in 40 wall seconds: a feed that keeps up polls far more often than any
        # client could under 6000 weight a wall minute. This soak is about the faults.
        weight_limit_1m=10**9,
        faults=[
            Fault(endpoint="GET /api/v3/klines", kind="429", every=40, retry_after_s=0.01),
            Fault(endpoint="GET /api/v3/klines", kind="500", every=55),
            Fault(endpoint="GET /api/v3/klines", kind="503", every=71),
            Fault(endpoint="GET /api/v3/klines", kind="drop", every=97, count=1),
        ],
        # Three hours: 0.7 wall seconds at this speed, polls enough to see it on a busy box.
        klines_outages=[Outage(start="2024-01-03T12:00:00", minutes=180)],
    )
    data = {"BTCUSDT": SAMPLE, "ETHUSDT": eth_bars_month}
    server = sim.build(
        {s: data[s] for s in symbols},
        speed=15_000,  # 250 market minutes per wall second
        start_ms=FIRST_BAR_MS,
        faults=faults,
        api_key=KEY,
        api_secret=SECRET,
    )
    server.start_in_thread()
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(len(symbols)) as pool:
            soaked = list(pool.map(lambda s: _soak_feed(server, s), symbols))
        took = time.monotonic() - started
        counts = dict(server.state.requests)
    finally:
        server.shutdown()
        server.server_close()
    assert took < 120
    for symbol, run in zip(symbols, soaked, strict=True):
        assert run.ts == [FIRST_BAR_MS + i * 60_000 for i in range(WEEK)], symbol
        assert len(run.lags_ms) == WEEK
        assert max(run.lags_ms) > 0
        gaps = [m for _, m in run.logs if m.startswith("gap: no bar since 2024-01-03 11:59")]
        assert len(gaps) == 1, (symbol, [m for _, m in run.logs if "poll failed" not in m])
        assert any(
            m.startswith("klines are back: backfilling from 2024-01-03 12:00") for _, m in run.logs
        )
    assert sum(1 for run in soaked for level, _ in run.logs if level == "WARNING") >= 3
    print(
        f"soak {'+'.join(symbols)}: {WEEK} bars each in {took:.1f}s, "
        f"{counts.get('GET /api/v3/klines')} klines requests, lag p50 "
        f"{sorted(soaked[0].lags_ms)[WEEK // 2]} ms (market time)"
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


def test_a_bar_forming_when_the_klines_answered_is_not_taken_for_closed(
    stepped: SimServer,
) -> None:
    """Torture seed 3 (issue 21): the market moved past a minute's end between the klines
    answer and the feed's next look at the venue's time, and the minute, sent while it
    was forming (its open only), was emitted as a closed bar."""

    class MarketMovesOn(BinanceClient):
        def public(self, method: str, path: str, params: Mapping[str, Any] | None = None) -> Any:
            answer = super().public(method, path, params)
            if path == "/api/v3/klines":  # a minute passes before the next request
                requests.get(f"{self.base_url}/sim/advance", params={"minutes": "1"}, timeout=5)
            return answer

    start = FIRST_BAR_MS + 119 * 60_000  # the last closed bar; the next one is forming
    feed = LiveFeed(MarketMovesOn(stepped.url), symbol="BTCUSDT", start_ms=start, max_bars=2)
    feed.poll_s = 0.0
    got = [(b.ts_ms[0], b.high[0], b.low[0], b.close[0]) for b in feed.batches()]
    sample = pq.read_table(SAMPLE).slice(119, 2).to_pydict()
    ts = [start, start + 60_000]
    assert got == list(zip(ts, sample["high"], sample["low"], sample["close"], strict=True))


def test_a_new_session_without_a_start_begins_at_the_latest_closed_bar(
    stepped: SimServer,
) -> None:
    """The venue answers a first poll with the last 1,000 closed minutes. A session with
    no data.start used to run all of them as bars: 16 hours of history traded at once, at
    old closes in paper, at today's prices live. Given a start, the feed backfills from it."""
    client = BinanceClient(stepped.url, timeout_s=2)
    latest = FIRST_BAR_MS + 119 * 60_000  # the market is two hours in: its last closed bar
    fresh = LiveFeed(client, symbol="BTCUSDT", max_bars=1, poll_s=0.01)
    assert [t for batch in fresh.batches() for t in batch.ts_ms] == [latest]
    backfill = LiveFeed(client, symbol="BTCUSDT", start_ms=FIRST_BAR_MS, max_bars=120)
    ts = [t for batch in backfill.batches() for t in batch.ts_ms]
    assert ts == [FIRST_BAR_MS + i * 60_000 for i in range(120)]
