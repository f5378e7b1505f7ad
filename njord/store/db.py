"""Opening session dbs: file checks, pragmas, schema creation and forward migrations.

Every connection this module opens is a `SessionConnection`, whose statements translate SQLite's
failures into njord's errors (`translate`: SPEC §2.6, the exit codes of §13): a busy, full,
corrupt, unopenable or read-only db reaches code above the store as a one-line NjordError,
never as an apsw exception.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
import threading
from collections.abc import Callable, Iterator
from importlib import resources
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Generic, Literal, NoReturn, TypeVar

import apsw

from njord.errors import ConfigError, LeaseError, MismatchError, NjordError, StorageError

APPLICATION_ID: Final = 0x6E6A6F72  # 'njor': marks the file as an njord session db
SQLITE_MAGIC: Final = b"SQLite format 3\x00"
BUSY_TIMEOUT_MS: Final = 5000
CHECKPOINT_EVERY_S: Final = 0.2  # a backtest's WAL copied into the db file this often
SETTLE_WAIT_MS: Final = 1000  # how long a closing writer waits for a reader's read (`close_writer`)

Migration = Callable[[apsw.Connection], None]
T = TypeVar("T")
# How code outside the store names a connection it got from here: a handle it passes back
# to store functions, never one it runs SQL on.
Connection = apsw.Connection


_AGAIN = " (a session carries on from its last committed bar: `njord continue`)"


def translate(e: apsw.Error, path: str) -> NjordError | None:
    """What the operator must do about a failure of the db at `path`; None for anything
    else (a malformed statement, a violated constraint): a bug, left as it is (exit 70)."""
    if isinstance(e, apsw.BusyError):
        return LeaseError(
            f"{path} is busy: another process held its write lock for over "
            f"{BUSY_TIMEOUT_MS / 1000:g}s; try again later"
        )
    if isinstance(e, apsw.FullError):
        return StorageError(f"the disk holding {path} is full: free space and run again{_AGAIN}")
    if isinstance(e, apsw.IOError):
        return StorageError(f"cannot write or read {path} ({e}): check the disk{_AGAIN}")
    if isinstance(e, apsw.NotADBError):
        return ConfigError(f"{path} is not a SQLite database")
    if isinstance(e, apsw.CorruptError):
        return MismatchError(f"{path} is corrupt ({e}): carry on from a backup copy of it")
    if isinstance(e, apsw.CantOpenError):
        return ConfigError(f"cannot open {path}: {e} (check it, its folder, its -wal and -shm)")
    if isinstance(e, apsw.ReadOnlyError):
        return ConfigError(f"{path} is read-only; make it writable or work on a copy")
    return None


def fail(e: apsw.Error, connection: apsw.Connection) -> NoReturn:
    """Raise `e` as njord's error for the db (`translate`), or as it is."""
    path = connection.path if isinstance(connection, SessionConnection) else connection.filename
    ours = translate(e, path)
    if ours is None:
        raise e
    raise ours from e


class _Cursor(apsw.Cursor):
    """Statements fail with njord's errors: at prepare, at the first step and at every
    row after it (fetchall steps through __next__)."""

    def execute(self, *args: Any, **kwargs: Any) -> apsw.Cursor:
        try:
            return super().execute(*args, **kwargs)
        except apsw.Error as e:
            fail(e, self.connection)

    def executemany(self, *args: Any, **kwargs: Any) -> apsw.Cursor:
        try:
            return super().executemany(*args, **kwargs)
        except apsw.Error as e:
            fail(e, self.connection)

    def __next__(self) -> Any:
        try:
            return super().__next__()
        except apsw.Error as e:
            fail(e, self.connection)

    def fetchone(self) -> Any:
        try:
            return super().fetchone()
        except apsw.Error as e:
            fail(e, self.connection)


def rows(conn: apsw.Connection, sql: str, bindings: tuple[Any, ...] = ()) -> Iterator[Any]:
    """The rows of a long query (a year of equity), read on a plain cursor: no Python step
    per row as a `_Cursor` takes, and its failures still njord's errors."""
    try:
        yield from apsw.Cursor(conn).execute(sql, bindings)
    except apsw.Error as e:
        fail(e, conn)


class SessionConnection(apsw.Connection):
    """A session db connection whose failures are njord errors. `with conn:` is a
    transaction (a savepoint when nested), as in apsw; its COMMIT translates too."""

    def __init__(self, path: str, flags: int) -> None:
        super().__init__(path, flags=flags)
        self.path = path
        self.cursor_factory = _Cursor

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> bool:
        try:
            return super().__exit__(kind, value, tb)
        except apsw.Error as e:
            fail(e, self)


def schema_sql() -> str:
    """schema.sql ships inside the wheel; an editable checkout reads it from the repo root."""
    packaged = resources.files("njord").joinpath("schema.sql")
    if packaged.is_file():
        return packaged.read_text(encoding="utf-8")
    return (Path(__file__).resolve().parents[2] / "schema.sql").read_text(encoding="utf-8")


def schema_version() -> int:
    found = re.search(r"PRAGMA user_version = (\d+);", schema_sql())
    if found is None:
        raise AssertionError("schema.sql does not set PRAGMA user_version")
    return int(found.group(1))


def open_writer(
    path: Path,
    *,
    create: bool,
    synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
) -> apsw.Connection:
    """Open (or create) a session db for writing, migrated to the current schema."""
    # A zero-length file is what a process killed while creating the db leaves behind.
    fresh = not path.exists() or path.stat().st_size == 0
    if fresh and not create:
        raise ConfigError(f"no session db at {path}")
    if not fresh:
        check_file(path)
        if not os.access(path, os.W_OK):  # before SQLite leaves -wal/-shm files beside it
            raise ConfigError(f"{path} is read-only; make it writable or work on a copy")
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = _connect(path, apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
    try:
        _configure(conn, synchronous)
        fresh = fresh or (create and _is_empty(conn))
        if fresh:
            with conn:
                conn.execute(schema_sql())
        else:
            _check_identity(conn, path)
            _migrate(conn, path)
    except BaseException:
        conn.close()
        raise
    return conn


def open_reader(path: Path, *, upgrade: bool = False) -> apsw.Connection:
    """Read-only connection: never blocks the writer (WAL), never sees half a bar.

    A db of an older schema is refused with the command that upgrades it: a reader
    (status, audit, report, the TUI) never writes. `upgrade=True` is for a writer about
    to open the file anyway: it migrates first, as `open_writer` would."""
    current = schema_version()
    with_version, found = _open_as_is(path)
    if found < current:
        with_version.close()
        if not upgrade:
            raise ConfigError(
                f"{path} has schema version {found}, older than this njord's {current}: "
                f"run `njord migrate {path}` to upgrade it (a backup copy is kept)"
            )
        open_writer(path, create=False).close()
        with_version, _ = _open_as_is(path)
    return with_version


def migrate(path: Path) -> tuple[int, Path | None]:
    """Upgrade a session db to this njord's schema after a backup copy: (from version,
    backup path), the backup None when it was current already."""
    reader, found = _open_as_is(path)
    reader.close()
    if found == schema_version():
        return found, None
    open_writer(path, create=False).close()
    return found, _backup_path(path, found)


def _open_as_is(path: Path) -> tuple[apsw.Connection, int]:
    """A read-only connection to an njord db of this or an older schema, and its version."""
    check_file(path)
    conn = _connect(path, _reader_flags(path))
    try:
        _set(conn, "PRAGMA query_only = ON")  # before anything reads: it never writes
        return conn, _check_identity(conn, path)
    except BaseException:
        conn.close()
        raise


def _reader_flags(path: Path) -> int:
    """How a reader opens the db. A read-only connection cannot remove the -wal and -shm
    files it makes beside the db, so `njord status` left both behind. A db with no WAL
    frames pending, in a place we may write, is opened read-write instead (query_only, so
    it still never writes a row): the last connection to close finds nothing to copy and
    removes both files, as a writer's close does. A WAL holding frames (a writer still
    running, or killed) is read as it is and left so: a reader never merges it."""
    if not _wal_pending(path) and os.access(path, os.W_OK) and os.access(path.parent, os.W_OK):
        return apsw.SQLITE_OPEN_READWRITE
    return apsw.SQLITE_OPEN_READONLY


def _wal_pending(path: Path) -> bool:
    """A -wal beside the db that holds frames (or is not a plain file): part of the db."""
    try:  # one stat, not exists() then stat(): a writer closing deletes its WAL in between
        found = path.with_name(path.name + "-wal").stat()
    except FileNotFoundError:
        return False
    return not stat.S_ISREG(found.st_mode) or found.st_size > 0


def check_file(path: Path) -> None:
    if not path.exists():
        raise ConfigError(f"no session db at {path}")
    if path.is_dir():
        raise ConfigError(f"{path} is a directory, not a session db")
    with path.open("rb") as fh:
        head = fh.read(100)
    if not head.startswith(SQLITE_MAGIC):
        raise ConfigError(f"{path} is not a SQLite database")
    page_size = int.from_bytes(head[16:18], "big") or 65536
    page_count = int.from_bytes(head[28:32], "big")
    # With WAL frames pending, a checkpoint killed half-way can leave the header ahead of
    # the file; SQLite finishes it from the WAL on open. Only a WAL-less file is truncated.
    if page_count and not _wal_pending(path) and path.stat().st_size < page_size * page_count:
        raise MismatchError(
            f"{path} is truncated: header promises {page_size * page_count} bytes, "
            f"file has {path.stat().st_size}"
        )


def integrity_errors(conn: apsw.Connection) -> list[str]:
    rows = [str(r[0]) for r in conn.execute("PRAGMA integrity_check")]
    return [] if rows == ["ok"] else rows


def _connect(path: Path, flags: int) -> SessionConnection:
    try:
        conn = SessionConnection(str(path), flags)
        conn.set_busy_timeout(BUSY_TIMEOUT_MS)
    except apsw.Error as e:
        raise ConfigError(f"cannot open {path}: {e}") from e
    return conn


class Aside(Generic[T]):
    """`read(conn)` on a read connection of its own, in a thread, while the caller goes on
    with other reads (`with Aside(path, read) as aside: ...; aside.result()`): SQLite
    steps with the GIL released, so on a second core the two overlap (a year's metrics and
    its exports, a third of a second each). Leaving the block waits for the thread, which
    has closed its connection by then."""

    def __init__(self, path: Path, read: Callable[[apsw.Connection], T]) -> None:
        self._path, self._read = path, read
        self._outcome: tuple[T] | BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="njord-aside", daemon=True)

    def __enter__(self) -> Aside[T]:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._thread.join()

    def _run(self) -> None:
        try:
            conn = open_reader(self._path)
            try:
                self._outcome = (self._read(conn),)
            finally:
                conn.close()
        except BaseException as e:  # raised in the caller's thread, by `result`
            self._outcome = e

    def result(self) -> T:
        self._thread.join()
        outcome = self._outcome
        if isinstance(outcome, BaseException):
            raise outcome
        assert outcome is not None  # the thread has ended, one way or the other
        return outcome[0]


def close_writer(conn: apsw.Connection) -> None:
    """Close a session's writer with what it committed in the db file itself and its WAL
    emptied. A reader still open (a TUI watching the session it drove) would otherwise keep
    the last transactions in the `-wal`, and the `.db` copied alone would miss them: its
    run "running", the lease held. A reader in the middle of a read is waited for up to
    `SETTLE_WAIT_MS`; one that holds its read longer leaves those frames in the WAL (safe
    there, read by whoever opens the file beside it). A failed checkpoint is left to the
    close and to the next open, which report what is wrong with the disk."""
    try:
        conn.set_busy_timeout(SETTLE_WAIT_MS)
        _set(conn, "PRAGMA wal_checkpoint(TRUNCATE)")
    except (apsw.Error, NjordError):
        pass
    finally:
        conn.close()


def batch_checkpoints(conn: apsw.Connection) -> None:
    """The writer's own commits never checkpoint (a year's checkpoints took half a second
    of a backtest's loop): its WAL grows until a `Checkpointer` or the close copies it.
    Commits and what they make durable are unchanged."""
    _set(conn, "PRAGMA wal_autocheckpoint = 0")


class Checkpointer:
    """While a backtest's loop runs (`with Checkpointer(writer):`), the writer's commits
    never checkpoint (`batch_checkpoints`) and a thread on a connection of its own
    checkpoints the session's WAL every `CHECKPOINT_EVERY_S`: PASSIVE, so it never waits
    for the writer nor holds it up, and with the GIL released while SQLite copies, so on a
    second core the loop's thread never pays for it. The session's close copies what is
    left and removes the WAL."""

    def __init__(self, writer: apsw.Connection) -> None:
        self._writer = writer
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="njord-checkpoint", daemon=True)

    def __enter__(self) -> Checkpointer:
        batch_checkpoints(self._writer)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stopped.set()
        self._thread.join()

    def _run(self) -> None:
        try:
            # A plain connection: nothing here is the operator's to hear of (below).
            conn = apsw.Connection(self._writer.filename, flags=apsw.SQLITE_OPEN_READWRITE)
        except apsw.Error:
            return
        try:
            while not self._stopped.wait(CHECKPOINT_EVERY_S):
                _set(conn, "PRAGMA wal_checkpoint(PASSIVE)")
        except apsw.Error:
            # A full disk or an I/O error: the committed pages stay in the WAL, and the
            # session's close tries again. The writer's own statements report such errors.
            return
        finally:
            conn.close()


def _set(conn: apsw.Connection, pragma: str) -> None:
    """Run a pragma that changes something to its end. Some answer with a row (journal_mode,
    wal_checkpoint) and stay a write statement in progress until it is read: should anything
    keep the cursor alive a moment (a sampling profiler holding the frame that made it, as
    Dask's workers run), the next transaction fails with "cannot open savepoint"."""
    conn.execute(pragma).fetchall()


def _configure(conn: apsw.Connection, synchronous: str) -> None:
    _set(conn, "PRAGMA journal_mode = WAL")
    _set(conn, f"PRAGMA synchronous = {synchronous}")
    _set(conn, "PRAGMA foreign_keys = ON")


def _check_identity(conn: apsw.Connection, path: Path) -> int:
    app_id = _pragma_int(conn, "application_id")
    version = _pragma_int(conn, "user_version")
    if app_id != APPLICATION_ID:
        raise ConfigError(
            f"{path} is a SQLite db of another application (application_id={app_id}), "
            "not an njord session"
        )
    current = schema_version()
    if version > current:
        raise ConfigError(
            f"{path} has schema version {version}, newer than this njord's {current}: "
            "upgrade njord to open it"
        )
    return version


def _is_empty(conn: apsw.Connection) -> bool:
    """No schema and no ids: SQLite's empty database, e.g. a creation that was killed."""
    tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    ids = _pragma_int(conn, "application_id") + _pragma_int(conn, "user_version")
    return ids == 0 and tables is not None and tables[0] == 0


def _pragma_int(conn: apsw.Connection, name: str) -> int:
    row = conn.execute(f"PRAGMA {name}").fetchone()
    return int(row[0]) if row else 0


def _migrate(conn: apsw.Connection, path: Path) -> None:
    from njord.store.migrations import MIGRATIONS

    version = _pragma_int(conn, "user_version")
    target = schema_version()
    if version == target:
        return
    _set(conn, "PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copyfile(path, _backup_path(path, version))
    with conn:
        for step in range(version + 1, target + 1):
            MIGRATIONS[step](conn)
        conn.execute(f"PRAGMA user_version = {target}")


def _backup_path(path: Path, version: int) -> Path:
    return path.with_name(f"{path.name}.v{version}.bak")


def backup(src: Path, dst: Path) -> None:
    """SQLite online backup: a consistent copy at a commit boundary, safe while a session
    writes. The copy drops the source's lease: that lease belongs to the original file."""
    if dst.exists():
        raise ConfigError(f"{dst} exists; back up to a new path")
    source, _ = _open_as_is(src)  # an older schema is copied as it is, e.g. before migrating
    try:
        dst.parent.mkdir(parents=True, exist_ok=True)
        target = _connect(dst, apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
        try:
            _copy(source, target)
        except BaseException:  # e.g. a full disk: no half copy left to be taken for a backup
            target.close()
            dst.unlink(missing_ok=True)
            raise
        target.close()
    finally:
        source.close()


def _copy(source: apsw.Connection, target: apsw.Connection) -> None:
    try:
        with target.backup("main", source, "main") as step:
            step.step(-1)  # one step, one read transaction: never a half-written bar
    except apsw.Error as e:
        fail(e, target)
    with target:
        target.execute("DELETE FROM lease")
