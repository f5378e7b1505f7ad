"""Issue 12, items 1-4 and 14: operator controls do what they say, or refuse cleanly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import apsw
import pytest

from njord import launch
from njord.cli import load_config
from njord.errors import Interrupted
from njord.loop import Stop
from tests.conftest import (
    ROOT,
    SAMPLE,
    backtest_args,
    invoke,
    njord_proc,
    query,
    user_strategies_env,
    wait_rows,
    write_bars,
)

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC


def _two_prices(path: Path, entry: float, later: float, bars: int = 3000) -> Path:
    """One bar at `entry`, then `bars` bars at `later`: the flatten's price is known."""
    rows = [(T0 + i * 60_000, p, p, p, p, 1.0) for i, p in enumerate([entry] + [later] * bars)]
    return write_bars(path, rows)


def _paced(work: Path, data: Path, *sets: str) -> tuple[Path, subprocess.Popen[str]]:
    """A slowed backtest of HoldLong (buys 0.01 on its first bar and holds)."""
    work.mkdir(exist_ok=True)
    db_path = work / "s.db"
    args = [*backtest_args(data, db_path), "--pace-ms", "20"]
    args += ["--set", 'strategy.name="user_strategies:HoldLong"']
    for item in sets:
        args += ["--set", item]
    return db_path, njord_proc(*args, cwd=ROOT, env=user_strategies_env())


def _flatten_when_long(db_path: Path, proc: subprocess.Popen[str]) -> None:
    try:
        wait_rows(db_path, "SELECT 1 FROM positions WHERE qty_e8 > 0")
        result = invoke("flatten", "--db", str(db_path))
        assert result.exit_code == 0, result.output
        assert "posted" in result.output
        # Applied in the bar's first phase; its outcome (the closing order's fill, the
        # HALTED state naming it) commits in the third: wait for that.
        wait_rows(db_path, "SELECT 1 FROM state_changes WHERE reason LIKE '%flatten: %'")
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()


def test_i12_01_flatten_past_the_notional_cap_ends_flat(tmp_path: Path) -> None:
    # The repro: a long worth 9,516 against risk.notional_cap = 9501. The cap
    # refused the closing SELL; the position stayed open and flatten said nothing.
    data = _two_prices(tmp_path / "bars.parquet", 950_000.0, 951_600.0)
    db_path, proc = _paced(tmp_path, data, "risk.notional_cap=9501")
    _flatten_when_long(db_path, proc)
    assert query(db_path, "SELECT qty_e8 FROM positions") == [(0,)]
    closing = query(
        db_path,
        "SELECT reason, json_extract(rule_inputs, '$.notional_e8') FROM intents "
        "WHERE tag = 'flatten'",
    )
    assert closing == [("OK", 9_516 * 10**8)]
    assert query(db_path, "SELECT state FROM trading_state") == [("HALTED",)]


def test_i12_02_flatten_reports_flat_or_what_stayed_open_and_why(tmp_path: Path) -> None:
    flat = _two_prices(tmp_path / "flat.parquet", 950_000.0, 951_600.0)
    db_path, proc = _paced(tmp_path / "a", flat, "risk.notional_cap=9501")
    _flatten_when_long(db_path, proc)
    assert _reported(db_path) == ("operator; flatten: flat", "flatten: flat")
    assert query(db_path, "SELECT kind FROM alerts") == []
    # Dust: 0.01 bought at 1,100 is worth 5 at 500, under costs.min_notional = 10.
    dust = _two_prices(tmp_path / "dust.parquet", 1_100.0, 500.0)
    db_path, proc = _paced(tmp_path / "b", dust)
    _flatten_when_long(db_path, proc)
    outcome = "0.01 BTCUSDT stayed open: closing order refused BELOW_MIN_NOTIONAL"
    assert _reported(db_path) == (f"operator; flatten: {outcome}", f"flatten: {outcome}")
    assert query(db_path, "SELECT kind, msg, cleared_ms FROM alerts") == [
        ("flatten_refused", f"flatten: {outcome}", None)
    ]
    assert query(db_path, "SELECT state FROM trading_state") == [("HALTED",)]


def _reported(db_path: Path) -> tuple[object, object]:
    """The flatten's state-change reason and its log record."""
    (change,) = query(db_path, "SELECT reason FROM state_changes WHERE reason LIKE '%flatten%'")
    (record,) = query(db_path, "SELECT msg FROM logs WHERE msg LIKE 'flatten:%'")
    return change[0], record[0]


def stopped_session(tmp_path: Path) -> Path:
    """A backtest stopped on request after its first bar: resumable, like a Ctrl-C."""
    data = _two_prices(tmp_path / "short.parquet", 100.0, 101.0, bars=100)
    db_path = tmp_path / "stopped.db"
    config = load_config(None, (f'data.path="{data}"',), "NJORD_").config
    run = launch.backtest(
        config, env_prefix="NJORD_", db_path=db_path, out_dir=tmp_path / "out", echo=False
    )
    stop = Stop()
    stop.requested = True
    with pytest.raises(Interrupted):
        launch.drive(run, stop=stop, progress=lambda n: None)
    assert query(db_path, "SELECT status FROM runs") == [("stopped",)]
    return db_path


CONTROLS = [["halt"], ["reduce"], ["flatten"], ["resume", "--confirm"]]


def test_i12_03_controls_on_a_finished_session_are_refused(tmp_path: Path) -> None:
    # Before: each exited 0, "posted ... applies it at its next bar", and nothing ever did.
    data = _two_prices(tmp_path / "bars.parquet", 100.0, 101.0, bars=100)
    db_path = tmp_path / "s.db"
    assert invoke(*backtest_args(data, db_path, "--no-report")).exit_code == 0
    (run_id,) = query(db_path, "SELECT run_id FROM runs")[0]
    before = db_path.read_bytes()
    for command in CONTROLS:
        result = invoke(*command, "--db", str(db_path))
        assert result.exit_code == 2, result.output
        assert result.output == (
            f"error: session {run_id} in {db_path} is finished; nothing will apply this\n"
        )
    assert db_path.read_bytes() == before


def test_i12_03_controls_on_a_stopped_session_apply_when_it_next_runs(tmp_path: Path) -> None:
    db_path = stopped_session(tmp_path)
    (run_id,) = query(db_path, "SELECT run_id FROM runs")[0]
    for seq, command in enumerate(CONTROLS, start=1):
        result = invoke(*command, "--db", str(db_path))
        assert result.exit_code == 0, result.output
        assert result.output == (
            f"{command[0]} posted as control #{seq}; session {run_id} is stopped: "
            "it applies this when it next runs\n"
        )
    assert query(db_path, "SELECT count(*) FROM controls WHERE applied_ms IS NULL") == [(4,)]
    cont = invoke("continue", str(db_path), "--quiet", "--out", str(tmp_path / "o"))
    assert cont.exit_code == 0, cont.output
    assert query(db_path, "SELECT count(*) FROM controls WHERE applied_ms IS NULL") == [(0,)]


def test_i12_14_a_control_on_a_busy_db_waits_1s_then_names_the_writer(tmp_path: Path) -> None:
    # Before: 5 s of waiting, then apsw.BusyError as a traceback.
    db_path = stopped_session(tmp_path)
    holder = apsw.Connection(str(db_path))
    now = time.time_ns() // 1_000_000
    with holder:  # a writer that holds the lease ...
        holder.execute(
            "INSERT INTO lease VALUES (1, ?, ?, 'tok', ?, ?)",
            (os.getpid(), socket.gethostname(), now, now),
        )
    holder.execute("BEGIN IMMEDIATE")  # ... and is in the middle of a transaction
    try:
        started = time.monotonic()
        result = invoke("halt", "--db", str(db_path))
        waited = time.monotonic() - started
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert result.exit_code == 75, result.output
    assert result.output == (
        f"error: {db_path} is busy: its writer (pid {os.getpid()} on "
        f"{socket.gethostname()}) held a transaction for over 1s; try again\n"
    )
    assert 1.0 <= waited < 3.0
    assert query(db_path, "SELECT count(*) FROM controls") == [(0,)]


def test_i12_14_a_control_on_a_read_only_db_is_one_line_exit_2(tmp_path: Path) -> None:
    db_path = stopped_session(tmp_path)
    files = sorted(os.listdir(tmp_path))
    before = db_path.read_bytes()
    db_path.chmod(0o444)
    immutable = os.geteuid() == 0  # root writes through file modes; an immutable file it cannot
    if immutable and subprocess.run(["chattr", "+i", str(db_path)], check=False).returncode:
        pytest.skip(
            "running as root on a file system without chattr +i: cannot make a read-only db"
        )
    try:
        result = invoke("flatten", "--db", str(db_path))
    finally:
        if immutable:
            subprocess.run(["chattr", "-i", str(db_path)], check=True)
    assert result.exit_code == 2, result.output
    assert result.output == (f"error: {db_path} is read-only; make it writable or work on a copy\n")
    assert sorted(os.listdir(tmp_path)) == files  # no -wal/-shm left beside it
    assert db_path.read_bytes() == before


def _halted_within(db_path: Path, kill_file: Path) -> float:
    """Touch the kill file; seconds until the committed trading state is HALTED."""
    kill_file.touch()
    touched = time.monotonic()
    wait_rows(db_path, "SELECT 1 FROM trading_state WHERE state = 'HALTED'", timeout=10)
    return time.monotonic() - touched


def _halted_by_the_kill_file(db_path: Path, kill_file: Path) -> None:
    assert query(db_path, "SELECT changed_by, reason FROM trading_state") == [
        ("kill-file", f"kill file {kill_file}")
    ]
    assert query(db_path, "SELECT command, posted_by FROM controls") == [("halt", "kill-file")]


def test_i12_04_a_kill_file_halts_a_paced_session_within_1s(tmp_path: Path) -> None:
    kill_file = tmp_path / "njord.kill"
    db_path = tmp_path / "s.db"
    args = [*backtest_args(SAMPLE, db_path), "--pace-ms", "50"]
    args += ["--set", 'strategy.name="user_strategies:EveryBar"']
    args += ["--set", f'runtime.kill_file="{kill_file}"']
    proc = njord_proc(*args, cwd=ROOT, env=user_strategies_env())
    try:
        wait_rows(db_path, "SELECT 1 FROM intents WHERE allowed = 1 LIMIT 1")
        latency = _halted_within(db_path, kill_file)
        _halted_by_the_kill_file(db_path, kill_file)
        kill_file.unlink()  # removing it does not resume
        bars = query(db_path, "SELECT bars FROM account")[0][0]
        wait_rows(db_path, f"SELECT 1 FROM account WHERE bars > {bars} + 10")
        assert query(db_path, "SELECT state FROM trading_state") == [("HALTED",)]
        assert invoke("resume", "--db", str(db_path), "--confirm").exit_code == 0
        wait_rows(db_path, "SELECT 1 FROM trading_state WHERE state = 'ACTIVE'")
        latency_again = _halted_within(db_path, kill_file)  # and it works again
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    print(f"kill file -> HALTED: {latency * 1000:.0f} ms, again {latency_again * 1000:.0f} ms")
    assert latency < 1.0
    assert latency_again < 1.0


def test_i12_04_a_kill_file_halts_a_paper_session_between_bars(tmp_path: Path) -> None:
    from decimal import Decimal

    from njord import sim
    from tests.sim.conftest import FIRST_BAR_MS

    kill_file = tmp_path / "njord.kill"
    server = sim.build(
        SAMPLE, speed=0, start_ms=FIRST_BAR_MS + 40 * 60_000, balances={"USDT": Decimal(10_000)}
    )  # 40 closed bars, then the clock stands still: the session waits between bars
    server.start_in_thread()
    db_path = tmp_path / "paper.db"
    args = ["paper", "--db", str(db_path), "--poll-s", "0.05"]
    args += ["--set", f'venue.base_url="{server.url}"', "--set", 'data.start="2024-01-01T00:00"']
    args += ["--set", f'runtime.kill_file="{kill_file}"']
    proc = njord_proc(*args, cwd=tmp_path)
    try:
        wait_rows(db_path, "SELECT 1 FROM account WHERE bars = 40")
        latency = _halted_within(db_path, kill_file)
        bars = query(db_path, "SELECT bars FROM account")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)
        server.shutdown()
        server.server_close()
    print(f"kill file -> HALTED between bars: {latency * 1000:.0f} ms")
    assert latency < 1.0
    assert bars == [(40,)]  # no bar arrived: it applied while the feed waited
    _halted_by_the_kill_file(db_path, kill_file)


def test_i12_04_halt_file_creates_the_kill_file(tmp_path: Path) -> None:
    kill_file = tmp_path / "njord.kill"
    result = invoke("halt", "--file", str(kill_file), "--reason", "maintenance")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"kill file {kill_file} created: ")
    assert "maintenance" in kill_file.read_text()
    assert invoke("halt", "--file", str(kill_file)).exit_code == 0  # already there: fine
    nowhere = tmp_path / "missing" / "njord.kill"
    refused = invoke("halt", "--file", str(nowhere), "--db", str(tmp_path / "none.db"))
    assert refused.exit_code == 2
    assert refused.output == (
        f"error: cannot create kill file {nowhere}: folder {nowhere.parent} does not exist\n"
    )
    neither = invoke("halt")
    assert neither.exit_code == 2
    assert "give --db D (the session to halt) or --file PATH" in neither.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["njord.kill"]


def test_i12_04_a_kill_file_halts_at_the_first_bar_and_verify_ignores_it(
    tmp_path: Path,
) -> None:
    kill_file = tmp_path / "njord.kill"
    kill_file.touch()
    data = _two_prices(tmp_path / "bars.parquet", 100.0, 101.0, bars=100)
    db_path = tmp_path / "s.db"
    args = backtest_args(data, db_path, "--no-report", "--set", f'runtime.kill_file="{kill_file}"')
    assert invoke(*args).exit_code == 0
    first_bar = query(db_path, "SELECT min(ts_ms) FROM equity")[0][0]
    assert query(db_path, "SELECT ts_ms FROM state_changes") == [(first_bar,)]
    _halted_by_the_kill_file(db_path, kill_file)
    # The file is still there: the re-run applies the stored halt and posts none of its own.
    result = invoke("verify", str(db_path))
    assert result.exit_code == 0, result.output
