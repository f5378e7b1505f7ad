"""Sweeps: refusals before any combination, failing combinations as rows, resume."""

from __future__ import annotations

import csv
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, invoke, njord_proc

STRATEGIES = ROOT / "tests" / "e2e"


def config_args(data: Path) -> list[str]:
    return ["--config", str(ROOT / "config.toml"), "--set", f'data.path="{data}"']


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "params",
    [
        ["--param", "fast=5,10", "--param", "fast=20"],
        ["--param", "fast=5,10", "--param", "strategy.params.fast=20"],
    ],
)
def test_i12_21_duplicate_param_is_a_usage_error(
    tmp_path: Path, sample_week: Path, params: list[str]
) -> None:
    where = tmp_path / "sweep"
    result = invoke("sweep", *config_args(sample_week), *params, "--dir", str(where))
    assert result.exit_code == 2
    assert "--param strategy.params.fast is given twice" in result.output
    assert not where.exists()


def test_i12_21_a_raising_combination_is_a_row_while_the_others_finish(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.syspath_prepend(str(STRATEGIES))
    where = tmp_path / "sweep"
    result = invoke(
        "sweep",
        *config_args(sample_week),
        "--set",
        'strategy.name="raising_strategy:RaiseWhen"',
        "--set",
        "strategy.params={}",
        "--param",
        "boom=0,1,2",
        "--jobs",
        "1",
        "--dir",
        str(where),
    )
    assert result.exit_code == 1, result.output
    assert "1 of 3 combinations failed" in result.output
    rows = {r["boom"]: r for r in rows_of(where / "sweep.csv")}
    assert rows["1"]["status"] == "failed"
    assert "RuntimeError('boom')" in rows["1"]["reason"]
    assert rows["0"]["status"] == rows["2"]["status"] == "ok"
    assert int(rows["0"]["trades"]) > 0


def test_i12_21_a_sweep_whose_every_combination_is_skipped_exits_2(
    tmp_path: Path, sample_week: Path
) -> None:
    where = tmp_path / "sweep"
    args = ["--param", "fast=50", "--param", "slow=10,20", "--dir", str(where)]
    result = invoke("sweep", *config_args(sample_week), *args)
    assert result.exit_code == 2
    assert "every combination is skipped" in result.output
    assert "fast must be < slow" in result.output
    assert not where.exists()


def test_i12_21_rerunning_the_same_grid_needs_no_dir(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        result = invoke("sweep", *config_args(sample_week), "--param", "fast=5", "--jobs", "1")
        assert result.exit_code == 0, result.output
    made = sorted((tmp_path / "runs").iterdir())
    assert len(made) == 2
    assert all((d / "sweep.csv").exists() for d in made)


def _wait_files(folder: Path, pattern: str, count: int, timeout: float = 60.0) -> list[Path]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sorted(folder.glob(pattern)) if folder.exists() else []
        if len(found) >= count:
            return found
        time.sleep(0.01)
    raise AssertionError(f"fewer than {count} {pattern} in {folder} within {timeout}s")


def test_i12_21_resume_finishes_an_interrupted_sweep_without_rerunning(
    tmp_path: Path, sample_week: Path
) -> None:
    where = tmp_path / "sweep"
    grid = ["--param", "fast=5,10,20", "--param", "slow=30,60,120", "--jobs", "1"]
    proc = njord_proc("sweep", *config_args(sample_week), *grid, "--dir", str(where), cwd=tmp_path)
    _wait_files(where / "done", "combo-*.json", 2)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    finished = sorted((where / "done").glob("combo-*.json"))
    before = {p.name: p.stat().st_mtime_ns for p in finished}
    assert 2 <= len(before) < 9
    assert not (where / "sweep.csv").exists()

    result = invoke("sweep", "--resume", str(where))
    assert result.exit_code == 0, result.output
    assert f"{len(before)} of 9 combinations were finished; ran {9 - len(before)}" in result.output
    for name, mtime in before.items():
        assert (where / "done" / name).stat().st_mtime_ns == mtime, "re-ran a finished one"
    fresh = tmp_path / "fresh"
    again = invoke("sweep", *config_args(sample_week), *grid, "--dir", str(fresh))
    assert again.exit_code == 0, again.output
    assert (where / "sweep.csv").read_bytes() == (fresh / "sweep.csv").read_bytes()


@pytest.mark.parametrize(
    ("where", "needle"),
    [
        (["--out", "{tmp}"], "--out {tmp} is a directory; give a file path"),
        (["--out", "{tmp}/file.txt/r.csv"], "--out {tmp}/file.txt/r.csv: {tmp}/file.txt is a file"),
        (["--dir", "{tmp}/file.txt"], "--dir {tmp}/file.txt is a file; give a directory"),
        (["--out", "{tmp}/ro/r.csv"], "--out {tmp}/ro/r.csv: cannot write in {tmp}/ro"),
        (["--dir", "{tmp}/ro/sweep"], "--dir {tmp}/ro/sweep: cannot write in {tmp}/ro"),
    ],
)
def test_i12_13_sweep_output_paths_are_checked_before_any_combination(
    tmp_path: Path, sample_week: Path, where: list[str], needle: str
) -> None:
    if "/ro" in where[1] and os.geteuid() == 0:
        pytest.skip("root writes into read-only directories")
    (tmp_path / "file.txt").write_text("x")
    (tmp_path / "ro").mkdir(mode=0o555)
    args = [a.format(tmp=tmp_path) for a in where]
    if "--dir" not in args:
        args += ["--dir", str(tmp_path / "sweep")]
    result = invoke("sweep", *config_args(sample_week), "--param", "fast=5,10", *args)
    assert result.exit_code == 2, result.output
    assert result.output.strip() == "error: " + needle.format(tmp=tmp_path)
    assert not list(tmp_path.rglob("combo-*.db"))
