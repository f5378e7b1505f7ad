"""Shadow and paper sessions against the simulator, through the real CLI."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest
import requests

from njord import sim
from njord.sim.faults import Fault, FaultConfig, Outage
from njord.sim.server import SimServer
from tests.conftest import (
    ROOT,
    SAMPLE,
    bars_in,
    invoke,
    njord_proc,
    query,
    startup_s,
    wait_rows,
)
from tests.sim.conftest import FIRST_BAR_MS

BARS = 1500


def _sim(closed_minutes: int, faults: FaultConfig | None = None) -> SimServer:
    server = sim.build(
        SAMPLE,
        speed=0,
        start_ms=FIRST_BAR_MS + closed_minutes * 60_000,
        faults=faults,
        balances={"USDT": Decimal(10_000)},
    )
    server.start_in_thread()
    return server


@pytest.fixture
def market() -> Iterator[SimServer]:
    server = _sim(BARS)  # exactly BARS bars closed after 2024-01-01 00:00
    yield server
    server.shutdown()
    server.server_close()


def session_args(mode: str, db_path: Path, url: str, *extra: str) -> list[str]:
    """A live-market session on the shipped config from the sample month's first bar."""
    return [
        mode,
        "--config",
        str(ROOT / "config.toml"),
        "--db",
        str(db_path),
        "--set",
        f'venue.base_url="{url}"',
        "--set",
        'data.start="2024-01-01T00:00"',
        "--poll-s",
        "0.01",
        *extra,
    ]


def live_args(mode: str, db_path: Path, url: str, *extra: str) -> list[str]:
    """The same with the SMA sample at 10/30, which trades within a few hundred bars."""
    sma = ("--set", "strategy.params.fast=10", "--set", "strategy.params.slow=30")
    return session_args(mode, db_path, url, *sma, *extra)


@pytest.mark.parametrize("fill_at", ["close", "next_open"])
def test_paper_matches_a_backtest_of_its_bars_exactly_and_meets_the_slo(
    market: SimServer, tmp_path: Path, fill_at: str
) -> None:
    timing = ["--set", f'costs.fill_at="{fill_at}"']
    paper = tmp_path / "paper.db"
    result = invoke(*live_args("paper", paper, market.url, "--bars", str(BARS), *timing))
    assert result.exit_code == 0, result.output
    assert f"{BARS} new bars, {BARS} in all" in result.output
    assert (
        invoke("export", "--db", str(paper), "--out", str(tmp_path / "p"), "--bars").exit_code == 0
    )
    backtest = tmp_path / "bt.db"
    args = [
        "backtest",
        "--config",
        str(ROOT / "config.toml"),
        "--set",
        f'data.path="{tmp_path / "p" / "bars.parquet"}"',
        "--db",
        str(backtest),
        "--out",
        str(tmp_path / "bt"),
        "--quiet",
        "--set",
        "strategy.params.fast=10",
        "--set",
        "strategy.params.slow=30",
        *timing,
    ]
    assert invoke(*args).exit_code == 0
    fills = "SELECT ts_ms, side, qty_e8, price_e8, fee_e8, realised_e8 FROM fills ORDER BY fill_id"
    assert query(paper, fills) == query(backtest, fills)
    assert len(query(paper, fills)) > 10
    equity = "SELECT * FROM equity ORDER BY ts_ms"
    assert query(paper, equity) == query(backtest, equity)
    assert query(paper, "SELECT * FROM positions") == query(backtest, "SELECT * FROM positions")
    diff = invoke("diff", str(paper), str(backtest))
    assert "no divergence" in diff.output
    status = json.loads(invoke("status", "--db", str(paper), "--json").output)
    latency = status["telemetry"]["decision_latency_ms"]
    print(f"decision latency over {latency['n']} bars: {latency}")
    assert latency["n"] >= 1000
    assert latency["p95"] <= 50
    assert latency["p99"] <= 100
    stored = sorted(
        v for (v,) in query(paper, "SELECT value FROM metrics WHERE name = 'decision_latency_ms'")
    )
    assert stored[int(len(stored) * 0.95) - 1] <= 50


def _run_for(db_path: Path, url: str, seconds: str) -> list[str]:
    return live_args("paper", db_path, url, "--for", seconds)


def _until_every_bar(db: Path, url: str) -> None:
    """The cron command, run again until the market's bars are all in: a loaded machine
    catches up fewer bars per `--for` window, which must not change what the runs end with."""
    for _ in range(10):
        proc = njord_proc(*_run_for(db, url, "4s"), cwd=ROOT)
        _, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        if bars_in(db) == BARS:
            return
    raise AssertionError(f"{db}: {bars_in(db)} of {BARS} bars after 10 runs")


def test_sigkill_then_the_same_command_continues_to_the_same_end_state(
    market: SimServer, tmp_path: Path
) -> None:
    reference = tmp_path / "ref.db"
    _until_every_bar(reference, market.url)
    crashed = tmp_path / "crash.db"
    first = njord_proc(*_run_for(crashed, market.url, "60s"), cwd=ROOT)
    wait_rows(crashed, "SELECT 1 FROM equity LIMIT 1 OFFSET 100")
    first.send_signal(signal.SIGKILL)
    first.wait()
    done_at_kill = query(crashed, "SELECT count(*) FROM equity")[0][0]
    assert isinstance(done_at_kill, int)
    assert done_at_kill < BARS, "killed before the end"
    _until_every_bar(crashed, market.url)
    for sql in (
        "SELECT ts_ms FROM equity ORDER BY ts_ms",
        "SELECT * FROM fills ORDER BY fill_id",
        "SELECT client_order_id, status FROM orders ORDER BY intent_id",
        "SELECT * FROM account",
        "SELECT * FROM lots",
    ):
        assert query(crashed, sql) == query(reference, sql), sql
    ts = [t for (t,) in query(crashed, "SELECT ts_ms FROM equity ORDER BY ts_ms")]
    assert ts == [FIRST_BAR_MS + i * 60_000 for i in range(BARS)]  # no bar missed or doubled


def test_an_overlapping_cron_start_exits_75_at_once(market: SimServer, tmp_path: Path) -> None:
    path = tmp_path / "cron.db"
    first = njord_proc(*_run_for(path, market.url, "60s"), cwd=ROOT)
    wait_rows(path, "SELECT 1 FROM lease")
    started = time.monotonic()
    second = njord_proc(*_run_for(path, market.url, "60s"), cwd=ROOT)
    _, err = second.communicate(timeout=30)
    took = time.monotonic() - started
    assert second.returncode == 75, err
    assert f"leased by pid {first.pid}" in err
    # At once: while the first still runs, and without sitting out SQLite's busy timeout
    # (5 s) on its write lock; startup counted twice, for a loaded machine.
    assert first.poll() is None
    assert took < 5.0 + 2 * startup_s()
    wait_rows(path, f"SELECT 1 FROM equity LIMIT 1 OFFSET {BARS - 1}")
    first.send_signal(signal.SIGINT)
    assert first.wait(60) == 130, "the first session is unaffected: all bars, then stopped"
    assert query(path, "SELECT count(*) FROM equity") == [(BARS,)]


def test_sigterm_finishes_the_bar_commits_and_exits_130(tmp_path: Path) -> None:
    server = _sim(BARS)
    try:
        path = tmp_path / "term.db"
        proc = njord_proc(*_run_for(path, server.url, "60s"), cwd=ROOT)
        wait_rows(path, f"SELECT 1 FROM equity LIMIT 1 OFFSET {BARS - 1}")  # caught up, waiting
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 130
    finally:
        server.shutdown()
        server.server_close()
    assert query(path, "SELECT count(*) FROM lease") == [(0,)]
    assert query(path, "SELECT status FROM runs") == [("stopped",)]
    assert invoke("audit", str(path)).exit_code == 0


def test_shadow_proposes_and_blocks_but_sends_nothing(market: SimServer, tmp_path: Path) -> None:
    path = tmp_path / "shadow.db"
    args = live_args(
        "shadow", path, market.url, "--bars", str(BARS), "--set", "risk.daily_loss_limit=20"
    )
    assert invoke(*args).exit_code == 0
    status = json.loads(invoke("status", "--db", str(path), "--json").output)
    telemetry = status["telemetry"]
    assert telemetry["orders_proposed"] > 0
    assert telemetry["orders_blocked_risk"] > 0
    assert status["mode"] == "shadow"
    every = query(path, "SELECT count(*), count(reason) FROM intents")[0]
    assert every[0] == every[1] > 0  # every proposal has a verdict
    assert market.state.requests["POST /api/v3/order"] == 0
    assert sum(n for route, n in market.state.requests.items() if "/order" in route) == 0


def test_alerts_fire_once_per_episode(tmp_path: Path) -> None:
    outage_start = FIRST_BAR_MS + 60 * 60_000
    faults = FaultConfig(
        faults=[Fault(endpoint="GET /api/v3/klines", kind="500", every=1, count=3)],
        klines_outages=[Outage(start="2024-01-01T01:00:00", minutes=20)],
    )
    server = _sim(70, faults)  # the clock stands inside the outage: bars 01:00.. are late
    path = tmp_path / "alerts.db"
    try:
        proc = njord_proc(
            *live_args(
                "paper", path, server.url, "--for", "10s", "--set", "risk.daily_loss_limit=5"
            ),
            cwd=ROOT,
        )
        wait_rows(path, "SELECT 1 FROM alerts WHERE kind = 'bar_gap'")
        requests.post(f"{server.url}/sim/advance?minutes=60", timeout=5)  # the outage ends
        wait_rows(path, "SELECT 1 FROM alerts WHERE kind = 'bar_gap' AND cleared_ms IS NOT NULL")
        assert proc.wait(60) == 0
    finally:
        server.shutdown()
        server.server_close()
    kinds = [k for (k,) in query(path, "SELECT kind FROM alerts ORDER BY seq")]
    assert sorted(kinds) == ["bar_gap", "daily_loss_halt", "error_rate"], kinds
    logged = query(path, "SELECT msg FROM logs WHERE msg LIKE 'gap: no bar since%'")
    assert len(logged) == 1
    ts = [t for (t,) in query(path, "SELECT ts_ms FROM equity ORDER BY ts_ms")]
    assert outage_start in ts  # backfilled, not skipped


def test_a_strategy_that_raises_leaves_the_session_halted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "tests" / "e2e"))
    server = _sim(150)
    path = tmp_path / "raises.db"
    args = ["paper", "--db", str(path), "--poll-s", "0.01"]
    args += ["--set", f'venue.base_url="{server.url}"', "--set", 'data.start="2024-01-01T00:00"']
    args += ["--set", 'strategy.name="raising_strategy:RaiseOnce"']
    try:
        failed = invoke(*args, "--bars", "150")
        assert failed.exit_code == 1
        assert query(path, "SELECT status FROM runs") == [("failed",)]
        assert query(path, "SELECT bars FROM account") == [(100,)]  # the failing bar rolled back
        posted = query(path, "SELECT command, posted_by, reason, applied_ms FROM controls")
        assert len(posted) == 1
        command, by, reason, applied = posted[0]
        assert (command, str(by).split("@")[0], applied) == ("halt", "njord", None)
        assert str(reason).startswith("strategy raised in on_bar at bar 2024-01-01 01:40")

        again = invoke(*args, "--bars", "50")  # the fault was transient; the halt is not
        assert again.exit_code == 0, again.output
    finally:
        server.shutdown()
        server.server_close()
    assert query(path, "SELECT state, changed_by FROM trading_state")[0][0] == "HALTED"
    after = query(path, "SELECT DISTINCT reason FROM intents WHERE bar_ts_ms >= 1704073200000")
    assert after == [("HALTED",)]  # from the 101st bar on, nothing passes
    assert query(path, "SELECT count(*) FROM orders WHERE created_ms >= 1704073200000") == [(0,)]


def test_a_resumed_session_waiting_for_bars_is_running_and_keeps_its_lease_alive(
    tmp_path: Path,
) -> None:
    """A writer on another host judges a lease by its heartbeat: waiting is not dying."""
    server = _sim(40)  # 40 closed bars, then the clock stands still
    path = tmp_path / "idle.db"
    args = ["paper", "--db", str(path), "--poll-s", "0.05", "--set", "store.lease_timeout_s=0.6"]
    args += ["--set", f'venue.base_url="{server.url}"', "--set", 'data.start="2024-01-01T00:00"']
    assert invoke(*args, "--bars", "20").exit_code == 0  # a first run, stopped
    assert query(path, "SELECT status FROM runs") == [("stopped",)]
    proc = njord_proc(*args, cwd=tmp_path)  # the next start resumes it and then waits
    try:
        wait_rows(path, "SELECT 1 FROM account WHERE bars = 40")
        assert query(path, "SELECT status, ended_ms FROM runs") == [("running", None)]
        (first,) = query(path, "SELECT heartbeat_ms FROM lease")[0]
        time.sleep(1.0)
        (later,) = query(path, "SELECT heartbeat_ms FROM lease")[0]
        assert int(str(later)) - int(str(first)) >= 500  # a beat every 0.2 s while idle
        assert query(path, "SELECT bars FROM account") == [(40,)]
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        server.shutdown()
        server.server_close()
    assert proc.returncode == 130
