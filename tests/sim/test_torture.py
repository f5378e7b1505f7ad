"""Issue 21: `njord torture` on the SMA sample, kept small (few seeds, few bars), in paper
and in live mode.

The harness starts its own simulators on 127.0.0.1 port 0 (live: with keys it makes and
hands the session) and works under `--out` (tmp_path here)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from njord.torture.plan import BAR_PHASES, LIVE_PHASES, draw
from tests.conftest import ROOT, SAMPLE, invoke

FIRST_MS = 1_704_067_200_000
FAST = ["--set", "strategy.params.fast=3", "--set", "strategy.params.slow=7"]
BARS = "60"


def _torture(out: Path, *args: str) -> Any:
    config = str(ROOT / "config.toml")
    return invoke("torture", "--config", config, *FAST, "--bars", BARS, "--out", str(out), *args)


def _steady(report: dict[str, Any]) -> dict[str, Any]:
    """The report less its wall times and the faults fired (how many requests a fault
    finds before the session ends is timing), which alone may differ between two runs."""
    report = dict(report, wall_s=None, faults_fired=None)
    report["per_seed"] = [dict(s, wall_s=None, fired=None) for s in report["per_seed"]]
    return report


def test_one_seed_holds_every_invariant_and_reports_the_same_twice(tmp_path: Path) -> None:
    reports = []
    for _ in range(2):
        result = _torture(tmp_path / "out", "--seed", "3", "--json")
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.output))
    report = reports[0]
    assert report["kills_made"] >= 2
    assert report["clean_stops"] == 1
    assert all(v["held"] == 1 and not v["failed"] for v in report["invariants"].values())
    assert len(report["invariants"]) == 8
    assert {"429_burst", "418_ban", "klines_delayed"} <= set(report["faults"])
    assert _steady(reports[1]) == _steady(report)  # same plan, kills, faults, verdicts
    assert not list((tmp_path / "out").glob("seed-*"))  # a passing seed keeps nothing


def test_a_paper_session_of_two_strategies_holds_every_invariant(tmp_path: Path) -> None:
    """Two SMA sleeves on the one symbol, each with its own account, under the same
    faults and kills: exactly once still holds, and the end equals a clean run's."""
    config = tmp_path / "sleeves.toml"
    config.write_text(
        f'[data]\npath = "{SAMPLE}"\nstart = "2024-01-01T00:00"\n'
        + "".join(
            f'[[strategies]]\nid = "{sid}"\nname = "sma_crossover"\nallocation = 0.5\n'
            f"params = {{ fast = {fast}, slow = {slow} }}\n"
            for sid, fast, slow in (("quick", 3, 7), ("slower", 5, 12))
        ),
        encoding="utf-8",
    )
    args = ["--config", str(config), "--bars", BARS, "--out", str(tmp_path / "out")]
    result = invoke("torture", *args, "--seeds", "2", "--jobs", "2", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["kills_made"] >= 4
    assert all(v["held"] == 2 and not v["failed"] for v in report["invariants"].values())
    assert len(report["invariants"]) == 8


def test_a_live_seed_holds_every_invariant_and_reports_the_same_twice(tmp_path: Path) -> None:
    """Seed 2 in live: killed after the venue executed an order (`executed`), mid-rebuild
    and after a bar decided, a deposit made by hand while it was down, order faults."""
    reports = []
    for _ in range(2):
        result = _torture(tmp_path / "out", "--seed", "2", "--mode", "live", "--json")
        assert result.exit_code == 0, result.output
        reports.append(json.loads(result.output))
    report = reports[0]
    assert report["mode"] == "live"
    assert report["kills"] == {"decided": 1, "executed": 1, "rebuild": 1}
    assert report["clean_stops"] == 1
    assert all(v["held"] == 1 and not v["failed"] for v in report["invariants"].values())
    assert not report["invariants"]["decisions_equal_reference"]["skipped"]
    assert {"balance_change", "5xx_after_execution", "drop_after_execution"} <= set(
        report["faults"]
    )
    assert {"balance_change", "429_burst"} <= set(report["faults_fired"])
    assert _steady(reports[1]) == _steady(report)
    assert not list((tmp_path / "out").glob("seed-*"))


@pytest.mark.parametrize("mode", ["paper", "live"])
def test_a_disabled_duplicate_guard_is_caught_within_twenty_seeds(
    mode: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The mutation check: with the restart's lookup before a resend switched off (the
    test-only NJORD_TEST_RESEND_WITHOUT_QUERY; in live the router's own lookup too), a seed
    fails, and its report prints the command that reproduces it and keeps the evidence."""
    monkeypatch.setenv("NJORD_TEST_RESEND_WITHOUT_QUERY", "1")
    out = tmp_path / "out"
    for seed in range(1, 21):
        result = _torture(out, "--seed", str(seed), "--mode", mode)
        if result.exit_code != 0:
            break
    assert result.exit_code == 4, result.output
    assert re.search(r"no_duplicate_execution +FAILED", result.output), result.output
    command = f"NJORD_TEST_RESEND_WITHOUT_QUERY=1 njord torture --config {ROOT / 'config.toml'}"
    assert f"reproduce: {command}" in result.output
    assert f"--seed {seed} --bars {BARS} --mode {mode}" in result.output
    kept = out / f"seed-{seed}"
    for name in ("session.db", "venue-orders.json", "plan.json", "runs.log", "reproduce.txt"):
        assert (kept / name).is_file(), name


def test_a_seed_draws_the_same_plan_and_every_phase_is_hit_across_seeds() -> None:
    plans = [
        draw(s, bars=200, mode="paper", first_ms=FIRST_MS, recv_window_ms=5000)
        for s in range(1, 21)
    ]
    again = [
        draw(s, bars=200, mode="paper", first_ms=FIRST_MS, recv_window_ms=5000)
        for s in range(1, 21)
    ]
    assert plans == again
    phases = {k.phase for p in plans for k in p.kills}
    assert phases == {*BAR_PHASES, "rebuild", "stop"}
    for plan in plans:
        bars = [k.bar for k in plan.kills if k.phase != "rebuild"]
        assert bars == sorted(bars)
        assert plan.kills[0].phase != "rebuild"  # a rebuild needs a session to rebuild
        assert all(1 <= k.bar < 200 for k in plan.kills)
    kinds = {kind for p in plans for kind in p.fault_counts()}
    assert {
        "stall_past_timeout",
        "klines_missing",
        "skew_within",
        "skew_beyond_recv_window",
    } <= kinds
    assert "balance_change" not in kinds  # live's alone: paper's orders never reach the venue
    live = [
        draw(s, bars=200, mode="live", first_ms=FIRST_MS, recv_window_ms=5000) for s in range(1, 21)
    ]
    assert {k.phase for p in live for k in p.kills} == set(LIVE_PHASES)
    for paper, plan in zip(plans, live, strict=True):  # the same instants; `executed` for `sent`
        assert [k.bar for k in plan.kills] == [k.bar for k in paper.kills]
        assert plan.faults.klines_outages == paper.faults.klines_outages
        assert plan.balance_change is not None


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--config", "missing.toml"], "config file missing.toml does not exist"),
        (["--config", "config.toml", "--seeds", "0"], "--seeds must be >= 1, got 0"),
        (["--config", "config.toml", "--seed", "1", "--seeds", "2"], "exclude each other"),
        (["--config", "config.toml", "--bars", "10"], "--bars must be >= 60"),
        (["--config", "config.toml", "--jobs", "0"], "--jobs must be >= 1"),
        ([], "--config is required"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    result = invoke("torture", *args, "--out", str(tmp_path / "out"))
    assert result.exit_code == 2, result.output
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_an_out_that_cannot_be_created_is_refused(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    result = invoke("torture", "--config", str(ROOT / "config.toml"), "--out", str(blocker / "out"))
    assert result.exit_code == 2
    assert "--out" in result.output
    assert len(result.output.strip().splitlines()) == 1
