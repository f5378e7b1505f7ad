"""`njord sweep`: every combination of a grid as a full backtest with its own session db.

The parent plans (which combinations the strategy refuses, the QC scan, data hashes and
git, once), an executor runs the rest (a process pool or a Dask cluster) and the parent
records each finished combination as it arrives, in `done/`. The results are built from
`done/` and sorted by a defined key, so their bytes depend neither on the executor nor
on the order combinations finish in, and an interrupted sweep resumes from `done/`.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import math
import os
import shutil
import socket
import tempfile
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol, Self

import msgspec
import pyarrow as pa
import pyarrow.parquet as pq

from njord import config as configuration
from njord import strategies, wiring
from njord.errors import ConfigError, NjordError
from njord.research.grid import Grid, column

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
PLAN_FILE = "sweep.json"
DONE = "done"


class Task(msgspec.Struct, frozen=True, kw_only=True):
    """One combination, self-contained: what a worker on another machine needs."""

    index: int
    config_toml: str
    facts: wiring.Facts
    directory: str  # where the db goes; "" = the worker's own disk, bytes sent back
    keep_db: bool = False  # with "": leave the db on the worker, its row names host:path


class Outcome(msgspec.Struct, frozen=True, kw_only=True):
    index: int
    row: dict[str, Any]  # status, reason, metrics, final_equity, db
    db_bytes: bytes | None = None


class Executor(Protocol):
    """Runs tasks and yields their outcomes as they complete (in any order), inside a
    `with` block that holds whatever it needs across runs (a cluster)."""

    ships_dbs: bool  # workers write on their own disk and send the db back
    keeps_dbs: bool  # ... or keep it there

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...

    def run(self, tasks: list[Task]) -> Iterator[Outcome]: ...


class Plan(msgspec.Struct, frozen=True, kw_only=True):
    """A sweep as stored in its directory: enough to resume it."""

    config_toml: str
    keys: list[str]
    combos: list[dict[str, Any]]

    @property
    def grid(self) -> Grid:
        return Grid(self.keys, self.combos)


def run_one(task: Task, data: dict[str, bytes] | None = None) -> Outcome:
    """One combination (in a worker): a full backtest into its own db. A combination that
    fails is an outcome with its error, so the rest of the sweep carries on. `data`, when
    the parent shipped the data files (sha256 -> bytes), stands in for data.path."""
    from njord import launch
    from njord.config import stored_config
    from njord.core.money import to_e8
    from njord.loop import Stop
    from njord.store import reads

    name = f"combo-{task.index:04d}.db"
    scratch = None if task.directory else tempfile.mkdtemp(prefix="njord-sweep-")
    folder = Path(task.directory or str(scratch))
    config = stored_config(task.config_toml)
    if data is not None:
        config = _local_data(config, task.facts, data)
    try:
        run = launch.backtest(
            config,
            env_prefix="NJORD_",
            db_path=folder / name,
            out_dir=folder,
            echo=False,
            facts=task.facts,
        )
        launch.drive(run, stop=Stop(), progress=lambda n: None)
        try:
            metrics = msgspec.structs.asdict(
                reads.metrics(run.session.conn, to_e8(config.runtime.initial_cash))
            )
            final_equity = reads.overview(run.session.conn).equity
        finally:  # a read that failed: the worker goes on to other combinations
            run.session.close()
        row = {m: metrics[m] for m in METRICS}
        row.update(status="ok", reason="", final_equity=final_equity, db=name)
    except NjordError as e:
        row = {"status": "failed", "reason": str(e), "db": name}
    except Exception as e:  # a bug in one combination must not lose the others' results
        row = {"status": "failed", "reason": f"{type(e).__name__}: {e}", "db": name}
    db_bytes = None
    if scratch is not None and task.keep_db:
        row["db"] = f"{socket.gethostname()}:{folder / name}"
    elif scratch is not None:
        with contextlib.suppress(FileNotFoundError):
            db_bytes = (folder / name).read_bytes()
        shutil.rmtree(scratch, ignore_errors=True)
    return Outcome(index=task.index, row=row, db_bytes=db_bytes)


def _local_data(
    config: configuration.Config, facts: wiring.Facts, data: dict[str, bytes]
) -> configuration.Config:
    """The shipped files on this worker's disk, written once per worker host, and the
    config reading them (a folder of the files, as `data.path` may be)."""
    shas = [source.sha256 for source in facts.sources]
    folder = (
        Path(tempfile.gettempdir())
        / "njord-data"
        / hashlib.sha256("".join(shas).encode()).hexdigest()[:16]
    )
    folder.mkdir(parents=True, exist_ok=True)
    for source in facts.sources:
        target = folder / Path(source.path).name
        if not target.exists():
            part = target.with_suffix(f".{os.getpid()}.part")
            part.write_bytes(data[source.sha256])
            os.replace(part, target)  # workers on one host may race: the rename is atomic
    return configuration.with_values(config, {"data.path": str(folder)})


def shipped(tasks: list[Task]) -> dict[str, bytes]:
    """Every data file the tasks read, by sha256: scattered once to the workers."""
    paths = {source.sha256: source.path for task in tasks for source in task.facts.sources}
    return {sha: Path(path).read_bytes() for sha, path in paths.items()}


def prepare(plan: Plan) -> tuple[dict[int, str], dict[int, configuration.Config]]:
    """(skipped: index -> reason, runnable: index -> config), decided before any backtest:
    a combination the config or the strategy refuses (fast >= slow) is a skipped row."""
    from njord.config import stored_config

    base = stored_config(plan.config_toml)
    skipped, runnable = {}, {}
    for index, combo in enumerate(plan.combos):
        try:
            config = configuration.with_values(base, combo)
            configuration.check_symbols(config)
            strategies.parse_params(
                strategies.resolve(config.strategy.name), config.strategy.params
            )
        except ConfigError as e:
            skipped[index] = str(e).split(" - at ")[0]
            continue
        runnable[index] = config
    if not runnable:
        first = next(iter(skipped.values()))
        raise ConfigError(f"every combination is skipped; nothing to run (first: {first})")
    return skipped, runnable


def new_dir(plan: Plan, kind: str = "sweep") -> Path:
    """`runs/<kind>-<UTC time>-<grid hash>`: the same grid run again gets its own folder."""
    digest = hashlib.sha256(msgspec.json.encode(plan)).hexdigest()[:6]
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    where, n = Path("runs") / f"{kind}-{stamp}-{digest}", 1
    while where.exists():
        n += 1
        where = Path("runs") / f"{kind}-{stamp}-{digest}-{n}"
    return where


def start(plan: Plan, where: Path) -> None:
    (where / DONE).mkdir(parents=True, exist_ok=True)
    # Written whole then renamed, as each record is: a signal mid-write leaves no plan that
    # `--resume` would find unreadable.
    part = where / f"{PLAN_FILE}.part"
    part.write_bytes(msgspec.json.format(msgspec.json.encode(plan)))
    os.replace(part, where / PLAN_FILE)


def load(where: Path) -> Plan:
    """The plan of a sweep to resume, or a usage error naming what is wrong."""
    path = where / PLAN_FILE
    if not path.is_file():
        raise ConfigError(f"{where}: no {PLAN_FILE} there; is it a sweep directory?")
    try:
        return msgspec.json.decode(path.read_bytes(), type=Plan)
    except msgspec.DecodeError as e:
        raise ConfigError(f"{where}: {PLAN_FILE} is unreadable: {e}") from e


def finished(where: Path) -> set[int]:
    return {int(p.stem.removeprefix("combo-")) for p in (where / DONE).glob("combo-*.json")}


def measure(runnable: dict[int, configuration.Config]) -> dict[bytes, wiring.Facts]:
    """The QC scan, data hashes and git lookups: once per distinct data section, not once
    per combination. Bad data refuses here, before the sweep writes anything."""
    facts: dict[bytes, wiring.Facts] = {}
    for config in runnable.values():
        data = msgspec.json.encode(config.data)
        if data not in facts:
            facts[data] = wiring.measure(config)
    return facts


def run(
    where: Path,
    runnable: dict[int, configuration.Config],
    facts: dict[bytes, wiring.Facts],
    executor: Executor,
    *,
    progress: Callable[[int], None],
) -> int:
    """Run the combinations not finished yet; record each as it completes. Returns how
    many ran. A combination cut short before (no record) starts again from scratch."""
    done = finished(where)
    todo = [i for i in sorted(runnable) if i not in done]
    tasks = []
    for index in todo:
        config = runnable[index]
        _discard_db(where / f"combo-{index:04d}.db")
        tasks.append(
            Task(
                index=index,
                config_toml=configuration.config_toml(config),
                facts=facts[msgspec.json.encode(config.data)],
                directory="" if executor.ships_dbs else str(where.resolve()),
                keep_db=executor.keeps_dbs,
            )
        )
    for outcome in executor.run(tasks):
        _record(where, outcome)
        progress(1)
    return len(tasks)


def _discard_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def _record(where: Path, outcome: Outcome) -> None:
    name = f"combo-{outcome.index:04d}"
    if outcome.db_bytes is not None:
        (where / f"{name}.db").write_bytes(outcome.db_bytes)
    # Written whole then renamed: a record exists only once its combination is complete.
    part = where / DONE / f"{name}.json.part"
    part.write_bytes(msgspec.json.encode(outcome.row))
    os.replace(part, where / DONE / f"{name}.json")


def rows(
    plan: Plan, where: Path, skipped: dict[int, str], *, pending_ok: bool = False
) -> list[dict[str, Any]]:
    """Every combination's row: read back from `done/` whoever ran it, so the bytes
    written never depend on which process produced them. With `pending_ok`, one not
    finished yet is a row with status `pending` (a sweep still running, or cut short)."""
    out = []
    for index, combo in enumerate(plan.combos):
        row: dict[str, Any] = {"combo": index, **{column(k): v for k, v in combo.items()}}
        path = where / DONE / f"combo-{index:04d}.json"
        if index in skipped:
            row.update(status="skipped", reason=skipped[index], db="")
        elif pending_ok and not path.exists():
            row.update(status="pending", reason="", db="")
        else:
            row.update(msgspec.json.decode(path.read_bytes()))
        out.append(row)
    return out


def ordered(rows: list[dict[str, Any]], key: str) -> list[dict[str, Any]]:
    """Best first by `key` (max_drawdown: smallest first); skipped, failed and n/a last;
    then by combo."""
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


def columns(names: list[str]) -> list[str]:
    return ["combo", *names, "status", "reason", *METRICS, "final_equity", "db"]


def table(rows: list[dict[str, Any]], names: list[str]) -> pa.Table:
    """The results as a pyarrow table (what `njord.research.load_sweep` returns)."""
    return _arrow(rows, columns(names))


def _arrow(rows: list[dict[str, Any]], header: list[str]) -> pa.Table:
    return pa.table({c: pa.array([row.get(c) for row in rows]) for c in header})


def write(rows: list[dict[str, Any]], names: list[str], csv_path: Path) -> Path:
    return write_rows(rows, columns(names), csv_path)


def write_rows(rows: list[dict[str, Any]], header: list[str], csv_path: Path) -> Path:
    """CSV and Parquet beside it; floats as their shortest round-trip text."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for row in rows:
        writer.writerow([_cell(row.get(c)) for c in header])
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(buffer.getvalue(), encoding="utf-8")
    parquet_path = csv_path.with_suffix(".parquet")
    pq.write_table(_arrow(rows, header), parquet_path, compression="zstd")
    return parquet_path


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)  # shortest round-trip text: exact and stable
    return str(value)


def plan_of(config: configuration.Config, grid: Grid) -> Plan:
    return Plan(config_toml=configuration.config_toml(config), keys=grid.keys, combos=grid.combos)
