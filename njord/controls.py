"""Posting an operator control to a session from outside its loop: the CLI commands and
the TUI's keys go through `post`, so they refuse and answer alike (SPEC §9)."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import apsw

from njord.config import stored_config
from njord.errors import ConfigError, LeaseError
from njord.store import db, reads
from njord.store import lease as leases
from njord.store.runs import SqliteManifestStore

WAIT_MS = 1000  # how long a control waits for a writer that is mid-transaction (then 75)


def operator() -> str:
    """Who posted a control from the CLI or the TUI: the operator on this host."""
    return f"operator@{socket.gethostname()}"


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
            seq = reads.post_control(conn, command, reason, wall_ms=leases.wall_ms(), by=by)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return f"{command} posted as control #{seq}; {when}"


def check_kill_file(path: Path) -> None:
    """Refuse (exit 2) a kill file that could not be created, before anything is written."""
    if path.is_dir():
        raise ConfigError(f"kill file {path} is a directory; give a file path")
    if not path.parent.is_dir():
        raise ConfigError(f"cannot create kill file {path}: folder {path.parent} does not exist")


def create_kill_file(path: Path, reason: str, *, by: str) -> str:
    """The file that halts every session whose runtime.kill_file names it (within 1 s)."""
    check_kill_file(path)
    existed = path.exists()
    if not existed:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        try:
            path.write_text(f"halted by {by} at {stamp}: {reason}\n", encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"cannot create kill file {path}: {e.strerror}") from e
    return (
        f"kill file {path.resolve()} {'exists' if existed else 'created'}: sessions whose "
        "runtime.kill_file is this path halt within 1 s; deleting it does not resume "
        "(`njord resume --confirm` does)"
    )


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
