"""`njord watch`: one read-only watcher over many session dbs.

On every poll it reads each db's pulse (run status, bars, lease) and its alerts, and turns
what changed into alert edges: the sessions' own alerts (raised and cleared), plus two it
detects itself, `session_silent` (a running session committed no bar for `silent_after_s`)
and `session_died` (a running session whose writer is gone: a dead pid on this host, or a
stale heartbeat from another). Edges go to the configured channels; the watcher keeps its
memory in the process and never writes to a db, so it can watch sessions it does not own.
The dbs found by the first poll are a baseline: alerts they already hold are not re-sent
(their clearing is); a db that appears later is new, and all of its alerts are sent.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Final, Literal

import msgspec

from njord.alerting import Alert, Delivery, Dispatcher
from njord.errors import NjordError
from njord.store import alerts, db, observe
from njord.store import lease as leases

SILENT: Final = "session_silent"
DIED: Final = "session_died"


class Seen(msgspec.Struct, kw_only=True):
    """What the watcher remembers of one db between polls."""

    bars: int
    changed_ms: int  # wall clock when `bars` last moved (or when first seen)
    alert_seq: int  # highest alert seq already handled
    open_seqs: set[int]  # the db's alerts raised and not yet seen cleared
    own: dict[str, str]  # the watcher's own open alerts: kind -> message


def discover(targets: Sequence[Path]) -> list[Path]:
    """Files as named; directories searched for `*.db` at any depth, in a stable order."""
    found: list[Path] = []
    for target in targets:
        found += sorted(target.rglob("*.db")) if target.is_dir() else [target]
    return found


class Watcher:
    def __init__(
        self,
        targets: Sequence[Path],
        *,
        silent_after_s: float,
        dispatcher: Dispatcher,
        wall_ms: Callable[[], int],
    ) -> None:
        self._targets = list(targets)
        self._silent_after_ms = silent_after_s * 1000
        self._dispatcher = dispatcher
        self._wall_ms = wall_ms
        self._seen: dict[Path, Seen] = {}
        self.unreadable: dict[Path, str] = {}
        self.deliveries: list[Delivery] = []
        self._polled = False

    def paths(self) -> list[Path]:
        return discover(self._targets)

    def take_deliveries(self) -> list[Delivery]:
        taken, self.deliveries = self.deliveries, []
        return taken

    def active(self) -> dict[Path, dict[str, str]]:
        """The watcher's own open alerts per db (for its metrics and its output)."""
        return {path: dict(seen.own) for path, seen in self._seen.items() if seen.own}

    def poll(self) -> list[Alert]:
        edges: list[Alert] = []
        for path in self.paths():
            try:
                edges += self._poll_one(path)
            except NjordError as e:
                self.unreadable[path] = str(e)  # not a session db, or mid-creation
            else:
                self.unreadable.pop(path, None)
        self._polled = True
        for edge in edges:
            self.deliveries += self._dispatcher.dispatch(edge)
        return edges

    def _poll_one(self, path: Path) -> list[Alert]:
        now = self._wall_ms()
        conn = db.open_reader(path)
        try:
            with conn:  # one read transaction: the pulse and the alerts agree
                pulse = observe.pulse(conn)
                if path not in self._seen:
                    baseline = not self._polled
                    self._seen[path] = Seen(
                        bars=pulse.bars,
                        changed_ms=now,
                        alert_seq=alerts.last_alert_seq(conn) if baseline else 0,
                        open_seqs={a.seq for a in alerts.open_alerts(conn)} if baseline else set(),
                        own={},
                    )
                seen = self._seen[path]
                low = min(seen.open_seqs, default=seen.alert_seq + 1) - 1
                rows = alerts.alerts_after(conn, min(low, seen.alert_seq))
        finally:
            conn.close()

        def edge(kind: str, event: Literal["raised", "cleared"], msg: str) -> Alert:
            return Alert(
                kind=kind,
                event=event,
                session=pulse.run_id or path.name,
                mode=pulse.mode or "?",
                symbol=pulse.symbol,
                db=str(path),
                msg=msg,
                ts_ms=now,
            )

        edges: list[Alert] = []
        for row in rows:
            if row.seq > seen.alert_seq:
                edges.append(edge(row.kind, "raised", row.msg))
                seen.alert_seq = row.seq
                seen.open_seqs.add(row.seq)
            if row.cleared_ms is not None and row.seq in seen.open_seqs:
                edges.append(edge(row.kind, "cleared", row.msg))
                seen.open_seqs.discard(row.seq)

        if pulse.bars != seen.bars:
            seen.bars, seen.changed_ms = pulse.bars, now
        running = pulse.run_status == "running"
        quiet_ms = now - seen.changed_ms
        checks = {
            SILENT: (
                running and quiet_ms > self._silent_after_ms,
                f"no new bar for {quiet_ms / 1000:.0f}s (last bar {pulse.last_bar_ms})",
            ),
            DIED: (
                running and self._writer_gone(pulse.lease, now),
                "the run is marked running but its writer is gone; "
                f"carry it on with `njord continue {path}` or the mode's command",
            ),
        }
        for kind, (firing, msg) in checks.items():
            if firing and kind not in seen.own:
                seen.own[kind] = msg
                edges.append(edge(kind, "raised", msg))
            elif not firing and kind in seen.own:
                edges.append(edge(kind, "cleared", seen.own.pop(kind)))
        return edges

    def _writer_gone(self, lease: leases.Lease | None, now: int) -> bool:
        if lease is None:
            return True
        return leases.is_stale(lease, timeout_s=self._silent_after_ms / 1000, now_ms=now)
