"""Reads for browsing a session: orders, fills, verdicts, alerts and log records, newest
first, filtered by symbol, reason code or level; and one order's whole history."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from njord.core.money import E8

TABLES = ("orders", "fills", "verdicts", "alerts", "logs")


class Filters(msgspec.Struct, frozen=True, kw_only=True):
    """None means "any". Each table applies the filters that make sense for it."""

    symbol: str | None = None
    reason: str | None = None
    level: str | None = None


class Page(msgspec.Struct, frozen=True, kw_only=True):
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    keys: list[str]  # per row: the client order id it belongs to ('' when none)
    total: int  # rows matching the filters, of which `rows` are the newest `limit`


def _where(clauses: list[tuple[str, str | None]]) -> tuple[str, tuple[str, ...]]:
    used = [(sql, v) for sql, v in clauses if v is not None]
    if not used:
        return "", ()
    return " WHERE " + " AND ".join(sql for sql, _ in used), tuple(v for _, v in used)


def _page(
    conn: apsw.Connection,
    columns: tuple[str, ...],
    select: str,
    source: str,
    where: list[tuple[str, str | None]],
    order: str,
    limit: int,
) -> Page:
    sql_where, args = _where(where)
    total = conn.execute(f"SELECT count(*) FROM {source}{sql_where}", args).fetchone()
    found = conn.execute(
        f"SELECT {select} FROM {source}{sql_where} ORDER BY {order} DESC LIMIT ?", (*args, limit)
    ).fetchall()
    return Page(
        columns=columns,
        rows=[tuple(r[:-1]) for r in found],
        keys=[str(r[-1] or "") for r in found],
        total=int(total[0]) if total else 0,
    )


def page(conn: apsw.Connection, table: str, filters: Filters, *, limit: int = 1000) -> Page:
    """One browse table, read in one transaction."""
    with conn:
        if table == "orders":
            return _page(
                conn,
                ("created", "order", "symbol", "side", "type", "qty", "limit", "status", "filled"),
                "o.created_ms, o.client_order_id, o.symbol, o.side, o.type, o.qty_e8 / 1e8, "
                "o.limit_e8 / 1e8, o.status, o.filled_qty_e8 / 1e8, o.client_order_id",
                "orders o JOIN intents i USING (intent_id)",
                # An order's reason: why it was rejected, else the verdict that let it through.
                [
                    ("o.symbol = ?", filters.symbol),
                    ("COALESCE(o.reason, i.reason) = ?", filters.reason),
                ],
                "o.intent_id",
                limit,
            )
        if table == "fills":
            return _page(
                conn,
                ("time", "order", "symbol", "side", "qty", "price", "fee", "realised"),
                "ts_ms, client_order_id, symbol, side, qty_e8 / 1e8, price_e8 / 1e8, "
                "fee_e8 / 1e8, realised_e8 / 1e8, client_order_id",
                "fills",
                [("symbol = ?", filters.symbol)],
                "fill_id",
                limit,
            )
        if table == "verdicts":
            return _page(
                conn,
                ("bar", "symbol", "side", "qty", "allowed", "reason", "order"),
                "bar_ts_ms, symbol, side, qty_e8 / 1e8, allowed, reason, client_order_id, "
                "client_order_id",
                "intents",
                [("symbol = ?", filters.symbol), ("reason = ?", filters.reason)],
                "intent_id",
                limit,
            )
        if table == "alerts":
            return _page(
                conn,
                ("raised", "kind", "cleared", "message"),
                "raised_ms, kind, cleared_ms, msg, NULL",
                "alerts",
                [],
                "seq",
                limit,
            )
        if table == "logs":
            return _page(
                conn,
                ("time", "level", "component", "message"),
                "ts_ms, level, component, msg, NULL",
                "logs",
                [("level = ?", filters.level)],
                "seq",
                limit,
            )
    raise ValueError(f"no browse table {table!r}; one of {', '.join(TABLES)}")


def choices(conn: apsw.Connection) -> dict[str, list[str]]:
    """The values the filters can take in this db, sorted."""

    def distinct(sql: str) -> list[str]:
        return sorted(str(v) for (v,) in conn.execute(sql) if v is not None)

    with conn:
        found = {
            "symbol": distinct("SELECT symbol FROM intents UNION SELECT symbol FROM fills"),
            "reason": distinct("SELECT reason FROM intents UNION SELECT reason FROM orders"),
            "level": distinct("SELECT DISTINCT level FROM logs"),
        }
    return found


def order_history(conn: apsw.Connection, client_order_id: str) -> dict[str, Any] | None:
    """An order with the intent and verdict it came from, every state it went through and
    its fills; None when the db has no such order."""
    with conn:
        row = conn.execute(
            "SELECT o.client_order_id, o.symbol, o.side, o.type, o.qty_e8, o.limit_e8, "
            "o.status, o.filled_qty_e8, o.avg_price_e8, o.reason, o.created_ms, o.updated_ms, "
            "i.bar_ts_ms, i.tag, i.reason, i.rule_inputs "
            "FROM orders o JOIN intents i USING (intent_id) WHERE o.client_order_id = ?",
            (client_order_id,),
        ).fetchone()
        if row is None:
            return None
        order: tuple[Any, ...] = tuple(row)
        events = [
            {"ts_ms": t, "status": s, "detail": d}
            for t, s, d in conn.execute(
                "SELECT ts_ms, status, detail FROM order_events "
                "WHERE client_order_id = ? ORDER BY seq",
                (client_order_id,),
            )
        ]
        fills = [
            {"ts_ms": t, "qty": q / E8, "price": p / E8, "fee": f / E8}
            for t, q, p, f in conn.execute(
                "SELECT ts_ms, qty_e8, price_e8, fee_e8 FROM fills "
                "WHERE client_order_id = ? ORDER BY fill_id",
                (client_order_id,),
            )
        ]
    return {
        "client_order_id": order[0],
        "symbol": order[1],
        "side": order[2],
        "type": order[3],
        "qty": order[4] / E8,
        "limit": order[5] / E8 if order[5] is not None else None,
        "status": order[6],
        "filled_qty": order[7] / E8,
        "avg_price": order[8] / E8 if order[8] is not None else None,
        "reason": order[9],
        "created_ms": order[10],
        "updated_ms": order[11],
        "bar_ts_ms": order[12],
        "tag": order[13],
        "verdict": order[14],
        "rule_inputs": msgspec.json.decode(order[15]) if order[15] else {},
        "events": events,
        "fills": fills,
    }
