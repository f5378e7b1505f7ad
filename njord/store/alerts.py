"""Alerts: episodes in `alerts` (raised by a log record, cleared by a later one; one row
per episode) and what the notifier delivered, in `alert_deliveries`."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence

import apsw
import msgspec

from njord import events as ev
from njord.log import LogRecord

# (ts_ms, channel, kind, event, ok, detail): wall-clock facts, outside the decision log.
Delivery = tuple[int, str, str, str, int, str]


class AlertRow(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    kind: str
    raised_ms: int
    cleared_ms: int | None
    msg: str


class LastDelivery(msgspec.Struct, frozen=True, kw_only=True):
    ts_ms: int
    kind: str
    event: str
    ok: bool
    detail: str


class ChannelState(msgspec.Struct, frozen=True, kw_only=True):
    """A channel the session's config names and its last delivery (None: nothing sent)."""

    channel: str
    last: LastDelivery | None


def apply(conn: apsw.Connection, record: LogRecord) -> list[ev.Event]:
    """A log record may open an alert episode (`alert` in its context) or close one
    (`clear`): once per episode. Returns the events it caused, for after the commit."""
    found: list[ev.Event] = []
    kind = record.context.get("alert")
    if kind is not None:
        open_ = conn.execute(
            "SELECT 1 FROM alerts WHERE kind = ? AND cleared_ms IS NULL", (kind,)
        ).fetchone()
        if open_ is None:
            conn.execute(
                "INSERT INTO alerts (kind, raised_ms, msg) VALUES (?, ?, ?)",
                (kind, record.ts_ms, record.msg),
            )
            found.append(ev.AlertRaised(kind=kind, ts_ms=record.ts_ms, msg=record.msg))
    cleared = record.context.get("clear")
    if cleared is not None:
        conn.execute(
            "UPDATE alerts SET cleared_ms = ? WHERE kind = ? AND cleared_ms IS NULL",
            (record.ts_ms, cleared),
        )
        if conn.changes():
            found.append(ev.AlertCleared(kind=cleared, ts_ms=record.ts_ms))
    return found


def insert_deliveries(conn: apsw.Connection, rows: Sequence[Delivery]) -> None:
    conn.executemany(
        "INSERT INTO alert_deliveries (ts_ms, channel, kind, event, ok, detail) "
        "VALUES (?, ?, ?, ?, ?, ?)",
        rows,
    )


def every(conn: apsw.Connection) -> list[AlertRow]:
    """All episodes, oldest first."""
    return alerts_after(conn, 0)


def alerts_after(conn: apsw.Connection, seq: int) -> list[AlertRow]:
    """Alerts raised after `seq`, oldest first."""
    return [
        AlertRow(seq=s, kind=k, raised_ms=r, cleared_ms=c, msg=m)
        for s, k, r, c, m in conn.execute(
            "SELECT seq, kind, raised_ms, cleared_ms, msg FROM alerts WHERE seq > ? ORDER BY seq",
            (seq,),
        )
    ]


def open_alerts(conn: apsw.Connection) -> list[AlertRow]:
    return [
        AlertRow(seq=s, kind=k, raised_ms=r, cleared_ms=None, msg=m)
        for s, k, r, m in conn.execute(
            "SELECT seq, kind, raised_ms, msg FROM alerts WHERE cleared_ms IS NULL ORDER BY seq"
        )
    ]


def last_alert_seq(conn: apsw.Connection) -> int:
    row = conn.execute("SELECT COALESCE(max(seq), 0) FROM alerts").fetchone()
    return int(row[0]) if row else 0


def channels(conn: apsw.Connection, config_toml: str) -> list[ChannelState]:
    """The channels the session's config names, each with its last delivery (or None)."""
    section = tomllib.loads(config_toml).get("alerts", {})
    named = [
        name
        for name, on in (
            ("command", bool(section.get("command"))),
            ("webhook", bool(section.get("webhook"))),
            ("email", bool(section.get("email_to"))),
        )
        if on
    ]
    last = {
        str(channel): LastDelivery(
            ts_ms=int(ts), kind=str(kind), event=str(event), ok=bool(ok), detail=str(detail)
        )
        for channel, ts, kind, event, ok, detail in conn.execute(
            "SELECT channel, ts_ms, kind, event, ok, detail FROM alert_deliveries "
            "WHERE seq IN (SELECT max(seq) FROM alert_deliveries GROUP BY channel)"
        )
    }
    return [ChannelState(channel=name, last=last.get(name)) for name in named]
