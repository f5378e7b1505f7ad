"""Reconciliations with the venue and the external events they found (live sessions).

`reconciliations`: one row per run, with the venue's balances and the trade-id cursor. A
row that is `accepted` (nothing unexplained, or the venue's view adopted) is the baseline
the next run's expected balances start from (`baseline`). `external_events`: what the
session could not explain, each with the venue's value, the book's value and the policy
that was applied. Both are written in the caller's transaction.
"""

from __future__ import annotations

import json

import apsw
import msgspec

from njord.core.reconcile import (
    Action,
    ExternalEvent,
    OwnOrder,
    Policy,
    Reconciliation,
    VenueState,
)
from njord.core.reports import Execution
from njord.records import OrderStatus, Side


class Baseline(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    cursor: str
    balances_e8: dict[str, int]


class StoredEvent(msgspec.Struct, frozen=True, kw_only=True):
    seq: int
    recon_seq: int
    event: ExternalEvent
    policy: Policy


def record(
    conn: apsw.Connection,
    rec: Reconciliation,
    venue: VenueState,
    *,
    symbol: str,
    bar_ts_ms: int | None,
    queried: int,
    action: Action,
    policy: Policy,
) -> int:
    """One reconciliation and its external events; its seq. Accepted unless it halted."""
    conn.execute(
        "INSERT INTO reconciliations (ts_ms, bar_ts_ms, symbol, cursor, balances, expected, "
        "missed_fills, queried, external, action, accepted) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            venue.ts_ms,
            bar_ts_ms,
            symbol,
            rec.cursor,
            json.dumps(venue.balances_e8, sort_keys=True),
            json.dumps(rec.expected_e8, sort_keys=True),
            len(rec.missed),
            queried,
            len(rec.external),
            action,
            int(action != "halt"),
        ),
    )
    seq = int(conn.last_insert_rowid())
    conn.executemany(
        "INSERT INTO external_events (recon_seq, ts_ms, kind, subject, venue_value, "
        "book_value, detail, policy) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (seq, e.ts_ms, e.kind, e.subject, e.venue_value, e.book_value, e.detail, policy)
            for e in rec.external
        ],
    )
    return seq


def baseline(conn: apsw.Connection) -> Baseline | None:
    """The last accepted reconciliation: expected balances start from its balances and
    move by the session's fills with a trade id after its cursor."""
    row = conn.execute(
        "SELECT seq, cursor, balances FROM reconciliations WHERE accepted = 1 "
        "ORDER BY seq DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    seq, cursor, balances = row
    return Baseline(seq=int(seq), cursor=str(cursor), balances_e8=json.loads(balances))


def last_cursor(conn: apsw.Connection) -> str | None:
    """Where the next reconciliation reads fills from (None: never reconciled)."""
    row = conn.execute("SELECT cursor FROM reconciliations ORDER BY seq DESC LIMIT 1").fetchone()
    return None if row is None else str(row[0])


def events(conn: apsw.Connection, *, after_seq: int = 0) -> list[StoredEvent]:
    return [
        StoredEvent(
            seq=int(seq),
            recon_seq=int(recon),
            event=ExternalEvent(
                ts_ms=int(ts),
                kind=kind,
                subject=str(subject),
                venue_value=str(venue_value),
                book_value=str(book_value),
                detail=str(detail),
            ),
            policy=policy,
        )
        for seq, recon, ts, kind, subject, venue_value, book_value, detail, policy in conn.execute(
            "SELECT seq, recon_seq, ts_ms, kind, subject, venue_value, book_value, detail, "
            "policy FROM external_events WHERE seq > ? ORDER BY seq",
            (after_seq,),
        )
    ]


def applied_trade_ids(conn: apsw.Connection) -> frozenset[str]:
    return frozenset(str(t) for (t,) in conn.execute("SELECT trade_id FROM fill_trades"))


def own_orders(conn: apsw.Connection) -> dict[str, OwnOrder]:
    """Every order the session ever made, by client order id."""
    return {
        str(coid): OwnOrder(side=Side(side), status=OrderStatus(status))
        for coid, side, status in conn.execute("SELECT client_order_id, side, status FROM orders")
    }


def fills_after(
    conn: apsw.Connection, cursor: str, *, base: str, quote: str
) -> list[tuple[Side, Execution]]:
    """The session's fills with a venue trade id after `cursor`, as the venue made them:
    the quantity it executed, and its commission taken from the asset it was charged in."""
    after = int(cursor) if cursor else -1
    out: list[tuple[Side, Execution]] = []
    for side, coid, ts, price, qty, commission, asset, trade_id in conn.execute(
        "SELECT f.side, f.client_order_id, f.ts_ms, f.price_e8, t.qty_e8, t.commission_e8, "
        "t.commission_asset, t.trade_id FROM fills f JOIN fill_trades t USING (fill_id) "
        "WHERE t.qty_e8 IS NOT NULL ORDER BY CAST(t.trade_id AS INTEGER)"
    ):
        if int(trade_id) <= after:
            continue
        out.append(
            (
                Side(side),
                Execution(
                    client_order_id=str(coid),
                    ts_ms=int(ts),
                    qty_e8=int(qty),
                    price_e8=int(price),
                    fee_e8=int(commission) if asset == quote else 0,
                    fee_qty_e8=int(commission) if asset == base else 0,
                    fee_asset=str(asset),
                    commission_e8=int(commission),
                    trade_id=str(trade_id),
                ),
            )
        )
    return out
