"""Issue 12's refusals: data that lies, ordinary mistakes, one db convention (no tracebacks)."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
from pathlib import Path

import apsw
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from textual.widgets import DataTable, Input, Static

from njord.store import db
from njord.tui.picker import PickerApp
from tests.conftest import ROOT, backtest_args, invoke, write_bars

T0 = 1_704_067_200_000  # 2024-01-01 00:00 UTC
MINUTE = 60_000
FIXTURES = ROOT / "tests" / "fixtures"


def _bars(path: Path, minutes: list[int]) -> Path:
    return write_bars(path, [(T0 + m * MINUTE, 100.0, 101.0, 99.0, 100.5, 1.0) for m in minutes])


def test_i12_17_strict_flag_refuses_gaps_and_excludes_fill(tmp_path: Path) -> None:
    data = _bars(tmp_path / "gap.parquet", [*range(30), *range(40, 70)])
    db = tmp_path / "s.db"
    # --strict wins over a config that forward-fills: the gap is refused as data (exit 3).
    strict = invoke(*backtest_args(data, db, "--set", 'data.gaps="forward"', "--strict"))
    assert strict.exit_code == 3, strict.output
    assert "gap of 10 bars after 2024-01-01 00:29" in strict.output
    both = invoke(*backtest_args(data, db, "--strict", "--fill", "none"))
    assert both.exit_code == 2
    assert both.output.strip() == (
        "error: --strict refuses gaps and --fill none handles them: give one"
    )
    assert not db.exists()


def test_i12_05_null_prices_or_volume_are_refused(tmp_path: Path) -> None:
    csv = tmp_path / "bars.csv"
    csv.write_text(
        "ts_utc,open,high,low,close,volume\n"
        "2024-01-01 00:00:00,100,101,99,100.5,1\n"
        "2024-01-01 00:01:00,100,101,99,,1\n",
        encoding="utf-8",
    )
    out = tmp_path / "bars.parquet"
    imported = invoke("data", "import", str(csv), "--out", str(out))
    assert imported.exit_code == 3, imported.output
    assert "bar 2024-01-01 00:01 has no close (an empty cell)" in imported.output
    assert not out.exists()

    data = _bars(tmp_path / "null.parquet", list(range(30)))
    table = pq.read_table(data)
    volume = pa.array([1.0] * 12 + [None] * 18, pa.float64())
    pq.write_table(table.set_column(5, "volume", volume), data)
    db = tmp_path / "s.db"
    run = invoke(*backtest_args(data, db))
    assert run.exit_code == 3, run.output
    assert "bar 2024-01-01 00:12 has no volume (an empty cell)" in run.output
    assert not db.exists()


def test_a_data_symbol_the_risk_rules_do_not_allow_is_refused(tmp_path: Path) -> None:
    # Every order of the session would be refused SYMBOL_NOT_ALLOWED, with nothing but a
    # count in the summary to say why.
    db = tmp_path / "s.db"
    eth = ROOT / "sample_data" / "ETHUSDT-1m-2024-01.parquet"
    run = invoke(*backtest_args(eth, db, "--set", 'data.symbol="ETHUSDT"'))
    assert run.exit_code == 2, run.output
    assert run.output == (
        "error: config risk.allowed_symbols ['BTCUSDT'] does not hold data.symbol ETHUSDT: "
        "every order would be refused; add it\n"
    )
    assert not db.exists()


def test_i12_06_data_symbol_must_match_the_data(tmp_path: Path, sample_week: Path) -> None:
    db = tmp_path / "s.db"
    eth = ["--set", 'data.symbol="ETHUSDT"', "--set", 'risk.allowed_symbols=["ETHUSDT"]']
    run = invoke(*backtest_args(sample_week, db, *eth))
    assert run.exit_code == 3, run.output
    assert run.output.strip().endswith("data holds BTCUSDT, config trades ETHUSDT")
    assert not db.exists()

    csv = tmp_path / "eth.csv"
    csv.write_text(
        "ts_utc,symbol,open,high,low,close,volume\n2024-01-01 00:00:00,ETHUSDT,1,2,1,2,5\n",
        encoding="utf-8",
    )
    out = tmp_path / "eth.parquet"
    refused = invoke("data", "import", str(csv), "--out", str(out), "--symbol", "BTCUSDT")
    assert refused.exit_code == 3
    assert "data holds ETHUSDT, --symbol is BTCUSDT" in refused.output
    assert not out.exists()
    assert invoke("data", "import", str(csv), "--out", str(out)).exit_code == 0
    assert pq.read_table(out).column("symbol").to_pylist() == ["ETHUSDT"]


def test_i12_07_import_counts_gaps_and_refuses_no_rows(tmp_path: Path) -> None:
    out = tmp_path / "bars.parquet"
    gapped = invoke(
        "data", "import", str(FIXTURES / "BTCUSDT-1m-2018-02-gap.csv"), "--out", str(out)
    )
    assert gapped.exit_code == 0, gapped.output
    assert gapped.output.strip().endswith(
        "1 gap(s) (15 missing bars), the first after 2018-02-10 05:59 (next bar 2018-02-10 06:15)"
    )
    whole = invoke(
        "data", "import", str(FIXTURES / "BTCUSDT-1m-2024-01-head120.csv"), "--out", str(out)
    )
    assert whole.output.strip().endswith("; no gaps")
    for name, text in (("header.csv", "ts_utc,open,high,low,close,volume\n"), ("empty.csv", "")):
        path = tmp_path / name
        path.write_text(text, encoding="utf-8")
        refused = invoke("data", "import", str(path), "--out", str(tmp_path / "n.parquet"))
        assert refused.exit_code == 3
        assert refused.output.startswith(f"error: {path}: no rows (")
        assert len(refused.output.strip().splitlines()) == 1
        assert not (tmp_path / "n.parquet").exists()


# A command that fails the way a bug does, added to the real CLI group in a subprocess.
BUGGY_CLI = """
import click
from njord.cli import cli
from njord.errors import InvariantViolation

@cli.command("boom")
@click.argument("how")
def boom(how: str) -> None:
    if how == "invariant":
        raise InvariantViolation("equity does not reconcile")
    {}["missing"]

cli.main(prog_name="njord")
"""


@pytest.mark.parametrize(
    ("how", "line"),
    [
        ("bug", "internal error (a bug): KeyError: 'missing'; traceback in "),
        ("invariant", "internal error (a bug): InvariantViolation: equity does not reconcile;"),
    ],
)
def test_i12_16_internal_error_is_one_line_and_a_traceback_file(
    tmp_path: Path, how: str, line: str
) -> None:
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    proc = subprocess.run(
        [sys.executable, "-c", BUGGY_CLI, "boom", how],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 70
    assert proc.stderr.startswith(line)
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    saved = Path(proc.stderr.strip().rsplit("traceback in ", 1)[1])
    assert saved.parent == tmp_path
    assert saved.read_text(encoding="utf-8").startswith("Traceback (most recent call last):")
    assert ", in boom\n" in saved.read_text(encoding="utf-8")  # where the bug is


def _listing(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_i12_15_readers_never_migrate_an_older_db(tmp_path: Path) -> None:
    old = tmp_path / "old.db"
    shutil.copyfile(FIXTURES / "session-v1.db", old)
    before = _listing(tmp_path)
    readers = [
        ["status", "--db", str(old)],
        ["audit", str(old)],
        ["report", "--db", str(old), "-o", str(tmp_path / "r.html")],
        ["export", "--db", str(old), "--out", str(tmp_path / "x")],
        ["verify", str(old)],
        ["replay", "--db", str(old)],
        ["diff", str(old), str(old)],
        ["tui", str(old)],
    ]
    for argv in readers:
        result = invoke(*argv)
        assert result.exit_code == 2, (argv, result.output)
        assert result.output == (
            f"error: {old} has schema version 1, older than this njord's "
            f"{db.schema_version()}: run `njord migrate {old}` to upgrade it "
            "(a backup copy is kept)\n"
        )
        assert _listing(tmp_path) == before, argv  # no .bak, no -wal, no output

    async def pick() -> str:
        app = PickerApp(tmp_path)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause()
            assert app.query_one(DataTable).row_count == 0
            app.query_one(Input).value = str(old)
            await pilot.press("tab", "enter")
            await pilot.pause()
            shown = str(app.query_one("#error", Static).render())
            app.exit()
        return shown

    assert "run `njord migrate" in asyncio.run(pick())
    assert _listing(tmp_path) == before

    migrated = invoke("migrate", str(old))
    assert migrated.exit_code == 0
    assert migrated.output == (
        f"migrated {old} from schema version 1 to {db.schema_version()}; "
        f"the old file is kept as {old}.v1.bak\n"
    )
    kept = apsw.Connection(str(tmp_path / "old.db.v1.bak"), flags=apsw.SQLITE_OPEN_READONLY)
    assert kept.execute("PRAGMA user_version").fetchone() == (1,)
    assert kept.execute("SELECT count(*) FROM logs").fetchone() == (5,)
    kept.close()
    assert invoke("status", "--db", str(old), "--json").exit_code == 0
    again = invoke("migrate", "--db", str(old))
    assert (
        again.output == f"{old} is at schema version {db.schema_version()} already; nothing to do\n"
    )


def test_i12_22_db_by_position_or_option(tmp_path: Path, sample_week: Path) -> None:
    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    for command in (["status", "--json"], ["audit", "--json"], ["replay"], ["verify"]):
        by_position = invoke(*command, str(path))
        by_option = invoke(*command, "--db", str(path))
        assert by_position.exit_code == by_option.exit_code == 0, (command, by_option.output)
        if command[0] != "verify":  # verify's output names a fresh run each time
            assert by_position.output == by_option.output
    out = tmp_path / "e"
    assert invoke("export", str(path), "--out", str(out)).exit_code == 0
    assert invoke("report", str(path), "-o", str(tmp_path / "r.html")).exit_code == 0
    both = invoke("status", str(path), "--db", str(tmp_path / "other.db"))
    assert both.exit_code == 2
    assert (
        both.output
        == f"error: two session dbs given, {path} and --db {tmp_path / 'other.db'}: give one\n"
    )
    neither = invoke("audit")
    assert neither.exit_code == 2
    assert neither.output == "error: which session db? give it as DB or --db DB\n"
