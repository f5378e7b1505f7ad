"""Many seeds summed up: kills, faults, each invariant's verdict, the failing seeds with
the command that reproduces each. Everything but the wall time is a function of the
seeds and the options (`--json` for CI)."""

from __future__ import annotations

from collections import Counter

import msgspec

from njord.torture.invariants import NAMES
from njord.torture.seed import SeedResult


class Verdict(msgspec.Struct, kw_only=True):
    held: int
    failed: list[int]  # seeds


class Failure(msgspec.Struct, kw_only=True):
    seed: int
    invariant: str
    problem: str
    reproduce: str
    kept: str | None


class Report(msgspec.Struct, kw_only=True):
    mode: str
    bars: int
    seeds: list[int]
    kills: dict[str, int]  # kills made, by phase
    kills_made: int
    clean_stops: int
    kills_missed: int  # planned kills the session never reached (it ended first)
    faults: dict[str, int]
    invariants: dict[str, Verdict]
    failures: list[Failure]
    per_seed: list[SeedResult]
    wall_s: float

    @property
    def ok(self) -> bool:
        return not self.failures


def build(results: list[SeedResult], *, mode: str, bars: int, wall_s: float) -> Report:
    results = sorted(results, key=lambda r: r.seed)
    kills: Counter[str] = Counter()
    faults: Counter[str] = Counter()
    for r in results:
        kills.update(r.kills)
        faults.update(r.faults)
    verdicts = {name: Verdict(held=0, failed=[]) for name in NAMES}
    failures = []
    for r in results:
        for check in r.checks:
            verdict = verdicts[check.name]
            if check.problem is None:
                verdict.held += 1
                continue
            verdict.failed.append(r.seed)
            failures.append(
                Failure(
                    seed=r.seed,
                    invariant=check.name,
                    problem=check.problem,
                    reproduce=r.reproduce,
                    kept=r.kept,
                )
            )
    return Report(
        mode=mode,
        bars=bars,
        seeds=[r.seed for r in results],
        kills=dict(sorted(kills.items())),
        kills_made=sum(kills.values()),
        clean_stops=sum(r.stops for r in results),
        kills_missed=sum(len(r.missed) for r in results),
        faults=dict(sorted(faults.items())),
        invariants=verdicts,
        failures=failures,
        per_seed=results,
        wall_s=round(wall_s, 1),
    )


def lines(report: Report) -> list[str]:
    n = len(report.seeds)
    by_phase = ", ".join(f"{phase} {count}" for phase, count in report.kills.items())
    out = [
        f"njord torture: {n} seeds, {report.mode} mode, {report.bars} bars each, "
        f"wall time {report.wall_s:.1f} s",
        f"kills: {report.kills_made} ({by_phase or 'none'}); clean stops and restarts: "
        f"{report.clean_stops}; planned kills not reached: {report.kills_missed}",
        "faults injected: " + ", ".join(f"{kind} {count}" for kind, count in report.faults.items()),
        "invariants:",
    ]
    width = max(len(name) for name in report.invariants)
    for name, verdict in report.invariants.items():
        state = "ok" if not verdict.failed else "FAILED"
        failed = f" (seeds {', '.join(map(str, verdict.failed))})" if verdict.failed else ""
        out.append(f"  {name:<{width}}  {state}  {verdict.held}/{n}{failed}")
    for seed in sorted({f.seed for f in report.failures}):
        first = next(f for f in report.failures if f.seed == seed)
        out.append(f"seed {seed} FAILED {first.invariant}: {first.problem}")
        out.append(f"  reproduce: {first.reproduce}")
        out.append(f"  kept: {first.kept}")
    return out
