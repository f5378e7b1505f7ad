"""What `njord torture` reads from a tortured session db: how far it got, and the rows its
invariants compare (with the venue, with an uninterrupted run's db). Reads only."""

from __future__ import annotations

from typing import NamedTuple

import apsw

from njord.core.reports import Execution
from njord.records import Side
from njord.store import venue

OPEN_STATUSES = ("NEW", "SUBMITTED", "PARTIALLY_FILLED")


class Progress(NamedTuple):
    bars: int  # bars whose phase 3 committed (an equity row each)
    last_ms: int | None  # the last of them
    decided_ms: int | None  # the last bar whose phase 1 committed
    rebuilds: int  # restarts that finished rebuilding (and committed what they settled)


class DbFill(NamedTuple):
    client_order_id: str
    trade_id: str | None
    qty_e8: int
    price_e8: int
    fee_e8: int


class JournalOrder(NamedTuple):
    """An order as the paper broker (paper's venue) holds it in its journal."""

    client_order_id: str
    side: Side
    sends: int
    open: bool
    executions: list[Execution]


def _has_session(conn: apsw.Connection) -> bool:
    row = conn.execute(
        "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'equity'"
    ).fetchone()
    return bool(row and row[0])


def progress(conn: apsw.Connection) -> Progress:
    if not _has_session(conn):
        return Progress(0, None, None, 0)
    bars, last = _one(conn, "SELECT count(*), max(ts_ms) FROM equity")
    (rebuilds,) = _one(
        conn,
        "SELECT count(*) FROM logs WHERE component = 'session' "
        "AND json_extract(context, '$.rebuild_ms') IS NOT NULL",
    )
    return Progress(
        int(str(bars)),
        None if last is None else int(str(last)),
        venue.decided_bar_ms(conn),
        int(str(rebuilds)),
    )


def _one(conn: apsw.Connection, sql: str) -> tuple[object, ...]:
    row = conn.execute(sql).fetchone()
    assert row is not None  # an aggregate always answers one row
    return tuple(row)


def bar_times(conn: apsw.Connection) -> list[int]:
    """Every committed bar's open, in commit order (rowid), duplicates kept."""
    return [int(t) for (t,) in conn.execute("SELECT ts_ms FROM equity ORDER BY rowid")]


def controls_by(conn: apsw.Connection, posted_by: str) -> list[tuple[int, int | None]]:
    """(posted_ms, applied_ms) of the controls `posted_by` posted, in order."""
    return [
        (int(p), None if a is None else int(a))
        for p, a in conn.execute(
            "SELECT posted_ms, applied_ms FROM controls WHERE posted_by = ? ORDER BY seq",
            (posted_by,),
        )
    ]


def fills(conn: apsw.Connection) -> list[DbFill]:
    return [
        DbFill(str(c), None if t is None else str(t), int(q), int(p), int(f))
        for c, t, q, p, f in conn.execute(
            "SELECT f.client_order_id, t.trade_id, f.qty_e8, f.price_e8, f.fee_e8 "
            "FROM fills f LEFT JOIN fill_trades t USING (fill_id) ORDER BY f.fill_id"
        )
    ]


def journal(conn: apsw.Connection) -> list[JournalOrder]:
    out = []
    for coid, sends, open_, order, reports in conn.execute(
        "SELECT client_order_id, sends, open, order_msg, reports FROM paper_orders ORDER BY rowid"
    ):
        executions = [r for r in venue.decode_reports(reports) if isinstance(r, Execution)]
        side = venue.decode_order(order).side
        out.append(JournalOrder(str(coid), side, int(sends), bool(open_), executions))
    return out


def open_orders(conn: apsw.Connection) -> set[str]:
    marks = ", ".join("?" * len(OPEN_STATUSES))
    return {
        str(c)
        for (c,) in conn.execute(
            f"SELECT client_order_id FROM orders WHERE status IN ({marks})", OPEN_STATUSES
        )
    }


def holdings(conn: apsw.Connection, symbol: str) -> tuple[int, int]:
    """The book's cash and its position in `symbol`, e8."""
    row = conn.execute("SELECT cash_e8 FROM account WHERE id = 1").fetchone()
    cash = int(row[0]) if row else 0
    row = conn.execute("SELECT qty_e8 FROM positions WHERE symbol = ?", (symbol,)).fetchone()
    return cash, int(row[0]) if row else 0


def external_events(conn: apsw.Connection) -> list[tuple[str, str]]:
    """(kind, subject) of every difference a reconciliation recorded as external."""
    return [(str(k), str(s)) for k, s in conn.execute("SELECT kind, subject FROM external_events")]


# What an uninterrupted run must have decided the same way. Client order ids embed a hash
# of the session's inputs (its venue's URL among them): compared from the bar number on.
DECISIONS = {
    "intents": "SELECT bar_ts_ms, seq, side, type, qty_e8, limit_e8, allowed, reason "
    "FROM intents ORDER BY bar_ts_ms, seq",
    "orders": "SELECT substr(client_order_id, instr(client_order_id, '-')), side, type, qty_e8, "
    "status, filled_qty_e8, avg_price_e8 FROM orders ORDER BY intent_id",
    "fills": "SELECT substr(client_order_id, instr(client_order_id, '-')), ts_ms, side, qty_e8, "
    "price_e8, fee_e8, realised_e8 FROM fills ORDER BY fill_id",
    "equity": "SELECT ts_ms, close_e8, cash_e8, position_e8, equity_e8 FROM equity ORDER BY ts_ms",
}


def decisions(conn: apsw.Connection) -> dict[str, list[tuple[object, ...]]]:
    return {name: [tuple(r) for r in conn.execute(sql)] for name, sql in DECISIONS.items()}
