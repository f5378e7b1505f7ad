"""The `strategy_versions` table: a strategy's later versions, swapped in by `njord reload`
(its first is the session's manifest's)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import apsw
import msgspec

from njord.manifest import Manifest, StrategyIdentity
from njord.store import db
from njord.store.runs import SqliteManifestStore


class StrategyVersion(msgspec.Struct, frozen=True, kw_only=True):
    version: int  # 0 until stored
    strategy_id: str  # '' when the session runs one strategy
    identity: StrategyIdentity
    params: dict[str, Any]
    posted_ms: int
    posted_by: str


def load(conn: apsw.Connection) -> list[StrategyVersion]:
    """Every version, oldest first."""
    return [
        StrategyVersion(
            version=int(version),
            strategy_id=str(strategy_id),
            identity=StrategyIdentity(
                path=str(path), sha256=str(sha), source=None if source is None else str(source)
            ),
            params=msgspec.json.decode(params),
            posted_ms=int(posted_ms),
            posted_by=str(posted_by),
        )
        for version, strategy_id, path, sha, source, params, posted_ms, posted_by in conn.execute(
            "SELECT version, strategy_id, path, sha256, source, params, posted_ms, posted_by "
            "FROM strategy_versions ORDER BY version"
        )
    ]


def posted(path: Path) -> tuple[Manifest | None, list[StrategyVersion]]:
    """The session in `path` and its versions posted so far (a writer's read: an older db
    migrates, as a control's post would)."""
    conn = db.open_writer(path, create=False)
    try:
        return SqliteManifestStore(conn).load(), load(conn)
    finally:
        conn.close()


def one(conn: apsw.Connection, version: int) -> StrategyVersion:
    """The version a reload control names (posted with it, in one transaction)."""
    return next(v for v in load(conn) if v.version == version)


def insert(conn: apsw.Connection, versions: Sequence[StrategyVersion]) -> list[int]:
    """Store each (its own version number when it has one: a re-run's copy); the numbers."""
    numbers = []
    for v in versions:
        conn.execute(
            "INSERT INTO strategy_versions (version, strategy_id, path, sha256, source, params, "
            "posted_ms, posted_by) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (
                v.version or None,
                v.strategy_id,
                v.identity.path,
                v.identity.sha256,
                v.identity.source,
                msgspec.json.encode(v.params, order="sorted").decode(),
                v.posted_ms,
                v.posted_by,
            ),
        )
        numbers.append(int(conn.last_insert_rowid()))
    return numbers
