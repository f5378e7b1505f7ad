"""The rows of one decision step (`core.book.Outbox`): intents with their verdicts, orders
and their state transitions, fills, closed trades and trading-state changes. The
coordinator chains them into the decision log first; these are the tables the log
speaks of."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from njord.core.book import Outbox, SleeveChange, StateChange

_json = msgspec.json.Encoder(order="sorted").encode


def insert(conn: apsw.Connection, out: Outbox, *, last_bar_ms: int | None) -> None:
    """An order's `updated_ms` is the bar it was last seen at (its creation before any)."""
    rows = Rows()
    rows.add(out, last_bar_ms=last_bar_ms)
    rows.flush(conn)


class Rows:
    """The rows of the decision steps of one transaction, table by table, in step order:
    written by `flush` with one statement per table, parents before children (an order
    before its events and fills, a fill before its trade), so a backtest's thousand bars
    cost a handful of statements, not a few per order. The rows are built when added:
    a later change to an order is a later row."""

    def __init__(self) -> None:
        self.intents: list[tuple[Any, ...]] = []
        self.orders: list[tuple[Any, ...]] = []
        self.order_events: list[tuple[str, int, str, str]] = []
        self.fills: list[tuple[Any, ...]] = []
        self.trades: list[tuple[Any, ...]] = []
        self.state_changes: list[StateChange] = []
        self.sleeve_changes: list[SleeveChange] = []
        self.shares: list[tuple[Any, ...]] = []

    def __bool__(self) -> bool:
        return bool(
            self.intents
            or self.orders
            or self.order_events
            or self.fills
            or self.trades
            or self.state_changes
            or self.sleeve_changes
            or self.shares
        )

    def add(self, out: Outbox, *, last_bar_ms: int | None) -> None:
        if out.intents:
            self.intents += _intents(out)
        if out.orders:
            self.orders += _orders(out, last_bar_ms)
        self.order_events += out.order_events
        if out.fills:
            self.fills += _fills(out)
        if out.trades:
            self.trades += _trades(out)
        self.state_changes += out.state_changes
        self.sleeve_changes += out.sleeve_changes
        self.shares += [
            (
                s.fill_id,
                s.client_order_id,
                s.strategy_id,
                s.side,
                s.qty_e8,
                s.price_e8,
                s.notional_e8,
                s.fee_e8,
            )
            for s in out.shares
        ]

    def flush(self, conn: apsw.Connection) -> None:
        """Into the open transaction; then nothing is held."""
        if self.intents:
            conn.executemany(
                "INSERT INTO intents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.intents,
            )
        if self.orders:
            conn.executemany(
                "INSERT INTO orders (client_order_id, intent_id, symbol, side, type, qty_e8, "
                "limit_e8, status, filled_qty_e8, avg_price_e8, reason, created_ms, updated_ms, "
                "strategy_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (client_order_id) DO UPDATE SET status = excluded.status, "
                "filled_qty_e8 = excluded.filled_qty_e8, "
                "avg_price_e8 = excluded.avg_price_e8, reason = excluded.reason, "
                "updated_ms = excluded.updated_ms",
                self.orders,
            )
        if self.order_events:
            conn.executemany(
                "INSERT INTO order_events (client_order_id, ts_ms, status, detail) "
                "VALUES (?, ?, ?, ?)",
                self.order_events,
            )
        if self.fills:
            conn.executemany(
                "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", self.fills
            )
        if self.trades:
            conn.executemany(
                "INSERT INTO trades (symbol, direction, qty_e8, entry_ms, entry_cost_e8, exit_ms, "
                "exit_value_e8, pnl_e8, fees_e8, entry_fill_id, exit_fill_id) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                self.trades,
            )
        for s in self.state_changes:
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
        if self.shares:
            conn.executemany("INSERT INTO fill_shares VALUES (?, ?, ?, ?, ?, ?, ?, ?)", self.shares)
        for c in self.sleeve_changes:
            conn.execute(
                "UPDATE sleeves SET halted = ?, changed_ms = ? WHERE strategy_id = ?",
                (c.halted, c.ts_ms, c.strategy_id),
            )
        self.clear()

    def clear(self) -> None:
        self.intents.clear()
        self.orders.clear()
        self.order_events.clear()
        self.fills.clear()
        self.trades.clear()
        self.state_changes.clear()
        self.sleeve_changes.clear()
        self.shares.clear()


def _intents(out: Outbox) -> list[tuple[Any, ...]]:
    return [
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
            r.strategy_id,
        )
        for r in out.intents
    ]


def _orders(out: Outbox, last_bar_ms: int | None) -> list[tuple[Any, ...]]:
    return [
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
            o.strategy_id,
        )
        for o in out.orders.values()
    ]


def _fills(out: Outbox) -> list[tuple[Any, ...]]:
    return [
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
            f.strategy_id,
        )
        for f in out.fills
    ]


def _trades(out: Outbox) -> list[tuple[Any, ...]]:
    return [
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
    ]
