"""`scripts/bench.py --sizes live`: a 500-bar `njord live --tiny` session against the
simulator on loopback; its order round trips and decision latency from `status --json`.

The simulator replays the shipped sample month with its clock standing still 500 bars in,
so the session catches up bar after bar as fast as it can decide, send and commit (every
phase committed with `synchronous = FULL`, as live always is). The strategy below trades
every 12th bar (some 40 orders), within the venue's order-rate limit at that pace. Issue 15
asks for order_rtt_ms p95 <= 50 ms and p99 <= 100 ms, decision latency p99 <= 100 ms.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path

from njord.core.strategy import Context, Strategy
from njord.records import Bar, OrderIntent, Side

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "sample_data" / "BTCUSDT-1m-2024-01.parquet"
BARS = 500
KEY, SECRET = "bench-key-" + "a" * 54, "bench-secret-" + "b" * 51


class Churn(Strategy):
    """Every 12th bar, buys when it holds nothing and sells what it holds otherwise. A
    session catching up decides some 70 bars a second; an order on every one of them would
    run into Binance's 100 orders per 10 s, which the client keeps under by refusing."""

    EVERY = 12

    def __init__(self, params: object) -> None:
        super().__init__(params)
        self.seen = 0

    def on_bar(self, ctx: Context, symbol: str, bar: Bar) -> list[OrderIntent]:
        self.seen += 1
        if self.seen % self.EVERY or ctx.state.open_orders:
            return []
        if ctx.state.holds(symbol):
            return [OrderIntent(symbol=symbol, side=Side.SELL, qty=ctx.state.position(symbol))]
        return [OrderIntent(symbol=symbol, side=Side.BUY, qty=Decimal("0.001"))]


def _njord(*args: str) -> list[str]:
    return [sys.executable, "-m", "njord", *args]


def main(bars: int = BARS) -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NJORD_ENABLE_LIVE": "1",
        "NJORD_BINANCE_API_KEY": KEY,
        "NJORD_BINANCE_API_SECRET": SECRET,
    }
    start = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(1_704_067_200 + bars * 60))
    venue = subprocess.Popen(
        _njord(
            *("exchange-sim", "--data", str(SAMPLE), "--speed", "0", "--start", start),
            *("--api-key", KEY, "--api-secret", SECRET),
        ),
        stdout=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    try:
        assert venue.stdout is not None
        url = venue.stdout.readline().strip()
        with tempfile.TemporaryDirectory() as work:
            db = Path(work) / "live.db"
            sets = [
                f'venue.base_url="{url}"',
                'runtime.mode="live"',
                'data.start="2024-01-01T00:00"',
            ]
            args = ["live", "--config", str(ROOT / "config.toml"), "--db", str(db), "--tiny"]
            args += ["--strategy", f"{Path(__file__)}:Churn", "--bars", str(bars)]
            args += ["--poll-s", "0.01", *(x for s in sets for x in ("--set", s))]
            began = time.perf_counter()
            subprocess.run(_njord(*args), check=True, env=env, cwd=ROOT, capture_output=True)
            wall = time.perf_counter() - began
            status = subprocess.run(
                _njord("status", str(db), "--json"),
                check=True,
                env=env,
                capture_output=True,
                text=True,
            )
    finally:
        venue.terminate()
        venue.wait()
    telemetry = json.loads(status.stdout)["telemetry"]
    rtt, decision = telemetry["order_rtt_ms"], telemetry["decision_latency_ms"]
    return {
        "bars": decision["n"],
        "orders": rtt["n"],
        "wall_s": round(wall, 2),
        **{f"order_rtt_p{q}_ms": rtt[f"p{q}"] for q in (50, 95, 99)},
        **{f"decision_p{q}_ms": decision[f"p{q}"] for q in (50, 95, 99)},
    }


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else BARS)))
