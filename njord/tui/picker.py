"""`njord tui` without a db: pick a session under runs/ (or type a path)."""

from __future__ import annotations

from pathlib import Path
from typing import ClassVar

from textual.app import App, ComposeResult
from textual.widgets import DataTable, Footer, Header, Input, Static

from njord.errors import NjordError
from njord.store import db, reads
from njord.tui.dashboard import utc


def session_dbs(root: Path) -> list[Path]:
    """Session dbs below `root`, newest first (by modification time, then name)."""
    found = [p for p in root.rglob("*.db") if p.is_file()] if root.is_dir() else []
    return sorted(found, key=lambda p: (-p.stat().st_mtime, str(p)))


class PickerApp(App[Path]):
    """Returns the chosen db path (or None on quit)."""

    BINDINGS: ClassVar = [("q", "quit", "quit")]

    def __init__(self, root: Path = Path("runs")) -> None:
        super().__init__()
        self.root = root
        self.paths: list[Path] = []

    def on_load(self) -> None:
        self.title = "njord: pick a session"

    def compose(self) -> ComposeResult:
        yield Header()
        yield Static(f"Session dbs under {self.root}/ (enter opens one)", id="hint")
        yield DataTable(id="sessions", cursor_type="row")
        yield Input(placeholder="or type a path to a session db and press enter", id="path")
        yield Static(id="error")
        yield Footer()

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.add_columns("mode", "run", "state", "bars", "last bar", f"db under {self.root}/")
        for path in session_dbs(self.root):
            try:
                conn = db.open_reader(path)
            except NjordError:
                continue  # not a session db: not offered
            try:
                facts = reads.overview(conn)
            finally:
                conn.close()
            self.paths.append(path)
            table.add_row(
                facts.mode,
                facts.run_status,
                facts.trading.state,
                f"{facts.bars:,}",
                utc(facts.last_bar_ms),
                str(path.relative_to(self.root)),
            )
        if not self.paths:
            self.query_one("#hint", Static).update(f"No session dbs under {self.root}/")

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        self.exit(self.paths[event.cursor_row])

    def on_input_submitted(self, event: Input.Submitted) -> None:
        path = Path(event.value.strip())
        try:
            db.check_file(path)
            db.open_reader(path).close()
        except NjordError as e:
            self.query_one("#error", Static).update(f"[red]{e}[/]")
            return
        self.exit(path)
