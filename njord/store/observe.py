"""Reads for watchers and metrics scrapers: small indexed queries a poller can repeat often."""

from __future__ import annotations

import tomllib
from collections.abc import Sequence
from typing import Any

import apsw
import msgspec

from njord.store import lease as leases
from njord.store.runs import SqliteManifestStore


class Pulse(msgspec.Struct, frozen=True, kw_only=True):
    """What a watcher needs of a session on every poll."""

    run_id: str | None
    mode: str | None
    run_status: str | None
    symbol: str
    bars: int
    last_bar_ms: int | None
    lease: leases.Lease | None


class Histogram(msgspec.Struct, frozen=True, kw_only=True):
    """Cumulative bucket counts over `bounds` (same unit as the stored values)."""

    bounds: tuple[float, ...]
    cumulative: tuple[int, ...]
    count: int
    total: float


def pulse(conn: apsw.Connection) -> Pulse:
    store = SqliteManifestStore(conn)
    manifest = store.load()
    account = conn.execute("SELECT last_bar_ms, bars FROM account").fetchone()
    return Pulse(
        run_id=manifest.run_id if manifest else None,
        mode=manifest.mode if manifest else None,
        run_status=store.status(manifest.run_id) if manifest else None,
        symbol=_symbol(manifest.config_toml) if manifest else "?",
        bars=int(account[1]) if account else 0,
        last_bar_ms=account[0] if account else None,
        lease=leases.holder(conn),
    )


def orders_by_status(conn: apsw.Connection) -> dict[str, int]:
    return {
        str(status): int(n)
        for status, n in conn.execute(
            "SELECT status, count(*) FROM orders GROUP BY status ORDER BY status"
        )
    }


def errors_logged(conn: apsw.Connection) -> int:
    return int(_row(conn, "SELECT count(*) FROM logs WHERE level = 'ERROR'", ())[0])


def last_metric(conn: apsw.Connection, name: str) -> float | None:
    row = conn.execute(
        "SELECT value FROM metrics WHERE name = ? ORDER BY bar_ts_ms DESC LIMIT 1", (name,)
    ).fetchone()
    return float(row[0]) if row else None


def histogram(conn: apsw.Connection, name: str, bounds: Sequence[float]) -> Histogram:
    """Bucketed in SQL, one pass over the metric's index range: no row reaches Python."""
    buckets = ", ".join("COALESCE(sum(value <= ?), 0)" for _ in bounds)
    row = _row(
        conn,
        f"SELECT count(*), COALESCE(sum(value), 0.0), {buckets} FROM metrics WHERE name = ?",
        (*bounds, name),
    )
    return Histogram(
        bounds=tuple(bounds),
        cumulative=tuple(int(v) for v in row[2:]),
        count=int(row[0]),
        total=float(row[1]),
    )


def _row(conn: apsw.Connection, sql: str, params: tuple[object, ...]) -> tuple[Any, ...]:
    row = conn.execute(sql, params).fetchone()
    if row is None:
        raise AssertionError(f"no row from {sql}")
    return tuple(row)


def _symbol(config_toml: str) -> str:
    return str(tomllib.loads(config_toml).get("data", {}).get("symbol", "?"))
