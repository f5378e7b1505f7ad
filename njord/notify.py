"""A session's own alert delivery: an EventBus subscriber that sends alert edges to the
`[alerts]` channels on a worker thread, so a slow webhook or SMTP server never holds a bar.

Results come back to the loop's thread: each event the notifier receives (every commit
publishes one) hands the finished deliveries to the writer, which records them with the next
commit. A failed delivery raises the `alert_channel` alert (once per episode, through the
session log like every alert); the next successful one clears it.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from njord.alerting import Alert, Delivery, Dispatcher
from njord.events import AlertCleared, AlertRaised, Event
from njord.log import SessionLog

CHANNEL_ALERT = "alert_channel"


class Notifier:
    def __init__(
        self,
        dispatcher: Dispatcher,
        *,
        session: str,
        mode: str,
        symbol: str,
        db: str,
        log: SessionLog,
        record: Callable[[list[tuple[int, str, str, str, int, str]]], None],
        wall_ms: Callable[[], int],
    ) -> None:
        self._dispatcher = dispatcher
        self._session, self._mode, self._symbol, self._db = session, mode, symbol, db
        self._log = log
        self._record = record
        self._wall_ms = wall_ms
        self._todo: queue.Queue[Alert | None] = queue.Queue()
        self._done: list[Delivery] = []
        self._lock = threading.Lock()
        self._failing = False
        self._worker = threading.Thread(target=self._work, name="njord-alerts", daemon=True)
        self._worker.start()

    def __call__(self, event: Event) -> None:
        if isinstance(event, AlertRaised | AlertCleared):
            self._todo.put(
                Alert(
                    kind=event.kind,
                    event="raised" if isinstance(event, AlertRaised) else "cleared",
                    session=self._session,
                    mode=self._mode,
                    symbol=self._symbol,
                    db=self._db,
                    msg=event.msg if isinstance(event, AlertRaised) else "cleared",
                    ts_ms=self._wall_ms(),
                )
            )
        self.collect()

    def collect(self) -> None:
        """On the loop's thread: hand finished deliveries to the writer, log failures."""
        with self._lock:
            done, self._done = self._done, []
        if not done:
            return
        self._record([(d.ts_ms, d.channel, d.kind, d.event, int(d.ok), d.detail) for d in done])
        failed = [d for d in done if not d.ok]
        if failed and not self._failing:
            first = failed[0]
            self._log.error(
                "alerts",
                f"alert delivery failed: {first.channel} {first.kind}: {first.detail}",
                alert=CHANNEL_ALERT,
            )
        elif not failed and self._failing:
            self._log.info("alerts", "alert delivery works again", clear=CHANNEL_ALERT)
        self._failing = bool(failed)

    def close(self, timeout_s: float) -> None:
        """At the end of a run: let queued edges go out (bounded), then collect."""
        self._todo.put(None)
        self._worker.join(timeout_s)
        self.collect()

    def _work(self) -> None:
        while True:
            alert = self._todo.get()
            if alert is None:
                return
            results = self._dispatcher.dispatch(alert)
            with self._lock:
                self._done += results
