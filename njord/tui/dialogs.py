"""Modal dialogs: every control and every session stop asks first; help explains keys."""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

KEYS = (
    "h halt   r reduce   f flatten   u resume   (each asks first)\n"
    "b browse orders, fills, verdicts, alerts, logs (enter: an order's history)\n"
)
WATCH_HELP = (
    "njord tui: watches a session db; the session runs in its own process.\n\n"
    f"{KEYS}t dark/light theme   ? this help   q quit (never touches the session)\n\n"
    "The screen follows the db: it re-reads when a commit lands."
)
DRIVE_HELP = (
    "njord tui: this process runs the session; the screen shows its commits.\n\n"
    f"{KEYS}l reload the strategy from the config file (asks first)\n"
    "t dark/light theme   ? this help\n"
    "q quit: asks first, then the session finishes its bar, commits and stops."
)


class Confirm(ModalScreen[bool]):
    """y / enter on Yes to confirm, n / escape to cancel."""

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

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text

    def compose(self) -> ComposeResult:
        yield Static(self.text, id="help")
