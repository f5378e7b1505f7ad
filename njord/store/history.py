"""Reads of a session's history: snapshots, the decision log, stored bars and state."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apsw
import msgspec

from njord.errors import ConfigError
from njord.records import Order, OrderStatus, OrderType, Side
from njord.store.reads import one as _one


class Snapshot(msgspec.Struct, frozen=True):
    snapshot_id: int
    bar_ts_ms: int
    decision_seq: int
    state: bytes


def snapshot_ids(conn: apsw.Connection) -> list[int]:
    return [int(r[0]) for r in conn.execute("SELECT snapshot_id FROM snapshots ORDER BY 1")]


def snapshot(conn: apsw.Connection, snapshot_id: int) -> Snapshot:
    row = conn.execute(
        "SELECT snapshot_id, bar_ts_ms, decision_seq, state FROM snapshots WHERE snapshot_id = ?",
        (snapshot_id,),
    ).fetchone()
    if row is None:
        raise ConfigError(f"no snapshot {snapshot_id}; `njord status` shows how many there are")
    return Snapshot(int(row[0]), int(row[1]), int(row[2]), bytes(row[3]))


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


def stored_book(conn: apsw.Connection) -> dict[str, Any]:
    """The book as the last commit left it, in BookState's field names."""
    account = _one(
        conn,
        "SELECT cash_e8, realised_e8, fees_e8, peak_equity_e8, last_bar_ms, bars, next_intent "
        "FROM account",
    )
    daily, last_block, counters = _one(
        conn, "SELECT daily_realised_e8, last_block, counters FROM risk_state"
    )
    state = _one(conn, "SELECT state FROM trading_state")[0]
    lots = [
        tuple(r)
        for r in conn.execute("SELECT lot_seq, symbol, qty_e8, cost_e8 FROM lots ORDER BY lot_seq")
    ]
    keys = (
        "cash_e8",
        "realised_e8",
        "fees_e8",
        "peak_equity_e8",
        "last_bar_ms",
        "bars",
        "next_intent",
    )
    return {
        **dict(zip(keys, account, strict=True)),
        "daily_realised_e8": daily,
        "last_block": last_block,
        "counters": [list(kv) for kv in sorted(msgspec.json.decode(counters).items())],
        "state": state,
        "lots": lots,
    }


def stored_bar_blobs(conn: apsw.Connection) -> list[bytes]:
    rows = conn.execute("SELECT arrow FROM bar_chunks ORDER BY first_ts_ms").fetchall()
    return [r[0] for r in rows if isinstance(r[0], bytes)]
