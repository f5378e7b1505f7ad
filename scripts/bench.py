"""Benchmark: whole-process wall time and peak RSS of `njord backtest` (SPEC §17).

Generates a seeded random walk of 1-minute bars once (a year: 525,600; a month: 43,200;
two years for `year2`) under .bench/, runs the SMA-crossover backtest with full
persistence in a subprocess, and prints one figure per line (`--json` for one JSON
object). `--sizes floor` times the bare 10/30 crossover loop over the year's bars with the
same persistence (this script's own code, no njord), and the year is reported as a ratio
to it; `year2` checks that peak RSS stays flat in the number of bars. `--repeat N` runs
every size N times, interleaved, and reports medians (the machine is shared: one run says
little). `--sizes tui` instead
compares a paced session's decision latency with and without a TUI watching its db;
`--sizes sweep` times a 36-combination sweep over the month on `--jobs 2` and on
`--dask local:2` (issue 18: Dask within 1.3x of the pool; `--combos N` draws fewer);
`--sizes report` backtests the year and measures its report's size and build time.
`--sizes trades` imports a generated month of trades (`--trades N` rows, Binance's
`trades` layout) and reports the import's peak RSS. `--sizes live` runs `njord live --tiny`
for 500 bars (`--bars N`) against the loopback simulator and reports order_rtt_ms and
decision latency p50/p95/p99 from its `status --json`; `--sizes paper` does the same for
`njord paper` on two symbols with two strategies (`[[strategies]]`), each on its own.
`--sizes peer --peer-python PATH` times backtesting.py over the year's bars
(scripts/bench_peer.py, under PATH: a scratch venv with `pip install backtesting pyarrow`,
never njord's dependency), and the year is reported as a ratio to it as well.
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import time
from collections import deque
from pathlib import Path
from typing import Any

import apsw
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
MONTH, YEAR = 43_200, 525_600
# The bars each size runs on (a multiple of --bars when given).
DATA = {
    "month": ("month", 1),
    "year": ("year", 1),
    "year2": ("year", 2),
    "floor": ("year", 1),
    "tui": ("month", 1),
    "sweep": ("month", 1),
    "report": ("year", 1),
    "restart": ("year", 1),
    "peer": ("year", 1),
}
SIZES = [*DATA, "trades", "live", "paper"]
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


def timed(args: list[str], stdout: Any) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process, interpreter start included."""
    started = time.perf_counter()
    child = subprocess.Popen(args, stdout=stdout, cwd=ROOT)
    # wait4 gives this child's own peak RSS, not the maximum over every child so far.
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    if code:
        raise SystemExit(f"{' '.join(args[1:4])} failed with exit code {code}")
    return wall, usage.ru_maxrss / 1024


def figures(bars: int, wall: float, rss_mib: float) -> dict[str, float]:
    return {
        "bars": bars,
        "wall_s": round(wall, 3),
        "bars_per_s": round(bars / wall),
        "peak_rss_mib": round(rss_mib, 1),
    }


def run(bars: Path, out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)  # summary.json is opened before njord runs
    db = out / "session.db"
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
    report = out / "summary.json"
    with report.open("w") as fh:
        wall, rss_mib = timed(
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
            fh,
        )
    return figures(json.loads(report.read_text())["status"]["bars"], wall, rss_mib)


FLOOR_SCHEMA = """
CREATE TABLE equity (ts_ms INTEGER PRIMARY KEY, close_e8 INTEGER NOT NULL,
    cash_e8 INTEGER NOT NULL, position_e8 INTEGER NOT NULL, equity_e8 INTEGER NOT NULL);
CREATE TABLE orders (client_order_id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL,
    side TEXT NOT NULL, qty_e8 INTEGER NOT NULL, status TEXT NOT NULL,
    filled_qty_e8 INTEGER NOT NULL, avg_price_e8 INTEGER NOT NULL);
CREATE TABLE fills (fill_id INTEGER PRIMARY KEY, client_order_id TEXT NOT NULL,
    ts_ms INTEGER NOT NULL, side TEXT NOT NULL, qty_e8 INTEGER NOT NULL,
    price_e8 INTEGER NOT NULL, notional_e8 INTEGER NOT NULL, fee_e8 INTEGER NOT NULL,
    realised_e8 INTEGER NOT NULL);
CREATE TABLE positions (symbol TEXT PRIMARY KEY, qty_e8 INTEGER NOT NULL,
    cost_e8 INTEGER NOT NULL, realised_e8 INTEGER NOT NULL, fees_e8 INTEGER NOT NULL);
"""
E8 = 100_000_000


class Floor:
    """The bare 10/30 crossover with njord's costs (10 bps fee, 1 bp slippage, 95 % of cash
    in, lot 0.00001) and its persistence: an equity row per bar, orders, fills and the
    position, one transaction per 1,000 bars in a WAL db. What njord is measured against."""

    def __init__(self, db: Path) -> None:
        self.conn = apsw.Connection(str(db))
        self.conn.execute("PRAGMA journal_mode = WAL")
        self.conn.execute("PRAGMA synchronous = NORMAL")
        self.conn.execute(FLOOR_SCHEMA)
        self.cash, self.qty, self.cost, self.realised, self.fees = 10_000 * E8, 0, 0, 0, 0
        self.equity: list[tuple[int, int, int, int, int]] = []
        self.orders: list[tuple[Any, ...]] = []
        self.fills: list[tuple[Any, ...]] = []

    def trade(self, ts: int, close: int, buy: bool) -> None:
        if buy:
            price = close + close // 10_000
            qty = self.cash * 95 // 100 * E8 // price // 1_000 * 1_000
            if qty == 0:
                return
        else:
            price, qty = close - close // 10_000, self.qty
            if qty == 0:
                return
        notional = qty * price // E8
        fee = notional // 1_000
        realised = 0
        if buy:
            self.cash -= notional + fee
            self.qty, self.cost = self.qty + qty, self.cost + notional
        else:
            realised = notional - self.cost
            self.cash += notional - fee
            self.qty = self.cost = 0
        self.realised, self.fees = self.realised + realised, self.fees + fee
        side = "BUY" if buy else "SELL"
        coid = f"floor-{ts // 60_000}-{len(self.fills)}"
        self.orders.append((coid, ts, side, qty, "FILLED", qty, price))
        self.fills.append((None, coid, ts, side, qty, price, notional, fee, realised))

    def flush(self) -> None:
        with self.conn:
            self.conn.executemany("INSERT INTO equity VALUES (?, ?, ?, ?, ?)", self.equity)
            self.conn.executemany("INSERT INTO orders VALUES (?, ?, ?, ?, ?, ?, ?)", self.orders)
            self.conn.executemany(
                "INSERT INTO fills VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", self.fills
            )
            self.conn.execute(
                "INSERT OR REPLACE INTO positions VALUES ('BTCUSDT', ?, ?, ?, ?)",
                (self.qty, self.cost, self.realised, self.fees),
            )
        self.equity.clear()
        self.orders.clear()
        self.fills.clear()

    def run(self, bars: Path, fast: int = 10, slow: int = 30) -> int:
        window: deque[int] = deque()
        fast_sum = slow_sum = n = 0
        above: bool | None = None
        reader = pq.ParquetFile(bars)
        for group in range(reader.metadata.num_row_groups):  # streamed, as njord reads
            table = reader.read_row_group(group, columns=["ts_utc", "close"])
            stamps = pc.cast(table.column("ts_utc"), pa.int64()).to_pylist()
            for ts, close_f in zip(stamps, table.column("close").to_pylist(), strict=True):
                close = round(close_f * E8)
                window.append(close)
                fast_sum += close
                slow_sum += close
                if len(window) > fast:
                    fast_sum -= window[-fast - 1]
                if len(window) > slow:
                    slow_sum -= window.popleft()
                if len(window) == slow:
                    now = fast_sum * slow > slow_sum * fast
                    if above is not None and now != above:
                        self.trade(ts, close, now)
                    above = now
                value = self.qty * close // E8
                self.equity.append((ts, close, self.cash, value, self.cash + value))
                n += 1
                if n % 1_000 == 0:
                    self.flush()
        self.flush()
        self.conn.close()
        return n


def floor(bars: Path, out: Path) -> dict[str, float]:
    out.mkdir(parents=True, exist_ok=True)
    db = out / "floor.db"
    for path in (db, db.with_name(db.name + "-wal"), db.with_name(db.name + "-shm")):
        path.unlink(missing_ok=True)
    args = [sys.executable, __file__, "--floor-run", str(bars), str(db)]
    wall, rss_mib = timed(args, subprocess.DEVNULL)
    conn = apsw.Connection(str(db), flags=apsw.SQLITE_OPEN_READONLY)
    n, orders = (_count(conn, table) for table in ("equity", "orders"))
    conn.close()
    return {**figures(n, wall, rss_mib), "orders": orders}


def _count(conn: apsw.Connection, table: str) -> int:
    row = conn.execute(f"SELECT count(*) FROM {table}").fetchone()
    assert row is not None  # count(*) always answers one row
    return int(row[0])


def peer(bars: Path, out: Path, python: Path) -> dict[str, float]:
    """backtesting.py over the same bars (scripts/bench_peer.py, under `python`: an
    interpreter with backtesting and pyarrow installed), timed as njord is."""
    out.mkdir(parents=True, exist_ok=True)
    answer = out / "peer.json"
    script = Path(__file__).with_name("bench_peer.py")
    with answer.open("w") as fh:  # its warnings (FractionalBacktest's) are not the figures
        wall, rss_mib = timed([str(python), "-W", "ignore", str(script), str(bars)], fh)
    found = json.loads(answer.read_text())
    return {**figures(found["bars"], wall, rss_mib), "trades": found["trades"]}


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


def one_round(name: str, args: argparse.Namespace, work: Path) -> dict[str, dict[str, float]]:
    """Every figure of one size, once: {section: {figure: value}}."""
    if name == "trades":
        return {"trades": import_trades(args.trades, work)}
    if name in ("live", "paper"):
        return {name: session_latency(args.bars or 500, name)}
    data, times = DATA[name]
    n = (args.bars or {"month": MONTH, "year": YEAR}[data]) * times
    bars = work / f"bars-{n}.parquet"
    if not bars.exists():
        # In a child: a parent that held the bars would lend its RSS to every later
        # child between fork and exec, and ru_maxrss would report that.
        subprocess.run([sys.executable, __file__, "--generate", str(bars), str(n)], check=True)
    if name == "tui":
        return {
            "alone": watched(bars, work, tui=False),
            "with_tui": watched(bars, work, tui=True),
        }
    if name == "sweep":
        return {"sweep": sweep_walls(bars, work, args.combos)}
    if name == "report":
        (work / "report").mkdir(exist_ok=True)
        return {"report": report_size(bars, work / "report")}
    if name == "floor":
        return {"floor": floor(bars, work / "floor")}
    if name == "restart":
        return {"restart": restart(bars, work / "restart")}
    if name == "peer":
        return {"peer": peer(bars, work / "peer", args.peer_python)}
    return {name: run(bars, work / name)}


def restart(bars: Path, work: Path) -> dict[str, float]:
    """scripts/bench_restart.py in a child: a paper session holding the year's bars,
    restarted, timed to its first new bar (issue 13: within 1 s)."""
    work.mkdir(parents=True, exist_ok=True)
    return _child("bench_restart.py", str(bars), str(work))


def session_latency(bars: int, mode: str) -> dict[str, float]:
    """scripts/bench_live.py in a child: `njord live --tiny` (issue 15) or a paper session of
    two symbols and two strategies (issue 19) on the loopback simulator, decision latency
    p50/p95/p99 (and live's order_rtt_ms) from its `status --json`."""
    return _child("bench_live.py", str(bars), mode)


def _child(script: str, *args: str) -> dict[str, float]:
    """A sibling script run in its own process; its figures are its last line, JSON."""
    done = subprocess.run(
        [sys.executable, str(Path(__file__).with_name(script)), *args],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    figures: dict[str, float] = json.loads(done.stdout.splitlines()[-1])
    return figures


def medians(rounds: list[dict[str, dict[str, float]]]) -> dict[str, dict[str, Any]]:
    """Each figure's median over the rounds; wall times also listed run by run."""
    merged: dict[str, dict[str, Any]] = {}
    for section in rounds[0]:
        merged[section] = {
            key: _median([r[section][key] for r in rounds]) for key in rounds[0][section]
        }
        if len(rounds) > 1 and "wall_s" in rounds[0][section]:
            merged[section]["wall_s_runs"] = [r[section]["wall_s"] for r in rounds]
    return merged


def _median(values: list[float]) -> float:
    middle = statistics.median(values)
    return int(middle) if middle == int(middle) else round(middle, 3)


def ratios(results: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The issue's targets as ratios measured in this run: the year against the floor over
    the same bars and against backtesting.py's (`peer`), and two years' peak RSS against
    one's."""
    found = {}
    floor_, year, year2, peer_ = (results.get(k) for k in ("floor", "year", "year2", "peer"))
    if floor_ and year and year["bars"] == floor_["bars"]:
        found["year_over_floor_wall"] = round(year["wall_s"] / floor_["wall_s"], 2)
    if year and peer_ and year["bars"] == peer_["bars"]:
        found["year_over_peer_wall"] = round(year["wall_s"] / peer_["wall_s"], 2)
    if year and year2:
        found["year2_over_year_rss"] = round(year2["peak_rss_mib"] / year["peak_rss_mib"], 3)
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="one JSON object instead of lines")
    parser.add_argument(
        "--sizes",
        default="month,year",
        help="comma-separated, from month (43,200 bars), year (525,600 bars), year2 (two "
        "years: peak RSS must stay flat), floor (the bare crossover loop with the same "
        "persistence over the year's bars, in this script: the year is reported as a ratio "
        "to it), tui (a paced month with and without a TUI watching), sweep (36 combinations "
        "over the month, --jobs 2 against --dask local:2), report (a year's report), "
        "restart (a paper session holding the year's bars, timed from its restart to its "
        "first new bar), trades (a generated month of trades imported: peak RSS) and peer "
        "(backtesting.py over the year's bars, under --peer-python: the year is reported as "
        "a ratio to it too); default: month,year",
    )
    parser.add_argument(
        "--repeat", type=int, default=1, help="runs of each size, interleaved; medians reported"
    )
    parser.add_argument(
        "--bars", type=int, help="bars of the month and the year (and floor; year2: twice)"
    )
    parser.add_argument(
        "--peer-python",
        type=Path,
        help="--sizes peer: a Python with backtesting and pyarrow installed (a scratch venv)",
    )
    parser.add_argument("--combos", type=int, default=36, help="--sizes sweep: combinations")
    parser.add_argument("--trades", type=int, default=30_000_000, help="--sizes trades: rows")
    parser.add_argument(
        "--work",
        type=Path,
        default=ROOT / ".bench",
        help="where the generated bars and the sessions go (default: .bench/ in the checkout)",
    )
    parser.add_argument("--generate", nargs=2, metavar=("PATH", "BARS"), help=argparse.SUPPRESS)
    parser.add_argument("--generate-trades", nargs=2, help=argparse.SUPPRESS)
    parser.add_argument("--floor-run", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.generate:
        make_bars(Path(args.generate[0]), int(args.generate[1]))
        return
    if args.generate_trades:
        make_trades(Path(args.generate_trades[0]), int(args.generate_trades[1]))
        return
    if args.floor_run:
        Floor(Path(args.floor_run[1])).run(Path(args.floor_run[0]))
        return
    sizes = args.sizes.split(",")
    for name in sizes:
        if name not in SIZES:
            parser.error(f"--sizes takes {', '.join(SIZES)}, got {name!r}")
    if args.repeat < 1 or (args.bars is not None and args.bars < 1):
        parser.error("--repeat and --bars take a positive number")
    if "peer" in sizes and (args.peer_python is None or not args.peer_python.is_file()):
        parser.error("--sizes peer needs --peer-python: a Python with backtesting installed")
    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    # njord's bytecode compiled once, as pip compiles an installed package and a checkout's
    # first run caches it: otherwise, where PYTHONDONTWRITEBYTECODE is set (containers, CI),
    # every timed run would compile njord afresh and a month would time the compiler.
    compileall.compile_dir(ROOT / "njord", quiet=1)
    rounds: dict[str, list[dict[str, dict[str, float]]]] = {name: [] for name in sizes}
    for _ in range(args.repeat):
        for name in sizes:  # interleaved: a slow minute of the machine hits every size
            rounds[name].append(one_round(name, args, work))
    results: dict[str, dict[str, Any]] = {}
    for name in sizes:
        results.update(medians(rounds[name]))
    found = ratios(results)
    if found:
        results["ratios"] = found
    if args.json:
        print(json.dumps(results, sort_keys=True))
        return
    for name, figures_ in results.items():
        for key, value in figures_.items():
            print(f"{name}.{key} {value}")


if __name__ == "__main__":
    main()
