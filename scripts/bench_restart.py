"""`scripts/bench.py --sizes restart`: a paper session holding a year of stored bars,
restarted against the simulator; how long until its first new bar is committed.

The session is built once under the work folder (a paper session of the SMA sample fed a
year of generated bars at backtest speed: the same rows a year of paper trading stores),
then restarted in this process as `njord paper` does it, with the simulator's market two
bars past the stored ones. The figure is the wall time from the start of the restart
(opening the db) to the commit of the first new bar; the session's own log says how long
its rebuild took and where it started.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq

from njord import config as configuration
from njord import launch, sim, wiring
from njord.core.time import MINUTE_MS
from njord.data.history import HistoryFeed
from njord.log import SessionLog
from njord.loop import Stop
from njord.store import db as store_db
from njord.store import history

ROOT = Path(__file__).resolve().parents[1]
SETS = ["strategy.params.fast=10", "strategy.params.slow=30", 'runtime.mode="paper"']


def _config(bars: Path, url: str = "http://127.0.0.1:9") -> configuration.Config:
    sets = [*SETS, f'data.path="{bars}"', f'venue.base_url="{url}"']
    return configuration.load(file=ROOT / "config.toml", env={}, sets=sets).config


def build(bars: Path, db: Path) -> None:
    """A paper session that has stored every bar of `bars` but its last 5 minutes, which
    the simulator then serves as new (built once, then reused)."""
    if db.exists():
        return
    config = _config(bars)
    cls, params = wiring.strategy_of(config)
    last = pq.read_table(bars, columns=["ts_utc"]).column(0)[-1].value
    feed = HistoryFeed(bars, symbol=config.data.symbol, gaps="strict", end_ms=last - 4 * MINUTE_MS)
    manifest = wiring.new_manifest(config, cls, feed.sources())
    partial = db.with_suffix(".building")
    log = SessionLog(now_ms=lambda: 0, echo=None)
    session = wiring.open_session(partial, config=config, manifest=manifest, log=log)
    runtime = wiring.build_runtime(feed)  # a paper session fed at backtest speed
    try:
        wiring.run_session(
            session,
            strategy=cls(params),
            feed=runtime.feed,
            resume_after_ms=None,
            pacer=runtime.pacer,
            progress=lambda n: None,
            stop=Stop(),
            final_status="stopped",
        )
    finally:
        session.close()
    for suffix in ("", "-wal", "-shm"):
        src = Path(f"{partial}{suffix}")
        if src.exists():
            shutil.move(src, Path(f"{db}{suffix}"))


def restart(bars: Path, work: Path) -> dict[str, float]:
    stored = work / "paper-year.db"
    build(bars, stored)
    db = work / "restart.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
        src = Path(f"{stored}{suffix}")
        if src.exists():
            shutil.copyfile(src, Path(f"{db}{suffix}"))
    reader = store_db.open_reader(db)
    last = history.last_bar_ms(reader)
    reader.close()
    assert last is not None
    server = sim.build(bars, speed=0, start_ms=last + 3 * MINUTE_MS)  # two new bars closed
    server.start_in_thread()
    try:
        config = _config(bars, server.url)
        started = time.perf_counter()
        run = launch.live(
            config,
            db,
            mode="paper",
            max_bars=1,
            deadline=None,
            poll_s=0.01,
            echo=False,
            origins={"venue.base_url": "--set"},
        )
        launch.drive(run, stop=Stop(), progress=lambda n: None)
        took = time.perf_counter() - started
        run.session.close()
    finally:
        server.shutdown()
        server.server_close()
    reader = store_db.open_reader(db)
    try:
        rebuilt = [
            str(msg)
            for (msg,) in reader.execute(
                "SELECT msg FROM logs WHERE msg LIKE 'rebuilt without the venue%' "
                "ORDER BY seq DESC LIMIT 1"
            )
        ]
        new_bars = history.row_count(reader, "equity")
    finally:
        reader.close()
    found = re.search(r"in (\d+) ms", rebuilt[0]) if rebuilt else None
    if found is None:
        raise SystemExit("the restart logged no rebuild")
    return {
        "stored_bars": new_bars - 1,
        "first_new_bar_s": round(took, 3),
        "rebuild_ms": int(found.group(1)),
        "from_snapshot": int("strategy snapshot" in rebuilt[0]),
    }


if __name__ == "__main__":  # run by bench.py in a child of its own: bars, work folder
    print(json.dumps(restart(Path(sys.argv[1]), Path(sys.argv[2]))))
