"""Structured log records: buffered with the bar, committed with it, echoed to stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any, Literal, TextIO

import msgspec

from njord.secrets import Secret, redact

Level = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
_RANK = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class LogRecord(msgspec.Struct, frozen=True, kw_only=True):
    run_id: str | None
    ts_ms: int
    component: str
    level: Level
    msg: str
    context: dict[str, Any]


class SessionLog:
    """Collects records until the owner of the transaction drains them into the db.

    `now_ms` is injected: simulated time in a backtest (so logs replay identically),
    wall time in live modes.
    """

    def __init__(
        self,
        *,
        now_ms: Callable[[], int],
        secrets: list[Secret] | None = None,
        echo: TextIO | None = sys.stderr,
        echo_level: Level = "WARNING",
    ) -> None:
        self.run_id: str | None = None
        self._now_ms = now_ms
        self._secrets = secrets or []
        self._echo = echo
        self._echo_rank = _RANK[echo_level]
        self._pending: list[LogRecord] = []
        self._undated: list[int] = []  # pending records logged before the session had a time

    def log(
        self, component: str, level: Level, msg: str, *, echo: bool = True, **context: Any
    ) -> None:
        """`echo=False`: recorded only, for an error the command reports itself (its one
        line would otherwise be printed twice)."""
        if self._secrets:
            msg = redact(msg, self._secrets)
            context = msgspec.json.decode(
                redact(msgspec.json.encode(context).decode(), self._secrets)
            )
        record = LogRecord(
            run_id=self.run_id,
            ts_ms=self._now_ms(),
            component=component,
            level=level,
            msg=msg,
            context=context,
        )
        self._pending.append(record)
        if record.ts_ms == 0:
            self._undated.append(len(self._pending) - 1)
        if echo and self._echo is not None and _RANK[level] >= self._echo_rank:
            print(f"{level.lower()}: [{component}] {msg}", file=self._echo)

    def add_secrets(self, more: list[Secret]) -> None:
        """Values learnt after the log was made (alert channels) are masked from now on."""
        self._secrets = [*self._secrets, *more]

    def use_clock(self, now_ms: Callable[[], int]) -> None:
        """From the first bar on, records carry the session's time (simulated in backtests)."""
        self._now_ms = now_ms

    def date_undated(self, ts_ms: int) -> None:
        """Records logged before the first bar (session start, resume, lease take-over) take
        that bar's time: a simulated clock has no earlier time to give them."""
        for i in self._undated:
            self._pending[i] = msgspec.structs.replace(self._pending[i], ts_ms=ts_ms)
        self._undated.clear()

    def info(self, component: str, msg: str, **context: Any) -> None:
        self.log(component, "INFO", msg, **context)

    def warning(self, component: str, msg: str, **context: Any) -> None:
        self.log(component, "WARNING", msg, **context)

    def error(self, component: str, msg: str, **context: Any) -> None:
        self.log(component, "ERROR", msg, **context)

    @property
    def pending(self) -> bool:
        return bool(self._pending)

    def drain(self) -> list[LogRecord]:
        pending, self._pending = self._pending, []
        self._undated.clear()
        return pending

    def discard(self) -> None:
        """The bar rolled back: its records go with it."""
        self._pending.clear()
        self._undated.clear()
