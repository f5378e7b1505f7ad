"""The operator control queue: rows in `controls` that the running loop applies (or the
next start does). Posting is the one write a reader-side process makes to a session db."""

from __future__ import annotations

from pathlib import Path

import apsw

from njord.config import stored_config
from njord.errors import ConfigError, LeaseError
from njord.store import db
from njord.store import lease as leases
from njord.store.runs import SqliteManifestStore

WAIT_MS = 1000  # how long a control waits for a writer that is mid-transaction (then 75)


def post_control(conn: apsw.Connection, command: str, reason: str, *, wall_ms: int, by: str) -> int:
    """Queue an operator control; the running loop applies it (or the next start does).
    `by` is stored as given (njord.controls.operator names a host). No checks: the
    loop's own controls (kill file, a strategy fault) go straight in."""
    with conn:
        conn.execute(
            "INSERT INTO controls (posted_ms, command, reason, posted_by) VALUES (?, ?, ?, ?)",
            (wall_ms, command, reason, by),
        )
    return int(conn.last_insert_rowid())


def post(path: Path, command: str, reason: str, *, by: str) -> str:
    """Queue `command` for the session in `path`; the answer says when it applies. A
    finished session is refused (exit 2): nothing would ever apply the control."""
    conn = db.open_writer(path, create=False)
    try:
        conn.set_busy_timeout(WAIT_MS)
        try:
            conn.execute("BEGIN IMMEDIATE")  # the status read and the insert are one step
        except apsw.BusyError as e:
            raise LeaseError(_busy(conn, path)) from e
        try:
            when = _applies(conn, path)
            seq = post_control(conn, command, reason, wall_ms=leases.wall_ms(), by=by)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return f"{command} posted as control #{seq}; {when}"


def _applies(conn: apsw.Connection, path: Path) -> str:
    store = SqliteManifestStore(conn)
    manifest = store.load()
    if manifest is None:
        raise ConfigError(f"{path} holds no session; nothing will apply this")
    run_id, status = manifest.run_id, store.status(manifest.run_id)
    if status == "finished":
        raise ConfigError(f"session {run_id} in {path} is finished; nothing will apply this")
    if status == "running":
        holder = leases.holder(conn)
        timeout_s = stored_config(manifest.config_toml).store.lease_timeout_s
        now = leases.wall_ms()
        if holder is not None and not leases.is_stale(holder, timeout_s=timeout_s, now_ms=now):
            return "the session applies it at its next bar"
        status = "not running (its writer is gone)"
    return f"session {run_id} is {status}: it applies this when it next runs"


def _busy(conn: apsw.Connection, path: Path) -> str:
    holder = leases.holder(conn)  # a read: WAL lets it past the writer's transaction
    who = f"pid {holder.pid} on {holder.host}" if holder is not None else "another process"
    return (
        f"{path} is busy: its writer ({who}) held a transaction for over "
        f"{WAIT_MS / 1000:g}s; try again"
    )
