"""Reads of a session's history: snapshots, the decision log, stored bars and state."""

from __future__ import annotations

from collections.abc import Iterator

import apsw

from njord.data.qc import QcEvent
from njord.errors import ConfigError
from njord.records import Order, OrderStatus, OrderType, Side


def decisions_after(conn: apsw.Connection, seq: int) -> Iterator[tuple[int, str, str, str]]:
    for bar_ts, kind, ref, payload in conn.execute(
        "SELECT bar_ts_ms, kind, ref, payload FROM decisions WHERE seq > ? ORDER BY seq", (seq,)
    ):
        yield int(bar_ts), str(kind), str(ref), str(payload)


def order(conn: apsw.Connection, coid: str) -> Order:
    row = conn.execute(
        "SELECT client_order_id, intent_id, symbol, side, type, qty_e8, limit_e8, status, "
        "created_ms FROM orders WHERE client_order_id = ?",
        (coid,),
    ).fetchone()
    if row is None:
        raise ConfigError(f"the decision log names order {coid}, which is not in the db")
    return Order(
        client_order_id=row[0],
        intent_id=row[1],
        symbol=row[2],
        side=Side(row[3]),
        type=OrderType(row[4]),
        qty_e8=row[5],
        limit_e8=row[6],
        status=OrderStatus(row[7]),
        created_ms=row[8],
    )


def stored_bar_blobs(conn: apsw.Connection) -> list[bytes]:
    rows = conn.execute("SELECT arrow FROM bar_chunks ORDER BY first_ts_ms").fetchall()
    return [r[0] for r in rows if isinstance(r[0], bytes)]


def qc_events(conn: apsw.Connection) -> list[QcEvent]:
    return [
        QcEvent(kind, int(a), int(b), int(n))
        for kind, a, b, n in conn.execute(
            "SELECT kind, from_ts_ms, to_ts_ms, bars FROM qc_events ORDER BY seq"
        )
    ]
