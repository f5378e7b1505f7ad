"""Where a sweep's combinations run: this process, a process pool, or a Dask cluster.

Each yields outcomes as combinations complete; the parent records them. Interrupted
(Ctrl-C), each cancels what has not finished and lets the KeyboardInterrupt through: the
sweep directory keeps every finished combination for `--resume`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from typing import Any, Self

from njord.errors import ConfigError
from njord.research.sweep import Executor, Outcome, Task, run_one, shipped

INSTALL_HINT = "pip install 'njord[dask]'"


class _Local:
    """Nothing to start or stop: each run owns its processes."""

    ships_dbs = False
    keeps_dbs = False

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


class InProcess(_Local):
    def run(self, tasks: list[Task]) -> Iterator[Outcome]:
        for task in tasks:
            yield run_one(task)


class Pool(_Local):
    def __init__(self, jobs: int) -> None:
        self.jobs = jobs

    def run(self, tasks: list[Task]) -> Iterator[Outcome]:
        with ProcessPoolExecutor(max_workers=self.jobs) as pool:
            futures = [pool.submit(run_one, task) for task in tasks]
            try:
                for future in as_completed(futures):
                    yield future.result()
            except BaseException:
                pool.shutdown(wait=True, cancel_futures=True)
                raise


class Dask:
    """A Dask cluster: `local:N` starts a LocalCluster of N single-threaded worker
    processes on 127.0.0.1; anything else is a scheduler address (tcp://host:8786).
    Workers write each db on their own disk (SQLite WAL does not belong on a network
    filesystem) and send it back with the row (or, `keep_dbs`, keep it: the row names
    host:path); they read the data by its path, or, `ship_data`, from bytes scattered once
    to every worker. A LocalCluster's workers share this machine's disk: they write the
    dbs straight into the sweep directory, as a process pool does (shipping a month's db
    back costs more than its backtest's share of the wall time). Connected (or started)
    once per `with` block, however many runs."""

    def __init__(self, address: str, *, ship_data: bool = False, keep_dbs: bool = False) -> None:
        try:
            import distributed
        except ImportError:
            raise ConfigError(f"--dask needs Dask distributed: {INSTALL_HINT}") from None
        self._distributed = distributed
        self.address = address
        self.ship_data = ship_data
        self.keeps_dbs = keep_dbs
        self.ships_dbs = keep_dbs or not address.startswith("local:")
        self._open: _Owned | None = None

    def __enter__(self) -> Self:
        # Dask logs a cancelled or shut-down task with its traceback; a user stopping a
        # sweep sees one line from njord instead (failures still come back as rows).
        logging.getLogger("distributed").setLevel(logging.CRITICAL)
        self._open = self._connect()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._open is not None:
            self._open.close()
            self._open = None

    def run(self, tasks: list[Task]) -> Iterator[Outcome]:
        if self._open is None:
            raise RuntimeError("Dask.run outside its `with` block")
        client = self._open.client
        extra = {}
        if self.ship_data and tasks:
            [extra["data"]] = client.scatter([shipped(tasks)], broadcast=True)
        futures = client.map(run_one, tasks, pure=False, **extra)
        try:
            completed: Any = self._distributed.as_completed
            for future in completed(futures):
                yield future.result()
        except BaseException:
            client.cancel(futures)
            raise

    def _connect(self) -> _Owned:
        distributed = self._distributed
        if self.address.startswith("local:"):
            workers = _count(self.address.removeprefix("local:"))
            cluster = distributed.LocalCluster(
                n_workers=workers,
                threads_per_worker=1,  # one backtest per process: the GIL would serialise them
                host="127.0.0.1",
                dashboard_address=None,
                processes=True,
                silence_logs=logging.CRITICAL,
            )
            return _Owned(distributed.Client(cluster), cluster)
        try:
            return _Owned(distributed.Client(self.address, timeout=10), None)
        except OSError as e:
            raise ConfigError(f"--dask {self.address}: cannot reach the scheduler: {e}") from e


class _Owned:
    """A client and the LocalCluster it started, if it did: both close together."""

    def __init__(self, client: Any, cluster: Any) -> None:
        self.client, self.cluster = client, cluster

    def close(self) -> None:
        self.client.close()
        if self.cluster is not None:
            self.cluster.close()


def _count(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise ConfigError(f"--dask local:N takes a number of workers >= 1, got local:{text}")
    return int(text)


def choose(
    *,
    jobs: int | None,
    dask: str | None,
    cores: int,
    ship_data: bool = False,
    keep_dbs: str = "parent",
) -> Executor:
    if jobs is not None and jobs < 1:
        raise ConfigError(f"--jobs must be >= 1, got {jobs}")
    if dask is None and (ship_data or keep_dbs != "parent"):
        raise ConfigError("--ship-data and --keep-dbs worker go with --dask")
    if dask is not None:
        if jobs is not None:
            raise ConfigError("--jobs and --dask are two executors; give one of them")
        if dask.startswith("local:"):
            _count(dask.removeprefix("local:"))
        elif "://" not in dask:
            raise ConfigError(f"--dask takes local:N or tcp://host:port, got {dask!r}")
        return Dask(dask, ship_data=ship_data, keep_dbs=keep_dbs == "worker")
    workers = jobs or cores
    return InProcess() if workers == 1 else Pool(workers)
