"""`njord tui --config C --mode M`: the app runs the session's bar loop in a worker thread
and shows it on the same screens as a watched db."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest
from textual.widgets import Static

from njord import config as configuration
from njord import launch, sim
from njord.errors import Interrupted
from njord.tui.app import NjordApp
from njord.tui.dashboard import Dashboard
from njord.tui.dialogs import Confirm
from tests.conftest import ROOT, SAMPLE, invoke, njord_proc, query, wait_rows
from tests.sim.conftest import FIRST_BAR_MS


def load(*sets: str) -> configuration.Config:
    return configuration.load(
        file=ROOT / "config.toml", env={}, sets=sets, env_prefix="NJORD_"
    ).config


def text(app: NjordApp, selector: str) -> str:
    return str(app.dashboard.query_one(selector, Static).render())


async def until(pilot: object, condition: Callable[[], bool], seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "not in time"
        await pilot.pause(0.05)  # type: ignore[attr-defined]


def test_a_driven_backtest_halts_on_command_and_quitting_stops_it_cleanly(
    tmp_path: Path, sample_week: Path
) -> None:
    path = tmp_path / "driven.db"
    config = load(f'data.path="{sample_week}"', "strategy.params.fast=2", "strategy.params.slow=4")
    run = launch.backtest(
        config, env_prefix="NJORD_", db_path=path, out_dir=tmp_path / "out", pace_ms=20, echo=False
    )

    async def drive() -> NjordApp:
        app = NjordApp(path, poll_s=0.1, session=run)
        async with app.run_test(size=(80, 24)) as pilot:
            assert isinstance(app.screen, Dashboard)  # the screen a watcher sees
            await until(
                pilot,
                lambda: "bars " in text(app, "#facts") and "bars 0 " not in text(app, "#facts"),
                5,
            )
            assert f"writer pid {os.getpid()} alive" in text(app, "#facts")
            first = text(app, "#facts")
            await until(pilot, lambda: text(app, "#facts") != first, 1)  # follows its commits
            await pilot.press("h", "y")
            posted = time.monotonic()
            await until(pilot, lambda: "HALTED" in text(app, "#state"), 1)
            print(f"HALTED on screen {time.monotonic() - posted:.2f}s after the keypress")
            await pilot.press("q")
            await pilot.pause()
            assert isinstance(app.screen, Confirm)  # quitting asks first
            await pilot.press("n")
            await pilot.pause()
            assert app.running
            await pilot.press("q", "y")
            await until(pilot, lambda: not app.running, 5)
        return app

    app = asyncio.run(drive())
    assert isinstance(app.outcome, Interrupted)
    bars = query(path, "SELECT bars FROM account")[0][0]
    assert 0 < bars < 4320  # stopped mid-way, on a bar boundary
    assert query(path, "SELECT status FROM runs") == [("stopped",)]
    assert query(path, "SELECT count(*) FROM lease") == [(0,)]  # released
    assert query(path, "SELECT state FROM trading_state") == [("HALTED",)]
    assert query(path, "SELECT count(*) FROM equity") == [(bars,)]  # every bar whole

    carried = invoke("continue", str(path), "--quiet", "--out", str(tmp_path / "out"))
    assert carried.exit_code == 0, carried.output
    assert query(path, "SELECT bars, (SELECT status FROM runs) FROM account") == [
        (4320, "finished")
    ]


def test_a_driven_backtest_that_ends_writes_its_results_and_quits_without_asking(
    tmp_path: Path, sample_week: Path
) -> None:
    path = tmp_path / "whole.db"
    config = load(f'data.path="{sample_week}"')
    run = launch.backtest(
        config, env_prefix="NJORD_", db_path=path, out_dir=tmp_path / "out", echo=False
    )

    async def drive() -> NjordApp:
        app = NjordApp(path, poll_s=0.1, session=run)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: not app.running, 60)
            await pilot.pause()
            assert "bars 4,320" in text(app, "#facts")
            assert "writer none (finished)" in text(app, "#facts")
            await pilot.press("q")
            await pilot.pause()
        return app

    app = asyncio.run(drive())
    assert app.outcome is None
    assert app.results is not None
    assert app.results.reconciliation["difference_e8"] == 0
    assert (tmp_path / "out" / "report.html").exists()
    assert (tmp_path / "out" / "fills.csv").exists()


def test_a_driven_paper_session_waits_for_bars_and_stops_on_quit(tmp_path: Path) -> None:
    server = sim.build(
        SAMPLE, speed=0, start_ms=FIRST_BAR_MS + 90 * 60_000, balances={"USDT": Decimal(10_000)}
    )
    server.start_in_thread()
    path = tmp_path / "paper.db"
    config = load(
        f'venue.base_url="{server.url}"',
        'data.start="2024-01-01T00:00"',
        "strategy.params.fast=10",
        "strategy.params.slow=30",
    )
    try:
        run = launch.live(
            config, path, mode="paper", max_bars=None, deadline=None, poll_s=0.05, echo=False
        )

        async def drive() -> NjordApp:
            app = NjordApp(path, poll_s=0.1, session=run)
            async with app.run_test(size=(120, 40)) as pilot:
                await until(pilot, lambda: "bars 90 " in text(app, "#facts"), 30)
                assert "paper" in text(app, "#state")
                assert "lag " in text(app, "#facts")  # live modes show how late the bar is
                await pilot.press("q", "y")  # the feed is waiting: the stop lands between bars
                stopping = time.monotonic()
                await until(pilot, lambda: not app.running, 2)
                print(f"stopped {time.monotonic() - stopping:.2f}s after the answer")
            return app

        app = asyncio.run(drive())
    finally:
        server.shutdown()
        server.server_close()
    assert isinstance(app.outcome, Interrupted)
    assert query(path, "SELECT bars FROM account") == [(90,)]
    assert query(path, "SELECT count(*) FROM lease") == [(0,)]
    assert query(path, "SELECT mode, status FROM runs") == [("paper", "stopped")]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["x.db", "--mode", "backtest"], "not both"),
        (["x.db", "--bars", "5"], "--bars and --for limit a session the TUI drives"),
        (["--mode", "backtest", "--db", "x.db", "--for", "5m"], "a backtest takes data.start"),
        (["--mode", "paper", "--db", "x.db", "--bars", "0"], "--bars must be >= 1"),
        (["--mode", "paper", "--db", "x.db", "--for", "5x"], "--for takes a duration"),
        (["--db", "x.db", "--set", 'runtime.mode="live"'], "drives backtest, shadow and paper"),
    ],
)
def test_bad_tui_arguments_are_one_line_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("tui", *args, "--set", f'data.path="{SAMPLE}"')
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "x.db").exists()


def test_sigterm_to_a_driving_tui_finishes_the_bar_and_exits_130(
    tmp_path: Path, sample_week: Path
) -> None:
    path = tmp_path / "term.db"
    args = ["tui", "--config", str(ROOT / "config.toml"), "--mode", "backtest", "--db", str(path)]
    args += ["--set", f'data.path="{sample_week}"', "--pace-ms", "20"]
    proc = njord_proc(*args, cwd=tmp_path)
    wait_rows(path, "SELECT 1 FROM equity LIMIT 1 OFFSET 5")  # the session is under way
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130
    assert err.rstrip().endswith("stopped on request; state committed to the last bar")
    assert query(path, "SELECT status FROM runs") == [("stopped",)]
    assert query(path, "SELECT count(*) FROM lease") == [(0,)]
    done = query(path, "SELECT bars FROM account")[0][0]
    assert query(path, "SELECT count(*) FROM equity") == [(done,)]


def test_sigterm_after_the_driven_session_ended_quits_the_app(
    tmp_path: Path, sample_week: Path
) -> None:
    path = tmp_path / "ended.db"
    args = ["tui", "--config", str(ROOT / "config.toml"), "--mode", "backtest", "--db", str(path)]
    args += ["--set", f'data.path="{sample_week}"', "--set", 'data.end="2024-01-01T06:00"']
    proc = njord_proc(*args, cwd=tmp_path)
    # Wrapped up: finished, results written, lease released; the app only shows it now.
    wait_rows(path, "SELECT 1 FROM runs WHERE status = 'finished'", timeout=60)
    wait_rows(path, "SELECT 1 WHERE NOT EXISTS (SELECT 1 FROM lease)", timeout=60)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert "session db:" in out
    assert query(path, "SELECT status FROM runs") == [("finished",)]


def test_a_driving_tui_follows_the_event_bus_not_its_poll(
    tmp_path: Path, sample_week: Path
) -> None:
    """The driver subscribes to the session's EventBus: with a poll far too slow to matter,
    each commit and the applied halt still reach the screen at once."""
    path = tmp_path / "driven.db"
    config = load(f'data.path="{sample_week}"')
    run = launch.backtest(
        config, env_prefix="NJORD_", db_path=path, out_dir=tmp_path / "out", pace_ms=20, echo=False
    )

    async def drive() -> NjordApp:
        app = NjordApp(path, poll_s=60, session=run)  # the poll never fires in this test
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: "bars 0 " not in text(app, "#facts"), 5)
            first = text(app, "#facts")
            await until(pilot, lambda: text(app, "#facts") != first, 1)
            await pilot.press("h", "y")
            await until(pilot, lambda: "HALTED" in text(app, "#state"), 1)
            shown = [n.message for n in app._notifications]
            assert any(m.startswith("halt applied (control #") for m in shown), shown
            await pilot.press("q", "y")
            await until(pilot, lambda: not app.running, 5)
        return app

    app = asyncio.run(drive())
    assert isinstance(app.outcome, Interrupted)


def test_the_reload_key_swaps_a_driven_sessions_params_at_its_next_bar(
    tmp_path: Path, sample_week: Path
) -> None:
    path = tmp_path / "driven.db"
    data = f'data.path="{sample_week}"'
    config = load(data, "strategy.params.fast=2", "strategy.params.slow=4")
    run = launch.backtest(
        config, env_prefix="NJORD_", db_path=path, out_dir=tmp_path / "out", pace_ms=20, echo=False
    )
    # What `njord tui --config C` re-reads on `l`: the file as it is now, fast changed.
    edited = lambda: load(data, "strategy.params.fast=3", "strategy.params.slow=4")  # noqa: E731

    async def drive() -> None:
        app = NjordApp(path, poll_s=0.1, session=run, config=edited)
        async with app.run_test(size=(80, 24)) as pilot:
            await until(pilot, lambda: "bars 0 " not in text(app, "#facts"), 5)
            await pilot.press("l")
            await pilot.pause()
            assert isinstance(app.screen, Confirm)  # reloading asks first
            await pilot.press("y")
            applied = "SELECT version FROM controls WHERE command = 'reload' AND applied_ms > 0"
            await until(pilot, lambda: bool(query(path, applied)), 5)
            await pilot.press("q", "y")
            await until(pilot, lambda: not app.running, 5)

    asyncio.run(drive())
    (params,) = query(path, "SELECT params FROM strategy_versions")[0]
    assert params == '{"fast":3,"slow":4}'
    assert invoke("verify", str(path)).exit_code == 0
