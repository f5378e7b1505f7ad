"""What venues said, as the session db keeps it: the paper broker's journal, each fill's
trade id, and the bar whose decisions are committed."""

from __future__ import annotations

import apsw
import msgspec

from njord.core.book import BarE8, VenueTrade
from njord.core.reports import Report
from njord.records import Order

_encode = msgspec.msgpack.Encoder().encode
_reports = msgspec.msgpack.Decoder(list[Report])
_order = msgspec.msgpack.Decoder(Order)
_bar = msgspec.msgpack.Decoder(BarE8)


class PaperJournal:
    """The paper broker's state in the session db, each change in its own transaction:
    written before the broker answers, as a venue's own books would be."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn

    def save_order(self, order: Order, reports: list[Report], *, open_: bool) -> None:
        with self.conn:
            self.conn.execute(
                "INSERT INTO paper_orders (client_order_id, open, order_msg, reports) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (client_order_id) DO UPDATE SET "
                "open = excluded.open, reports = excluded.reports",
                (order.client_order_id, int(open_), _encode(order), _encode(reports)),
            )

    def count_send(self, client_order_id: str) -> None:
        """A submit of an id the broker already holds: it executes nothing, but is counted
        (the crash tests prove it never happens)."""
        with self.conn:
            self.conn.execute(
                "UPDATE paper_orders SET sends = sends + 1 WHERE client_order_id = ?",
                (client_order_id,),
            )

    def save_bar(self, bar: BarE8) -> None:
        """The last bar matched, per symbol (a bar that names none: the session's one)."""
        with self.conn:
            self.conn.execute(
                "INSERT OR REPLACE INTO paper_market (symbol, bar) VALUES (?, ?)",
                (bar.symbol, _encode(bar)),
            )

    def load(self) -> tuple[list[tuple[Order, list[Report], bool]], list[BarE8]]:
        """The orders it holds, and its last bar of each symbol (oldest first)."""
        rows = [
            (_order.decode(o), _reports.decode(r), bool(open_))
            for o, r, open_ in self.conn.execute(
                "SELECT order_msg, reports, open FROM paper_orders ORDER BY rowid"
            )
        ]
        bars = [_bar.decode(blob) for (blob,) in self.conn.execute("SELECT bar FROM paper_market")]
        return rows, sorted(bars, key=lambda b: b.ts_ms)


def decode_reports(blob: bytes) -> list[Report]:
    return _reports.decode(blob)


def decode_order(blob: bytes) -> Order:
    return _order.decode(blob)


def duplicate_sends(conn: apsw.Connection) -> int:
    """Submits the paper broker received for an id it already held."""
    row = conn.execute("SELECT COALESCE(sum(sends - 1), 0) FROM paper_orders").fetchone()
    return int(row[0]) if row else 0


def save_trade_ids(conn: apsw.Connection, rows: list[VenueTrade]) -> None:
    conn.executemany(
        "INSERT INTO fill_trades (fill_id, trade_id, qty_e8, commission_e8, commission_asset) "
        "VALUES (?, ?, ?, ?, ?)",
        [(t.fill_id, t.trade_id, t.qty_e8, t.commission_e8, t.commission_asset) for t in rows],
    )


def mark_decided(conn: apsw.Connection, bar_ms: int) -> None:
    conn.execute("INSERT OR REPLACE INTO decided (id, bar_ms) VALUES (1, ?)", (bar_ms,))


def decided_bar_ms(conn: apsw.Connection) -> int | None:
    row = conn.execute("SELECT bar_ms FROM decided WHERE id = 1").fetchone()
    return int(row[0]) if row else None


def trade_ids(conn: apsw.Connection, coids: list[str]) -> dict[str, set[str]]:
    """The trade ids applied to these orders' fills."""
    found: dict[str, set[str]] = {coid: set() for coid in coids}
    for coid in coids:
        for (trade_id,) in conn.execute(
            "SELECT t.trade_id FROM fills f JOIN fill_trades t USING (fill_id) "
            "WHERE f.client_order_id = ?",
            (coid,),
        ):
            found[coid].add(str(trade_id))
    return found


class StrategySnapshot(msgspec.Struct, frozen=True, kw_only=True):
    snapshot_id: int  # the book snapshot taken with it
    decision_seq: int
    bar_ts_ms: int
    strategy: bytes
    timeframes: bytes


def save_strategy_snapshot(
    conn: apsw.Connection, snapshot_id: int, bar_ts_ms: int, strategy: bytes, timeframes: bytes
) -> None:
    conn.execute(
        "INSERT INTO strategy_snapshots (snapshot_id, bar_ts_ms, strategy, timeframes) "
        "VALUES (?, ?, ?, ?)",
        (snapshot_id, bar_ts_ms, strategy, timeframes),
    )


def latest_strategy_snapshot(conn: apsw.Connection, through_ms: int) -> StrategySnapshot | None:
    row = conn.execute(
        "SELECT s.snapshot_id, n.decision_seq, s.bar_ts_ms, s.strategy, s.timeframes "
        "FROM strategy_snapshots s JOIN snapshots n USING (snapshot_id) "
        "WHERE s.bar_ts_ms <= ? ORDER BY s.snapshot_id DESC LIMIT 1",
        (through_ms,),
    ).fetchone()
    if row is None:
        return None
    return StrategySnapshot(
        snapshot_id=int(row[0]),
        decision_seq=int(row[1]),
        bar_ts_ms=int(row[2]),
        strategy=bytes(row[3]),
        timeframes=bytes(row[4]),
    )
