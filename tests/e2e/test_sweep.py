"""Sweeps: refusals before any combination, failing combinations as rows, resume."""

from __future__ import annotations

import csv
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from njord import research
from tests.conftest import ROOT, invoke, njord_proc, query, user_strategies_env

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
    status = research.load_sweep(where).column("status").to_pylist()
    assert status.count("pending") == 9 - len(before)

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
        (
            ["--out", "{tmp}/file.txt/r.csv"],
            "--out {tmp}/file.txt/r.csv: {tmp}/file.txt is a file, not a directory",
        ),
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


def _run_sweep(data: Path, where: Path, *args: str, code: int = 0) -> list[dict[str, str]]:
    result = invoke("sweep", *config_args(data), *args, "--dir", str(where))
    assert result.exit_code == code, result.output
    return rows_of(where / "sweep.csv")


def test_a_sweep_varies_any_config_key_and_a_grid_file_says_the_same(
    tmp_path: Path, sample_week: Path
) -> None:
    by_flags = _run_sweep(
        sample_week,
        tmp_path / "flags",
        "--param",
        "fast=5,10",
        "--param",
        "costs.slippage_bps=0,5",
        "--jobs",
        "1",
    )
    assert len(by_flags) == 4
    equity = {(r["fast"], r["costs.slippage_bps"]): float(r["final_equity"]) for r in by_flags}
    for fast in ("5", "10"):
        assert equity[(fast, "5")] < equity[(fast, "0")]  # slippage costs money
    grid = tmp_path / "grid.toml"
    grid.write_text("fast = [5, 10]\n\n[costs]\nslippage_bps = [0, 5]\n")
    _run_sweep(sample_week, tmp_path / "file", "--grid", str(grid), "--jobs", "1")
    flags = (tmp_path / "flags" / "sweep.csv").read_bytes()
    assert (tmp_path / "file" / "sweep.csv").read_bytes() == flags


def test_random_combinations_are_seeded_and_stay_in_their_ranges(
    tmp_path: Path, sample_week: Path
) -> None:
    draw = ["--param", "fast=5..20", "--param", "costs.slippage_bps=0.0..5.0", "--jobs", "2"]
    first = _run_sweep(sample_week, tmp_path / "a", *draw, "--random", "4", "--seed", "3")
    again = _run_sweep(sample_week, tmp_path / "b", *draw, "--random", "4", "--seed", "3")
    other = _run_sweep(sample_week, tmp_path / "c", *draw, "--random", "4", "--seed", "4")
    csv_a, csv_b = (tmp_path / d / "sweep.csv" for d in "ab")
    assert csv_a.read_bytes() == csv_b.read_bytes()
    assert first == again
    assert len(first) == 4
    picks = {(r["fast"], r["costs.slippage_bps"]) for r in first}
    assert picks != {(r["fast"], r["costs.slippage_bps"]) for r in other}
    for fast, slippage in picks:
        assert 5 <= int(fast) <= 20
        assert 0.0 <= float(slippage) <= 5.0


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--param", "fast=5..20"], "--param fast is a range: ranges need --random N"),
        (
            ["--param", "costs.slipage_bps=1"],
            "unknown config key costs.slipage_bps (--param costs.slipage_bps); "
            "did you mean costs.slippage_bps?",
        ),
        (
            ["--param", "costs.slippage_bps=1,-1"],
            "config costs.slippage_bps: must be >= 0, got -1 (--param costs.slippage_bps)",
        ),
        (["--param", "slippage_bps=1"], "for the config key give --param costs.slippage_bps=..."),
        (["--param", "fast=5", "--random", "0"], "--random must be >= 1, got 0"),
        (["--param", "fast=9..5", "--random", "2"], "--param fast: the range 9..5 is empty"),
        (["--param", "fast=5", "--jobs", "2", "--dask", "local:2"], "give one of them"),
        (["--param", "fast=5", "--dask", "local:0"], "--dask local:N takes a number"),
        (["--param", "fast=5", "--dask", "scheduler"], "--dask takes local:N or tcp://"),
        (["--grid", "{tmp}/none.toml"], "cannot read --grid {tmp}/none.toml"),
        (["--resume", "{tmp}"], "no sweep.json there; is it a sweep directory?"),
    ],
)
def test_bad_sweep_keys_and_executors_refuse_before_any_backtest(
    tmp_path: Path, sample_week: Path, args: list[str], needle: str
) -> None:
    where = tmp_path / "sweep"
    args = [a.format(tmp=tmp_path) for a in args]
    base = [] if "--resume" in args else [*config_args(sample_week), "--dir", str(where)]
    result = invoke("sweep", *base, *args)
    assert result.exit_code == 2, result.output
    assert needle.format(tmp=tmp_path) in result.output
    assert "Traceback" not in result.output
    assert not where.exists()


def test_resume_takes_its_grid_from_the_directory(tmp_path: Path, sample_week: Path) -> None:
    _run_sweep(sample_week, tmp_path / "s", "--param", "fast=5", "--jobs", "1")
    result = invoke("sweep", "--resume", str(tmp_path / "s"), "--param", "fast=6")
    assert result.exit_code == 2
    assert "--resume DIR runs the grid and config stored in DIR" in result.output
    done = invoke("sweep", "--resume", str(tmp_path / "s"))
    assert done.exit_code == 0, done.output
    assert "1 of 1 combinations were finished; ran 0" in done.output


def test_dask_local_cluster_gives_the_same_bytes_as_one_process(
    tmp_path: Path, sample_week: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 3x3 grid on a real LocalCluster (2 workers on 127.0.0.1) with a raising
    combination per row of the grid: byte-identical results, failures as rows."""
    day = tmp_path / "day.parquet"
    pq.write_table(pq.read_table(sample_week).slice(0, 1440), day)
    monkeypatch.syspath_prepend(str(STRATEGIES))
    monkeypatch.setenv("PYTHONPATH", user_strategies_env()["PYTHONPATH"])  # the workers'
    grid = [
        "--set",
        'strategy.name="raising_strategy:RaiseWhen"',
        "--set",
        "strategy.params={}",
        "--param",
        "boom=0,1,2",
        "--param",
        "costs.slippage_bps=0,1,2",
    ]
    one = _run_sweep(day, tmp_path / "one", *grid, "--jobs", "1", code=1)
    dask = _run_sweep(day, tmp_path / "dask", *grid, "--dask", "local:2", code=1)
    for name in ("sweep.csv", "sweep.parquet"):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "dask" / name).read_bytes()
    assert [r["status"] for r in dask].count("failed") == 3
    assert [r["status"] for r in one].count("ok") == 6
    assert sorted(p.name for p in (tmp_path / "dask").glob("combo-*.db")) == [
        f"combo-{i:04d}.db" for i in range(9)
    ]


def test_dask_without_distributed_installed_is_a_usage_error_with_the_hint(
    tmp_path: Path, sample_week: Path
) -> None:
    blocked = tmp_path / "blocked" / "distributed"
    blocked.mkdir(parents=True)
    (blocked / "__init__.py").write_text("raise ImportError('not installed')\n")
    env = {"PYTHONPATH": f"{blocked.parent}{os.pathsep}{ROOT}"}
    proc = njord_proc(
        "sweep",
        *config_args(sample_week),
        "--param",
        "fast=5",
        "--dask",
        "local:2",
        "--dir",
        str(tmp_path / "s"),
        cwd=tmp_path,
        env=env,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 2, err
    assert err.strip() == "error: --dask needs Dask distributed: pip install 'njord[dask]'"
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("executor", "sig"),
    [
        (["--jobs", "2"], signal.SIGINT),
        (["--dask", "local:2"], signal.SIGINT),
        (["--jobs", "2"], signal.SIGTERM),
    ],
    ids=["pool-ctrl-c", "dask-ctrl-c", "pool-sigterm"],
)
def test_ctrl_c_or_sigterm_stops_a_sweep_and_leaves_it_resumable(
    tmp_path: Path, sample_week: Path, executor: list[str], sig: signal.Signals
) -> None:
    where = tmp_path / "sweep"
    grid = ["--param", "fast=5,10,20", "--param", "slow=30,60,120", *executor]
    args = ["sweep", *config_args(sample_week), *grid, "--dir", str(where)]
    # Started as a shell starts a background job (`njord sweep ... &`): SIGINT ignored.
    proc = subprocess.Popen(
        [sys.executable, "-m", "njord", *args],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    _wait_files(where / "done", "combo-*.json", 1)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert f"sweep interrupted; finish it with `njord sweep --resume {where}`" in err
    assert "Traceback" not in err
    finished = len(list((where / "done").glob("combo-*.json")))
    assert finished < 9
    result = invoke("sweep", "--resume", str(where), *executor)
    assert result.exit_code == 0, result.output
    assert f"{finished} of 9 combinations were finished; ran {9 - finished}" in result.output


def test_dask_ships_the_data_once_and_can_keep_the_dbs_on_the_workers(
    tmp_path: Path, sample_week: Path
) -> None:
    day = tmp_path / "day.parquet"
    pq.write_table(pq.read_table(sample_week).slice(0, 1440), day)
    grid = ["--param", "fast=5,10", "--param", "slow=30"]
    one = _run_sweep(day, tmp_path / "one", *grid, "--jobs", "1")
    shipped = tmp_path / "shipped"
    args = [*grid, "--dask", "local:2", "--ship-data", "--keep-dbs", "worker"]
    rows = _run_sweep(day, shipped, *args)
    assert not list(shipped.glob("combo-*.db"))
    for mine, theirs in zip(rows, one, strict=True):
        host, _, kept = mine.pop("db").partition(":")
        theirs.pop("db")
        assert mine == theirs
        assert host
        (stored,) = query(Path(kept), "SELECT config_toml FROM runs")[0]
        assert "njord-data" in str(stored)  # the worker read its shipped copy, not day.parquet
        shutil.rmtree(Path(kept).parent)


@pytest.mark.parametrize("flag", [["--ship-data"], ["--keep-dbs", "worker"]])
def test_dask_only_flags_need_dask(tmp_path: Path, sample_week: Path, flag: list[str]) -> None:
    result = invoke(
        "sweep", *config_args(sample_week), "--param", "fast=5", *flag, "--dir", str(tmp_path / "s")
    )
    assert result.exit_code == 2
    assert "--ship-data and --keep-dbs worker go with --dask" in result.output


def test_dask_joins_a_running_scheduler_by_its_address(tmp_path: Path, sample_week: Path) -> None:
    import distributed

    day = tmp_path / "day.parquet"
    pq.write_table(pq.read_table(sample_week).slice(0, 1440), day)
    grid = ["--param", "fast=5,10", "--param", "slow=30"]
    one = _run_sweep(day, tmp_path / "one", *grid, "--jobs", "1")
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        address = cluster.scheduler_address
        assert address.startswith("tcp://127.0.0.1:")
        joined = _run_sweep(day, tmp_path / "tcp", *grid, "--dask", address)
    assert joined == one


def test_a_combination_whose_risk_rules_refuse_its_symbol_is_a_skipped_row(
    tmp_path: Path, sample_week: Path
) -> None:
    grid = tmp_path / "grid.toml"
    grid.write_text('[risk]\nallowed_symbols = [["BTCUSDT"], ["ETHUSDT"]]\n')
    where = tmp_path / "sweep"
    args = ["--grid", str(grid), "--jobs", "1", "--dir", str(where)]
    result = invoke("sweep", *config_args(sample_week), *args)
    assert result.exit_code == 0, result.output
    rows = sorted((r["status"], r["reason"]) for r in rows_of(where / "sweep.csv"))
    assert rows == [
        ("ok", ""),
        (
            "skipped",
            "config risk.allowed_symbols ['ETHUSDT'] does not hold data.symbol BTCUSDT: "
            "every order would be refused; add it",
        ),
    ]
