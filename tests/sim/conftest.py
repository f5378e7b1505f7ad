from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
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


def _eth_bars(directory: Path, days: int) -> Path:
    """An ETHUSDT replay: the sample's first days at ETH's price level (x 0.055)."""
    table = pq.read_table(SAMPLE).slice(0, days * 1440)
    scaled = {
        name: pc.round(pc.multiply(table[name], 0.055), 2)
        for name in ("open", "high", "low", "close")
    }
    columns = {name: scaled.get(name, table[name]) for name in table.column_names}
    columns["symbol"] = pa.array(["ETHUSDT"] * table.num_rows, pa.string())
    path = directory / "ETHUSDT-1m.parquet"
    pq.write_table(pa.table(columns, schema=table.schema), path)
    return path


@pytest.fixture(scope="session")
def eth_bars(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _eth_bars(tmp_path_factory.mktemp("eth"), days=3)


@pytest.fixture(scope="session")
def eth_bars_month(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _eth_bars(tmp_path_factory.mktemp("eth-month"), days=31)


def start_pair(eth: Path, *, speed: float, **kwargs: Any) -> SimServer:
    """BTCUSDT (the sample) and ETHUSDT side by side, two hours into the replay."""
    server = sim.build(
        {"BTCUSDT": SAMPLE, "ETHUSDT": eth},
        speed=speed,
        start_ms=FIRST_BAR_MS + 120 * 60_000,
        api_key=KEY,
        api_secret=SECRET,
        **kwargs,
    )
    server.start_in_thread()
    return server
