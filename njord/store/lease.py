"""The single-writer lease: a row inside the session db (pid, host, heartbeat)."""

from __future__ import annotations

import os
import secrets
import socket
import time

import apsw
import msgspec

from njord.errors import LeaseError


class Lease(msgspec.Struct, frozen=True):
    pid: int
    host: str
    token: str
    started_ms: int
    heartbeat_ms: int


def wall_ms() -> int:
    return time.time_ns() // 1_000_000


def holder(conn: apsw.Connection) -> Lease | None:
    row = conn.execute(
        "SELECT pid, host, token, started_ms, heartbeat_ms FROM lease WHERE id = 1"
    ).fetchone()
    return Lease(*row) if row else None


def age_s(lease: Lease, now_ms: int) -> float:
    """Seconds since the holder's last heartbeat; a clock on another host that runs ahead
    of ours must not make that negative."""
    return max(now_ms - lease.heartbeat_ms, 0) / 1000


def is_stale(lease: Lease, *, timeout_s: float, now_ms: int) -> bool:
    """Same host: stale exactly when the pid is dead (certain). Elsewhere: heartbeat too old."""
    if lease.host == socket.gethostname():
        return not _pid_alive(lease.pid)
    return now_ms - lease.heartbeat_ms > timeout_s * 1000


def acquire(conn: apsw.Connection, *, timeout_s: float) -> tuple[Lease, Lease | None]:
    """Take the lease or raise LeaseError (exit 75). Returns (ours, the stale one taken over)."""
    conn.execute("BEGIN IMMEDIATE")  # busy past the timeout: LeaseError (store.db.translate)
    # The clock is read once the write lock is ours: read before, while the holder was
    # still beating, it made the holder's heartbeat look like it came from the future.
    now = wall_ms()
    ours = Lease(os.getpid(), socket.gethostname(), secrets.token_hex(8), now, now)
    try:
        current = holder(conn)
        if current is not None and not is_stale(current, timeout_s=timeout_s, now_ms=now):
            raise LeaseError(
                f"session db is leased by pid {current.pid} on {current.host} "
                f"(heartbeat {age_s(current, now):.1f}s ago); try again later"
            )
        conn.execute(
            "INSERT OR REPLACE INTO lease VALUES (1, ?, ?, ?, ?, ?)",
            (ours.pid, ours.host, ours.token, ours.started_ms, ours.heartbeat_ms),
        )
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return ours, current


def beat(conn: apsw.Connection, lease: Lease) -> None:
    """Refresh the heartbeat; call inside the bar's transaction so it commits with it."""
    conn.execute(
        "UPDATE lease SET heartbeat_ms = ? WHERE id = 1 AND token = ?", (wall_ms(), lease.token)
    )
    if conn.changes() != 1:
        raise LeaseError("lost the session lease to another process; stopping")


def release(conn: apsw.Connection, lease: Lease) -> None:
    with conn:
        conn.execute("DELETE FROM lease WHERE id = 1 AND token = ?", (lease.token,))


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    # A killed child its parent has not reaped yet still answers kill(0): it is dead all the same.
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
    except (OSError, IndexError):
        return False
