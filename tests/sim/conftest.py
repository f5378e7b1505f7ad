from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from njord import sim
from njord.sim.faults import FaultConfig
from njord.sim.server import SimServer
from tests.conftest import SAMPLE

FIRST_BAR_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, the sample's first bar
KEY, SECRET = "test-key-" + "a" * 55, "test-secret-" + "b" * 52


@pytest.fixture
def stepped() -> Iterator[SimServer]:
    """A simulator whose clock moves only when a test steps it: two hours in."""
    server = sim.build(
        SAMPLE,
        speed=0,
        start_ms=FIRST_BAR_MS + 120 * 60_000,
        balances={"USDT": Decimal(10_000)},
        api_key=KEY,
        api_secret=SECRET,
    )
    server.start_in_thread()
    yield server
    server.shutdown()
    server.server_close()


def start(faults: FaultConfig, *, speed: float, start_ms: int = FIRST_BAR_MS) -> SimServer:
    server = sim.build(
        SAMPLE, speed=speed, start_ms=start_ms, faults=faults, api_key=KEY, api_secret=SECRET
    )
    server.start_in_thread()
    return server
