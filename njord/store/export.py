"""Exports of a session db: stable file names, column order and number format.

Decimals are written with exactly 8 places, times as ISO-8601 UTC with a trailing Z, so
two runs of the same inputs give byte-identical files.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Literal

import apsw
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from njord.store import logs as log_store

Kind = Literal["int", "e8", "time", "text"]

# (file stem, SQL, [(column name, kind)]) — the column order is the file's contract.
TABLES: list[tuple[str, str, list[tuple[str, Kind]]]] = [
    (
        "trades",
        "SELECT trade_id, symbol, direction, qty_e8, entry_ms, entry_cost_e8, exit_ms, "
        "exit_value_e8, pnl_e8, fees_e8, pnl_e8 - fees_e8, entry_fill_id, exit_fill_id "
        "FROM trades ORDER BY trade_id",
        [
            ("trade_id", "int"),
            ("symbol", "text"),
            ("direction", "text"),
            ("qty", "e8"),
            ("entry_utc", "time"),
            ("entry_cost", "e8"),
            ("exit_utc", "time"),
            ("exit_value", "e8"),
            ("pnl", "e8"),
            ("fees", "e8"),
            ("net_pnl", "e8"),
            ("entry_fill_id", "int"),
            ("exit_fill_id", "int"),
        ],
    ),
    (
        "orders",
        "SELECT client_order_id, created_ms, symbol, side, type, qty_e8, limit_e8, status, "
        "filled_qty_e8, avg_price_e8, COALESCE(reason, '') FROM orders ORDER BY intent_id",
        [
            ("client_order_id", "text"),
            ("created_utc", "time"),
            ("symbol", "text"),
            ("side", "text"),
            ("type", "text"),
            ("qty", "e8"),
            ("limit_price", "e8"),
            ("status", "text"),
            ("filled_qty", "e8"),
            ("avg_price", "e8"),
            ("reason", "text"),
        ],
    ),
    (
        "fills",
        "SELECT fill_id, client_order_id, ts_ms, symbol, side, qty_e8, price_e8, notional_e8, "
        "fee_e8, realised_e8 FROM fills ORDER BY fill_id",
        [
            ("fill_id", "int"),
            ("client_order_id", "text"),
            ("ts_utc", "time"),
            ("symbol", "text"),
            ("side", "text"),
            ("qty", "e8"),
            ("price", "e8"),
            ("notional", "e8"),
            ("fee", "e8"),
            ("realised", "e8"),
        ],
    ),
    (
        "equity",
        "SELECT ts_ms, close_e8, cash_e8, position_e8, equity_e8 FROM equity ORDER BY ts_ms",
        [
            ("ts_utc", "time"),
            ("close", "e8"),
            ("cash", "e8"),
            ("position", "e8"),
            ("equity", "e8"),
        ],
    ),
]


def fmt_e8_array(values: pa.Array) -> pa.Array:
    """Vectorised fmt_e8: integers scaled by 1e8 as fixed 8-decimal strings."""
    digits = pc.utf8_lpad(pc.cast(pc.abs(values), pa.string()), 9, "0")
    text = pc.binary_join_element_wise(
        pc.utf8_slice_codeunits(digits, 0, -8), pc.utf8_slice_codeunits(digits, -8, 1 << 30), "."
    )
    signed = pc.binary_join_element_wise("-", text, "")
    return pc.if_else(pc.less(values, 0), signed, text)


def fmt_time_array(values: pa.Array) -> pa.Array:
    seconds = pc.cast(pc.divide(values, 1000), pa.timestamp("s", tz="UTC"))
    return pc.strftime(seconds, format="%Y-%m-%dT%H:%M:%SZ")


_FORMAT: dict[Kind, Callable[[pa.Array], pa.Array]] = {
    "int": lambda a: a,
    "e8": fmt_e8_array,
    "time": fmt_time_array,
    "text": lambda a: a,
}
_TYPE: dict[Kind, pa.DataType] = {
    "int": pa.int64(),
    "e8": pa.int64(),
    "time": pa.int64(),
    "text": pa.string(),
}


def read_table(conn: apsw.Connection, sql: str, columns: list[tuple[str, Kind]]) -> pa.Table:
    rows = conn.execute(sql).fetchall()
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pa.table(
        {name: pa.array(col, _TYPE[kind]) for (name, kind), col in zip(columns, cols, strict=True)}
    )


def formatted(conn: apsw.Connection, sql: str, columns: list[tuple[str, Kind]]) -> pa.Table:
    raw = read_table(conn, sql, columns)
    return pa.table(
        {
            name: pc.fill_null(_FORMAT[kind](raw.column(name)), "")
            if kind != "int"
            else raw.column(name)
            for name, kind in columns
        }
    )


def export_session(
    conn: apsw.Connection, out: Path, *, fmt: Literal["csv", "parquet"] = "csv"
) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, sql, columns in TABLES:
        path = out / f"{stem}.{fmt}"
        if fmt == "csv":
            table = formatted(conn, sql, columns)
            # Arrow quotes every header cell; write a plain header ourselves. Values are codes,
            # ids, ISO times and numbers: never a comma or quote, and Arrow refuses one if it were.
            options = pcsv.WriteOptions(quoting_style="none", include_header=False)
            with path.open("wb") as fh:
                fh.write((",".join(table.column_names) + "\n").encode())
                pcsv.write_csv(table, fh, write_options=options)
        else:
            raw = read_table(conn, sql, columns)
            suffix = {"e8": "_e8", "time": "_ms", "int": "", "text": ""}
            names = [name.removesuffix("_utc") + suffix[kind] for name, kind in columns]
            pq.write_table(raw.rename_columns(names), path, compression="zstd")
        written.append(path)
    logs = out / "logs.jsonl"
    with logs.open("wb") as fh:
        fh.writelines(log_store.iter_jsonl(conn))
    written.append(logs)
    return written
