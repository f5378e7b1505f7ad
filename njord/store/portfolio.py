"""PortfolioStore and SnapshotStore over the session db."""

from __future__ import annotations

from typing import Any

import apsw
import msgspec

from njord.core.book import BookState
from njord.errors import ConfigError
from njord.store.reads import one

_json = msgspec.json.Encoder(order="sorted").encode
COMPARED = (
    "cash_e8",
    "realised_e8",
    "fees_e8",
    "peak_equity_e8",
    "bars",
    "last_bar_ms",
    "next_intent",
    "state",
    "daily_realised_e8",
    "counters",
    "last_block",
    "lots",
)


class SqlitePortfolioStore:
    """The book as of the last commit: account, risk state, lots and positions."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn

    def save(self, state: BookState, *, symbols: tuple[str, ...]) -> None:
        c, s = self.conn, state
        c.execute(
            "INSERT OR REPLACE INTO account VALUES (1, ?, ?, ?, ?, ?, ?, ?)",
            (
                s.cash_e8,
                s.realised_e8,
                s.fees_e8,
                s.peak_equity_e8,
                s.last_bar_ms,
                s.bars,
                s.next_intent,
            ),
        )
        c.execute(
            "INSERT OR REPLACE INTO risk_state VALUES (1, ?, ?, ?, ?)",
            (str(s.day), s.daily_realised_e8, s.last_block, _json(dict(s.counters)).decode()),
        )
        c.execute("DELETE FROM lots")
        c.executemany(
            "INSERT INTO lots VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    lot.lot_seq,
                    lot.symbol,
                    lot.entry_fill_id,
                    lot.entry_ms,
                    lot.qty_e8,
                    lot.cost_e8,
                    lot.fee_e8,
                )
                for lot in s.lots
            ],
        )
        for sleeve in s.sleeves:
            c.execute(
                "UPDATE sleeves SET halted = ?, cash_e8 = ?, realised_e8 = ?, fees_e8 = ?, "
                "budget_e8 = ? WHERE strategy_id = ?",
                (
                    sleeve.halted,
                    sleeve.cash_e8,
                    sleeve.realised_e8,
                    sleeve.fees_e8,
                    sleeve.budget_e8,
                    sleeve.id,
                ),
            )
        for symbol in symbols:  # every traded symbol's row, held or not
            mine = [lot for lot in s.lots if lot.symbol == symbol]
            c.execute(
                "INSERT OR REPLACE INTO positions VALUES (?, ?, ?, ?, ?)",
                (
                    symbol,
                    sum(lot.qty_e8 for lot in mine),
                    sum(lot.cost_e8 for lot in mine),
                    s.realised_e8,
                    s.fees_e8,
                ),
            )

    def load(self) -> dict[str, Any]:
        """The stored book in BookState's field names (lots as (seq, symbol, qty, cost))."""
        conn = self.conn
        account = one(
            conn,
            "SELECT cash_e8, realised_e8, fees_e8, peak_equity_e8, "
            "last_bar_ms, bars, next_intent FROM account",
        )
        daily, last_block, counters = one(
            conn, "SELECT daily_realised_e8, last_block, counters FROM risk_state"
        )
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
            "state": one(conn, "SELECT state FROM trading_state")[0],
            "lots": [
                list(r)
                for r in conn.execute(
                    "SELECT lot_seq, symbol, qty_e8, cost_e8 FROM lots ORDER BY lot_seq"
                )
            ],
        }

    def differences(self, state: BookState) -> list[str]:
        """Field by field, where the in-memory book differs from the stored one."""
        stored = self.load()
        mine = msgspec.json.decode(msgspec.json.encode(state))  # tuples become lists, as stored
        mine["lots"] = sorted(  # in lot order, as stored: several symbols' lots interleave
            [lot["lot_seq"], lot["symbol"], lot["qty_e8"], lot["cost_e8"]] for lot in mine["lots"]
        )
        return [
            f"{field}: stored {stored[field]}, in memory {mine[field]}"
            for field in COMPARED
            if stored[field] != mine[field]
        ]


class SqliteSnapshotStore:
    """Snapshots of the whole book, msgpack-encoded: restore(save(x)) == x, byte for byte."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn

    def save(self, state: BookState, *, bar_ts_ms: int, decision_seq: int) -> int:
        self.conn.execute(
            "INSERT INTO snapshots (bar_ts_ms, decision_seq, state) VALUES (?, ?, ?)",
            (bar_ts_ms, decision_seq, msgspec.msgpack.encode(state)),
        )
        return int(self.conn.last_insert_rowid())

    def load(self, snapshot_id: int) -> BookState:
        return msgspec.msgpack.decode(self._row(snapshot_id)[1], type=BookState)

    def decision_seq(self, snapshot_id: int) -> int:
        return int(self._row(snapshot_id)[0])

    def ids(self) -> list[int]:
        return [
            int(r[0]) for r in self.conn.execute("SELECT snapshot_id FROM snapshots ORDER BY 1")
        ]

    def _row(self, snapshot_id: int) -> tuple[Any, ...]:
        row = self.conn.execute(
            "SELECT decision_seq, state FROM snapshots WHERE snapshot_id = ?", (snapshot_id,)
        ).fetchone()
        if row is None:
            raise ConfigError(f"no snapshot {snapshot_id}; `njord replay` lists what there is")
        return tuple(row)


def create_sleeves(conn: apsw.Connection, rows: list[tuple[str, str, str, int, int]]) -> None:
    """A several-strategy session's sleeves, once, as it starts: (id, slot, strategy path,
    allocation e8, cash e8); `SqlitePortfolioStore.save` keeps their accounts from then on."""
    with conn:
        conn.executemany(
            "INSERT OR IGNORE INTO sleeves (strategy_id, slot, strategy_path, allocation_e8, "
            "initial_e8, cash_e8, realised_e8, fees_e8, budget_e8) "
            "VALUES (?, ?, ?, ?, ?, ?, 0, 0, 0)",
            [(*row, row[-1]) for row in rows],
        )
