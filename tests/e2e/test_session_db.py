from __future__ import annotations

import os
import shutil
import signal
import sys
import threading
import time
from pathlib import Path

import apsw
import pytest

from njord import config
from njord.errors import ConfigError
from njord.store import db, reads
from njord.store.runs import SqliteManifestStore
from njord.wiring import plan_backtest
from tests.conftest import ROOT, SAMPLE, backtest_args, invoke, njord_proc, query

FIXTURE_V1 = ROOT / "tests" / "fixtures" / "session-v1.db"


def wait_for(condition, timeout: float = 10.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def _has_lease(path: Path) -> bool:
    if not path.exists():
        return False
    try:
        conn = db.open_reader(path)
        row = conn.execute("SELECT pid FROM lease").fetchone()
        bars = conn.execute("SELECT count(*) FROM equity").fetchone()[0]
        conn.close()
    except (ConfigError, apsw.Error):
        return False
    return row is not None and bars > 0


def test_second_writer_exits_75_and_stale_lease_is_taken_over(tmp_path: Path) -> None:
    db_path = tmp_path / "s.db"
    args = [*backtest_args(SAMPLE, db_path), "--pace-ms", "20", "--set", "runtime.commit_every=1"]
    first = njord_proc(*args, cwd=ROOT)
    try:
        wait_for(lambda: _has_lease(db_path))
        second = invoke("continue", str(db_path), "--quiet")
        assert second.exit_code == 75
        assert f"leased by pid {first.pid}" in second.output
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    taken = njord_proc("continue", str(db_path), "--quiet", "--out", str(tmp_path / "o"), cwd=ROOT)
    _, err = taken.communicate(timeout=120)
    assert taken.returncode == 0, err
    conn = db.open_reader(db_path)
    assert reads.session_status(conn).bars == 44_640
    assert (
        conn.execute(
            "SELECT count(*) FROM logs WHERE msg LIKE '%took over a stale lease%'"
        ).fetchone()[0]
        == 1
    )
    # The unexpected stop is one alert episode: raised and cleared by the start that found it.
    died = conn.execute("SELECT cleared_ms IS NOT NULL FROM alerts WHERE kind = 'session_died'")
    assert died.fetchall() == [(1,)]


def test_migration_from_v1_keeps_every_row(tmp_path: Path) -> None:
    path = tmp_path / "old.db"
    shutil.copyfile(FIXTURE_V1, path)
    conn = db.open_writer(path, create=False)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == db.schema_version()
    assert conn.execute("SELECT count(*) FROM logs").fetchone()[0] == 5
    assert conn.execute("SELECT state FROM trading_state").fetchone()[0] == "HALTED"
    assert SqliteManifestStore(conn).load() is not None
    assert conn.execute("SELECT count(*) FROM equity").fetchone()[0] == 0  # v2 table exists
    assert (tmp_path / "old.db.v1.bak").exists()


def test_newer_schema_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "new.db"
    shutil.copyfile(FIXTURE_V1, path)
    raw = apsw.Connection(str(path))
    raw.execute("PRAGMA user_version = 99")
    raw.close()
    before = path.read_bytes()
    result = invoke("status", "--db", str(path))
    assert result.exit_code == 2
    assert f"schema version 99, newer than this njord's {db.schema_version()}" in result.output
    assert path.read_bytes() == before


@pytest.mark.parametrize(
    ("make", "code", "needle"),
    [
        (lambda p: p.write_text("not a database at all"), 2, "is not a SQLite database"),
        (
            lambda p: apsw.Connection(str(p)).execute("CREATE TABLE t (x)"),
            2,
            "of another application",
        ),
    ],
)
def test_foreign_files_are_refused(tmp_path: Path, make, code: int, needle: str) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "x.db"
    make(path)
    before = path.read_bytes()
    result = invoke("status", "--db", str(path))
    assert result.exit_code == code
    assert needle in result.output
    assert path.read_bytes() == before


def test_truncated_db_is_refused(tmp_path: Path, sample_week: Path) -> None:
    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path)).exit_code == 0
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    result = invoke("status", "--db", str(path))
    assert result.exit_code == 4
    assert "is truncated" in result.output


def test_manifest_hash_is_stable_and_sensitive(sample_week: Path) -> None:
    def manifest_hash(*sets: str) -> str:
        cfg = config.load(file=None, env={}, sets=[f'data.path="{sample_week}"', *sets]).config
        return plan_backtest(cfg).manifest.manifest_sha256()

    assert manifest_hash() == manifest_hash()
    assert manifest_hash() != manifest_hash("costs.slippage_bps=2")


def test_secrets_never_reach_disk(tmp_path: Path, sample_week: Path) -> None:
    env_secret, file_secret = "ENVSECRET-9f8e7d6c5b4a", "FILESECRET-1a2b3c4d5e6f"
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text(f'binance_api_secret = "{file_secret}"\n')
    os.chmod(secrets_file, 0o600)
    db_path = tmp_path / "run" / "s.db"
    env = {"NJORD_BINANCE_API_KEY": env_secret}
    args = [*backtest_args(sample_week, db_path), "--set", f'venue.secrets_file="{secrets_file}"']
    result = invoke(*args, env=env)
    assert result.exit_code == 0, result.output
    assert (
        invoke("export", "--db", str(db_path), "--out", str(tmp_path / "run" / "x")).exit_code == 0
    )
    for path in (tmp_path / "run").rglob("*"):
        if path.is_file():
            blob = path.read_bytes()
            assert env_secret.encode() not in blob, path
            assert file_secret.encode() not in blob, path
    assert env_secret not in result.output
    assert file_secret not in result.output


def test_world_readable_secrets_file_is_refused(tmp_path: Path, sample_week: Path) -> None:
    secrets_file = tmp_path / "secrets.toml"
    secrets_file.write_text('binance_api_secret = "x"\n')
    os.chmod(secrets_file, 0o644)
    db_path = tmp_path / "s.db"
    args = [*backtest_args(sample_week, db_path), "--set", f'venue.secrets_file="{secrets_file}"']
    result = invoke(*args)
    assert result.exit_code == 2
    assert "has mode 0644; run `chmod 600" in result.output
    assert not db_path.exists()


def test_a_backtests_wal_goes_into_the_db_file_on_the_checkpointers_thread(
    tmp_path: Path,
) -> None:
    # A backtest's own commits never checkpoint (they would stop its loop): the
    # Checkpointer's thread copies the WAL into the db file while it runs.
    path = tmp_path / "s.db"
    conn = db.open_writer(path, create=True)
    db.batch_checkpoints(conn)
    with conn:
        conn.execute("CREATE TABLE t (a)")
    before = path.stat().st_size
    for _ in range(60):  # 6 MB: past SQLite's own checkpoint at 1,000 pages
        with conn:
            conn.executemany("INSERT INTO t VALUES (?)", [(b"x" * 1000,)] * 100)
    assert path.stat().st_size == before  # all of it in the WAL
    with db.Checkpointer(conn):
        deadline = time.monotonic() + 30
        while path.stat().st_size < before + 6_000_000 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert path.stat().st_size >= before + 6_000_000
    conn.close()
    assert not path.with_name("s.db-wal").exists()
    assert query(path, "SELECT count(*) FROM t") == [(6000,)]


def test_a_backtest_leaves_no_checkpointer_running_and_no_wal(tmp_path: Path) -> None:
    db_path = tmp_path / "s.db"
    result = invoke(*backtest_args(SAMPLE, db_path, "--to", "2024-01-02"))
    assert result.exit_code == 0, result.output
    assert "njord-checkpoint" not in {t.name for t in threading.enumerate()}
    assert not db_path.with_name("s.db-wal").exists()


def test_read_only_commands_leave_nothing_beside_a_closed_db(tmp_path: Path) -> None:
    """status, audit, verify, export and report read a finished session: no -wal and no
    -shm beside the db afterwards, and the db's bytes as they were (what a user copies)."""
    db_path = tmp_path / "s.db"
    result = invoke(*backtest_args(SAMPLE, db_path, "--to", "2024-01-02", "--no-report"))
    assert result.exit_code == 0, result.output
    before = db_path.read_bytes()
    for command in (
        ["status", "--db", str(db_path)],
        ["audit", str(db_path)],
        ["verify", str(db_path)],
        ["export", str(db_path), "--out", str(tmp_path / "exported")],
        ["report", str(db_path), "--out", str(tmp_path / "report")],
    ):
        result = invoke(*command)
        assert result.exit_code == 0, (command, result.output)
        beside = sorted(p.name for p in tmp_path.glob("s.db*"))
        assert beside == ["s.db"], command
    assert db_path.read_bytes() == before


def test_no_output_is_written_over_a_session_db(tmp_path: Path) -> None:
    """`report -o`, `data import --out` and a session db named like one of its own exports
    each used to replace the db with their output, silently."""
    db_path = tmp_path / "s.db"
    result = invoke(*backtest_args(SAMPLE, db_path, "--to", "2024-01-02", "--no-report"))
    assert result.exit_code == 0, result.output
    before = db_path.read_bytes()
    for command, where in (
        (["report", "--db", str(db_path), "-o", str(db_path)], f"--out {db_path}"),
        (["data", "import", str(SAMPLE), "--out", str(db_path)], f"--out {db_path}"),
    ):
        result = invoke(*command)
        assert result.exit_code == 2, (command, result.output)
        lost = f"error: {where} is a SQLite database; writing there would lose it\n"
        assert result.output == lost
    out = tmp_path / "out"
    shutil.copyfile(db_path, out / "trades.csv")
    refusal = (
        f"error: {out / 'trades.csv'}: the exports write trades.csv into {out}; "
        "give the session db another name, or --out another folder\n"
    )
    result = invoke("export", "--db", str(out / "trades.csv"), "--out", str(out))
    assert (result.exit_code, result.output) == (2, refusal)
    assert (out / "trades.csv").read_bytes() == before
    fresh = tmp_path / "fresh"
    result = invoke(
        "backtest", "--set", f'data.path="{SAMPLE}"', "--db", str(fresh / "fills.csv"),
        "--out", str(fresh), "--quiet",
    )  # fmt: skip
    assert result.exit_code == 2, result.output
    assert "the exports write fills.csv into" in result.output
    assert not fresh.exists()
    assert db_path.read_bytes() == before


def test_a_reader_leaves_a_killed_writers_wal_as_it_found_it(tmp_path: Path) -> None:
    """A WAL holding frames is part of the db (a writer killed before its checkpoint): a
    reader reads through it and leaves it, and the db file, untouched."""
    path = tmp_path / "live" / "s.db"
    conn = db.open_writer(path, create=True)
    db.batch_checkpoints(conn)
    with conn:
        conn.execute("CREATE TABLE t (a)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(100)])
    image = tmp_path / "image"  # the files as kill -9 leaves them: the WAL not copied in
    image.mkdir()
    for name in ("s.db", "s.db-wal"):
        shutil.copyfile(path.parent / name, image / name)
    conn.close()
    copied = {name: (image / name).read_bytes() for name in ("s.db", "s.db-wal")}
    assert copied["s.db-wal"]
    reader = db.open_reader(image / "s.db")
    assert reader.execute("SELECT count(*), sum(a) FROM t").fetchone() == (100, 4950)
    reader.close()
    assert {name: (image / name).read_bytes() for name in copied} == copied


def test_a_read_aside_runs_on_its_own_connection_and_hands_back_its_result_or_error(
    tmp_path: Path,
) -> None:
    """wrap_up reads a year's metrics on a thread beside its exports (`db.Aside`)."""
    path = tmp_path / "s.db"
    conn = db.open_writer(path, create=True)
    with conn:
        conn.execute("CREATE TABLE t (a)")
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(10)])
    seen: list[object] = []

    def total(reader: apsw.Connection) -> int:
        seen.append(reader)
        return int(reader.execute("SELECT sum(a) FROM t").fetchone()[0])

    with db.Aside(path, total) as aside:
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (10,)  # meanwhile
        assert aside.result() == 45
    assert seen[0] is not conn
    with (
        pytest.raises(apsw.SQLError, match="no such table: nowhere"),
        db.Aside(
            path, lambda reader: reader.execute("SELECT * FROM nowhere").fetchall()
        ) as failing,
    ):
        failing.result()
    assert "njord-aside" not in {t.name for t in threading.enumerate()}
    conn.close()
    assert not path.with_name("s.db-wal").exists()  # the readers closed before the writer


def test_a_writer_closed_while_a_reader_watches_leaves_the_db_file_whole(tmp_path: Path) -> None:
    """A TUI driving a session keeps its readers open past the session's close: the last
    transactions must still reach the .db itself, which is what a user copies."""
    path = tmp_path / "s.db"
    conn = db.open_writer(path, create=True)
    db.batch_checkpoints(conn)  # as a backtest's writer: its commits stay in the WAL
    with conn:
        conn.execute("CREATE TABLE t (a)")
    with conn:
        conn.executemany("INSERT INTO t VALUES (?)", [(i,) for i in range(500)])
    watcher = db.open_reader(path)
    assert watcher.execute("SELECT count(*) FROM t").fetchone() == (500,)
    db.close_writer(conn)
    copy = tmp_path / "copy" / "s.db"
    copy.parent.mkdir()
    shutil.copy2(path, copy)  # the file alone, without its -wal
    assert query(copy, "SELECT count(*) FROM t") == [(500,)]
    watcher.close()


def test_opening_a_db_leaves_no_statement_in_progress_while_a_profiler_holds_frames(
    tmp_path: Path,
) -> None:
    # A sampling profiler (Dask's workers run one) keeps the frames it sampled, and with
    # them the cursors those frames made: a pragma answering with a row must be read to its
    # end, or the session's first transaction fails with "cannot open savepoint".
    frames: list[object] = []

    def sample(frame: object, event: str, arg: object) -> None:
        if event == "return":
            frames.append(frame)

    sys.setprofile(sample)
    try:
        conn = db.open_writer(tmp_path / "s.db", create=True)
        db.batch_checkpoints(conn)
    finally:
        sys.setprofile(None)
    with conn:
        conn.execute("CREATE TABLE t (a)")
    conn.close()
    assert frames
