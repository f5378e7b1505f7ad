"""`njord tui DB`: the session dashboard.

Reads through its own read-only connection and re-reads only when `PRAGMA data_version`
says another connection committed, so it never blocks or slows the writer. Controls go
through the same API as `njord halt|reduce|flatten|resume`.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Header, Sparkline, Static

from njord.store import db, reads

STATE_COLOURS = {"ACTIVE": "green", "REDUCING": "yellow", "HALTED": "red"}
CONTROLS = {
    "halt": "Halt: no new orders, resting orders canceled, until an explicit resume?",
    "reduce": "Reduce: only orders that shrink exposure pass?",
    "flatten": "Flatten: close every position through the normal path, then halt?",
    "resume": "Resume: return the session to ACTIVE trading?",
}


def utc(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "-"
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M")


class Confirm(ModalScreen[bool]):
    """Every control asks first: y / enter to confirm, n / escape to cancel."""

    BINDINGS: ClassVar = [("y", "answer(True)", "yes"), ("n,escape", "answer(False)", "no")]

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical(id="dialog"):
            yield Static(self.question, id="question")
            with Horizontal():
                yield Button("Yes (y)", id="yes", variant="error")
                yield Button("No (n)", id="no")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")

    def action_answer(self, yes: bool) -> None:
        self.dismiss(yes)


class Help(ModalScreen[None]):
    BINDINGS: ClassVar = [("escape,q,question_mark", "app.pop_screen", "close")]

    def compose(self) -> ComposeResult:
        yield Static(
            "njord tui: watches a session db; the session runs elsewhere.\n\n"
            "h halt   r reduce   f flatten   u resume (each asks first)\n"
            "t dark/light theme   ? this help   q quit (never touches the session)\n\n"
            "The screen follows the db: it re-reads when another process commits.",
            id="help",
        )


class NjordApp(App[None]):
    CSS = """
    #top { height: 4; }
    #state { width: 14; content-align: center middle; text-style: bold; }
    #facts { width: 1fr; }
    Sparkline { height: 4; margin: 0 1; }
    DataTable { height: 1fr; }
    #tables { height: 1fr; }
    #dialog { width: 60; height: 11; border: thick $accent; background: $surface;
              padding: 1 2; }
    #question { height: 3; }
    #dialog Horizontal { height: 3; align: center middle; }
    Confirm, Help { align: center middle; }
    #help { width: 70; height: 10; border: thick $accent; background: $surface; padding: 1; }
    """
    BINDINGS: ClassVar = [
        Binding("h", "control('halt')", "halt"),
        Binding("r", "control('reduce')", "reduce"),
        Binding("f", "control('flatten')", "flatten"),
        Binding("u", "control('resume')", "resume"),
        Binding("t", "toggle_dark", "theme"),
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(self, db_path: Path, *, poll_s: float = 0.2) -> None:
        super().__init__()
        self.db_path = db_path
        self.poll_s = poll_s
        self.conn = db.open_reader(db_path)
        self._version = -1
        self.facts: dict[str, Any] = {}

    def compose(self) -> ComposeResult:
        yield Header(show_clock=True)
        with Horizontal(id="top"):
            yield Static(id="state")
            yield Static(id="facts")
        yield Sparkline([], id="equity")
        with Horizontal(id="tables"):
            yield DataTable(id="positions", cursor_type="none")
            yield DataTable(id="fills", cursor_type="none")
            yield DataTable(id="verdicts", cursor_type="none")
        yield Static(id="footer-facts")
        yield Footer()

    def on_mount(self) -> None:
        self.title = f"njord {self.db_path}"
        self.query_one("#positions", DataTable).add_columns("symbol", "qty", "uPnL")
        self.query_one("#fills", DataTable).add_columns("fill", "side", "price")
        self.query_one("#verdicts", DataTable).add_columns("bar", "verdict")
        self.refresh_if_changed()
        self.set_interval(self.poll_s, self.refresh_if_changed)

    def refresh_if_changed(self) -> None:
        version = int(reads.one(self.conn, "PRAGMA data_version")[0])
        if version == self._version:
            return
        self._version = version
        self.facts = reads.dashboard(self.conn)
        self.render_facts()

    def render_facts(self) -> None:
        f = self.facts
        state = f["trading"]["state"]
        self.query_one("#state", Static).update(
            f"[{STATE_COLOURS.get(state, 'white')}]{state}[/]\n{f['mode']}"
        )
        lease = f["lease"]
        writer = (
            f"pid {lease['pid']} beat {(time.time() * 1000 - lease['heartbeat_ms']) / 1000:.0f}s"
            if lease
            else "none"
        )
        self.query_one("#facts", Static).update(
            f"run {f['run_id']}\n"
            f"bars {f['bars']:,}  last bar {utc(f['last_bar_ms'])}\n"
            f"equity {f['equity'] or 0:,.2f}  realised {f['realised_pnl'] or 0:,.2f}\n"
            f"fees {f['fees'] or 0:,.2f}  writer {writer}"
        )
        self.query_one("#equity", Sparkline).data = f["equity_series"] or [0.0]
        positions = [
            (p["symbol"], f"{p['qty']:.4f}", f"{p['unrealised']:,.0f}") for p in f["positions"]
        ]
        self._fill("#positions", positions)
        fills = [(utc(x["ts_ms"])[11:], x["side"], f"{x['price']:,.2f}") for x in f["fills"]]
        self._fill("#fills", fills)
        verdicts = [(utc(v["ts_ms"])[11:], f"{v['side']} {v['reason']}") for v in f["verdicts"]]
        self._fill("#verdicts", verdicts)
        telemetry = f["telemetry"]
        latency = telemetry.get("decision_latency_ms", {})
        alerts = [a["kind"] for a in f["alerts"] if a["cleared_ms"] is None]
        blocks = ", ".join(f"{k}={v}" for k, v in f["risk"]["blocks"].items()) or "none"
        self.query_one("#footer-facts", Static).update(
            f"open orders {len(f['open_orders'])}  blocks {blocks}  "
            f"latency p95 {latency.get('p95', '-')} ms  alerts {', '.join(alerts) or 'none'}"
        )

    def _fill(self, selector: str, rows: Sequence[Sequence[Any]]) -> None:
        table = self.query_one(selector, DataTable)
        table.clear()
        table.add_rows(rows)

    def action_control(self, command: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.post(command)

        self.push_screen(Confirm(CONTROLS[command]), answered)

    def post(self, command: str) -> None:
        writer = db.open_writer(self.db_path, create=False)
        try:
            seq = reads.post_control(
                writer, command, "from the TUI", wall_ms=time.time_ns() // 1_000_000
            )
        finally:
            writer.close()
        self.notify(f"{command} posted (control #{seq}); the session applies it next")

    def action_help(self) -> None:
        self.push_screen(Help())

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def on_unmount(self) -> None:
        self.conn.close()
