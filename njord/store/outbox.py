"""The rows of one decision step (`core.book.Outbox`): intents with their verdicts, orders
and their state transitions, fills, closed trades and trading-state changes. The
coordinator chains them into the decision log first; these are the tables the log
speaks of."""

from __future__ import annotations

import apsw
import msgspec

from njord.core.book import Outbox

_json = msgspec.json.Encoder(order="sorted").encode


def insert(conn: apsw.Connection, out: Outbox, *, last_bar_ms: int | None) -> None:
    """An order's `updated_ms` is the bar it was last seen at (its creation before any)."""
    # A step fills some tables only (most bars: an intent and its order, no trade): a
    # statement with no rows is not run at all.
    if out.intents:
        _intents(conn, out)
    if out.orders:
        _orders(conn, out, last_bar_ms)
    if out.order_events:
        conn.executemany(
            "INSERT INTO order_events (client_order_id, ts_ms, status, detail) "
            "VALUES (?, ?, ?, ?)",
            out.order_events,
        )
    if out.fills:
        _fills(conn, out)
    if out.trades:
        _trades(conn, out)
    for s in out.state_changes:
        conn.execute(
            "INSERT INTO state_changes (ts_ms, from_state, to_state, changed_by, reason) "
            "VALUES (?, ?, ?, ?, ?)",
            (s.ts_ms, s.from_state, s.to_state, s.changed_by, s.reason),
        )
        conn.execute(
            "UPDATE trading_state SET state = ?, changed_ms = ?, changed_by = ?, reason = ? "
            "WHERE id = 1",
            (s.to_state, s.ts_ms, s.changed_by, s.reason),
        )


def _intents(c: apsw.Connection, out: Outbox) -> None:
    c.executemany(
        "INSERT INTO intents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                r.intent_id,
                r.bar_ts_ms,
                r.seq,
                r.intent.symbol,
                r.intent.side,
                r.intent.type,
                r.qty_e8,
                r.limit_e8,
                r.intent.tag,
                int(r.verdict.allowed),
                r.verdict.reason,
                _json(r.verdict.inputs).decode(),
                r.client_order_id,
            )
            for r in out.intents
        ],
    )


def _orders(c: apsw.Connection, out: Outbox, last_bar_ms: int | None) -> None:
    c.executemany(
        "INSERT INTO orders (client_order_id, intent_id, symbol, side, type, qty_e8, "
        "limit_e8, status, filled_qty_e8, avg_price_e8, reason, created_ms, updated_ms) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (client_order_id) DO "
        "UPDATE SET status = excluded.status, filled_qty_e8 = excluded.filled_qty_e8, "
        "avg_price_e8 = excluded.avg_price_e8, reason = excluded.reason, "
        "updated_ms = excluded.updated_ms",
        [
            (
                o.client_order_id,
                o.intent_id,
                o.symbol,
                o.side,
                o.type,
                o.qty_e8,
                o.limit_e8,
                o.status,
                o.filled_qty_e8,
                o.avg_price_e8,
                o.reason,
                o.created_ms,
                last_bar_ms or o.created_ms,
            )
            for o in out.orders.values()
        ],
    )


def _fills(c: apsw.Connection, out: Outbox) -> None:
    c.executemany(
        "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                f.fill_id,
                f.client_order_id,
                f.ts_ms,
                f.symbol,
                f.side,
                f.qty_e8,
                f.price_e8,
                f.notional_e8,
                f.fee_e8,
                f.realised_e8,
            )
            for f in out.fills
        ],
    )


def _trades(c: apsw.Connection, out: Outbox) -> None:
    c.executemany(
        "INSERT INTO trades (symbol, direction, qty_e8, entry_ms, entry_cost_e8, exit_ms, "
        "exit_value_e8, pnl_e8, fees_e8, entry_fill_id, exit_fill_id) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            (
                t.symbol,
                t.direction,
                t.qty_e8,
                t.entry_ms,
                t.entry_cost_e8,
                t.exit_ms,
                t.exit_value_e8,
                t.pnl_e8,
                t.fees_e8,
                t.entry_fill_id,
                t.exit_fill_id,
            )
            for t in out.trades
        ],
    )
