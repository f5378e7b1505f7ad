"""A stored session as one value, read in one read transaction: what `continue`, a
restarted shadow/paper session and `verify` each need before they take a lease."""

from __future__ import annotations

from pathlib import Path

import msgspec

from njord.data.qc import QcEvent
from njord.manifest import Manifest
from njord.ports import RunManifestStore
from njord.store import amendments, controls, db, history, venue, versions
from njord.store.amendments import Amendment
from njord.store.controls import Control
from njord.store.runs import SqliteManifestStore
from njord.store.versions import StrategyVersion


class StoredSession(msgspec.Struct, kw_only=True):
    manifest: Manifest
    status: str  # running | stopped | finished | failed
    amendments: list[Amendment]
    last_bar_ms: int | None  # the last bar whose reports committed (phase 3)
    decided_bar_ms: int | None  # the last bar whose decisions committed (phase 1)
    blobs: list[bytes]  # the stored bar chunks, oldest first
    events: list[QcEvent]  # what QC found when the bars were stored
    controls: dict[int, list[Control]]  # applied operator controls, by bar
    versions: list[StrategyVersion]  # what reloads swapped in (`njord reload`)

    @property
    def through_ms(self) -> int:
        """The last bar a restart must rebuild through (-1: none committed)."""
        return max(self.decided_bar_ms or -1, -1 if self.last_bar_ms is None else self.last_bar_ms)


def restore(path: Path, *, upgrade: bool) -> StoredSession | None:
    """The session in `path`, or None when it holds none (a missing or empty file, or a
    db whose manifest was never written). `upgrade`: a writer-to-be migrates an older db
    first."""
    if not path.exists() or path.stat().st_size == 0:
        return None
    conn = db.open_reader(path, upgrade=upgrade)
    try:
        with conn:  # one read transaction: a running writer cannot commit between reads
            found = read(conn)
    finally:
        conn.close()
    return found


def read(conn: db.Connection, *, checked: bool = False) -> StoredSession | None:
    """The session on `conn`, inside the caller's read transaction; `checked`: every bar
    chunk is checked against its hash (verify)."""
    runs: RunManifestStore = SqliteManifestStore(conn)
    manifest = runs.load()
    if manifest is None:
        return None
    blobs = history.checked_bar_blobs if checked else history.stored_bar_blobs
    return StoredSession(
        manifest=manifest,
        status=runs.status(manifest.run_id),
        amendments=amendments.load(conn),
        last_bar_ms=history.last_bar_ms(conn),
        decided_bar_ms=venue.decided_bar_ms(conn),
        blobs=blobs(conn),
        events=history.qc_events(conn),
        controls=controls.applied(conn),
        versions=versions.load(conn),
    )
