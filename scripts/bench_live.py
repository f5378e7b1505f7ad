"""`scripts/bench.py --sizes live` and `--sizes paper`: a 500-bar session against the
simulator on loopback; its decision latency (and live's order round trips) from `status
--json`.

The simulator replays the shipped sample month with its clock standing still 500 bars in,
so the session catches up bar after bar as fast as it can decide, send and commit (every
phase committed). `live`: `njord live --tiny` on BTCUSDT (`synchronous = FULL`, as live
always is); the strategy below trades every 12th bar (some 40 orders), within the venue's
order-rate limit at that pace. Issue 15 asks for order_rtt_ms p95 <= 50 ms and p99 <= 100
ms, decision latency p99 <= 100 ms. `paper`: `njord paper` on BTCUSDT and ETHUSDT with two
strategies (`[[strategies]]`), each trading its own symbol every 12th bar; issue 19 asks
for decision latency p99 <= 20 ms.
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
ETH = ROOT / "sample_data" / "ETHUSDT-1m-2024-01.parquet"
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
        return [OrderIntent(symbol=symbol, side=Side.BUY, qty=self.buys(bar))]

    def buys(self, bar: Bar) -> Decimal:
        return Decimal("0.001")


class ChurnQuote(Churn):
    """Churn buying about 50 quote units' worth, whatever the symbol's price."""

    def buys(self, bar: Bar) -> Decimal:
        return (Decimal(50) / Decimal(str(bar.close))).quantize(Decimal("0.0001"))


def _njord(*args: str) -> list[str]:
    return [sys.executable, "-m", "njord", *args]


def _paper_config(work: Path, url: str) -> Path:
    """Two symbols, a strategy on each (`[[strategies]]`), the sample's first minute on."""
    config = work / "paper.toml"
    sleeves = "".join(
        f'[[strategies]]\nid = "churn_{symbol[:3].lower()}"\n'
        f'name = "{Path(__file__)}:ChurnQuote"\nsymbols = ["{symbol}"]\nallocation = 0.5\n'
        for symbol in ("BTCUSDT", "ETHUSDT")
    )
    config.write_text(
        '[data]\nsymbols = ["BTCUSDT", "ETHUSDT"]\nstart = "2024-01-01T00:00"\n'
        f'[venue]\nbase_url = "{url}"\n'
        '[risk]\nallowed_symbols = ["BTCUSDT", "ETHUSDT"]\nmax_open_positions = 2\n' + sleeves,
        encoding="utf-8",
    )
    return config


def main(bars: int = BARS, mode: str = "live") -> dict[str, float]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "NJORD_ENABLE_LIVE": "1",
        "NJORD_BINANCE_API_KEY": KEY,
        "NJORD_BINANCE_API_SECRET": SECRET,
    }
    start = time.strftime("%Y-%m-%dT%H:%M", time.gmtime(1_704_067_200 + bars * 60))
    data = ["--data", str(SAMPLE)]
    if mode == "paper":
        data = ["--data", f"BTCUSDT={SAMPLE}", "--data", f"ETHUSDT={ETH}"]
    venue = subprocess.Popen(
        _njord(
            *("exchange-sim", *data, "--speed", "0", "--start", start),
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
            db = Path(work) / f"{mode}.db"
            if mode == "paper":
                args = ["paper", "--config", str(_paper_config(Path(work), url))]
                args += ["--db", str(db), "--bars", str(bars), "--poll-s", "0.01"]
            else:
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
    facts = json.loads(status.stdout)
    telemetry = facts["telemetry"]
    decision = telemetry["decision_latency_ms"]
    figures: dict[str, float] = {"bars": decision["n"], "wall_s": round(wall, 2)}
    if mode == "paper":  # the broker is the session's own: no round trip to time
        figures["orders"] = sum(facts["orders"].values())
    else:
        rtt = telemetry["order_rtt_ms"]
        figures["orders"] = rtt["n"]
        figures |= {f"order_rtt_p{q}_ms": rtt[f"p{q}"] for q in (50, 95, 99)}
    return figures | {f"decision_p{q}_ms": decision[f"p{q}"] for q in (50, 95, 99)}


if __name__ == "__main__":
    print(json.dumps(main(int(sys.argv[1]) if len(sys.argv) > 1 else BARS, *sys.argv[2:3])))
