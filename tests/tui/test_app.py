"""The real Textual app under Pilot, on real session dbs."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import apsw
import pytest
from textual.widgets import DataTable, Static

from njord.store import db
from njord.tui.app import NjordApp
from njord.tui.dialogs import Confirm
from njord.tui.picker import PickerApp
from tests.conftest import (
    ROOT,
    SAMPLE,
    backtest_args,
    invoke,
    njord_proc,
    user_strategies_env,
    wait_rows,
)


def text(app: NjordApp | PickerApp, selector: str) -> str:
    """From the app's base screen: a confirmation dialog may be on top while we poll."""
    return str(app.screen_stack[0].query_one(selector, Static).render())


def controls(path: Path) -> list[tuple[object, ...]]:
    conn = db.open_reader(path)
    try:
        return [tuple(r) for r in conn.execute("SELECT command, posted_by FROM controls")]
    finally:
        conn.close()


def test_dashboard_shows_a_finished_backtest_at_80x24(finished: Path) -> None:
    async def run() -> None:
        app = NjordApp(finished)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert text(app, "#state") == "ACTIVE\nbacktest"
            facts = text(app, "#facts")
            assert "bars 4,320" in facts
            assert "last bar 2024-01-03 23:59" in facts
            assert "equity " in facts
            assert app.query_one("#fills", DataTable).row_count > 0
            assert "drawdown " in facts
            assert "(max " in facts
            assert "writer none (finished)" in facts
            assert app.query_one("#positions", DataTable).row_count == 1
            assert app.query_one("#orders", DataTable).row_count == 0
            assert "decision latency" in text(app, "#summary")
            assert app.curve.last_ms == 1704326340000  # the whole curve, read once
            assert len(app.curve.values) == 4320

    asyncio.run(run())


def test_the_sparkline_has_a_point_per_bar_of_the_main_timeframe(
    tmp_path: Path, sample_week: Path, user_strategies: None
) -> None:
    path = tmp_path / "h.db"
    args = backtest_args(sample_week, path, "--no-report")
    assert invoke(*args, "--set", 'strategy.name="user_strategies:Hourly"').exit_code == 0
    conn = db.open_reader(path)
    try:  # the equity at each hour's last minute: what the hourly strategy saw
        want = [
            e / 1e8
            for (e,) in conn.execute(
                "SELECT equity_e8 FROM equity WHERE ts_ms % 3600000 = 3540000 ORDER BY ts_ms"
            )
        ]
    finally:
        conn.close()

    async def run() -> None:
        app = NjordApp(path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert list(app.curve.values) == want
            assert len(want) == 3 * 24

    asyncio.run(run())


def test_controls_ask_first(finished: Path) -> None:
    async def run() -> None:
        app = NjordApp(finished)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press("h", "n")  # asked, declined: nothing happens
            await pilot.pause()
            assert controls(finished) == []
            await pilot.press("l")  # a watched session's config is not the TUI's to read
            await pilot.pause()
            assert not isinstance(app.screen, Confirm)
            assert controls(finished) == []
            await pilot.press("question_mark")
            await pilot.pause()
            assert "h halt" in str(app.screen.query_one("#help", Static).render())

    asyncio.run(run())


def test_screen_follows_a_writer_and_halt_takes_effect_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "live.db"
    args = [
        *backtest_args(SAMPLE, path, "--no-report"),
        "--pace-ms",
        "50",
        "--set",
        'strategy.name="user_strategies:EveryBar"',
    ]
    writer = njord_proc(*args, cwd=ROOT, env=user_strategies_env())

    async def run() -> None:
        wait_rows(path, "SELECT 1 FROM equity LIMIT 1 OFFSET 2")  # 3 bars committed
        app = NjordApp(path, poll_s=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause()
            first = text(app, "#facts")
            await _until(pilot, lambda: text(app, "#facts") != first, 1.0)  # follows commits
            await pilot.press("h", "y")
            posted = time.monotonic()
            await _until(pilot, lambda: "HALTED" in text(app, "#state"), 1.0)
            print(f"HALTED on screen {time.monotonic() - posted:.2f}s after the keypress")
        conn = db.open_reader(path)
        state = conn.execute("SELECT state FROM trading_state").fetchone()
        latency = conn.execute("SELECT applied_ms - posted_ms FROM controls").fetchone()
        conn.close()
        assert state == ("HALTED",)
        assert latency[0] < 1000

    try:
        asyncio.run(run())
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()


def test_quitting_while_a_writer_commits_fast_never_raises(tmp_path: Path) -> None:
    """Textual removes the screens before it stops the timers: polls must not land there."""
    path = tmp_path / "busy.db"
    writer = njord_proc(*backtest_args(SAMPLE, path, "--no-report", "--pace-ms", "2"), cwd=ROOT)

    async def open_and_quit() -> None:
        app = NjordApp(path, poll_s=0.005)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.05)

    try:
        wait_rows(path, "SELECT 1 FROM equity LIMIT 1 OFFSET 2")
        for _ in range(12):
            asyncio.run(open_and_quit())
    finally:
        writer.send_signal(signal.SIGKILL)
        writer.wait()


async def _until(pilot: object, condition: object, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "the screen did not change in time"
        await pilot.pause(0.05)  # type: ignore[attr-defined]


@pytest.mark.parametrize("kind", ["missing", "not-sqlite", "foreign"])
def test_bad_paths_exit_2_without_a_traceback(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "x.db"
    if kind == "not-sqlite":
        path.write_text("hello")
    elif kind == "foreign":
        apsw.Connection(str(path)).execute("CREATE TABLE t (x)")
    result = invoke("tui", str(path))
    assert result.exit_code == 2
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_picker_lists_session_dbs_and_refuses_a_bad_path(tmp_path: Path, finished: Path) -> None:
    from textual.widgets import Input

    (tmp_path / "not-a-session.db").write_text("hello")

    async def run() -> Path | None:
        app = PickerApp(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.query_one(DataTable).row_count == 1  # the junk file is not offered
            app.query_one(Input).value = str(tmp_path / "not-a-session.db")
            await pilot.press("tab", "enter")
            await pilot.pause()
            assert "not a SQLite database" in text(app, "#error")
            app.query_one(DataTable).focus()
            await pilot.press("enter")
            await pilot.pause()
        return app.return_value

    assert asyncio.run(run()) == finished


def test_dashboard_shows_each_sleeve_and_symbol_at_80x24(tmp_path: Path) -> None:
    eth = ROOT / "sample_data" / "ETHUSDT-1m-2024-01.parquet"
    sleeves = "".join(
        f'[[strategies]]\nid = "{sid}"\nname = "sma_crossover"\nsymbols = ["{symbol}"]\n'
        "allocation = 0.5\nparams = { fast = 10, slow = 30, fraction = 0.8 }\n"
        for sid, symbol in (("trend_btc", "BTCUSDT"), ("trend_eth", "ETHUSDT"))
    )
    config = tmp_path / "two.toml"
    config.write_text(
        f'[data]\nend = "2024-01-02"\n[data.paths]\nBTCUSDT = "{SAMPLE}"\nETHUSDT = "{eth}"\n'
        '[risk]\nallowed_symbols = ["BTCUSDT", "ETHUSDT"]\nmax_open_positions = 2\n' + sleeves
    )
    path = tmp_path / "two.db"
    args = ["backtest", "--config", str(config), "--db", str(path), "--quiet", "--no-report"]
    assert invoke(*args, "--out", str(tmp_path / "out")).exit_code == 0

    async def run() -> None:
        app = NjordApp(path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            table = app.query_one("#sleeves", DataTable)
            assert table.display
            assert table.row_count == 2
            rows = [table.get_row_at(i) for i in range(2)]
            assert [r[0] for r in rows] == ["trend_btc", "trend_eth"]
            assert all("ACTIVE" in str(r[1]) for r in rows)
            assert all(str(r[3]).split()[1] in ("BTCUSDT", "ETHUSDT") for r in rows)
            assert table.region.height > 0  # on screen at 80x24
            positions = app.query_one("#positions", DataTable)
            assert positions.region.height > 0

    asyncio.run(run())
