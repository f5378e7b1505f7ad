"""The operator control queue: rows in `controls` that the running loop applies (or the
next start does). Posting is the one write a reader-side process makes to a session db;
the loop reads the queue and marks what it applied (the session's coordinator chains that
mark into the decision log)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import apsw
import msgspec

from njord.config import stored_config
from njord.errors import ConfigError, LeaseError
from njord.manifest import Manifest
from njord.store import db
from njord.store import lease as leases
from njord.store.runs import SqliteManifestStore

WAIT_MS = 1000  # how long a control waits for a writer that is mid-transaction (then 75)


class Control(msgspec.Struct, frozen=True, omit_defaults=True):
    seq: int
    command: str
    reason: str
    posted_by: str
    # A halt or resume of one strategy's sleeve (`--strategy`); "": the whole session. Left
    # out of the decision log when empty, as controls were logged before there were sleeves.
    strategy_id: str = ""
    # A reload's: the `strategy_versions` row it swaps in (0: not a reload).
    version: int = 0


def pending(conn: apsw.Connection) -> list[Control]:
    """Posted and not yet applied, in the order they were posted."""
    return [
        Control(seq, command, reason, by, strategy_id, version or 0)
        for seq, command, reason, by, strategy_id, version in conn.execute(
            "SELECT seq, command, reason, posted_by, strategy_id, version "
            "FROM controls WHERE applied_ms IS NULL ORDER BY seq"
        )
    ]


def pending_count(conn: apsw.Connection) -> int:
    row = conn.execute("SELECT count(*) FROM controls WHERE applied_ms IS NULL").fetchone()
    return int(row[0]) if row else 0


def applied(conn: apsw.Connection) -> dict[int, list[Control]]:
    """Controls already applied, by the bar they were applied at (for replays)."""
    by_bar: dict[int, list[Control]] = {}
    for bar_ts, seq, command, reason, by, strategy_id, version in conn.execute(
        "SELECT bar_ts_ms, seq, command, reason, posted_by, strategy_id, version "
        "FROM controls WHERE applied_ms IS NOT NULL ORDER BY seq"
    ):
        control = Control(seq, command, reason, by, strategy_id, version or 0)
        by_bar.setdefault(int(bar_ts), []).append(control)
    return by_bar


def mark_applied(conn: apsw.Connection, control: Control, *, bar_ts_ms: int, wall_ms: int) -> None:
    conn.execute(
        "UPDATE controls SET applied_ms = ?, bar_ts_ms = ? WHERE seq = ?",
        (wall_ms, bar_ts_ms, control.seq),
    )


def post_control(
    conn: apsw.Connection,
    command: str,
    reason: str,
    *,
    wall_ms: int,
    by: str,
    strategy_id: str = "",
    version: int | None = None,
) -> int:
    """Queue an operator control; the running loop applies it (or the next start does).
    `by` is stored as given (njord.controls.operator names a host). No checks: the
    loop's own controls (kill file, a strategy fault) go straight in."""
    with conn:
        conn.execute(
            "INSERT INTO controls (posted_ms, command, reason, posted_by, strategy_id, version) "
            "VALUES (?, ?, ?, ?, ?, ?)",
            (wall_ms, command, reason, by, strategy_id, version),
        )
    return int(conn.last_insert_rowid())


def post(path: Path, command: str, reason: str, *, by: str, strategy_id: str = "") -> str:
    """Queue `command` for the session in `path` (`strategy_id`: for that sleeve only);
    the answer says when it applies. A finished session is refused (exit 2): nothing would
    ever apply the control; so is a strategy id the session does not run."""

    def queue(conn: apsw.Connection, manifest: Manifest, wall_ms: int) -> str:
        if strategy_id:
            _check_sleeve(manifest, strategy_id)
        seq = post_control(conn, command, reason, wall_ms=wall_ms, by=by, strategy_id=strategy_id)
        target = f" of strategy {strategy_id}" if strategy_id else ""
        return f"{command}{target} posted as control #{seq}"

    posted, when = posting(path, queue)
    return f"{posted}; {when}"


def posting(path: Path, queue: Callable[[db.Connection, Manifest, int], str]) -> tuple[str, str]:
    """Run `queue` (what it posts, and what it says of that) in one write transaction with
    the read of the session's status, and say when the session applies it. A db without a
    session, or a finished one, is refused (exit 2): nothing would ever apply it."""
    conn = db.open_writer(path, create=False)
    try:
        conn.set_busy_timeout(WAIT_MS)
        try:
            conn.execute("BEGIN IMMEDIATE")  # the status read and the insert are one step
        except LeaseError as e:  # busy past WAIT_MS: name the writer that holds it
            raise LeaseError(_busy(conn, path)) from e
        try:
            manifest = SqliteManifestStore(conn).load()
            if manifest is None:
                raise ConfigError(f"{path} holds no session; nothing will apply this")
            when = _applies(conn, path, manifest)
            posted = queue(conn, manifest, leases.wall_ms())
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
    finally:
        conn.close()
    return posted, when


def _check_sleeve(manifest: Manifest, strategy_id: str) -> None:
    ids = [s.id for s in stored_config(manifest.config_toml).strategies if s.enabled]
    if strategy_id not in ids:
        runs = f"it runs {', '.join(ids)}" if ids else "it runs one strategy, no sleeves"
        raise ConfigError(f"session {manifest.run_id} has no strategy {strategy_id!r}: {runs}")


def _applies(conn: apsw.Connection, path: Path, manifest: Manifest) -> str:
    store = SqliteManifestStore(conn)
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
