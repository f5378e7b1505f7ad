"""`njord sweep`: a grid over strategy params, each combination a full backtest with its
own session db, run in a process pool. The result file is the same bytes whatever
`--jobs`: rows are produced per combination and sorted by a defined key."""

from __future__ import annotations

import csv
import hashlib
import io
import itertools
import math
import tomllib
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from njord import config as configuration
from njord.core.strategy import Strategy
from njord.errors import ConfigError

METRICS = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "calmar",
    "trades",
    "win_rate",
    "profit_factor",
    "exposure",
    "fees",
)


class Grid(msgspec.Struct, frozen=True):
    names: list[str]
    combos: list[dict[str, Any]]


def parse_grid(items: tuple[str, ...], cls: type[Strategy]) -> Grid:
    """`--param fast=5,10,20` (repeatable) -> every combination, in the order given.

    Refuses, before any backtest, a param the strategy does not declare, an empty value
    list, or a value of the wrong type for that param (naming the param)."""
    declared = {f.name: f.type for f in msgspec.structs.fields(cls.Params)}
    names, values = [], []
    for item in items:
        name, sep, raw = item.partition("=")
        name = name.strip()
        if not sep:
            raise ConfigError(f"--param takes name=v1,v2,..., got {item!r}")
        if name not in declared:
            raise ConfigError(
                f"--param {name}: {cls.__name__} declares no param {name!r} "
                f"(declared: {', '.join(declared)})"
            )
        parsed = [_value(v.strip()) for v in raw.split(",") if v.strip()]
        if not parsed:
            raise ConfigError(f"--param {name}: the value list is empty")
        for value in parsed:
            _check_type(cls, name, value)
        names.append(name)
        values.append(parsed)
    if not names:
        raise ConfigError("give at least one --param name=v1,v2,...")
    combos = [dict(zip(names, combo, strict=True)) for combo in itertools.product(*values)]
    return Grid(names, combos)


def _value(raw: str) -> Any:
    try:
        return tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        return raw


def _check_type(cls: type[Strategy], name: str, value: Any) -> None:
    """Type only: a combination the strategy refuses (fast >= slow) is skipped later."""
    field = {f.name: f for f in msgspec.structs.fields(cls.Params)}[name]
    try:
        msgspec.convert({name: value}, msgspec.defstruct("One", [(name, field.type)]))
    except msgspec.ValidationError as e:
        raise ConfigError(f"--param {name}: {value!r} is not valid: {e}") from e


def run_one(task: tuple[int, dict[str, Any], str, str]) -> dict[str, Any]:
    """One combination (in a worker process): a full backtest into its own db."""
    index, params, config_toml, directory = task
    from njord import launch
    from njord.core.money import to_e8
    from njord.errors import NjordError
    from njord.loop import Stop
    from njord.store import reads

    row: dict[str, Any] = {"combo": index, **params}
    doc = tomllib.loads(config_toml)
    doc["strategy"]["params"] = {**doc["strategy"].get("params", {}), **params}
    name = f"combo-{index:04d}.db"
    try:
        config = msgspec.convert(doc, configuration.Config)
        run = launch.backtest(
            config,
            env_prefix="NJORD_",
            db_path=Path(directory) / name,
            out_dir=Path(directory),
            echo=False,
        )
    except (NjordError, msgspec.ValidationError) as e:
        return {**row, "status": "skipped", "reason": str(e).split(" - at ")[0], "db": ""}
    launch.drive(run, stop=Stop(), progress=lambda n: None)
    metrics = reads.metrics(run.session.conn, to_e8(config.runtime.initial_cash))
    final_equity = reads.status(run.session.conn)["equity"]
    run.session.close()
    values = msgspec.structs.asdict(metrics)
    return {
        **row,
        "status": "ok",
        "reason": "",
        **{m: values[m] for m in METRICS},
        "final_equity": final_equity,
        "db": name,
    }


def run_grid(
    grid: Grid,
    config: configuration.Config,
    directory: Path,
    *,
    jobs: int,
    progress: Callable[[int], None],
) -> list[dict[str, Any]]:
    text = configuration.config_toml(config)
    tasks = [(i, combo, text, str(directory)) for i, combo in enumerate(grid.combos)]
    if jobs <= 1:
        rows = []
        for task in tasks:
            rows.append(run_one(task))
            progress(1)
        return rows
    with ProcessPoolExecutor(max_workers=jobs) as pool:
        rows = []
        for row in pool.map(run_one, tasks):
            rows.append(row)
            progress(1)
    return rows


def sweep_id(config: configuration.Config, grid: Grid) -> str:
    text = configuration.config_toml(config) + msgspec.json.encode(grid.combos).decode()
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def ordered(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Best first by `key` (max_drawdown: smallest first); skipped and n/a last; then combo."""
    sign = 1 if key == "max_drawdown" else -1

    def rank(row: dict[str, Any]) -> tuple[int, float, int]:
        value = row.get(key)
        if (
            row["status"] != "ok"
            or value is None
            or (isinstance(value, float) and math.isnan(value))
        ):
            return (1, 0.0, row["combo"])
        return (0, sign * float(value), row["combo"])

    return sorted(rows, key=rank)


def write(rows: list[dict[str, Any]], names: list[str], csv_path: Path) -> Path:
    columns = ["combo", *names, "status", "reason", *METRICS, "final_equity", "db"]
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in columns])
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(buffer.getvalue(), encoding="utf-8")
    table = pa.table({c: pa.array([row.get(c) for row in rows]) for c in columns})
    parquet_path = csv_path.with_suffix(".parquet")
    pq.write_table(table, parquet_path, compression="zstd")
    return parquet_path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest round-trip text: exact and stable
    return str(value)
