"""Reads of a session's history: snapshots, the decision log, stored bars and state."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import NamedTuple

import apsw

from njord.data.qc import QcEvent
from njord.errors import ConfigError, MismatchError
from njord.records import Order, OrderStatus, OrderType, Side
from njord.store.chain import equity_digest


def decisions_after(conn: apsw.Connection, seq: int) -> Iterator[tuple[int, str, str, str]]:
    for bar_ts, kind, ref, payload in conn.execute(
        "SELECT bar_ts_ms, kind, ref, payload FROM decisions WHERE seq > ? ORDER BY seq", (seq,)
    ):
        yield int(bar_ts), str(kind), str(ref), str(payload)


def order(conn: apsw.Connection, coid: str) -> Order:
    row = conn.execute(
        "SELECT client_order_id, intent_id, symbol, side, type, qty_e8, limit_e8, status, "
        "created_ms, strategy_id FROM orders WHERE client_order_id = ?",
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
        strategy_id=row[9],
    )


def stored_bar_blobs(conn: apsw.Connection) -> list[bytes]:
    rows = conn.execute("SELECT arrow FROM bar_chunks ORDER BY first_ts_ms").fetchall()
    return [r[0] for r in rows if isinstance(r[0], bytes)]


def qc_events(conn: apsw.Connection) -> list[QcEvent]:
    return [
        QcEvent(kind, int(a), int(b), int(n), symbol)
        for kind, a, b, n, symbol in conn.execute(
            "SELECT kind, from_ts_ms, to_ts_ms, bars, symbol FROM qc_events ORDER BY seq"
        )
    ]


def checked_bar_blobs(conn: apsw.Connection) -> list[bytes]:
    blobs = []
    for first, sha, blob in conn.execute(
        "SELECT first_ts_ms, sha256, arrow FROM bar_chunks ORDER BY first_ts_ms"
    ):
        if blob is None:
            raise MismatchError("this session stored only bar hashes (store.store_bars = false)")
        if hashlib.sha256(blob).hexdigest() != sha:
            raise MismatchError(f"stored bars from {first} were altered: their sha256 differs")
        blobs.append(bytes(blob))
    return blobs


def decisions_of(conn: apsw.Connection, kinds: tuple[str, ...]) -> list[tuple[int, str, str, str]]:
    marks = ", ".join("?" * len(kinds))
    return [
        (int(r[0]), str(r[1]), str(r[2]), str(r[3]))
        for r in conn.execute(
            f"SELECT bar_ts_ms, kind, ref, payload FROM decisions WHERE kind IN ({marks}) "
            "ORDER BY seq",
            kinds,
        )
    ]


def equity_sha256(conn: apsw.Connection) -> str:
    rows = [
        [int(v) for v in r]
        for r in conn.execute(
            "SELECT ts_ms, close_e8, cash_e8, position_e8, equity_e8 FROM equity ORDER BY ts_ms"
        )
    ]
    return equity_digest(rows)


def row_count(conn: apsw.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    return int(row[0]) if row else 0


class StoredIntent(NamedTuple):
    side: str
    type: str
    qty_e8: int
    limit_e8: int | None
    allowed: int
    reason: str
    client_order_id: str | None
    symbol: str = ""
    strategy_id: str = ""


class StoredFill(NamedTuple):
    ts_ms: int
    qty_e8: int
    price_e8: int
    fee_e8: int


def intents_by_bar(conn: apsw.Connection) -> dict[tuple[int, str, int], StoredIntent]:
    """Every intent by (bar, its strategy, its place among that strategy's intents of the
    bar): several strategies' intents share a bar's sequence, and one strategy asking for
    more must not shift the others' out of line."""
    found: dict[tuple[int, str, int], StoredIntent] = {}
    counts: dict[tuple[int, str], int] = {}
    for r in conn.execute(
        "SELECT bar_ts_ms, strategy_id, side, type, qty_e8, limit_e8, allowed, reason, "
        "client_order_id, symbol FROM intents ORDER BY bar_ts_ms, seq"
    ):
        bar, strategy_id = int(r[0]), str(r[1])
        n = counts.get((bar, strategy_id), 0)
        counts[bar, strategy_id] = n + 1
        side, kind, qty, limit, allowed, reason, coid, symbol = r[2:]
        found[bar, strategy_id, n] = StoredIntent(
            side, kind, qty, limit, allowed, reason, coid, symbol, strategy_id
        )
    return found


def fills_by_order(conn: apsw.Connection) -> dict[str, StoredFill]:
    return {
        str(r[0]): StoredFill(int(r[1]), int(r[2]), int(r[3]), int(r[4]))
        for r in conn.execute("SELECT client_order_id, ts_ms, qty_e8, price_e8, fee_e8 FROM fills")
    }


def last_mark(conn: apsw.Connection) -> tuple[int, int] | None:
    """(bar time, close) of the last bar marked to the equity curve."""
    row = conn.execute("SELECT ts_ms, close_e8 FROM equity ORDER BY ts_ms DESC LIMIT 1").fetchone()
    return (int(row[0]), int(row[1])) if row else None


def last_marks(conn: apsw.Connection) -> list[tuple[str, int, int]]:
    """A several-symbol session's last (symbol, bar time, close) of each symbol."""
    return [
        (str(s), int(ts), int(close))
        for s, ts, close in conn.execute(
            "SELECT symbol, max(ts_ms), close_e8 FROM marks GROUP BY symbol ORDER BY symbol"
        )
    ]


def last_sleeve_equity(conn: apsw.Connection) -> dict[str, int]:
    """A several-strategy session's sleeves' equity at the last committed minute."""
    return {
        str(s): int(e)
        for s, e in conn.execute(
            "SELECT strategy_id, equity_e8 FROM sleeve_equity "
            "WHERE ts_ms = (SELECT max(ts_ms) FROM sleeve_equity)"
        )
    }


def last_bar_ms(conn: apsw.Connection) -> int | None:
    row = conn.execute("SELECT last_bar_ms FROM account").fetchone()
    return int(row[0]) if row and row[0] is not None else None
