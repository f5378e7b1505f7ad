"""A notebook's way into sessions and sweeps: `njord.research.load("runs/x/session.db")`,
`njord.research.load_sweep("runs/sweep-…")`. Also home of the sweep, its executors and
the walk-forward."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa

from njord.data.history import read_ipc
from njord.store import db
from njord.store.export import TABLES, read_table
from njord.store.history import stored_bar_blobs


class Session(msgspec.Struct, frozen=True):
    """A session's bars, orders, fills, trades and equity as pyarrow Tables (exact ints:
    columns ending _e8 are scaled by 1e8, _ms are epoch milliseconds)."""

    bars: pa.Table
    orders: pa.Table
    fills: pa.Table
    trades: pa.Table
    equity: pa.Table

    def to_pandas(self) -> dict[str, Any]:
        """The same tables as pandas DataFrames (needs pandas installed)."""
        return {name: getattr(self, name).to_pandas() for name in self.__struct_fields__}


def load(path: str | Path) -> Session:
    conn = db.open_reader(Path(path))
    try:
        tables = {
            stem: read_table(conn, sql, columns).rename_columns(
                [
                    n.removesuffix("_utc") + {"e8": "_e8", "time": "_ms"}.get(k, "")
                    for n, k in columns
                ]
            )
            for stem, sql, columns in TABLES
            if stem in ("orders", "fills", "trades", "equity")
        }
        blobs = stored_bar_blobs(conn)
    finally:
        conn.close()
    bars = pa.Table.from_batches([read_ipc(b) for b in blobs]) if blobs else pa.table({})
    return Session(bars=bars, **tables)


def load_sweep(path: str | Path) -> pa.Table:
    """One row per combination of a sweep directory (finished, running or cut short): its
    params by column, status and reason, metrics, final equity and db file name, in
    combination order. Unfinished combinations have status `pending`."""
    from njord.research import sweep

    where = Path(path)
    plan = sweep.load(where)
    skipped, _ = sweep.prepare(plan)
    return sweep.table(sweep.rows(plan, where, skipped, pending_ok=True), plan.grid.columns)
