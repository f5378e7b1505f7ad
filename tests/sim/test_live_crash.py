"""Issue 15: kill -9 of `njord live` at seeded instants, with the venue failing after it
executed, then carry on: no order twice at the venue, no fill missed, book == venue.

The instants: after phase 1 committed the NEW orders and before the request (`decided`),
after the venue executed an order and answered but before the book heard (`executed`),
after the answers and before phase 3 committed (`sent`), and after a bar (`committed`).
The simulator also answers some orders with a 503 or a dropped connection after executing
them, so that their outcome is unknown and must be looked up, never resent blindly.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from njord.sim.faults import Fault, FaultConfig
from njord.sim.server import SimServer
from tests.conftest import ROOT, bars_in, invoke, query, run_killable, user_strategies_env
from tests.sim.conftest import FIRST_BAR_MS, start
from tests.sim.test_live import LIVE_ENV, _db_trades, _venue_orders, _venue_trades

BARS = 120
KILLS = 50
POINTS = ("decided", "executed", "sent", "committed")


@pytest.fixture
def venue() -> Iterator[SimServer]:
    faults = FaultConfig(
        seed=3,
        # Some 55 starts in a minute or two, each measuring the clock, reading the filters
        # and the account and reconciling: far over the weight a real client spends. The
        # limit is raised so that the session's own limiter does not hold a start back.
        weight_limit_1m=60_000,
        faults=[
            Fault(endpoint="POST /api/v3/order", kind="503", executed=True, every=5),
            Fault(endpoint="POST /api/v3/order", kind="drop", executed=True, every=7),
        ],
    )
    server = start(faults, speed=0, start_ms=FIRST_BAR_MS + BARS * 60_000)
    yield server
    server.shutdown()
    server.server_close()


def _live(db: Path, url: str, kill_at: str | None) -> int:
    args = [
        "live",
        "--config",
        str(ROOT / "config.toml"),
        "--db",
        str(db),
        "--for",
        "1.5s",
        "--poll-s",
        "0.01",
        "--tiny",
        *("--set", f'venue.base_url="{url}"'),
        *("--set", 'runtime.mode="live"'),
        *("--set", 'data.start="2024-01-01T00:00"'),
        *("--set", "venue.recv_window_ms=500"),
        *("--strategy", "user_strategies:Churns"),
    ]
    env = {**LIVE_ENV, **user_strategies_env(), **({"NJORD_KILL_AT": kill_at} if kill_at else {})}
    return run_killable(args, env)


def test_kill_9_mid_submit_sends_nothing_twice_and_misses_no_fill(
    venue: SimServer, tmp_path: Path
) -> None:
    db = tmp_path / "live.db"
    rng = random.Random(15)
    kills = dict.fromkeys(POINTS, 0)
    while sum(kills.values()) < KILLS and bars_in(db) < BARS:
        point = rng.choice(POINTS)
        nth = rng.randint(1, 3)
        if _live(db, venue.url, f"{point}:{nth}") == -9:
            kills[point] += 1
    for _ in range(5):  # uninterrupted now: each run takes what the market has left
        assert _live(db, venue.url, None) == 0
        if bars_in(db) == BARS:
            break
    print(f"kills by instant: {kills}; venue requests: {dict(venue.state.requests)}")
    assert sum(kills.values()) == KILLS
    assert all(kills.values())
    sent = Counter(o.client_order_id for o in _venue_orders(venue))
    assert len(sent) > BARS // 2  # an order on almost every bar
    assert max(sent.values()) == 1  # no client order id at the venue twice
    assert _db_trades(db) == _venue_trades(venue)  # every venue fill in the db, once
    assert query(db, "SELECT count(*) FROM orders WHERE status IN ('NEW', 'SUBMITTED')") == [(0,)]
    assert query(db, "SELECT count(*) FROM external_events") == [(0,)]
    result = invoke("reconcile", str(db), env=LIVE_ENV)  # book == venue, read-only
    assert result.exit_code == 0, result.output
    ts = [t for (t,) in query(db, "SELECT ts_ms FROM equity ORDER BY ts_ms")]
    assert ts == [FIRST_BAR_MS + i * 60_000 for i in range(BARS)]  # no bar missed or doubled
