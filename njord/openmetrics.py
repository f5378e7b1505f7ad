"""Session metrics for a monitoring stack, in the OpenMetrics text format.

Everything is read from the session dbs at scrape time (read-only connections), so it works
for any session, running or not, and never disagrees with `njord status --json`.
prometheus_client does the encoding: the exposition format's escaping, suffixes and histogram
layout are exactly what scrapers parse, and easy to get subtly wrong by hand.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Final

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics import exposition
from prometheus_client.registry import Collector, CollectorRegistry

from njord.errors import NjordError
from njord.reasons import TradingState
from njord.store import db, observe, reads

# Latencies in seconds: paper/live decision SLOs sit at 50/100 ms, venue round trips at ~1 s.
BUCKETS_S: Final = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
LABELS: Final = ["session", "mode", "db"]
# prometheus_client is untyped; this is the one signature we rely on.
_encode: Callable[[CollectorRegistry], bytes] = exposition.generate_latest


class Sample:
    """One session's facts, read in one short read transaction."""

    def __init__(self, path: Path) -> None:
        conn = db.open_reader(path)
        try:
            with conn:
                self.status = reads.session_status(conn)
                self.histograms = {
                    name: observe.histogram(conn, f"{name}_ms", [b * 1000 for b in BUCKETS_S])
                    for name in ("decision_latency", "order_rtt")
                }
                self.bar_lag_ms = observe.last_metric(conn, "bars_lag_ms")
        finally:
            conn.close()
        self.labels = [str(self.status.run_id), str(self.status.mode), str(path)]


class SessionCollector(Collector):
    """Collects every session `paths()` names at scrape time; an unreadable db is skipped
    and counted in `njord_scrape_errors`, never an error for the whole scrape."""

    def __init__(self, paths: Callable[[], Sequence[Path]]) -> None:
        self._paths = paths

    def collect(self) -> Iterable[Metric]:
        samples: list[Sample] = []
        failed = 0
        for path in self._paths():
            try:
                samples.append(Sample(path))
            except NjordError:
                failed += 1
        yield from families(samples)
        errors = GaugeMetricFamily(
            "njord_scrape_errors", "Session dbs that could not be read in this scrape"
        )
        errors.add_metric([], failed)
        yield errors


def families(samples: Sequence[Sample]) -> Iterable[Metric]:
    bars = CounterMetricFamily("njord_bars", "Bars committed", labels=LABELS)
    lag = GaugeMetricFamily("njord_bar_lag_seconds", "Last bar close to processed", labels=LABELS)
    orders = CounterMetricFamily("njord_orders", "Orders by status", labels=[*LABELS, "status"])
    blocks = CounterMetricFamily(
        "njord_risk_blocks", "Intents blocked, by reason", labels=[*LABELS, "reason"]
    )
    errors = CounterMetricFamily("njord_errors", "ERROR log records", labels=LABELS)
    equity = GaugeMetricFamily("njord_equity", "Equity at the last bar (quote)", labels=LABELS)
    pnl = GaugeMetricFamily("njord_pnl_intraday", "Equity change this UTC day", labels=LABELS)
    state = GaugeMetricFamily(
        "njord_trading_state", "1 for the session's trading state", labels=[*LABELS, "state"]
    )
    active = GaugeMetricFamily("njord_alerts_active", "Alerts not cleared", labels=LABELS)
    latency = HistogramMetricFamily(
        "njord_decision_latency_seconds", "Bar available to committed", labels=LABELS
    )
    rtt = HistogramMetricFamily("njord_order_rtt_seconds", "Order round trip", labels=LABELS)
    for s in samples:
        facts, labels = s.status, s.labels
        bars.add_metric(labels, facts.bars)
        if s.bar_lag_ms is not None:
            lag.add_metric(labels, s.bar_lag_ms / 1000)
        for status, n in facts.orders.items():
            orders.add_metric([*labels, status], n)
        for reason, n in sorted(facts.risk.blocks.items()):
            blocks.add_metric([*labels, reason], n)
        errors.add_metric(labels, facts.telemetry.errors)
        if facts.equity is not None:
            equity.add_metric(labels, facts.equity)
        pnl.add_metric(labels, facts.telemetry.pnl_intraday)
        for each in TradingState:
            state.add_metric([*labels, each.value], float(facts.trading.state == each.value))
        open_alerts = [a for a in facts.alerts if a.cleared_ms is None]
        active.add_metric(labels, len(open_alerts))
        for family, metric in ((latency, "decision_latency"), (rtt, "order_rtt")):
            hist = s.histograms[metric]
            buckets = [
                (_le(bound / 1000), float(n))
                for bound, n in zip(hist.bounds, hist.cumulative, strict=True)
            ]
            buckets.append(("+Inf", float(hist.count)))
            family.add_metric(labels, buckets, sum_value=hist.total / 1000)
    return [bars, lag, orders, blocks, errors, equity, pnl, state, active, latency, rtt]


def _le(seconds: float) -> str:
    return repr(float(seconds))


def registry(paths: Callable[[], Sequence[Path]]) -> CollectorRegistry:
    reg = CollectorRegistry(auto_describe=False)
    reg.register(SessionCollector(paths))
    return reg


def render(paths: Sequence[Path]) -> bytes:
    return _encode(registry(lambda: list(paths)))
