"""`njord tui`: watch a session db, or drive a session in-process, on the same screens.

The screens read through their own read-only connection and re-read only when the db's
data version (`reads.data_version`) says a commit landed, so they never block or slow the writer —
whether that writer is another process or the worker thread this app started. Controls go
through the same API as `njord halt|reduce|flatten|resume` (and `l`, a driven session's
reload, as `njord reload`).
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen

from njord import controls, launch
from njord.config import Config
from njord.core.time import timeframe_ms
from njord.errors import NjordError
from njord.events import BarsCommitted, ControlApplied, Event, TradingStateChanged
from njord.loop import Stop
from njord.reload import reload
from njord.store import controls as control_queue
from njord.store import db, reads
from njord.tui.browse import Browse
from njord.tui.dashboard import Dashboard, EquityCurve
from njord.tui.dialogs import DRIVE_HELP, WATCH_HELP, Confirm, Help

CONTROLS = {
    "halt": "Halt: no new orders, resting orders canceled, until an explicit resume?",
    "reduce": "Reduce: only orders that shrink exposure pass?",
    "flatten": "Flatten: close every position through the normal path, then halt?",
    "resume": "Resume: return the session to ACTIVE trading?",
}
RELOAD_QUESTION = (
    "Reload: swap the strategy for its code and its params in the config file as they "
    "are now, at the next bar?"
)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGHUP, signal.SIGINT)
STOP_QUESTION = (
    "Stop the session and quit? It finishes the current bar, commits it and releases "
    "the lease; `njord continue` carries it on later."
)


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


class Committed(Message):
    """A driven session committed something worth showing now (posted from its thread)."""

    def __init__(self, event: Event) -> None:
        super().__init__()
        self.event = event


class NjordApp(App[None]):
    ENABLE_COMMAND_PALETTE = False  # its footer hint would crowd out the controls at 80x24
    CSS = """
    #dialog { width: 64; height: 12; border: thick $accent; background: $surface;
              padding: 1 2; }
    #question { height: 4; }
    #dialog Horizontal { height: 3; align: center middle; }
    Confirm, Help { align: center middle; }
    #help { width: 78; height: 11; border: thick $accent; background: $surface; padding: 0 1; }
    """
    BINDINGS: ClassVar = [
        Binding("h", "control('halt')", "halt"),
        Binding("r", "control('reduce')", "reduce"),
        Binding("f", "control('flatten')", "flatten"),
        Binding("u", "control('resume')", "resume"),
        Binding("l", "reload", "reload", show=False),  # in ? help; the footer is full
        Binding("b", "browse", "browse"),
        Binding("t", "toggle_dark", "theme", show=False),  # in ? help; the footer is full
        Binding("question_mark", "help", "help"),
        Binding("q", "quit", "quit"),
    ]

    def __init__(
        self,
        db_path: Path,
        *,
        poll_s: float = 0.2,
        session: launch.Launch | None = None,
        config: Callable[[], Config] | None = None,
    ) -> None:
        """With `session`, this app runs it (in a worker thread) and shows its db;
        `config` reads the session's config file again (the `l` key's reload)."""
        super().__init__()
        self.db_path = db_path
        self.config = config
        self.poll_s = poll_s
        self.session = session
        self.stop = Stop()
        self.conn = db.open_reader(db_path)
        self._version = -1
        self.facts: reads.Dashboard | None = None
        self.curve = EquityCurve()
        self._point_ms: int | None = None  # the sparkline's step: the main timeframe's bars
        self.running = session is not None
        self.quitting = False
        self.outcome: BaseException | None = None  # why the session or the screens ended
        self.results: launch.Results | None = None  # a driven backtest's wrap-up

    def get_default_screen(self) -> Screen[Any]:
        return Dashboard()

    @property
    def dashboard(self) -> Dashboard:
        screen = self.screen_stack[0]
        assert isinstance(screen, Dashboard)
        return screen

    def on_mount(self) -> None:
        # The path is what tells sessions apart; it must fit an 80-column header.
        self.title = str(self.db_path)
        self.sub_title = "driving" if self.session else "watching"
        # The dashboard's widgets exist only once its screen has mounted.
        self.call_after_refresh(self.start)

    def start(self) -> None:
        self.refresh_if_changed()
        self.set_interval(self.poll_s, self.refresh_if_changed)
        self.set_interval(1.0, self.tick)
        if self.session is not None:
            # SIGTERM, SIGHUP (the terminal went away), SIGINT: as `q` + yes, without
            # asking. Through the event loop, so the handler may touch the app.
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.add_signal_handler(sig, self.request_stop)
            self.drive()

    def refresh_if_changed(self) -> None:
        # Shutting down, the app removes its screens before it stops its timers: a poll in
        # between would find the dashboard's widgets gone.
        if not self.is_running:
            return
        try:
            self.read_if_changed()
        except NjordError as e:  # the file went bad under the screens (corrupt, vanished)
            if self.session is None:
                self.outcome = e  # watching: `njord tui` says it in one line
                self.exit()
            else:
                self.notify(str(e), severity="error", timeout=30)

    def read_if_changed(self) -> None:
        version = reads.data_version(self.conn)
        if version == self._version:
            return
        self._version = version
        # Enough recent rows to fill the tables at any terminal height, never more.
        rows = max(8, self.size.height - 12)
        self.facts = facts = reads.dashboard(self.conn, after_ms=self.curve.last_ms, rows=rows)
        if facts.equity_new:
            if self._point_ms is None:
                # Logged with the session's first bars: known once there are bars to draw.
                self._point_ms = timeframe_ms(reads.main_timeframe(self.conn))
            self.curve.extend(facts.equity_new, self._point_ms)
        self.dashboard.show(facts, self.curve, wall_ms())

    def tick(self) -> None:
        # Heartbeat age and lag move with the wall clock even when nothing commits.
        if self.is_running and self.facts is not None and self.facts.lease is not None:
            self.dashboard.show_writer(self.facts, self.curve, wall_ms())

    @work(thread=True, exclusive=True, name="session")
    def drive(self) -> None:
        """The bar loop, in this worker thread; the screens see only what it commits."""
        run = self.session
        assert run is not None
        run.session.writer.bus.subscribe(self.forward_event)
        try:
            launch.drive(run, stop=self.stop, progress=lambda _: None)
            if run.out is None:
                run.session.close()
            else:
                self.results = launch.wrap_up(run.session, run.out, report=True)
        except BaseException as e:  # reported on screen, then re-raised by the CLI
            self.outcome = e
        if self.is_running:  # else the app failed first; the CLI reports the outcome
            self.call_from_thread(self.session_ended)

    def forward_event(self, event: Event) -> None:
        """EventBus subscriber, on the loop's thread: hand the event to the app's own loop
        (post_message is thread-safe and never waits for the screen)."""
        if isinstance(event, BarsCommitted | TradingStateChanged | ControlApplied):
            self.post_message(Committed(event))

    def on_committed(self, message: Committed) -> None:
        self.refresh_if_changed()
        if isinstance(message.event, ControlApplied):
            self.notify(f"{message.event.command} applied (control #{message.event.seq})")

    def session_ended(self) -> None:
        self.running = False
        self.sub_title = "ended" if self.outcome is None else "stopped"
        self.refresh_if_changed()
        if self.quitting:
            self.exit()
        elif self.outcome is not None:
            self.notify(str(self.outcome), severity="error", timeout=30)
        else:
            self.notify("the session reached its end; q quits")

    def action_control(self, command: str) -> None:
        def answered(yes: bool | None) -> None:
            if yes:
                self.post(command)

        self.push_screen(Confirm(CONTROLS[command]), answered)

    def post(self, command: str) -> None:
        try:
            answer = control_queue.post(
                self.db_path, command, "from the TUI", by=controls.operator()
            )
        except NjordError as e:  # e.g. a finished session: nothing would apply it
            self.notify(str(e), severity="error", timeout=30)
            return
        self.notify(answer)

    def action_reload(self) -> None:
        """`njord reload` for the session on screen, from the config it was driven with."""
        if self.config is None:
            self.notify(
                f"reload reads a config: run `njord reload --db {self.db_path} --config C`",
                severity="error",
                timeout=30,
            )
            return
        read = self.config

        def answered(yes: bool | None) -> None:
            if not yes:
                return
            try:
                answer = reload(self.db_path, read(), strategy_id="", by=controls.operator())
            except NjordError as e:  # a change reload refuses, code that does not import
                self.notify(str(e), severity="error", timeout=30)
                return
            self.notify(answer)

        self.push_screen(Confirm(RELOAD_QUESTION), answered)

    async def action_quit(self) -> None:
        """Watching: quit at once, the session never notices. Driving: ask, then stop."""
        if not self.running:
            self.exit()
            return

        def answered(yes: bool | None) -> None:
            if yes:
                self.request_stop()
                self.sub_title = "stopping"

        self.push_screen(Confirm(STOP_QUESTION), answered)

    def request_stop(self) -> None:
        """Stop the session, then quit: at once when it has already ended."""
        self.quitting = True
        self.stop.requested = True
        if not self.running:
            self.exit()

    def action_browse(self) -> None:
        if not isinstance(self.screen, Browse):
            self.push_screen(Browse(self.conn))

    def action_help(self) -> None:
        self.push_screen(Help(DRIVE_HELP if self.session else WATCH_HELP))

    def action_toggle_dark(self) -> None:
        self.theme = "textual-light" if self.theme == "textual-dark" else "textual-dark"

    def on_unmount(self) -> None:
        if self.session is not None:
            loop = asyncio.get_running_loop()
            for sig in STOP_SIGNALS:
                loop.remove_signal_handler(sig)
        self.conn.close()
