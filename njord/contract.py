"""Port contracts as data: named checks over an adapter, reported as JUnit XML and JSON.

`njord contract-tests --adapter NAME` and the pytest suite run these same checks, so a
new adapter (the live Binance feed, next round) is gated by exactly what gates today's.
"""

from __future__ import annotations

import itertools
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import msgspec

from njord.adapters.binance import Backoff, BinanceClient
from njord.adapters.live_feed import LiveFeed
from njord.data.history import HistoryFeed
from njord.ports import BarFeed
from njord.sim.faults import Fault, FaultConfig

ADAPTERS = ("history", "live-feed")
MINUTE_MS = 60_000


class CheckResult(msgspec.Struct, frozen=True, kw_only=True):
    port: str
    adapter: str
    check: str
    ok: bool
    detail: str = ""
    seconds: float = 0.0


def bar_feed_checks(feed: BarFeed, *, live: bool) -> list[tuple[str, bool, str]]:
    """The BarFeed contract: chronological, UTC grid, once each, gaps surfaced, lag."""
    started = time.monotonic()
    ts = [t for batch in feed.batches() for t in batch.ts_ms]
    pairs = list(itertools.pairwise(ts))
    backwards = next(((a, b) for a, b in pairs if b <= a), None)
    off_grid = next((t for t in ts if t % MINUTE_MS), None)
    gaps = [(a, b) for a, b in pairs if b - a > MINUTE_MS]
    surfaced = [
        (e.from_ts_ms - MINUTE_MS, e.to_ts_ms + MINUTE_MS)
        for e in feed.events
        if e.kind in ("skipped", "filled")
    ]
    results = [
        ("yields bars", bool(ts), f"{len(ts)} bars in {time.monotonic() - started:.2f}s"),
        ("strictly increasing, each bar once", backwards is None, f"first violation {backwards}"),
        ("on the UTC minute grid", off_grid is None, f"first off-grid timestamp {off_grid}"),
        (
            "every gap surfaced as an event",
            surfaced == gaps,
            f"gaps {gaps[:3]}, events {surfaced[:3]}",
        ),
    ]
    if live:
        lags = getattr(feed, "lags_ms", [])
        results.append(
            (
                "lag reported for every bar",
                len(lags) == len(ts),
                f"{len(lags)} lags for {len(ts)} bars",
            )
        )
    return results


@contextmanager
def _live_feed(data: Path, bars: int) -> Iterator[BarFeed]:
    from njord import sim

    faults = FaultConfig(
        seed=1,
        faults=[
            Fault(endpoint="GET /api/v3/klines", kind="429", every=7, retry_after_s=0.01),
            Fault(endpoint="GET /api/v3/klines", kind="500", every=11),
        ],
        klines_outages=[],
    )
    server = sim.build(data, speed=6_000, faults=faults)
    server.start_in_thread()
    try:
        yield LiveFeed(
            BinanceClient(server.url, timeout_s=5),
            symbol="BTCUSDT",
            start_ms=server.state.exchange.market.ts[0],
            max_bars=bars,
            poll_s=0.005,
            backoff=Backoff(base_s=0.005, cap_s=0.1),
        )
    finally:
        server.shutdown()
        server.server_close()


def run(adapter: str, data: Path, *, bars: int = 300) -> list[CheckResult]:
    started = time.monotonic()
    if adapter == "history":
        checks = bar_feed_checks(HistoryFeed(data, symbol="BTCUSDT", gaps="none"), live=False)
    elif adapter == "live-feed":
        with _live_feed(data, bars) as feed:
            checks = bar_feed_checks(feed, live=True)
    else:
        raise ValueError(f"unknown adapter {adapter!r}")
    took = time.monotonic() - started
    return [
        CheckResult(
            port="BarFeed",
            adapter=adapter,
            check=name,
            ok=ok,
            detail="" if ok else detail,
            seconds=round(took / len(checks), 3),
        )
        for name, ok, detail in checks
    ]


def junit_xml(results: list[CheckResult]) -> bytes:
    root = ET.Element("testsuites")
    for key, group in itertools.groupby(results, key=lambda r: (r.port, r.adapter)):
        cases = list(group)
        suite = ET.SubElement(
            root,
            "testsuite",
            name=f"{key[0]}[{key[1]}]",
            tests=str(len(cases)),
            failures=str(sum(not c.ok for c in cases)),
        )
        for case in cases:
            element = ET.SubElement(
                suite,
                "testcase",
                classname=f"{case.port}.{case.adapter}",
                name=case.check,
                time=f"{case.seconds:.3f}",
            )
            if not case.ok:
                ET.SubElement(element, "failure", message=case.detail).text = case.detail
    xml: bytes = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    return xml
