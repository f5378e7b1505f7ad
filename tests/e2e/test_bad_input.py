"""Bad input to the session commands: one line, the documented exit code, nothing written."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest

from tests.conftest import ROOT, SAMPLE, backtest_args, invoke, njord_proc


@pytest.fixture
def finished(tmp_path: Path, sample_week: Path) -> Path:
    path = tmp_path / "s.db"
    assert invoke(*backtest_args(sample_week, path, "--no-report")).exit_code == 0
    return path


def _paper(db: Path, *extra: str) -> list[str]:
    # The venue URL is never reached: every case is refused before the first request.
    return [
        "paper",
        "--config",
        str(ROOT / "config.toml"),
        "--db",
        str(db),
        "--set",
        'venue.base_url="http://127.0.0.1:9"',
        *extra,
    ]


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (("--for", "5x"), "--for takes a duration like 55m, 2h or 90s, got '5x'"),
        (("--for", "5m", "--until", "2030-01-01"), "--for and --until exclude each other"),
        (("--bars", "0"), "--bars must be >= 1, got 0"),
    ],
)
def test_live_session_arguments(tmp_path: Path, extra: tuple[str, ...], needle: str) -> None:
    db = tmp_path / "p.db"
    result = invoke(*_paper(db, *extra))
    assert result.exit_code == 2
    assert needle in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not db.exists()


def test_paper_refuses_a_backtest_db_and_continue_a_finished_one(finished: Path) -> None:
    before = finished.read_bytes()
    paper = invoke(*_paper(finished, "--bars", "1"))
    assert paper.exit_code == 2
    assert "holds a backtest session, not a paper one" in paper.output
    again = invoke("continue", str(finished), "--quiet")
    assert again.exit_code == 2
    assert "already finished" in again.output
    assert finished.read_bytes() == before


def test_exchange_sim_key_without_secret() -> None:
    result = invoke("exchange-sim", "--data", str(SAMPLE), "--api-key", "k")
    assert result.exit_code == 2
    assert "--api-key and --api-secret go together" in result.output


def test_backtest_refuses_a_live_mode_config(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    result = invoke(*backtest_args(SAMPLE, db, "--set", 'runtime.mode="paper"'))
    assert result.exit_code == 2
    assert "runtime.mode is 'paper'; `njord backtest` runs backtests" in result.output
    assert not db.exists()


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A finished session, good inputs, and the bad places: a file, a directory."""
    root = tmp_path_factory.mktemp("places")
    week = root / "week.parquet"
    pq.write_table(pq.read_table(SAMPLE).slice(0, 1440), week)
    session = root / "s.db"
    assert invoke(*backtest_args(week, session, "--no-report")).exit_code == 0
    (root / "file").write_text("not a directory", encoding="utf-8")
    (root / "dir").mkdir()
    (root / "bars.csv").write_text(
        "ts_utc,open,high,low,close,volume\n2024-01-01 00:00:00,1,2,1,2,5\n", encoding="utf-8"
    )
    (root / "cut.zip").write_bytes(b"PK\x03\x04 truncated")
    return {"root": str(root), "week": str(week), "db": str(session), "sample": str(SAMPLE)}


# Every path a command writes, given a place it cannot write: (argv, exit code, message).
# {file} is a regular file, {dir} a directory; the message's path follows the option.
OUTPUT_PATHS = [
    (["init", "{file}/c.toml"], 2, "{file}/c.toml: {root}/file is a file, not a directory"),
    (["init", "{dir}"], 2, "{dir} is a directory; give a file path"),
    (["backtest", "--set", 'data.path="{week}"', "--db", "{dir}"], 2, "--db {dir} is a directory"),
    (["backtest", "--set", 'data.path="{week}"', "--out", "{file}"], 2, "--out {file} is a file"),
    (
        ["backtest", "--set", 'data.path="{week}"', "--out", "{file}/r"],
        2,
        "--out {file}/r: {root}/file is a file, not a directory",
    ),
    (["continue", "{db}", "--out", "{file}"], 2, "--out {file} is a file; give a directory"),
    (["report", "--db", "{db}", "-o", "{dir}"], 2, "--out {dir} is a directory"),
    (["report", "--db", "{db}", "-o", "{file}/r.html"], 2, "--out {file}/r.html: {root}/file is"),
    (["export", "--db", "{db}", "--out", "{file}"], 2, "--out {file} is a file; give a directory"),
    (["backup", "{db}", "{dir}"], 2, "{dir} is a directory; give a file path"),
    (["backup", "{db}", "{file}/b.db"], 2, "{file}/b.db: {root}/file is a file, not a directory"),
    (["data", "import", "{root}/missing.csv", "--out", "{root}/o.parquet"], 2, "does not exist"),
    (["data", "import", "{dir}", "--out", "{root}/o.parquet"], 2, "{dir} is a directory"),
    (["data", "import", "{root}/cut.zip", "--out", "{root}/o.parquet"], 3, "not a readable zip"),
    (["data", "import", "{root}/bars.csv", "--out", "{dir}"], 2, "--out {dir} is a directory"),
    (["data", "import", "{root}/bars.csv", "--out", "{file}/o.parquet"], 2, "--out {file}/o"),
    (
        ["data", "fetch", "--from", "2024-01-01", "--to", "2024-01-02", "--out", "{dir}"],
        2,
        "--out {dir} is a directory",
    ),
    (
        ["contract-tests", "--adapter", "history", "--data", "{week}", "--junit", "{dir}"],
        2,
        "--junit {dir} is a directory",
    ),
    (
        ["contract-tests", "--adapter", "history", "--data", "{week}", "--json", "{file}/r.json"],
        2,
        "--json {file}/r.json: {root}/file is a file",
    ),
    (["contract-tests", "--adapter", "history", "--data", "{root}/no"], 2, "--data {root}/no"),
    (["exchange-sim", "--data", "{week}", "--port", "99999"], 2, "--port must be 0..65535"),
    (["exchange-sim", "--data", "{root}/none.parquet"], 2, "--data {root}/none.parquet does"),
    (["paper", "--db", "{dir}", "--bars", "1"], 2, "--db {dir} is a directory"),
    (["tui", "--mode", "backtest", "--db", "{file}/t.db"], 2, "--db {file}/t.db: {root}/file"),
]


@pytest.mark.parametrize(
    ("argv", "code", "needle"),
    OUTPUT_PATHS,
    ids=[f"{i:02d}-{'-'.join(a[:2])}" for i, (a, _, _) in enumerate(OUTPUT_PATHS)],
)
def test_i12_13_every_output_path_is_checked_before_work(
    places: dict[str, str], argv: list[str], code: int, needle: str
) -> None:
    fill = {**places, "file": f"{places['root']}/file", "dir": f"{places['root']}/dir"}
    root = Path(places["root"])
    before = sorted(str(p) for p in root.rglob("*"))
    # A real process: its real stderr is what a user sees; CliRunner would hide a traceback.
    proc = njord_proc(*(a.format(**fill) for a in argv), cwd=root)
    out, err = proc.communicate(timeout=60)
    assert "Traceback" not in err
    assert proc.returncode == code, err
    assert err.startswith("error: ")
    assert needle.format(**fill) in err
    assert len(err.strip().splitlines()) == 1, err
    assert out == ""
    assert sorted(str(p) for p in root.rglob("*")) == before


def test_a_relative_data_path_that_is_missing_says_where_it_was_read_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A config run from another folder: its relative data.path is read from there.
    monkeypatch.chdir(tmp_path)
    result = invoke("backtest", "--config", str(ROOT / "config.toml"), "--db", "s.db")
    assert result.exit_code == 2
    assert result.output == (
        "error: data file sample_data/BTCUSDT-1m-2024-01.parquet does not exist (data.path, "
        f"read from the working directory {tmp_path})\n"
    )
    assert not (tmp_path / "s.db").exists()
