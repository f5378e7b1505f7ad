"""Issue 12, sessions: continue, resume and verify do what they say."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time
from contextlib import AbstractContextManager
from pathlib import Path

import apsw
import msgspec
import pytest

from njord.sim.server import SimServer
from njord.store import db
from njord.store.amendments import Amendment
from njord.store.migrations import schema_section
from njord.tui.dashboard import amendments_line
from tests.conftest import (
    ROOT,
    SAMPLE,
    backtest_args,
    bars_in,
    invoke,
    njord_proc,
    query,
    wait_rows,
)
from tests.sim.conftest import FIRST_BAR_MS, frozen_market


def market(closed_minutes: int) -> AbstractContextManager[SimServer]:
    """A simulator on a port of its own whose clock stands `closed_minutes` into the sample."""
    return frozen_market(SAMPLE, closed_minutes)


def paper_args(path: Path, url: str, *extra: str) -> list[str]:
    args = ["paper", "--db", str(path), "--poll-s", "0.01", "--config", str(ROOT / "config.toml")]
    args += ["--set", f'venue.base_url="{url}"', "--set", 'data.start="2024-01-01T00:00"']
    return [*args, *extra]


def test_i12_08_a_resumed_session_takes_operational_keys_and_refuses_deciding_ones(
    tmp_path: Path,
) -> None:
    path = tmp_path / "paper.db"
    with market(40) as first:
        old_url = first.url
        assert invoke(*paper_args(path, old_url, "--bars", "20")).exit_code == 0
    with market(60) as restarted:  # the simulator came back on another port
        refused = invoke(
            *paper_args(path, restarted.url, "--bars", "5", "--for", "20s"),
            "--set",
            "costs.slippage_bps=5",
            "--set",
            "strategy.params.fast=12",
        )
        assert refused.exit_code == 2
        assert "costs.slippage_bps (1 -> 5)" in refused.output
        assert "strategy.params.fast" in refused.output
        assert query(path, "SELECT count(*) FROM config_amendments") == [(0,)]
        amended = invoke(
            *paper_args(path, restarted.url, "--bars", "5", "--for", "30s"),
            "--set",
            "risk.notional_cap=5000",
        )
        assert amended.exit_code == 0, amended.output
        assert "5 new bars, 25 in all" in amended.output
        same = ("--set", "risk.notional_cap=5000")
        again = invoke(*paper_args(path, restarted.url, "--bars", "1", "--for", "20s"), *same)
        assert again.exit_code == 0, again.output  # the same values again: nothing to amend
    rows = query(path, "SELECT key, old_value, new_value, after_bar_ms FROM config_amendments")
    last_20 = FIRST_BAR_MS + 19 * 60_000
    assert sorted(rows) == [
        ("risk.notional_cap", "50000", "5000", last_20),  # config.toml holds 50000
        ("venue.base_url", f'"{old_url}"', f'"{restarted.url}"', last_20),
    ]
    status = json.loads(invoke("status", "--db", str(path), "--json").output)
    assert {a["key"] for a in status["config_amendments"]} == {
        "venue.base_url",
        "risk.notional_cap",
    }
    amended = msgspec.convert(status["config_amendments"], list[Amendment])
    shown = amendments_line(amended)  # the TUI dashboard's line
    assert f'config amended[/] (2): venue.base_url "{old_url}" -> "{restarted.url}"' in shown
    hashed = query(
        path, "SELECT payload FROM decisions WHERE kind = 'log' AND payload LIKE '%config amended%'"
    )
    assert len(hashed) == 1
    assert invoke("audit", str(path)).exit_code == 0


def test_i12_08_risk_amendments_take_effect_after_their_bar_and_verify(
    sample_week: Path, tmp_path: Path
) -> None:
    path = tmp_path / "s.db"
    _paced_backtest_stopped(sample_week, path, signal.SIGKILL)
    (last,) = query(path, "SELECT last_bar_ms FROM account")[0]
    refused = invoke("continue", str(path), "--quiet", "--set", "runtime.initial_cash=5")
    assert refused.exit_code == 2
    assert "runtime.initial_cash (10000 -> 5)" in refused.output
    carried = invoke(
        "continue",
        str(path),
        "--quiet",
        "--out",
        str(tmp_path / "o"),
        "--set",
        "risk.notional_cap=50",
    )
    assert carried.exit_code == 0, carried.output
    capped = query(path, "SELECT min(bar_ts_ms) FROM intents WHERE reason = 'NOTIONAL_CAP'")
    assert capped[0][0] is not None
    assert int(str(capped[0][0])) > int(str(last))
    assert query(
        path, f"SELECT count(*) FROM intents WHERE bar_ts_ms > {last} AND side = 'BUY' AND allowed"
    ) == [(0,)]
    verified = invoke("verify", str(path))
    assert verified.exit_code == 0, verified.output
    assert verified.output.startswith("verified: ")
    assert invoke("audit", str(path)).exit_code == 0


def test_i12_08_schema_6_migrates_from_5(tmp_path: Path) -> None:
    path = tmp_path / "v5.db"
    conn = apsw.Connection(str(path))
    for version in range(1, 6):
        conn.execute(schema_section(version))
    conn.execute(f"PRAGMA application_id = {db.APPLICATION_ID}; PRAGMA user_version = 5")
    conn.execute("INSERT INTO logs (ts_ms, component, level, msg) VALUES (1, 'c', 'INFO', 'kept')")
    conn.close()
    migrated = db.open_writer(path, create=False)
    assert migrated.execute("PRAGMA user_version").fetchone()[0] == db.schema_version()
    assert migrated.execute("SELECT count(*) FROM config_amendments").fetchone()[0] == 0
    assert migrated.execute("SELECT msg FROM logs").fetchall() == [("kept",)]
    migrated.close()
    assert (tmp_path / "v5.db.v5.bak").exists()


def test_i12_09_continue_carries_a_paper_session_on_in_its_own_mode(tmp_path: Path) -> None:
    path = tmp_path / "paper.db"
    with market(40) as venue:
        assert invoke(*paper_args(path, venue.url, "--bars", "10")).exit_code == 0
        proc = njord_proc("continue", str(path), cwd=tmp_path)  # the venue is the stored one
        try:
            wait_rows(path, "SELECT 1 FROM account WHERE bars = 40")
        finally:
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert query(path, "SELECT mode, status FROM runs") == [("paper", "stopped")]
    assert not (tmp_path / "runs").exists()  # no backtest results dumped
    assert not list(tmp_path.glob("*.csv"))
    asked = invoke("continue", str(path), "--out", str(tmp_path / "o"))
    assert asked.exit_code == 2
    assert "holds a paper session: it reports one line, not --out/--json" in asked.output
    assert not (tmp_path / "o").exists()


def _paced_backtest_stopped(data: Path, path: Path, how: signal.Signals, *extra: str) -> None:
    """A backtest that commits every bar, ended by `how` once 20 bars are committed."""
    args = [*backtest_args(data, path, "--no-report"), "--pace-ms", "20", *extra]
    proc = njord_proc(*args, "--set", "runtime.commit_every=1", cwd=ROOT)
    wait_rows(path, "SELECT 1 FROM equity LIMIT 1 OFFSET 19")
    proc.send_signal(how)
    proc.communicate(timeout=60)


@pytest.mark.parametrize("how", [signal.SIGTERM, signal.SIGKILL], ids=["stopped", "crashed"])
def test_i12_11_verify_checks_the_bars_an_unfinished_session_has(
    sample_week: Path, tmp_path: Path, how: signal.Signals
) -> None:
    path = tmp_path / "s.db"
    _paced_backtest_stopped(sample_week, path, how)
    bars = bars_in(path)
    result = invoke("verify", str(path))
    assert result.exit_code == 0, result.output
    assert re.search(
        rf"incomplete: {bars} bars verified identical, session stopped at 2024-01-01 \d\d:\d\d",
        result.output,
    )
    tampered = apsw.Connection(str(path))
    tampered.execute(
        "UPDATE equity SET cash_e8 = cash_e8 + 1 WHERE ts_ms = (SELECT max(ts_ms) FROM equity)"
    )
    tampered.close()
    diverged = invoke("verify", str(path))
    assert diverged.exit_code == 4
    assert "equity curve differs" in diverged.output


def _docs_example() -> str:
    """The strategy docs/strategies.md shows, verbatim."""
    text = (ROOT / "docs" / "strategies.md").read_text(encoding="utf-8")
    found = re.search(r"```python\n(.*?)```", text, flags=re.DOTALL)
    assert found is not None
    assert "class DipBuyer" in found.group(1)
    return found.group(1)


def _njord_without(module: str, *args: str) -> subprocess.CompletedProcess[str]:
    """njord in a process whose PYTHONPATH holds njord only: `module` cannot be imported."""
    probe = (
        f"import importlib.util, sys; sys.exit(importlib.util.find_spec({module!r}) is not None)"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    assert subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT).returncode == 0
    return subprocess.run(
        [sys.executable, "-m", "njord", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_i12_12_the_docs_strategy_verifies_and_continues_without_its_module(
    sample_week: Path, tmp_path: Path
) -> None:
    modules = tmp_path / "mods"
    modules.mkdir()
    (modules / "dipdoc.py").write_text(_docs_example(), encoding="utf-8")
    path = tmp_path / "s.db"
    args = [*backtest_args(sample_week, path, "--no-report"), "--pace-ms", "20"]
    args += ["--set", 'strategy.name="dipdoc:DipBuyer"', "--set", "runtime.commit_every=1"]
    args += ["--set", "strategy.params.lookback=5", "--set", "strategy.params.hold=3"]
    proc = njord_proc(*args, cwd=ROOT, env={"PYTHONPATH": f"{ROOT}:{modules}"})
    wait_rows(path, "SELECT 1 FROM fills LIMIT 1 OFFSET 1")  # it traded: a buy and its exit
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = _njord_without("dipdoc", "verify", str(path))
    assert partial.returncode == 0, partial.stderr
    assert "incomplete:" in partial.stdout
    carried = _njord_without(
        "dipdoc", "continue", str(path), "--quiet", "--out", str(tmp_path / "o")
    )
    assert carried.returncode == 0, carried.stderr
    assert bars_in(path) == 3 * 1440
    whole = _njord_without("dipdoc", "verify", str(path))
    assert whole.returncode == 0, whole.stderr
    assert whole.stdout.startswith("verified: ")


@pytest.mark.parametrize("limit", [("--until", "2024-01-01T00:00"), ("--for", "0s")])
@pytest.mark.parametrize("mode", ["paper", "shadow"])
def test_i12_10_a_limit_already_reached_is_refused_before_any_db(
    tmp_path: Path, mode: str, limit: tuple[str, str]
) -> None:
    path = tmp_path / "never.db"
    result = invoke(mode, "--db", str(path), *limit)
    assert result.exit_code == 2
    assert limit[0] in result.output
    assert not path.exists()


def _closed_port_url() -> str:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def test_i12_10_a_new_session_whose_venue_never_answers_gives_up(tmp_path: Path) -> None:
    path = tmp_path / "typo.db"
    args = ["paper", "--db", str(path), "--set", f'venue.base_url="{_closed_port_url()}"']
    result = invoke(*args, "--set", "venue.connect_timeout_s=1.5")
    assert result.exit_code == 1
    assert "never answered within venue.connect_timeout_s = 1.5s" in result.output
    assert query(path, "SELECT kind FROM alerts") == [("error_rate",)]
    assert query(path, "SELECT status FROM runs") == [("failed",)]
    status = json.loads(invoke("status", "--db", str(path), "--json").output)
    assert status["telemetry"]["error_rate"] > 0


def test_i12_10_a_resumed_session_keeps_retrying_and_raises_an_alert(tmp_path: Path) -> None:
    path = tmp_path / "outage.db"
    with market(40) as venue:
        assert invoke(*paper_args(path, venue.url, "--bars", "10")).exit_code == 0
        gone = venue.url
    assert (
        json.loads(invoke("status", "--db", str(path), "--json").output)["telemetry"]["error_rate"]
        == 0
    )
    args = paper_args(path, gone, "--set", "venue.connect_timeout_s=0.5")
    proc = njord_proc(*args, cwd=tmp_path)
    try:
        wait_rows(path, "SELECT 1 FROM alerts WHERE kind = 'error_rate'")  # while it waits
        time.sleep(1.0)
        assert proc.poll() is None, "an outage of a running session is no reason to give up"
        status = json.loads(invoke("status", "--db", str(path), "--json").output)
        assert status["telemetry"]["error_rate"] > 0
        halted = invoke("halt", "--db", str(path), "--reason", "outage")  # no lock held
        assert halted.exit_code == 0, halted.output
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, err
    assert "Traceback" not in err
