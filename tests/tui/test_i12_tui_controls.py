"""Issue 12 items 2-3 from the TUI: its keys post through the same path as `njord flatten`."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

from njord.tui.app import NjordApp
from tests.conftest import query
from tests.e2e.test_i12_controls import stopped_session


def _press(db_path: Path, *keys: str) -> None:
    async def run() -> None:
        app = NjordApp(db_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.press(*keys)
            await pilot.pause()

    asyncio.run(run())


def test_i12_03_tui_flatten_on_a_finished_session_is_refused(finished: Path) -> None:
    # Before: posted, and "the session applies it next", which no session ever would.
    _press(finished, "f", "y")
    assert query(finished, "SELECT count(*) FROM controls") == [(0,)]


def test_tui_flatten_on_a_stopped_session_is_posted_for_its_next_run(tmp_path: Path) -> None:
    db_path = stopped_session(tmp_path)
    _press(db_path, "f", "y")
    posted = query(db_path, "SELECT command, reason, posted_by, applied_ms FROM controls")
    assert posted == [("flatten", "from the TUI", f"operator@{socket.gethostname()}", None)]
