"""Benchmark: whole-process wall time and peak RSS of `njord backtest` (SPEC §17).

Generates a seeded random walk of 1-minute bars once (a year: 525,600; a month: 43,200)
under .bench/, runs the SMA-crossover backtest with full persistence in a subprocess,
and prints one figure per line (`--json` for one JSON object). `--sizes tui` instead
compares a paced session's decision latency with and without a TUI watching its db;
`--sizes sweep` times a 36-combination sweep over the month on `--jobs 2` and on
`--dask local:2` (issue 18: Dask within 1.3x of the pool; `--combos N` draws fewer);
`--sizes report` backtests the year and measures its report's size and build time.
`--sizes trades` imports a generated month of trades (`--trades N` rows, Binance's
`trades` layout) and reports the import's peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path

import apsw
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
SIZES = {"month": 43_200, "year": 525_600, "tui": 43_200, "sweep": 43_200, "report": 525_600}
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
    out.mkdir(parents=True, exist_ok=True)  # summary.json is opened before njord runs
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


def make_trades(path: Path, n: int, seed: int = 7) -> None:
    """A month of trades in Binance's `trades` layout, written in chunks (never all held)."""
    import numpy as np
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(seed)
    month_ms = 31 * 86_400_000
    price = 42_000.0
    chunk = 1_000_000
    with path.open("wb") as fh:
        for lo in range(0, n, chunk):
            k = min(chunk, n - lo)
            ts = START_MS + (np.arange(lo, lo + k, dtype=np.int64) * month_ms) // n
            prices = np.round(price * np.exp(np.cumsum(rng.normal(0, 1e-5, k))), 2)
            price = float(prices[-1])
            qty = np.round(rng.exponential(0.05, k), 8)
            table = pa.table(
                {
                    "id": np.arange(lo, lo + k, dtype=np.int64),
                    "price": prices,
                    "qty": qty,
                    "quote_qty": np.round(prices * qty, 8),
                    "time": ts,
                    "is_buyer_maker": rng.random(k) < 0.5,
                    "is_best_match": np.ones(k, dtype=bool),
                }
            )
            pcsv.write_csv(table, fh, pcsv.WriteOptions(include_header=False))


def import_trades(n: int, work: Path) -> dict[str, float]:
    src = work / f"BTCUSDT-trades-{n}.csv"
    if not src.exists():
        subprocess.run(
            [sys.executable, __file__, "--generate-trades", str(src), str(n)], check=True
        )
    out = work / "trades-bars.parquet"
    started = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "njord", "data", "import", str(src), "--out", str(out)],
        stdout=subprocess.DEVNULL,
        cwd=ROOT,
    )
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status):
        raise SystemExit("trades import failed")
    return {
        "rows": n,
        "wall_s": round(time.perf_counter() - started, 3),
        "peak_rss_mib": round(usage.ru_maxrss / 1024, 1),
        "bars": pq.ParquetFile(out).metadata.num_rows,
    }


VIEWER = (
    "import sys; from pathlib import Path; from njord.tui.app import NjordApp; "
    "NjordApp(Path(sys.argv[1])).run(headless=True)"
)


def watched(bars: Path, out: Path, *, tui: bool, n: int = 3000) -> dict[str, float]:
    """Decision latency of a paced session (a commit every bar, like paper) with or without
    a TUI process attached to its db: the TUI must not slow the writer."""
    db = out / ("watched.db" if tui else "alone.db")
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
    end = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(START_MS / 1000 + n * 60))
    args = [sys.executable, "-m", "njord", "backtest", "--config", str(ROOT / "config.toml")]
    args += ["--set", f'data.path="{bars}"', "--to", end, "--db", str(db), "--out", str(out)]
    args += ["--quiet", "--no-report", "--pace-ms", "2"]
    writer = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL)
    viewer = None
    if tui:
        while not db.exists() and writer.poll() is None:
            time.sleep(0.01)
        viewer = subprocess.Popen([sys.executable, "-c", VIEWER, str(db)], cwd=ROOT)
    if writer.wait():
        raise SystemExit(f"paced backtest failed with exit code {writer.returncode}")
    if viewer is not None:
        if viewer.poll() is not None:
            raise SystemExit(f"the TUI died with exit code {viewer.returncode}")
        viewer.terminate()
        viewer.wait()
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    values = sorted(
        v for (v,) in conn.execute("SELECT value FROM metrics WHERE name = 'decision_latency_ms'")
    )
    conn.close()
    return {
        "bars": len(values),
        **{
            f"latency_p{q}_ms": round(values[int(q / 100 * (len(values) - 1))], 3)
            for q in (50, 95, 99)
        },
    }


def sweep_walls(bars: Path, out: Path, combos: int) -> dict[str, float]:
    """Wall time of one sweep per executor over the same grid (session dbs included)."""
    if combos == 36:
        grid = ["--param", "fast=5,10,20,30,40,50", "--param", "slow=60,120,240,480,720,960"]
    else:
        grid = ["--param", "fast=5..50", "--param", "slow=60..960", "--random", str(combos)]
    walls = {}
    for name, executor in (("jobs2", ["--jobs", "2"]), ("dask_local2", ["--dask", "local:2"])):
        where = out / f"sweep-{name}"
        if where.exists():
            shutil.rmtree(where)
        args = [sys.executable, "-m", "njord", "sweep", "--config", str(ROOT / "config.toml")]
        args += ["--set", f'data.path="{bars}"', *grid, *executor, "--dir", str(where)]
        started = time.perf_counter()
        subprocess.run(args, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
        walls[f"{name}_wall_s"] = round(time.perf_counter() - started, 3)
    walls["combinations"] = combos
    walls["dask_over_jobs"] = round(walls["dask_local2_wall_s"] / walls["jobs2_wall_s"], 3)
    return walls


def report_size(bars: Path, out: Path) -> dict[str, float]:
    """The year's session report: it must stay under 10 MB (issue 18)."""
    figures = run(bars, out)
    page = out / "report.html"
    args = [sys.executable, "-m", "njord", "report", "--db", str(out / "session.db")]
    started = time.perf_counter()
    subprocess.run([*args, "-o", str(page)], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return {
        "bars": figures["bars"],
        "report_wall_s": round(time.perf_counter() - started, 3),
        "report_mib": round(page.stat().st_size / 2**20, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    parser.add_argument(
        "--sizes",
        default="month,year",
        help="comma-separated, from month (43,200 bars), year (525,600 bars), tui (a paced "
        "month with and without a TUI watching), sweep (36 combinations over the month, "
        "--jobs 2 against --dask local:2), report (a year's report) and trades (a generated "
        "month of trades imported, for peak RSS); default: month,year",
    )
    parser.add_argument("--combos", type=int, default=36, help="--sizes sweep: combinations")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / ".bench",
        help="where the generated bars and the sessions go (default: .bench/ in the checkout)",
    )
    parser.add_argument("--trades", type=int, default=30_000_000, help="rows for --sizes trades")
    parser.add_argument("--generate", nargs=2, metavar=("PATH", "BARS"), help=argparse.SUPPRESS)
    parser.add_argument("--generate-trades", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        make_bars(Path(args.generate[0]), int(args.generate[1]))
        return
    if args.generate_trades:
        make_trades(Path(args.generate_trades[0]), int(args.generate_trades[1]))
        return
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    results = {}
    for name in args.sizes.split(","):
        if name == "trades":
            results["trades"] = import_trades(args.trades, work)
            continue
        if name not in SIZES:
            parser.error(f"--sizes takes {', '.join(SIZES)}, got {name!r}")
        data = {"tui": "month", "sweep": "month", "report": "year"}.get(name, name)
        bars = work / f"bars-{data}.parquet"
        if not bars.exists():
            # In a child: a parent that held the bars would lend its RSS to every later
            # child between fork and exec, and ru_maxrss would report that.
            gen = [sys.executable, __file__, "--generate", str(bars), str(SIZES[name])]
            subprocess.run(gen, check=True)
        if name == "tui":
            results["alone"] = watched(bars, work, tui=False)
            results["with_tui"] = watched(bars, work, tui=True)
            continue
        if name == "sweep":
            results["sweep"] = sweep_walls(bars, work, args.combos)
            continue
        if name == "report":
            (work / "report").mkdir(exist_ok=True)
            results["report"] = report_size(bars, work / "report")
            continue
        results[name] = run(bars, work / name)
    if args.json:
        print(json.dumps(results, sort_keys=True))
        return
    for name, figures in results.items():
        for key, value in figures.items():
            print(f"{name}.{key} {value}")


if __name__ == "__main__":
    main()
