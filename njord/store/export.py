"""Exports of a session db: stable file names, column order and number format.

Decimals are written with exactly 8 places, times as ISO-8601 UTC with a trailing Z, so
two runs of the same inputs give byte-identical files.
"""

from __future__ import annotations

import contextlib
import itertools
import operator
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal, TextIO

import apsw
import pyarrow as pa
import pyarrow.parquet as pq

from njord.data.columns import from_values
from njord.errors import ConfigError
from njord.store import db, reads
from njord.store import logs as log_store

Kind = Literal["int", "e8", "time", "text", "float"]

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
        "filled_qty_e8, avg_price_e8, reason FROM orders ORDER BY intent_id",
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
        "rollup_daily",
        "SELECT day_ms, bars, equity_e8, pnl_e8, orders, fills, fees_e8, realised_e8, "
        "decision_latency_max_ms FROM v_daily ORDER BY day_ms",
        [
            ("day_utc", "time"),
            ("bars", "int"),
            ("equity", "e8"),
            ("pnl", "e8"),
            ("orders", "int"),
            ("fills", "int"),
            ("fees", "e8"),
            ("realised", "e8"),
            ("decision_latency_max_ms", "float"),
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


# Written only for a session that has their rows: several symbols' marks, several
# strategies' sleeve equity.
SEVERAL: list[tuple[str, str, list[tuple[str, Kind]]]] = [
    (
        "marks",
        "SELECT ts_ms, symbol, close_e8, position_e8 FROM marks ORDER BY ts_ms, symbol",
        [("ts_utc", "time"), ("symbol", "text"), ("close", "e8"), ("position", "e8")],
    ),
    (
        "sleeve_equity",
        "SELECT ts_ms, strategy_id, cash_e8, equity_e8 FROM sleeve_equity "
        "ORDER BY ts_ms, strategy_id",
        [("ts_utc", "time"), ("strategy_id", "text"), ("cash", "e8"), ("equity", "e8")],
    ),
]

_TYPE: dict[Kind, pa.DataType] = {
    "int": pa.int64(),
    "e8": pa.int64(),
    "time": pa.int64(),
    "text": pa.string(),
    "float": pa.float64(),
}


def _sql_text(column: str, kind: Kind) -> str:
    """SQL that renders one column as its CSV text: SQLite formats, Python only copies."""
    if kind == "e8":
        return (
            f"CASE WHEN {column} IS NULL THEN '' ELSE printf('%s%d.%08d', "
            f"CASE WHEN {column} < 0 THEN '-' ELSE '' END, abs({column}) / 100000000, "
            f"abs({column}) % 100000000) END"
        )
    if kind == "float":
        return f"CASE WHEN {column} IS NULL THEN '' ELSE printf('%.3f', {column}) END"
    if kind == "time":
        # strftime's text, at a quarter of its cost (datetime() skips the format parser).
        return f"replace(datetime({column} / 1000, 'unixepoch'), ' ', 'T') || 'Z'"
    return f"COALESCE({column}, '')"


def _line(texts: list[str]) -> str:
    """The cells' texts in one printf: cheaper than a concatenation per cell."""
    cells = ",".join("%s" for _ in texts)
    return f"printf('{cells}' || char(10), {', '.join(texts)})"


def _csv_sql(sql: str, columns: list[tuple[str, Kind]]) -> str:
    return f"SELECT {_csv_line(sql, columns)} FROM {sql.partition(' FROM ')[2]}"


def _csv_line(sql: str, columns: list[tuple[str, Kind]]) -> str:
    """The CSV line of a row of `sql` (a SELECT of plain columns), as SQL."""
    select = sql.partition(" FROM ")[0]
    exprs = [e.strip() for e in select.removeprefix("SELECT ").split(", ")]
    return _line([_sql_text(e, k) for e, (_, k) in zip(exprs, columns, strict=True)])


def _line_sql(columns: list[tuple[str, Kind]]) -> str:
    """The CSV line of one row bound as parameters ?1, ?2, ...: the same text as _csv_sql."""
    return f"SELECT {_line([_sql_text(f'?{i}', k) for i, (_, k) in enumerate(columns, 1)])}"


# Each row's one column, the line: a C-level step per row (half a million for a year).
_first = operator.itemgetter(0)


def write_csv(
    conn: apsw.Connection,
    path: Path,
    sql: str,
    columns: list[tuple[str, Kind]],
    rows: list[tuple[Any, ...]] | None = None,
) -> None:
    """Streams rows to the file: memory stays flat however long the session. `rows`: the
    query's rows, read already (SQLite formats them all the same)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(",".join(name for name, _ in columns) + "\n")
        if rows is not None:
            fh.writelines(map(_first, conn.executemany(_line_sql(columns), rows)))
            return
        # The year's equity is half a million lines: read on a plain cursor (no Python
        # step per row), its errors translated here, as the session cursor would.
        try:
            fh.writelines(map(_first, apsw.Cursor(conn).execute(_csv_sql(sql, columns))))
        except apsw.Error as e:
            db.fail(e, conn)


# The equity curve: its lines `CURVE_CHUNK` at a time, in one step each (SQLite formats a
# chunk without coming back to Python), the bar after the last one written next.
CURVE_CHUNK = 8_192
_, _EQUITY_SQL, _EQUITY_COLUMNS = next(t for t in TABLES if t[0] == "equity")
_CURVE_SQL = (
    "SELECT group_concat(line, '' ORDER BY ts_ms), max(ts_ms), count(*) FROM (SELECT ts_ms, "
    f"{_csv_line(_EQUITY_SQL, _EQUITY_COLUMNS)} AS line FROM equity WHERE ts_ms > ? "
    "ORDER BY ts_ms LIMIT ?)"
)


FOLLOW_S = 0.1  # how long a follower that has caught up waits before it looks again


class Following:
    """equity.csv written while its session runs: a thread on its own read connection
    follows the equity rows as they commit (a row a bar: the longest file by far), SQLite
    formatting `CURVE_CHUNK` lines per step with the GIL released, so on a second core a
    year's curve costs the loop next to nothing. It is `.equity.csv.partial` until `finish`
    (after the session's last commit) writes the rest and renames it; `abandon` (a run
    that failed or stopped) removes it. Either closes the thread's connection, so the
    session's own close leaves no -wal behind."""

    def __init__(self, db_path: Path, out: Path) -> None:
        self._made = not out.exists()
        out.mkdir(parents=True, exist_ok=True)
        self.path = out / "equity.csv"
        self._partial = out / ".equity.csv.partial"
        self._done = threading.Event()
        self._ended = False  # finished or abandoned
        self.dropped = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._follow, args=(db_path,), name="njord-equity-csv", daemon=True
        )
        self._thread.start()

    def _follow(self, db_path: Path) -> None:
        try:
            conn = db.open_reader(db_path)
            try:
                with self._partial.open("w", encoding="utf-8", newline="") as fh:
                    _write_curve(conn, fh, self)
            finally:
                conn.close()
        except BaseException as e:  # raised in the session's thread, by `finish`
            self._error = e

    @property
    def done(self) -> bool:
        return self._done.is_set()

    def wait(self) -> None:
        self._done.wait(FOLLOW_S)

    def finish(self) -> Path:
        """After the session's last commit: the rest of the curve, and the file in place."""
        self._done.set()
        self._thread.join()
        if self._error is not None:
            raise self._error  # `abandon` (the caller's cleanup) removes the partial file
        self._partial.replace(self.path)
        self._ended = True
        return self.path

    def abandon(self) -> None:
        """The session ends without its exports: no file, and no folder made for it."""
        if self._ended:
            return
        self.dropped = True
        self._done.set()
        self._thread.join()
        self._ended = True
        self._partial.unlink(missing_ok=True)
        if self._made:
            with contextlib.suppress(OSError):  # not empty: something else is in it
                self.path.parent.rmdir()


def write_curve(conn: apsw.Connection, path: Path) -> None:
    """equity.csv of a finished session, the same bytes `Following` writes."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        _write_curve(conn, fh, None)


def _write_curve(conn: apsw.Connection, fh: TextIO, follower: Following | None) -> None:
    """The equity rows as CSV lines, a chunk a step, the bar after the last one written
    next; with a `follower`, on until its session has committed its last row."""
    fh.write(",".join(name for name, _ in _EQUITY_COLUMNS) + "\n")
    after = -(2**63)  # below any bar's time, 1969's included
    while follower is None or not follower.dropped:
        final = follower is None or follower.done  # before the read: it sees every row
        text, last, n = next(db.rows(conn, _CURVE_SQL, (after, CURVE_CHUNK)))
        if text is not None:
            fh.write(text)
            after = last
        if n < CURVE_CHUNK:
            if final:
                return
            assert follower is not None
            follower.wait()


def read_table(conn: apsw.Connection, sql: str, columns: list[tuple[str, Kind]]) -> pa.Table:
    return _table(conn.execute(sql), columns)


def _table(source: Iterable[tuple[Any, ...]], columns: list[tuple[str, Kind]]) -> pa.Table:
    batches = []
    rest = iter(source)
    while rows := list(itertools.islice(rest, 50_000)):
        cols = list(zip(*rows, strict=True))
        kinds = [_TYPE[kind] for _, kind in columns]
        arrays = [from_values(col, kind) for kind, col in zip(kinds, cols, strict=True)]
        batches.append(pa.record_batch(arrays, names=[name for name, _ in columns]))
    schema = pa.schema([(name, _TYPE[kind]) for name, kind in columns])
    return pa.Table.from_batches(batches, schema=schema)


def check_apart(db_path: Path, out: Path) -> None:
    """Before a run: the session db must not be one of the files its exports write into
    `out` (`--db out/trades.csv` was written over by the trades)."""
    names = {f"{stem}.{ext}" for stem, _, _ in [*TABLES, *SEVERAL] for ext in ("csv", "parquet")}
    names |= {"breakdown.csv", "logs.jsonl", "report.html", "bars.parquet", ".equity.csv.partial"}
    if db_path.resolve().parent == out.resolve() and db_path.name in names:
        raise ConfigError(
            f"{db_path}: the exports write {db_path.name} into {out}; "
            "give the session db another name, or --out another folder"
        )


def export_session(
    conn: apsw.Connection,
    out: Path,
    *,
    fmt: Literal["csv", "parquet"] = "csv",
    curve: Following | None = None,
) -> list[Path]:
    """`curve`: equity.csv under way already (`Following`), finished in its place."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for stem, sql, columns in TABLES:
        if stem == "equity" and fmt == "csv":
            if curve is None:
                write_curve(conn, out / "equity.csv")
            written.append(out / "equity.csv" if curve is None else curve.finish())
            continue
        if stem == "rollup_daily":
            # Always in both formats (CSV for people, Parquet for tools), from one reading:
            # a row a day, but the view spans the whole session.
            rows = list(conn.execute(sql))
            write_csv(conn, out / f"{stem}.csv", sql, columns, rows)
            _write_parquet(out / f"{stem}.parquet", _table(rows, columns), columns)
            written += [out / f"{stem}.csv", out / f"{stem}.parquet"]
            continue
        path = out / f"{stem}.{fmt}"
        _write(conn, path, sql, columns)
        written.append(path)
    for stem, sql, columns in SEVERAL:  # several symbols or strategies: only when it has them
        if conn.execute(f"SELECT 1 FROM {stem} LIMIT 1").fetchone() is not None:
            path = out / f"{stem}.{fmt}"
            _write(conn, path, sql, columns)
            written.append(path)
    breakdown = reads.breakdown(conn)
    if breakdown:
        path = out / "breakdown.csv"
        with path.open("w", encoding="utf-8", newline="") as fh:
            fh.write("strategy_id,symbol,fills,bought,sold,fees,position,pnl\n")
            fh.writelines(
                f"{r.strategy_id},{r.symbol},{r.fills},{r.bought:.8f},{r.sold:.8f},"
                f"{r.fees:.8f},{r.position:.8f},{r.pnl:.8f}\n"
                for r in breakdown
            )
        written.append(path)
    logs = out / "logs.jsonl"
    with logs.open("wb") as fh:
        fh.writelines(log_store.iter_jsonl(conn))
    written.append(logs)
    return written


def _write(conn: apsw.Connection, path: Path, sql: str, columns: list[tuple[str, Kind]]) -> None:
    if path.suffix == ".csv":
        # Cells are codes, ids, ISO times and numbers: none needs CSV quoting.
        write_csv(conn, path, sql, columns)
        return
    _write_parquet(path, read_table(conn, sql, columns), columns)


def _write_parquet(path: Path, raw: pa.Table, columns: list[tuple[str, Kind]]) -> None:
    suffix = {"e8": "_e8", "time": "_ms", "int": "", "text": "", "float": ""}
    names = [name.removesuffix("_utc") + suffix[kind] for name, kind in columns]
    pq.write_table(raw.rename_columns(names), path, compression="zstd")


def several_symbols(conn: apsw.Connection) -> bool:
    """Whether the session has bars of several symbols (its stored chunks name them)."""
    return conn.execute("SELECT 1 FROM marks LIMIT 1").fetchone() is not None


def export_bars(conn: apsw.Connection, out: Path, *, symbol: str) -> Path:
    """The bars a session used, as a Parquet file a backtest can read (parity checks)."""
    from njord.data.history import read_ipc
    from njord.data.importer import BAR_SCHEMA, write_bars
    from njord.store.history import stored_bar_blobs

    batches = [read_ipc(blob) for blob in stored_bar_blobs(conn)]
    table = pa.Table.from_batches(batches).combine_chunks()
    n = table.num_rows
    bars = pa.table(
        {
            "ts_utc": table.column("ts_ms").cast(pa.timestamp("ms", tz="UTC")),
            "symbol": pa.array([symbol] * n, pa.string()),
            **{c: table.column(c) for c in ("open", "high", "low", "close", "volume")},
            "ntrades": pa.nulls(n, pa.int64()),
            "source": pa.array(["session"] * n, pa.string()),
        },
        schema=BAR_SCHEMA,
    )
    path = out / "bars.parquet"
    write_bars(bars, path, source=str(path))
    return path


_PRICES = ("open", "high", "low", "close", "volume")
RESAMPLED_SCHEMA = pa.schema(
    [
        ("ts_utc", pa.timestamp("ms", tz="UTC")),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("n_bars", pa.int64()),
        ("n_filled", pa.int64()),
        ("complete", pa.bool_()),
    ]
)


def resampled_from(conn: apsw.Connection, timeframe: str) -> int:
    """The length of the session's bars, which `timeframe` is built from; ConfigError when
    it cannot be (a 1h session has no 15m bars)."""
    from njord.core.time import derives, timeframe_ms
    from njord.errors import ConfigError
    from njord.store.reads import data_timeframe

    base = data_timeframe(conn)
    if timeframe == base or not derives(timeframe, base):
        raise ConfigError(
            f"--timeframe {timeframe}: the session's bars are {base}; resampling builds "
            f"longer bars, whole multiples of {base}"
        )
    return timeframe_ms(base)


def export_resampled(conn: apsw.Connection, out: Path, *, timeframe: str) -> Path:
    """The session's bars resampled to `timeframe` (njord.core.bars: the bars a strategy
    declaring it got), as `bars-<timeframe>.parquet`. A bar still open at the session's
    last minute is not a bar yet and is left out."""
    from njord.core.bars import Resampler
    from njord.data.history import read_ipc
    from njord.errors import DataError
    from njord.store.history import stored_bar_blobs

    blobs = stored_bar_blobs(conn)
    if not blobs:
        raise DataError("the session kept no bars to resample (store.store_bars = false)")
    resampler = Resampler(timeframe, resampled_from(conn, timeframe))
    done = []
    for blob in blobs:  # one stored chunk at a time
        batch = read_ipc(blob)
        cols = [
            batch.column(c).to_pylist()
            for c in ("ts_ms", "open", "high", "low", "close", "volume", "synthetic")
        ]
        for minute in zip(*cols, strict=True):
            done += resampler.add(*minute)
    table = pa.table(
        {
            "ts_utc": pa.array([b.ts_ms for b in done], pa.int64()).cast(RESAMPLED_SCHEMA[0].type),
            **{c: pa.array([getattr(b, c) for b in done], pa.float64()) for c in _PRICES},
            "n_bars": pa.array([b.n_bars for b in done], pa.int64()),
            "n_filled": pa.array([b.n_filled for b in done], pa.int64()),
            "complete": pa.array([b.complete for b in done], pa.bool_()),
        },
        schema=RESAMPLED_SCHEMA,
    )
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"bars-{timeframe}.parquet"
    pq.write_table(table, path, compression="zstd")
    return path
