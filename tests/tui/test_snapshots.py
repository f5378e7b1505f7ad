"""Snapshots of the dashboard (pytest-textual-snapshot): what an operator sees, pinned.

The db is a real backtest's, opened by a relative path and with a fixed run id: a run id
carries the wall-clock start and the code's git state, which differ on every machine.
Update after an intended change with `pytest tests/tui/test_snapshots.py --snapshot-update`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import apsw
import pytest

from njord.tui.app import NjordApp


@pytest.fixture
def pinned(halted: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    conn = apsw.Connection(str(halted))
    with conn:
        conn.execute("UPDATE runs SET run_id = 'backtest-snapshot'")
    conn.close()
    monkeypatch.chdir(halted.parent)
    return Path(halted.name)


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_dashboard(pinned: Path, size: tuple[int, int], snap_compare: Any) -> None:
    assert snap_compare(NjordApp(pinned), terminal_size=size)


def test_browse_verdicts(pinned: Path, snap_compare: Any) -> None:
    assert snap_compare(NjordApp(pinned), press=["b", "3"], terminal_size=(80, 24))
