"""The session store as a facade: the coordinator's transactions and its errors."""

from __future__ import annotations

import os
from pathlib import Path

import apsw
import pytest

from njord import launch, wiring
from njord.cli import load_config
from njord.errors import ConfigError, LeaseError, MismatchError, NjordError, StorageError
from njord.loop import Stop
from njord.store import audit, db
from tests.conftest import backtest_args, bars_in, invoke, query
from tests.e2e.test_i12_controls import stopped_session


@pytest.fixture
def opened(tmp_path: Path, sample_week: Path) -> launch.Launch:
    """A fresh backtest session, leased and not yet run."""
    config = load_config(None, (f'data.path="{sample_week}"',), "NJORD_").config
    run = launch.backtest(
        config, env_prefix="NJORD_", db_path=tmp_path / "s.db", out_dir=tmp_path / "o", echo=False
    )
    run.session.writer.write_now(run.session.log.drain())
    return run


def test_a_bar_transaction_commits_its_bar_or_nothing(opened: launch.Launch) -> None:
    session = opened.session
    writer = session.writer
    book = wiring.build_book(session.config, session.manifest)
    with writer.bar_transaction(book):
        writer.add_equity(60_000, 1, 2, 0, 3)
    assert not writer.in_transaction

    def failing_bar() -> None:
        with writer.bar_transaction(book):
            writer.add_equity(120_000, 1, 2, 0, 3)
            raise RuntimeError("strategy blew up")

    with pytest.raises(RuntimeError, match="strategy blew up"):
        failing_bar()
    assert not writer.in_transaction
    with writer.bar_transaction(book):  # the chain carries on from the committed head
        writer.add_equity(120_000, 4, 5, 0, 6)
    session.close()
    assert query(session.path, "SELECT ts_ms, equity_e8 FROM equity") == [(60_000, 3), (120_000, 6)]
    conn = db.open_reader(session.path)
    try:
        assert [problem for _, problem in audit.audit(conn)] == [None] * 4
    finally:
        conn.close()


def test_the_session_posts_its_own_controls_and_marks_them_applied(
    opened: launch.Launch,
) -> None:
    session = opened.session
    writer = session.writer
    book = wiring.build_book(session.config, session.manifest)
    seq = writer.post_control("halt", "kill file /tmp/k", wall_ms=1, by="njord-kill-file")
    [control] = writer.pending_controls()
    assert (control.seq, control.command, control.posted_by) == (seq, "halt", "njord-kill-file")
    with writer.bar_transaction(book):
        writer.mark_applied(control, bar_ts_ms=60_000, wall_ms=2)
        writer.add_equity(60_000, 1, 2, 0, 3)
    assert writer.pending_controls() == []
    assert writer.applied_controls() == {60_000: [control]}
    session.close()
    assert query(session.path, "SELECT kind, ref FROM decisions WHERE kind = 'control'") == [
        ("control", str(seq))
    ]


@pytest.mark.parametrize(
    ("failure", "error", "code", "needle"),
    [
        (apsw.BusyError("database is locked"), LeaseError, 75, "is busy"),
        (apsw.FullError("database or disk is full"), StorageError, 1, "is full"),
        (apsw.IOError("disk I/O error"), StorageError, 1, "cannot write or read"),
        (apsw.NotADBError("file is not a database"), ConfigError, 2, "is not a SQLite database"),
        (apsw.CorruptError("database disk image is malformed"), MismatchError, 4, "is corrupt"),
        (apsw.CantOpenError("unable to open database file"), ConfigError, 2, "cannot open"),
        (apsw.ReadOnlyError("attempt to write a readonly database"), ConfigError, 2, "read-only"),
    ],
)
def test_sqlite_failures_become_njord_errors_with_their_exit_codes(
    failure: apsw.Error, error: type[NjordError], code: int, needle: str
) -> None:
    translated = db.translate(failure, "x.db")
    assert isinstance(translated, error)
    assert translated.exit_code == code
    assert needle in str(translated)
    assert "x.db" in str(translated)


def test_a_bug_in_a_statement_is_left_a_bug() -> None:
    assert db.translate(apsw.SQLError("no such table: nope"), "x.db") is None
    assert db.translate(apsw.ConstraintError("CHECK constraint failed"), "x.db") is None


def test_a_full_disk_stops_the_session_at_its_last_good_bar(
    tmp_path: Path, sample_week: Path
) -> None:
    path = tmp_path / "s.db"
    config = load_config(
        None, (f'data.path="{sample_week}"', "runtime.commit_every=100"), "NJORD_"
    ).config
    run = launch.backtest(config, env_prefix="NJORD_", db_path=path, out_dir=None, echo=False)
    (pages,) = run.session.conn.execute("PRAGMA page_count").fetchone()
    # SQLite's own page limit, on the session's connection only: a disk that fills up.
    run.session.conn.execute(f"PRAGMA max_page_count = {pages + 60}")
    with pytest.raises(StorageError, match=f"the disk holding {path} is full"):
        launch.drive(run, stop=Stop(), progress=lambda _: None)  # closes the session
    committed = bars_in(path)
    assert 0 < committed < 3 * 1440
    assert committed % 100 == 0  # rolled back to the last commit
    assert invoke("audit", str(path)).exit_code == 0
    carried = invoke("continue", str(path), "--quiet", "--out", str(tmp_path / "out"))
    assert carried.exit_code == 0, carried.output
    assert bars_in(path) == 3 * 1440
    assert invoke("audit", str(path)).exit_code == 0


def test_a_commit_that_fails_rolls_back_to_the_last_good_bar(
    tmp_path: Path, sample_week: Path
) -> None:
    """The full-disk test above fails at an INSERT; this one fails at the COMMIT itself
    (which SQLite may leave open): the session ends at its last good commit, its lease
    released, and carries on from there."""
    path = tmp_path / "s.db"
    config = load_config(
        None, (f'data.path="{sample_week}"', "runtime.commit_every=100"), "NJORD_"
    ).config
    run = launch.backtest(config, env_prefix="NJORD_", db_path=path, out_dir=None, echo=False)
    conn = run.session.conn
    # On this connection only: the equity row of 03:20 on the first day leaves a child row
    # whose deferred foreign key fails that transaction's COMMIT, and only its COMMIT.
    conn.execute("CREATE TEMP TABLE parent (id INTEGER PRIMARY KEY)")
    conn.execute(
        "CREATE TEMP TABLE child (id INTEGER REFERENCES parent (id) DEFERRABLE INITIALLY DEFERRED)"
    )
    conn.execute(
        "CREATE TEMP TRIGGER fail_commit AFTER INSERT ON main.equity "
        "WHEN NEW.ts_ms = 1704079200000 BEGIN INSERT INTO child VALUES (1); END"
    )
    with pytest.raises(apsw.ConstraintError, match="FOREIGN KEY constraint failed"):
        launch.drive(run, stop=Stop(), progress=lambda _: None)  # closes the session
    assert bars_in(path) == 200  # 03:20 is bar 201: its chunk (200..299) never committed
    assert invoke("audit", str(path)).exit_code == 0
    carried = invoke("continue", str(path), "--quiet", "--out", str(tmp_path / "out"))
    assert carried.exit_code == 0, carried.output
    assert bars_in(path) == 3 * 1440


@pytest.fixture
def finished(tmp_path: Path, sample_week: Path) -> Path:
    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    return path


@pytest.mark.parametrize(
    "command",
    [
        ["status", "--db", "{db}"],
        ["export", "--db", "{db}", "--out", "{tmp}/out"],
        ["report", "--db", "{db}", "-o", "{tmp}/r.html"],
        ["audit", "{db}"],
        ["verify", "{db}"],
        ["continue", "{db}"],
        ["tui", "{db}"],
    ],
)
def test_a_corrupt_db_is_one_line_exit_4(
    finished: Path, tmp_path: Path, command: list[str]
) -> None:
    with finished.open("r+b") as fh:  # every page but the first (the schema) overwritten
        size = fh.seek(0, os.SEEK_END)
        fh.seek(4096)
        fh.write(b"\xff" * (size - 4096))
    result = invoke(*(a.format(db=finished, tmp=tmp_path) for a in command))
    assert result.exit_code == 4, result.output
    assert result.output == (
        f"error: {finished} is corrupt (database disk image is malformed): "
        "carry on from a backup copy of it\n"
    )


def test_a_db_whose_wal_cannot_be_opened_is_one_line_exit_2(finished: Path) -> None:
    (finished.parent / f"{finished.name}-wal").mkdir()
    for command in (["status", "--db", str(finished)], ["continue", str(finished)]):
        result = invoke(*command)
        assert result.exit_code == 2, result.output
        assert result.output.startswith(f"error: cannot open {finished}: ")


def test_a_writer_kept_from_the_write_lock_exits_75(tmp_path: Path) -> None:
    path = stopped_session(tmp_path)
    holder = apsw.Connection(str(path))
    holder.execute("BEGIN IMMEDIATE")  # e.g. a sqlite3 shell left in a write transaction
    try:
        result = invoke("continue", str(path), "--quiet")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 75, result.output
    assert result.output == (
        f"error: {path} is busy: another process held its write lock for over 5s; try again later\n"
    )
