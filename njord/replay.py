"""`njord replay`: rebuild the book from a snapshot plus the decision log after it, and
compare it, field by field, with the state the session stored at its last commit."""

from __future__ import annotations

from typing import Any

import msgspec

from njord.core.book import Book
from njord.reasons import TradingState
from njord.records import Fill, OrderStatus, Side
from njord.store import db, history
from njord.store.portfolio import SqliteSnapshotStore


def rebuild(book: Book, conn: db.Connection, snapshot_id: int) -> None:
    snapshots = SqliteSnapshotStore(conn)
    book.restore(snapshots.load(snapshot_id))
    for bar_ts, kind, ref, payload in history.decisions_after(
        conn, snapshots.decision_seq(snapshot_id)
    ):
        apply_record(book, conn, bar_ts, kind, ref, msgspec.json.decode(payload))
    book.take_filled()


def apply_record(book: Book, conn: db.Connection, bar_ts: int, kind: str, ref: str, p: Any) -> None:
    """One decision-log record, applied to the book as it was applied when it was made."""
    if kind == "fill":
        fill = Fill(
            fill_id=int(ref),
            client_order_id=p["client_order_id"],
            ts_ms=p["ts_ms"],
            symbol=p.get("symbol", book.symbol),
            side=Side(p["side"]),
            qty_e8=p["qty_e8"],
            price_e8=p["price_e8"],
            notional_e8=p["notional_e8"],
            fee_e8=p["fee_e8"],
            strategy_id=p.get("strategy_id", ""),
        )
        book.roll_day(fill.ts_ms)
        realised, _ = book.book_fill(fill)
        book.daily_realised_e8 += realised - fill.fee_e8
        # What the strategy heard (`on_fill`), for a rebuild that feeds it again.
        book.filled.append(msgspec.structs.replace(fill, realised_e8=realised))
        book.next_fill = max(book.next_fill, fill.fill_id + 1)
    elif kind == "share":  # a sleeve's share of a net order's fill (its strategy hears of it)
        share = Fill(
            fill_id=p["fill_id"],
            client_order_id=ref,
            ts_ms=p["ts_ms"],
            symbol=p["symbol"],
            side=Side(p["side"]),
            qty_e8=p["qty_e8"],
            price_e8=p["price_e8"],
            notional_e8=p["notional_e8"],
            fee_e8=p["fee_e8"],
            strategy_id=p["strategy_id"],
        )
        book.book_share(share)
        book.filled.append(share)
    elif kind == "intent":
        if "netted" in p:
            book.note_net(p["client_order_id"], p["netted"])
        book.next_intent = max(book.next_intent, int(ref) + 1)
        if not p["allowed"]:
            book.counters[p["reason"]] = book.counters.get(p["reason"], 0) + 1
            book.last_block = p["reason"]
    elif kind == "order":
        _order(book, conn, ref, OrderStatus(p["status"]))
    elif kind == "state":
        book.state = TradingState(p["to_state"])
    elif kind == "sleeve":
        book.sleeves[ref].halted = p["halted"]
    elif kind == "budget":
        sleeve = book.sleeves[ref]
        sleeve.budget_day, sleeve.budget_e8 = p["day"], p["budget_e8"]
        sleeve.begin_day(p["day"], p["equity_e8"], max(book.allocator.days, 1))
    elif kind == "commit":
        book.bars += p["bars"]
        book.last_bar_ms = bar_ts
        book.peak_equity_e8 = max(book.peak_equity_e8, p["peak_equity_e8"])
        book.day_equity_e8 = p["last_equity_e8"]  # a new day's budgets start from it
        book.roll_day(bar_ts)  # a new UTC day began inside this commit after its last fill


def _order(book: Book, conn: db.Connection, coid: str, status: OrderStatus) -> None:
    if status in (OrderStatus.NEW, OrderStatus.SUBMITTED, OrderStatus.PARTIALLY_FILLED):
        if coid not in book.open_orders:
            book.open_orders[coid] = history.order(conn, coid)
        book.open_orders[coid].status = status
    else:
        book.replayed_close(coid)
        for child in book.netted.pop(coid, []):  # a net order's sleeve orders end with it
            book.net_of.pop(child, None)
