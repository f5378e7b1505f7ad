"""Issue 13: a halt answers within 1 s while a router call is slow.

Phase 2 sends orders with no write transaction held, so an order stuck at the venue (the
simulator stalls its POST /api/v3/order for 3 s, having executed it) does not lock the
operator out. The session here runs the real loop with `BinanceRouter` against the
simulator over loopback (the router of live sessions, issue 15).
"""

from __future__ import annotations

import threading
import time
from decimal import Decimal
from pathlib import Path

import pytest

from njord import config as configuration
from njord import sim, wiring
from njord.adapters.binance import BinanceClient
from njord.adapters.binance_router import BinanceRouter
from njord.core.time import MINUTE_MS
from njord.data.history import HistoryFeed
from njord.data.polled import Polled
from njord.log import SessionLog
from njord.loop import LivePacing, Stop
from njord.secrets import Secret
from njord.sim.faults import Fault, FaultConfig
from njord.store import controls
from tests.conftest import SAMPLE, query
from tests.sim.conftest import FIRST_BAR_MS, KEY, SECRET

BARS = 12
STALL_S = 3.0


@pytest.mark.usefixtures("user_strategies")
def test_a_halt_posted_while_an_order_is_stuck_at_the_venue_answers_within_1s(
    tmp_path: Path,
) -> None:
    # Executed, then 3 s of silence and a dropped connection: an outcome the router must
    # find out by query while the session carries on around it.
    stall = Fault(
        endpoint="POST /api/v3/order",
        kind="timeout",
        seconds=STALL_S,
        count=1,
        every=1,
        executed=True,
    )
    server = sim.build(
        SAMPLE,
        speed=0,
        start_ms=FIRST_BAR_MS + 120 * MINUTE_MS,
        faults=FaultConfig(faults=[stall]),
        balances={"USDT": Decimal(10_000)},
        api_key=KEY,
        api_secret=SECRET,
    )
    server.start_in_thread()
    try:
        client = BinanceClient(
            server.url, api_key=Secret(KEY), api_secret=Secret(SECRET), timeout_s=10.0
        )
        router = BinanceRouter(client, symbol="BTCUSDT")
        router.start()
        db = tmp_path / "s.db"
        sets = ['runtime.mode="paper"', 'strategy.name="user_strategies:EveryBar"']
        config = configuration.load(file=None, env={}, sets=[*sets, f'data.path="{SAMPLE}"']).config
        cls, params = wiring.strategy_of(config)
        feed = HistoryFeed(
            SAMPLE, symbol="BTCUSDT", gaps="strict", end_ms=FIRST_BAR_MS + BARS * MINUTE_MS
        )
        manifest = wiring.new_manifest(config, cls, feed.sources())
        log = SessionLog(now_ms=lambda: 0, echo=None)
        session = wiring.open_session(db, config=config, manifest=manifest, log=log)
        failed: list[BaseException] = []

        def drive() -> None:
            try:
                wiring.run_session(
                    session,
                    strategy=cls(params),
                    feed=Polled(feed),
                    resume_after_ms=None,
                    pacer=LivePacing(),
                    progress=lambda n: None,
                    stop=Stop(),
                    final_status="stopped",
                    router=router,
                )
            except BaseException as e:  # reported below, in the test's thread
                failed.append(e)

        runner = threading.Thread(target=drive)
        runner.start()
        while not server.state.requests["POST /api/v3/order"]:
            time.sleep(0.005)  # the first order is now stuck at the venue for 3 s
        started = time.monotonic()
        answer = controls.post(db, "halt", "while an order is stuck", by="test")
        took = time.monotonic() - started
        runner.join(timeout=60)
        session.close()
    finally:
        server.shutdown()
        server.server_close()
    assert not failed, failed
    print(f"halt posted in {took * 1000:.0f} ms while the venue stalled {STALL_S:g} s")
    assert "posted as control" in answer
    assert took < 1.0
    assert query(db, "SELECT state FROM trading_state") == [("HALTED",)]
    # The stuck order was executed by the venue: found by query, booked once.
    assert query(db, "SELECT count(*) FROM fills")[0][0] == 1
