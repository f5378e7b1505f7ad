"""Issue 12, items 18-20 and 23: the CLI a user expects (status, --strategy, config show,
and the small ones). Each test is named after its item and failed before the fix."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import apsw
import pytest

from njord import config as configuration
from njord import sim, strategies
from njord.store.db import schema_sql
from tests.conftest import (
    ROOT,
    SAMPLE,
    backtest_args,
    invoke,
    njord_proc,
    query,
    wait_rows,
)

FIRST_BAR_MS = 1_704_067_200_000  # 2024-01-01 00:00 UTC, the sample's first bar


def _json(*args: str) -> Any:
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture
def week_db(tmp_path: Path, sample_week: Path) -> Path:
    """A finished 3-day SMA session with risk blocks: halted by its daily loss limit."""
    path = tmp_path / "week.db"
    args = backtest_args(sample_week, path, "--no-report", "--set", "risk.daily_loss_limit=60")
    assert invoke(*args).exit_code == 0
    return path


# --- item 18: status is a table; fractions in JSON/CSV, percent for people -------------


def test_i12_18_status_is_a_readable_table(week_db: Path) -> None:
    facts = _json("status", "--db", str(week_db))
    rate = facts["telemetry"]["risk_block_rate"]
    assert 0 < rate < 1  # a fraction in JSON
    text = invoke("status", "--db", str(week_db)).stdout
    assert "{" not in text  # no Python dict reprs
    assert "': " not in text
    assert re.search(rf"risk block rate\s+│ {rate * 100:.2f}%", text), text
    assert re.search(r"trading state\s+│ HALTED since 2024-01-0\d \d\d:\d\d UTC", text), text
    assert re.search(rf"equity\s+│ {facts['equity']:,.2f}", text)
    assert f"HALTED={facts['risk']['blocks']['HALTED']}" in text


def test_i12_18_cagr_of_a_short_session_is_na_for_people(tmp_path: Path, sample_week: Path) -> None:
    args = backtest_args(sample_week, tmp_path / "s.db", "--no-report")
    metrics = json.loads(invoke(*args, "--json").stdout)["metrics"]
    assert metrics["cagr"] is not None  # JSON keeps the computed fraction
    assert metrics["days"] == 3.0
    (tmp_path / "s.db").unlink()
    text = invoke(*args).stdout
    assert re.search(r"CAGR[^│]*│\s+n/a", text), text
    assert f"{metrics['total_return'] * 100:.2f}%" in text


def test_i12_18_sweep_shows_percent_and_writes_fractions(tmp_path: Path, sample_week: Path) -> None:
    out = tmp_path / "sweep.csv"
    args = ["sweep", "--set", f'data.path="{sample_week}"', "--param", "fast=5,10"]
    args += ["--param", "slow=30", "--jobs", "1", "--dir", str(tmp_path / "d"), "--out", str(out)]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    rows = [line.split(",") for line in out.read_text().splitlines()]
    column = rows[0].index("total_return")
    fraction = float(rows[1][column])
    assert abs(fraction) < 1
    assert f"{fraction * 100:.2f}%" in result.stdout


# --- item 19: one flag chooses the strategy ---------------------------------------------

BUY_ONCE = '''"""Buys once and holds: a user's strategy in a file of its own."""

from decimal import Decimal

import msgspec

from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent, Side


class BuyOnceParams(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    qty: str = "0.01"


class BuyOnce(Strategy):
    Params = BuyOnceParams

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        if ctx.state.position_e8(symbol) or ctx.state.open_orders:
            return []
        qty = Decimal(self.params.qty)
        return [OrderIntent(symbol=symbol, side=Side.BUY, qty=qty, tag="once")]
'''


def _no_user_path() -> dict[str, str]:
    """A subprocess environment whose PYTHONPATH holds njord and nothing of the user's."""
    return {"PYTHONPATH": str(ROOT)}


def test_i12_19_strategy_flag_runs_a_shipped_strategy_with_its_defaults(
    tmp_path: Path,
) -> None:
    # config.toml's params (fast/slow) belong to its SMA: --strategy leaves them behind.
    path = tmp_path / "rsi.db"
    args = ["backtest", "--config", str(ROOT / "config.toml"), "--strategy", "rsi_tema_bb"]
    args += ["--set", f'data.path="{SAMPLE}"', "--db", str(path), "--out", str(tmp_path / "o")]
    done = _json(*args, "--quiet", "--no-report")
    assert done["metrics"]["trades"] >= 1  # the sample month, the strategy's own defaults
    assert query(path, "SELECT strategy_path FROM runs") == [
        ("njord.strategies.rsi_tema_bb:RsiTemaBollinger",)
    ]
    stored = tomllib.loads(str(query(path, "SELECT config_toml FROM runs")[0][0]))
    assert stored["strategy"]["name"] == "rsi_tema_bb"
    assert stored["strategy"]["params"] == {}


def test_i12_19_strategy_flag_takes_params_from_set_and_defaults_for_the_rest() -> None:
    shown = _json(
        "config", "show", "--config", str(ROOT / "config.toml"),
        "--strategy", "sma_crossover", "--set", "strategy.params.fast=5",
    )  # fmt: skip
    params = {r["key"]: (r["value"], r["origin"]) for r in shown if "params" in r["key"]}
    assert params["strategy.params.fast"] == (5, "--set strategy.params.fast=5")
    assert params["strategy.params.slow"] == (30, "default of SmaCrossover")


def test_i12_19_strategy_flag_takes_a_file_without_pythonpath(
    tmp_path: Path, sample_week: Path
) -> None:
    (tmp_path / "buy_once.py").write_text(BUY_ONCE)
    path = tmp_path / "file.db"
    args = ["backtest", "--strategy", "buy_once.py:BuyOnce"]
    args += ["--set", f'data.path="{sample_week}"']
    args += ["--to", "2024-01-01T06:00", "--set", 'strategy.params.qty="0.02"']
    args += ["--db", str(path), "--out", str(tmp_path / "o"), "--quiet", "--no-report"]
    run = njord_proc(*args, cwd=tmp_path, env=_no_user_path())
    _, err = run.communicate(timeout=120)
    assert run.returncode == 0, err
    assert query(path, "SELECT strategy_path FROM runs") == [("buy_once:BuyOnce",)]
    assert query(path, "SELECT qty_e8 FROM fills") == [(2_000_000,)]
    # The stored source travels: verify elsewhere, where no buy_once.py exists.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    check = njord_proc("verify", str(path), cwd=elsewhere, env=_no_user_path())
    out, err = check.communicate(timeout=120)
    assert check.returncode == 0, err
    assert "verified" in out


@pytest.mark.parametrize(
    ("name", "needle"),
    [
        ("missing.py:BuyOnce", "no such file missing.py"),
        ("buy_once.py:Nope", "has no attribute 'Nope'"),
        ("broken.py:Broken", "NameError"),
    ],
)
def test_i12_19_a_bad_strategy_file_is_one_line_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, needle: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "buy_once.py").write_text(BUY_ONCE)
    (tmp_path / "broken.py").write_text("undefined_name\n")
    result = invoke("config", "show", "--strategy", name)
    assert result.exit_code == 2
    assert needle in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_i12_19_strategies_lists_shipped_and_installed_ones(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "njord_buy_once-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: njord-buy-once\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[njord.strategies]\nbuy_once = buy_once:BuyOnce\n")
    (site / "buy_once.py").write_text(BUY_ONCE)
    env = {"PYTHONPATH": f"{site}{os.pathsep}{ROOT}"}
    listing = njord_proc("strategies", "--json", cwd=tmp_path, env=env)
    out, err = listing.communicate(timeout=60)
    assert listing.returncode == 0, err
    found = {s["name"]: s for s in json.loads(out)}
    assert list(found)[:3] == ["sma_crossover", "trendline_break", "rsi_tema_bb"]
    assert found["buy_once"]["origin"] == "entry point"
    assert found["buy_once"]["params"] == [
        {"name": "qty", "type": "str", "default": "0.01", "required": False}
    ]
    assert found["rsi_tema_bb"]["origin"] == "shipped"
    rsi = {p["name"]: p["default"] for p in found["rsi_tema_bb"]["params"]}
    assert rsi["oversold"] == 35.0
    text = njord_proc("strategies", cwd=tmp_path, env=env)
    out, _ = text.communicate(timeout=60)
    assert "buy_once" in out
    assert "qty=" in out
    assert "fast=10" in out
    # ...and the short name runs.
    shown = njord_proc(
        "config", "show", "--strategy", "buy_once", "--set", f'data.path="{SAMPLE}"',
        cwd=tmp_path, env=env,
    )  # fmt: skip
    out, err = shown.communicate(timeout=60)
    assert shown.returncode == 0, err
    assert "default of BuyOnce" in out


def _header_claims(text: str) -> dict[str, Any]:
    """`#   key = value` lines of config.toml's header: the values that differ on purpose."""
    claims = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        found = re.match(r"#\s+([a-z_.]+) = (\S+)", line)
        if found:
            claims[found.group(1)] = tomllib.loads(f"v = {found.group(2)}")["v"]
    return claims


def test_i12_19_shipped_config_header_names_every_value_that_differs() -> None:
    text = (ROOT / "config.toml").read_text()
    loaded = configuration.load(file=ROOT / "config.toml", env={}, sets=[]).config
    defaults = dict(configuration.leaf_items(configuration.Config()))
    differs: dict[str, Any] = {
        key: value
        for key, value in configuration.leaf_items(loaded)
        if not key.startswith("strategy.params.") and defaults.get(key) != value
    }
    cls = strategies.resolve(loaded.strategy.name)
    own = {p.name: p.default for p in strategies.params_of(cls)}
    for name, value in loaded.strategy.params.items():
        if own[name] != value:
            differs[f"strategy.params.{name}"] = value
    assert differs  # the header says some values differ; it must name exactly those
    assert _header_claims(text) == {
        k: int(v) if isinstance(v, Decimal) else v for k, v in differs.items()
    }


def test_i12_19_readme_first_run_trades_and_blocks_no_exit(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    setup = "python3 -m venv .venv && .venv/bin/pip install -e . && .venv/bin/njord backtest "
    assert setup + "--config config.toml" in readme
    assert "python3 -m venv .venv && .venv/bin/pip install -e '.[dev]' && .venv/bin/pytest" in (
        readme
    )
    args = ["backtest", "--config", str(ROOT / "config.toml"), "--set", f'data.path="{SAMPLE}"']
    args += ["--db", str(tmp_path / "s.db"), "--out", str(tmp_path / "o"), "--quiet"]
    done = _json(*args, "--no-report")
    assert done["metrics"]["trades"] > 10
    assert done["status"]["risk"]["blocks"] == {}  # no exit (nor entry) refused by its limits


# --- item 20: config show refuses what a run refuses ------------------------------------


@pytest.mark.parametrize(
    "bad",
    [
        ("--set", "strategy.params.fast=900"),  # the strategy refuses fast >= slow
        ("--set", "strategy.params.fsat=5"),
        ("--set", 'strategy.name="sma_crosover"'),
        ("--strategy", "rsi_tema_bb", "--set", "strategy.params.oversold=90"),
        ("--strategy", "rsi_tema_bb", "--set", 'strategy.params.bb_k="wide"'),
        ("--set", 'data.start="yesterday"'),
        ("--set", 'data.start="2024-01-10"', "--set", 'data.end="2024-01-05"'),
        ("--set", 'data.path="no/such.parquet"'),
        ("--set", 'venue.secrets_file="no/such.toml"'),
    ],
)
def test_i12_20_config_show_exits_2_where_a_run_would(tmp_path: Path, bad: tuple[str, ...]) -> None:
    base = ["--config", str(ROOT / "config.toml"), "--set", f'data.path="{SAMPLE}"', *bad]
    run = invoke("backtest", *base, "--db", str(tmp_path / "s.db"), "--out", str(tmp_path))
    shown = invoke("config", "show", *base)
    assert run.exit_code == 2
    assert shown.exit_code == 2, shown.stdout
    assert shown.stderr == run.stderr  # the same one line
    assert len(shown.stderr.strip().splitlines()) == 1
    assert shown.stdout == ""
    assert not (tmp_path / "s.db").exists()


def test_i12_20_config_show_of_a_paper_config_checks_its_strategy() -> None:
    bad = ["--set", 'runtime.mode="paper"', "--set", "strategy.params.fast=900"]
    shown = invoke("config", "show", *bad)
    assert shown.exit_code == 2
    assert "fast must be < slow" in shown.stderr
    good = invoke("config", "show", "--set", 'runtime.mode="paper"', "--set", 'data.path="x"')
    assert good.exit_code == 0  # a paper session reads no data file


# --- item 23: the small ones ------------------------------------------------------------


def test_i12_23_no_report_lists_no_report_html(tmp_path: Path, sample_week: Path) -> None:
    args = backtest_args(sample_week, tmp_path / "a.db")
    without = invoke(*[a for a in args if a != "--quiet"], "--no-report")
    assert without.exit_code == 0
    assert "report.html" not in without.stdout
    assert not (tmp_path / "out" / "report.html").exists()
    assert "trades.csv" in without.stdout
    with_report = invoke(*backtest_args(sample_week, tmp_path / "b.db"))
    assert "report.html" in with_report.stdout
    assert (tmp_path / "out" / "report.html").exists()


def test_i12_23_heartbeat_age_is_never_negative(week_db: Path, sample_week: Path) -> None:
    conn = apsw.Connection(str(week_db))
    ahead = time.time_ns() // 1_000_000 + 5_000  # a holder whose clock runs ahead of ours
    conn.execute(
        "INSERT OR REPLACE INTO lease VALUES (1, ?, ?, 'tok', ?, ?)",
        (os.getpid(), socket.gethostname(), ahead, ahead),
    )
    conn.close()
    result = invoke(*backtest_args(sample_week, week_db))
    assert result.exit_code == 75
    assert "(heartbeat 0.0s ago)" in result.stderr, result.stderr
    status = invoke("status", "--db", str(week_db)).stdout
    assert "heartbeat 0.0s ago" in status
    assert "-" not in re.findall(r"heartbeat (\S+)s ago", status)[0]


def test_i12_23_dashboard_writer_line_never_shows_a_negative_beat() -> None:
    from njord.store.lease import Lease
    from njord.tui.dashboard import writer_line

    lease = Lease(os.getpid(), socket.gethostname(), "t", started_ms=0, heartbeat_ms=10_000)
    assert "beat 0s ago" in writer_line(lease, "running", now_ms=9_000, bar_lag_ms=None)


def test_i12_23_operator_stop_prints_once_with_the_summary_line(tmp_path: Path) -> None:
    server = sim.build(
        SAMPLE, speed=0, start_ms=FIRST_BAR_MS + 40 * 60_000, balances={"USDT": Decimal(10_000)}
    )
    server.start_in_thread()
    path = tmp_path / "paper.db"
    args = [
        "paper",
        "--db",
        str(path),
        "--poll-s",
        "0.05",
        "--set",
        f'venue.base_url="{server.url}"',
    ]
    args += ["--set", 'data.start="2024-01-01T00:00"']
    proc = njord_proc(*args, cwd=tmp_path)
    try:
        wait_rows(path, "SELECT 1 FROM account WHERE bars = 40")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 130
    assert err.count("stopped on request") == 1, err
    assert "Traceback" not in err
    last = out.strip().splitlines()[-1]
    assert last.startswith("paper "), out
    assert "40 new bars, 40 in all" in last
    assert "state ACTIVE" in last


def test_i12_23_init_dash_writes_to_stdout(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("init", "-")
    assert result.exit_code == 0
    assert result.stdout == configuration.commented_toml(configuration.Config())
    assert list(tmp_path.iterdir()) == []


def test_i12_23_data_help_mentions_fetch() -> None:
    top = invoke("--help").stdout
    (line,) = [x for x in top.splitlines() if x.strip().startswith("data ")]
    assert "fetch" in line
    assert "fetch" in invoke("data", "--help").stdout.split("Options:")[0]


def test_i12_23_schema_doc_states_the_schema_version() -> None:
    found = re.search(r"PRAGMA user_version = (\d+);", schema_sql())
    assert found is not None
    doc = (ROOT / "docs" / "schema.md").read_text()
    assert f"`schema.sql` (version {found.group(1)})" in doc


def test_i12_23_readme_names_the_byte_identical_files(tmp_path: Path, sample_week: Path) -> None:
    readme = " ".join((ROOT / "README.md").read_text().split())
    found = re.search(r"For identical inputs, (.+?) are byte-identical", readme)
    assert found is not None
    named = set(re.findall(r"`([^`]+)`", found.group(1)))
    for run in ("a", "b"):
        args = backtest_args(sample_week, tmp_path / run / "session.db")
        assert invoke(*args).exit_code == 0
    a, b = tmp_path / "a" / "out", tmp_path / "b" / "out"
    same = {p.name for p in a.iterdir() if p.read_bytes() == (b / p.name).read_bytes()}
    # logs.jsonl names the run, whose id holds the second it started in: two runs that
    # start in the same second (a fast machine) write the same logs.
    assert named <= same
    assert same - named <= {"logs.jsonl"}


def test_i12_23_bench_help_lists_sizes() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "bench.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    help_text = " ".join(done.stdout.split())
    assert "--sizes SIZES comma-separated, from month" in help_text
    assert "year" in help_text
    assert "tui" in help_text


def test_i12_23_bench_runs_in_a_fresh_work_dir(tmp_path: Path) -> None:
    work = tmp_path / "fresh" / ".bench"  # nothing exists yet, as in a fresh clone
    done = subprocess.run(
        [
            sys.executable,
            ROOT / "scripts" / "bench.py",
            "--sizes",
            "month",
            "--work",
            work,
            "--json",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["month"]["bars"] == 43_200


PROBE = """
from pathlib import Path


def test_leaves_a_file() -> None:
    Path({path!r}).write_text("left behind")
"""


def test_i12_23_a_test_session_that_leaves_files_in_the_checkout_fails(tmp_path: Path) -> None:
    left = ROOT / f"i12-probe-{os.getpid()}.txt"  # removed below, before this session ends
    probe = tmp_path / "test_probe.py"
    probe.write_text(PROBE.format(path=str(left)))
    try:
        args = ["-q", "-p", "no:cacheprovider", "-p", "tests.conftest", "--rootdir", tmp_path]
        done = subprocess.run(
            [sys.executable, "-m", "pytest", *args, probe],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
    finally:
        left.unlink(missing_ok=True)
    assert "1 passed" in done.stdout, done.stdout + done.stderr
    assert done.returncode == 1
    assert f"the test session left files in the checkout: {left.name}" in done.stderr
