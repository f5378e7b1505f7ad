from __future__ import annotations

import contextlib
import random
from collections.abc import Callable, Iterator
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
from tests.conftest import ROOT, SAMPLE, bars_in, query

FIRST_BAR_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, the sample's first bar
KEY, SECRET = "test-key-" + "a" * 55, "test-secret-" + "b" * 52
ETH_SAMPLE = ROOT / "sample_data" / "ETHUSDT-1m-2024-01.parquet"
PAIR = ("BTCUSDT", "ETHUSDT")
PAIR_MINUTES = 300  # the pair market's closed minutes


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


def kill_in_every_phase(
    run: Callable[[str | None], int], crashed: Path, *, bars: int, kills: int, seed: int, most: int
) -> dict[str, int]:
    """Run a paper session's command on `crashed` (`run(kill_at)`: its exit, 0 or -9),
    killed at seeded phase boundaries (njord.killpoints: the n-th `decided`, `sent` or
    `committed`, n up to `most`, 2 for `sent`) until `kills` kills landed or its `bars`
    are all in, then uninterrupted until they are. The kills made, by phase."""
    rng = random.Random(seed)
    made = {"decided": 0, "sent": 0, "committed": 0}
    while sum(made.values()) < kills and bars_in(crashed) < bars:
        point = rng.choice(sorted(made))
        nth = rng.randint(1, 2 if point == "sent" else most)
        if run(f"{point}:{nth}") == -9:
            made[point] += 1
    for _ in range(5):  # each uninterrupted run takes what the market has left
        assert run(None) == 0
        if bars_in(crashed) == bars:
            break
    print(f"kills by phase: {made}")
    return made


def assert_ends_as(crashed: Path, reference: Path, compared: tuple[str, ...], bars: int) -> None:
    """The killed session ends where the uninterrupted one did: every compared table the
    same, each minute once, no order sent twice to the paper broker or filled twice."""
    for sql in compared:
        assert query(crashed, sql) == query(reference, sql), sql
    minutes = [t for (t,) in query(crashed, "SELECT ts_ms FROM equity ORDER BY ts_ms")]
    assert minutes == [FIRST_BAR_MS + i * 60_000 for i in range(bars)]
    assert query(crashed, "SELECT count(*) FROM paper_orders WHERE sends > 1") == [(0,)]
    executed = query(crashed, "SELECT client_order_id, count(*) FROM fills GROUP BY 1")
    assert all(n == 1 for _, n in executed)  # one fill per order: none executed twice
    assert query(crashed, "SELECT count(*) FROM orders WHERE status = 'NEW'") == [(0,)]


@contextlib.contextmanager
def frozen_market(data: Path | dict[str, Path], minutes: int) -> Iterator[SimServer]:
    """A simulator whose replay has `minutes` bars closed and whose clock stands still
    (every run of a session sees the same market), 10,000 USDT; stopped on leaving."""
    server = sim.build(
        data,
        speed=0,
        start_ms=FIRST_BAR_MS + minutes * 60_000,
        balances={"USDT": Decimal(10_000)},
    )
    server.start_in_thread()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def pair_market() -> Iterator[SimServer]:
    """Both shipped samples' first PAIR_MINUTES minutes closed, the clock still (every run
    of a session sees the same market): the two-symbol paper tests' venue."""
    with frozen_market({"BTCUSDT": SAMPLE, "ETHUSDT": ETH_SAMPLE}, PAIR_MINUTES) as server:
        yield server
