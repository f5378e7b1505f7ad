"""`njord data import`: Binance kline CSV (zipped or not), generic CSV or Parquet in,
validated, sorted, de-duplicated Parquet in the bar schema out."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path
from typing import Literal

import msgspec
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from njord.core.time import timeframe_ms
from njord.data import klines
from njord.data.history import BATCH_ROWS, REQUIRED
from njord.data.qc import check_symbol, check_values, gap_indices, utc
from njord.errors import ConfigError, DataError

Format = Literal["binance", "csv", "parquet"]
DEFAULT_SYMBOL = "BTCUSDT"  # Binance kline dumps carry no symbol column
# ... but their names do: SYMBOL-1m-2024-01.zip, SYMBOL-trades-2024-01-01.zip
_BINANCE_NAME = re.compile(r"([A-Z0-9]{2,20})-(?:\d+[smhdwM]|trades|aggTrades)-\d{4}-\d{2}")
BINANCE_COLUMNS = (
    "open_time",
    "open",
    "high",
    "low",
    "close",
    "volume",
    "close_time",
    "quote_volume",
    "ntrades",
    "taker_base",
    "taker_quote",
    "ignore",
)
BAR_SCHEMA = pa.schema(
    [
        ("ts_utc", pa.timestamp("ms", tz="UTC")),
        ("symbol", pa.string()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.float64()),
        ("ntrades", pa.int64()),
        ("source", pa.string()),
    ]
)


class ImportReport(msgspec.Struct, kw_only=True):
    rows_in: int
    rows_out: int
    duplicates_dropped: int
    first_ts_ms: int
    last_ts_ms: int
    out: str
    timeframe: str = "1m"
    gaps: int = 0
    missing_bars: int = 0
    first_gap: tuple[int, int] | None = None  # (last bar before it, first bar after it)

    def gaps_line(self) -> str:
        """What a backtest's gap policy will meet in this file, said before it meets it."""
        if self.first_gap is None:
            return "no gaps"
        before, after = self.first_gap
        return (
            f"{self.gaps} gap(s) ({self.missing_bars} missing bars), the first after "
            f"{utc(before)} (next bar {utc(after)})"
        )


def guess_format(path: Path) -> Format:
    name = path.name.lower()
    if name.endswith(".parquet"):
        return "parquet"
    if name.endswith(".zip"):
        return "binance"
    with _open_text(path) as fh:
        first = fh.readline()
    return "binance" if first[:1].isdigit() and first.count(",") == 11 else "csv"


def parse_map(items: tuple[str, ...]) -> dict[str, str]:
    """`--map ts=open_time,close=c` (repeatable or comma-joined) -> {bar field: column}."""
    mapping: dict[str, str] = {}
    for item in items:
        for pair in filter(None, item.split(",")):
            field, sep, column = pair.partition("=")
            if not sep or field.strip() not in {"ts", *REQUIRED[1:], "ntrades"}:
                raise ConfigError(
                    f"--map takes field=column with field one of ts, open, high, low, close, "
                    f"volume, ntrades; got {pair!r}"
                )
            mapping[field.strip()] = column.strip()
    return mapping


def one_symbol(held: list[str]) -> str:
    """The one symbol an import's inputs hold: an output file is bars of one symbol."""
    if len(set(held)) > 1:
        raise DataError(
            f"the inputs hold {', '.join(sorted(set(held)))}: import one symbol per output file"
        )
    return held[0]


def named_symbol(path: Path) -> str:
    """The symbol a Binance dump's file name starts with, else DEFAULT_SYMBOL."""
    named = _BINANCE_NAME.match(path.name)
    return named[1] if named else DEFAULT_SYMBOL


def read_any(path: Path, fmt: Format, mapping: dict[str, str], symbol: str | None) -> pa.Table:
    """One input in the bar schema, labelled `symbol`: by default the one its own `symbol`
    column holds, else the one a Binance dump's name starts with (`ETHUSDT-1m-2024-01.zip`),
    else BTCUSDT; a column holding another symbol is refused."""
    if fmt == "binance":
        raw = _read_binance(path)
    elif fmt == "csv":
        raw = _read_csv(path, header=True)
    else:
        try:
            raw = pq.read_table(path)
        except (pa.ArrowInvalid, OSError) as e:
            raise DataError(f"{path} is not a readable Parquet file: {e}") from e
    if raw.num_rows == 0:
        raise DataError(f"{path}: no rows (a header and no bars)")
    held = raw.column("symbol") if "symbol" in raw.column_names else pa.array([], pa.string())
    if symbol is None:
        found = pc.unique(held).drop_null().to_pylist()
        symbol = str(found[0]) if found else named_symbol(path)
    check_symbol(held, want=symbol, source=str(path), by="--symbol is")
    table = raw if fmt == "binance" else _rename(raw, mapping, path)
    bars = _to_bar_schema(table, path, symbol)
    if fmt == "binance":  # a kline dump says its interval: recorded, so sessions can check it
        return klines.with_timeframe(bars, klines.kline_timeframe(raw, path))
    return bars


def _open_text(path: Path) -> io.TextIOWrapper:
    if path.name.lower().endswith(".zip"):
        try:
            archive = zipfile.ZipFile(path)
        except zipfile.BadZipFile as e:
            raise DataError(f"{path} is not a readable zip file (truncated?): {e}") from e
        names = [n for n in archive.namelist() if n.lower().endswith(".csv")]
        if len(names) != 1:
            raise DataError(f"{path} must hold exactly one .csv, found {len(names)}")
        return io.TextIOWrapper(archive.open(names[0]), encoding="utf-8")
    return io.TextIOWrapper(path.open("rb"), encoding="utf-8")


def _read_csv(path: Path, *, header: bool, names: tuple[str, ...] = ()) -> pa.Table:
    try:
        with _open_text(path) as fh:
            data = bytes(fh.buffer.read())
        if not data.strip():
            raise DataError(f"{path}: no rows (the file is empty)")
        options = pcsv.ReadOptions(column_names=list(names) if names else None)
        return pcsv.read_csv(io.BytesIO(data), read_options=options)
    except (pa.ArrowInvalid, zipfile.BadZipFile, UnicodeDecodeError) as e:
        raise DataError(f"{path} is not a readable CSV file: {e}") from e


def _read_binance(path: Path) -> pa.Table:
    with _open_text(path) as fh:
        has_header = not fh.readline()[:1].isdigit()
    table = _read_csv(path, header=has_header, names=() if has_header else BINANCE_COLUMNS)
    if has_header:
        table = table.rename_columns(list(BINANCE_COLUMNS[: table.num_columns]))
    if table.num_columns != len(BINANCE_COLUMNS):
        raise DataError(f"{path}: Binance kline CSV has 12 columns, found {table.num_columns}")
    # Spot dumps switched to microseconds on 2025-01-01; detect per row.
    t = pc.cast(table.column("open_time"), pa.int64())
    t_ms = pc.if_else(pc.greater(t, 10**14), pc.divide(t, 1000), t)
    return table.append_column("ts", t_ms)


def _rename(table: pa.Table, mapping: dict[str, str], path: Path) -> pa.Table:
    names = table.column_names
    wanted = {"ts": "ts_utc", **{c: c for c in (*REQUIRED[1:], "ntrades")}}
    out = {}
    for field, default in wanted.items():
        column = mapping.get(field, default if default in names else field)
        if column in names:
            out[field] = table.column(column)
        elif field != "ntrades":
            raise DataError(
                f"{path}: no column for {field!r} (columns: {', '.join(names)}); "
                f"map it with --map {field}=COLUMN"
            )
    return pa.table(out)


def _to_bar_schema(table: pa.Table, path: Path, symbol: str) -> pa.Table:
    try:
        ts = table.column("ts")
        if pa.types.is_integer(ts.type):
            ts_ms = pc.cast(ts, pa.int64())
        elif pa.types.is_timestamp(ts.type):
            ts_ms = pc.cast(pc.cast(ts, pa.timestamp("ms", tz="UTC")), pa.int64())
        else:
            parsed = pc.strptime(ts, format="%Y-%m-%d %H:%M:%S", unit="ms", error_is_null=False)
            ts_ms = pc.cast(parsed, pa.int64())
        prices = {c: pc.cast(table.column(c), pa.float64()) for c in REQUIRED[1:]}
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, KeyError) as e:
        raise DataError(f"{path}: cannot read bar columns: {e}") from e
    n = table.num_rows
    ntrades = (
        pc.cast(table.column("ntrades"), pa.int64())
        if "ntrades" in table.column_names
        else pa.nulls(n, pa.int64())
    )
    return pa.table(
        {
            "ts_utc": pc.cast(ts_ms, pa.timestamp("ms", tz="UTC")),
            "symbol": pa.array([symbol] * n, pa.string()),
            **prices,
            "ntrades": ntrades,
            "source": pa.array([path.name] * n, pa.string()),
        },
        schema=BAR_SCHEMA,
    )


def import_files(
    inputs: list[Path],
    *,
    out: Path,
    fmt: Format | None,
    mapping: dict[str, str],
    symbol: str | None,
) -> ImportReport:
    tables = [read_any(p, fmt or guess_format(p), mapping, symbol) for p in inputs]
    timeframe = _one_timeframe(tables, inputs)
    table = pa.concat_tables(tables).sort_by("ts_utc")
    one_symbol(pc.unique(table.column("symbol")).to_pylist())
    rows_in = table.num_rows
    if rows_in == 0:
        raise DataError("the input holds no bars")
    table, dropped = _dedupe(table)
    table = klines.with_timeframe(table, timeframe)
    report = write_bars(table, out, source=", ".join(str(p) for p in inputs))
    return msgspec.structs.replace(
        report, rows_in=rows_in, duplicates_dropped=dropped, timeframe=timeframe
    )


def _one_timeframe(tables: list[pa.Table], inputs: list[Path]) -> str:
    """The inputs' common bar length: klines say theirs, other files are 1-minute bars."""
    found = {p: klines.recorded_timeframe(t.schema) for p, t in zip(inputs, tables, strict=True)}
    if len(set(found.values())) > 1:
        listed = ", ".join(f"{p.name} {tf}" for p, tf in found.items())
        raise DataError(f"the inputs hold bars of different lengths ({listed}); import apart")
    return next(iter(found.values()))


def write_bars(table: pa.Table, out: Path, *, source: str) -> ImportReport:
    """Check bars in the bar schema and write them where `data.path` can point."""
    checked = pa.RecordBatch.from_pydict(
        {
            "ts_ms": pc.cast(table.column("ts_utc"), pa.int64()).combine_chunks(),
            **{c: table.column(c).combine_chunks() for c in REQUIRED[1:]},
        }
    )
    timeframe = klines.recorded_timeframe(table.schema)
    check_values(checked, prev_ts=None, source=source, timeframe=timeframe)
    out.parent.mkdir(parents=True, exist_ok=True)
    # Row groups of one batch: the feed then decompresses one week at a time, not the file.
    pq.write_table(table, out, compression="zstd", row_group_size=BATCH_ROWS)
    ts = checked.column("ts_ms")
    length = timeframe_ms(timeframe)
    gaps = gap_indices(ts, None, length)
    return ImportReport(
        rows_in=table.num_rows,
        rows_out=table.num_rows,
        duplicates_dropped=0,
        first_ts_ms=ts[0].as_py(),
        last_ts_ms=ts[-1].as_py(),
        out=str(out),
        gaps=len(gaps),
        missing_bars=sum((after - before) // length - 1 for _, before, after in gaps),
        first_gap=(gaps[0][1], gaps[0][2]) if gaps else None,
    )


def _dedupe(table: pa.Table) -> tuple[pa.Table, int]:
    """Drop rows identical to the one before; refuse two different bars for one minute."""
    ts = pc.cast(table.column("ts_utc"), pa.int64()).combine_chunks()
    same = pc.fill_null(pc.equal(pc.pairwise_diff(ts), 0), False)
    if not pc.any(same).as_py():
        return table, 0
    keep = pc.invert(same)
    for i in pc.indices_nonzero(same).to_pylist():
        a = {c: table.column(c)[i - 1].as_py() for c in REQUIRED[1:]}
        b = {c: table.column(c)[i].as_py() for c in REQUIRED[1:]}
        if a != b:
            raise DataError(
                f"two different bars for {table.column('ts_utc')[i].as_py()}: {a} vs {b}"
            )
    return table.filter(keep), int(pc.sum(same).as_py())
