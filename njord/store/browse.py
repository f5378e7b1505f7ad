"""Reads for browsing a session: orders, fills, verdicts, alerts and log records, newest
first, filtered by symbol, reason code or level; and one order's whole history."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from njord.core.money import E8


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


class Table(msgspec.Struct, frozen=True, kw_only=True):
    """One browse table: its columns, the SQL that yields them (then the row's order id),
    and the SQL condition each filter adds."""

    columns: tuple[str, ...]
    select: str
    source: str
    filters: tuple[tuple[str, str], ...]  # (Filters field, condition with one ?)
    newest_first: str


SPECS = {
    "orders": Table(
        columns=("created", "order", "symbol", "side", "type", "qty", "limit", "status", "filled"),
        select="o.created_ms, o.client_order_id, o.symbol, o.side, o.type, o.qty_e8 / 1e8, "
        "o.limit_e8 / 1e8, o.status, o.filled_qty_e8 / 1e8, o.client_order_id",
        source="orders o JOIN intents i USING (intent_id)",
        # An order's reason: why it was rejected, else the verdict that let it through.
        filters=(("symbol", "o.symbol = ?"), ("reason", "COALESCE(o.reason, i.reason) = ?")),
        newest_first="o.intent_id DESC",
    ),
    "fills": Table(
        columns=("time", "order", "symbol", "side", "qty", "price", "fee", "realised"),
        select="ts_ms, client_order_id, symbol, side, qty_e8 / 1e8, price_e8 / 1e8, "
        "fee_e8 / 1e8, realised_e8 / 1e8, client_order_id",
        source="fills",
        filters=(("symbol", "symbol = ?"),),
        newest_first="fill_id DESC",
    ),
    "verdicts": Table(
        columns=("bar", "symbol", "side", "qty", "allowed", "reason", "order"),
        select="bar_ts_ms, symbol, side, qty_e8 / 1e8, allowed, reason, client_order_id, "
        "client_order_id",
        source="intents",
        filters=(("symbol", "symbol = ?"), ("reason", "reason = ?")),
        newest_first="intent_id DESC",
    ),
    "alerts": Table(
        columns=("raised", "kind", "cleared", "message"),
        select="raised_ms, kind, cleared_ms, msg, NULL",
        source="alerts",
        filters=(),
        newest_first="seq DESC",
    ),
    "logs": Table(
        columns=("time", "level", "component", "message"),
        select="ts_ms, level, component, msg, NULL",
        source="logs",
        filters=(("level", "level = ?"),),
        newest_first="seq DESC",
    ),
}


TABLES = tuple(SPECS)


def page(conn: apsw.Connection, table: str, filters: Filters, *, limit: int = 1000) -> Page:
    """The newest `limit` rows of one browse table that pass the filters, and how many
    pass in all; read in one transaction."""
    spec = SPECS.get(table)
    if spec is None:
        raise ValueError(f"no browse table {table!r}; one of {', '.join(TABLES)}")
    used = [(sql, getattr(filters, name)) for name, sql in spec.filters]
    used = [(sql, value) for sql, value in used if value is not None]
    where = " WHERE " + " AND ".join(sql for sql, _ in used) if used else ""
    args = tuple(value for _, value in used)
    with conn:
        total = conn.execute(f"SELECT count(*) FROM {spec.source}{where}", args).fetchone()
        found = conn.execute(
            f"SELECT {spec.select} FROM {spec.source}{where} ORDER BY {spec.newest_first} LIMIT ?",
            (*args, limit),
        ).fetchall()
    return Page(
        columns=spec.columns,
        rows=[tuple(r[:-1]) for r in found],
        keys=[str(r[-1] or "") for r in found],
        total=int(total[0]) if total else 0,
    )


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


class OrderEvent(msgspec.Struct, frozen=True, kw_only=True):
    ts_ms: int
    status: str
    detail: str


class OrderFill(msgspec.Struct, frozen=True, kw_only=True):
    ts_ms: int
    qty: float
    price: float
    fee: float


class OrderHistory(msgspec.Struct, frozen=True, kw_only=True):
    """An order (quantities and prices in units) with the intent and verdict it came
    from, every state it went through and its fills."""

    client_order_id: str
    symbol: str
    side: str
    type: str
    qty: float
    limit: float | None
    status: str
    filled_qty: float
    avg_price: float | None
    reason: str | None
    created_ms: int
    updated_ms: int
    bar_ts_ms: int
    tag: str
    verdict: str
    rule_inputs: dict[str, Any]
    events: list[OrderEvent]
    fills: list[OrderFill]


def order_history(conn: apsw.Connection, client_order_id: str) -> OrderHistory | None:
    """None when the db has no such order."""
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
            OrderEvent(ts_ms=t, status=s, detail=d)
            for t, s, d in conn.execute(
                "SELECT ts_ms, status, detail FROM order_events "
                "WHERE client_order_id = ? ORDER BY seq",
                (client_order_id,),
            )
        ]
        fills = [
            OrderFill(ts_ms=t, qty=q / E8, price=p / E8, fee=f / E8)
            for t, q, p, f in conn.execute(
                "SELECT ts_ms, qty_e8, price_e8, fee_e8 FROM fills "
                "WHERE client_order_id = ? ORDER BY fill_id",
                (client_order_id,),
            )
        ]
    return OrderHistory(
        client_order_id=order[0],
        symbol=order[1],
        side=order[2],
        type=order[3],
        qty=order[4] / E8,
        limit=order[5] / E8 if order[5] is not None else None,
        status=order[6],
        filled_qty=order[7] / E8,
        avg_price=order[8] / E8 if order[8] is not None else None,
        reason=order[9],
        created_ms=order[10],
        updated_ms=order[11],
        bar_ts_ms=order[12],
        tag=order[13],
        verdict=order[14],
        rule_inputs=msgspec.json.decode(order[15]) if order[15] else {},
        events=events,
        fills=fills,
    )
