"""Benchmark: whole-process wall time and peak RSS of `njord backtest` (SPEC §17).

Generates a seeded random walk of 1-minute bars once (a year: 525,600; a month: 43,200)
under .bench/, runs the SMA-crossover backtest with full persistence in a subprocess,
and prints one figure per line (`--json` for one JSON object).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
START_MS = 1_672_531_200_000  # 2023-01-01


def make_bars(path: Path, n: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    price, ts, o, h, lo, c, v = 20_000.0, [], [], [], [], [], []
    for i in range(n):
        close = round(max(price * (1 + rng.gauss(0, 0.0008)), 1.0), 2)
        ts.append(START_MS + i * 60_000)
        o.append(price)
        h.append(round(max(price, close) * (1 + abs(rng.gauss(0, 0.0003))), 2))
        lo.append(round(min(price, close) * (1 - abs(rng.gauss(0, 0.0003))), 2))
        c.append(close)
        v.append(round(rng.uniform(1, 50), 5))
        price = close
    table = pa.table(
        {
            "ts_utc": pa.array(ts, pa.timestamp("ms", tz="UTC")),
            "open": o,
            "high": h,
            "low": lo,
            "close": c,
            "volume": v,
        }
    )
    pq.write_table(table, path, row_group_size=10_080)  # as `njord data import` writes


def run(bars: Path, out: Path) -> dict[str, float]:
    db = out / "session.db"
    db.unlink(missing_ok=True)
    report = out / "summary.json"
    started = time.perf_counter()
    with report.open("w") as fh:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "njord",
                "backtest",
                "--config",
                str(ROOT / "config.toml"),
                "--set",
                f'data.path="{bars}"',
                "--db",
                str(db),
                "--out",
                str(out),
                "--quiet",
                "--json",
                "--no-report",
                # the busier 10/30 crossover: about 13,000 orders a year to persist
                "--set",
                "strategy.params.fast=10",
                "--set",
                "strategy.params.slow=30",
            ],
            stdout=fh,
            cwd=ROOT,
        )
        # wait4 gives this child's own peak RSS, not the maximum over every child so far.
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        raise SystemExit(f"backtest failed with exit code {child.returncode}")
    rss_mib = usage.ru_maxrss / 1024
    bars_done = json.loads(report.read_text())["status"]["bars"]
    return {
        "bars": bars_done,
        "wall_s": round(wall, 3),
        "bars_per_s": round(bars_done / wall),
        "peak_rss_mib": round(rss_mib, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--sizes", default="month,year")
    parser.add_argument("--generate", nargs=2, metavar=("PATH", "BARS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        make_bars(Path(args.generate[0]), int(args.generate[1]))
        return
    work = ROOT / ".bench"
    work.mkdir(exist_ok=True)
    results = {}
    for name in args.sizes.split(","):
        n = {"month": 43_200, "year": 525_600}[name]
        bars = work / f"bars-{name}.parquet"
        if not bars.exists():
            # In a child: a parent that held the bars would lend its RSS to every later
            # child between fork and exec, and ru_maxrss would report that.
            gen = [sys.executable, __file__, "--generate", str(bars), str(n)]
            subprocess.run(gen, check=True)
        results[name] = run(bars, work / name)
    if args.json:
        print(json.dumps(results, sort_keys=True))
        return
    for name, figures in results.items():
        for key, value in figures.items():
            print(f"{name}.{key} {value}")


if __name__ == "__main__":
    main()
