"""What people read on a terminal: the end-of-run summary and `njord status`.

One convention for ratios: JSON and CSV carry fractions (0.0123), human output shows
percent (1.23%). `percent` and `FRACTIONS` are the one place that turns one into the other.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from rich.console import Console, JustifyMethod
from rich.table import Table

from njord.core.metrics import Metrics
from njord.store import lease as leases
from njord.store.alerts import LastDelivery
from njord.store.reads import LATENCIES, Status, TradingStatus

# Metrics that are fractions in JSON and CSV and percent on a screen.
FRACTIONS = frozenset(
    {"total_return", "cagr", "volatility", "max_drawdown", "win_rate", "exposure"}
)
# A CAGR extrapolated from less than a quarter of a year says more about the noise of a few
# weeks than about the strategy (a month at -18% "is" -90% a year): shown as n/a.
CAGR_MIN_DAYS = 90


def percent(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _num(value: float | None, places: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{places}f}"


def human(metric: str, value: Any) -> str:
    """A metric as a table cell: fractions as percent, other floats with 4 places."""
    if value is None:
        return "n/a"
    if metric in FRACTIONS:
        return percent(value)
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _utc(ts_ms: int | None) -> str:
    if ts_ms is None:
        return "-"
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC).strftime("%Y-%m-%d %H:%M UTC")


def rows(metrics: Metrics, facts: Status, qc: str) -> list[tuple[str, str]]:
    """The end-of-run summary; `qc` is what quality control did, in a line."""
    return [
        ("bars processed", f"{facts.bars:,}"),
        ("period (days)", _num(metrics.days)),
        ("final equity", _num(facts.equity)),
        *metric_rows(metrics),
        ("trading state", facts.trading.state),
        ("risk blocks", _blocks(facts.risk.blocks)),
        ("QC", qc),
    ]


def metric_rows(m: Metrics) -> list[tuple[str, str]]:
    """The performance rows alone (also shown for a benchmark beside the strategy)."""
    annualised = m.days >= CAGR_MIN_DAYS
    return [
        ("total return", percent(m.total_return)),
        (f"CAGR (n/a under {CAGR_MIN_DAYS} days)", percent(m.cagr if annualised else None)),
        ("volatility (ann., daily, 365)", percent(m.volatility)),
        ("Sharpe (daily, 365)", _num(m.sharpe)),
        ("Sortino (daily, 365)", _num(m.sortino)),
        ("max drawdown", percent(-m.max_drawdown if m.max_drawdown else 0.0)),
        ("max drawdown duration (days)", _num(m.max_drawdown_days)),
        ("Calmar (CAGR / max drawdown)", _num(m.calmar if annualised else None)),
        ("trades", str(m.trades)),
        ("win rate", percent(m.win_rate)),
        ("profit factor", _num(m.profit_factor)),
        ("avg win / avg loss", f"{_num(m.avg_win)} / {_num(m.avg_loss)}"),
        ("largest win / loss", f"{_num(m.largest_win)} / {_num(m.largest_loss)}"),
        ("exposure", percent(m.exposure)),
        ("fees paid", _num(m.fees)),
    ]


def _blocks(blocks: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in blocks.items()) or "0"


def status_rows(facts: Status, now_ms: int) -> list[tuple[str, str]]:
    """`njord status` for people: the facts of `--json`, one readable row each."""
    risk, tele = facts.risk, facts.telemetry
    out = [
        ("run", f"{facts.run_id or '-'} ({facts.mode or '-'}, {facts.run_status or '-'})"),
        ("strategy", facts.strategy or "-"),
        ("timeframes", ", ".join(facts.timeframes) or "-"),
        ("writer", _writer(facts.lease, now_ms)),
        ("trading state", _state(facts.trading)),
        ("bars", f"{facts.bars:,} (last {_utc(facts.last_bar_ms)})"),
        ("cash", _num(facts.cash)),
        ("equity", _num(facts.equity)),
        ("realised P&L", _num(facts.realised_pnl)),
        ("fees", _num(facts.fees)),
        ("intraday P&L", _num(tele.pnl_intraday)),
        ("daily realised (net)", _num(risk.daily_realised_net)),
        ("risk blocks", _blocks(risk.blocks)),
        ("last risk block", risk.last_block or "-"),
        ("orders submitted", str(tele.orders_submitted)),
        ("orders blocked by risk", str(tele.orders_blocked_risk)),
        ("risk block rate", percent(tele.risk_block_rate)),
        ("error rate (per bar)", percent(tele.error_rate)),
    ]
    for name in LATENCIES:
        p = getattr(tele, name)
        if p is not None:
            label = name.removesuffix("_ms").replace("_", " ")
            out.append((f"{label} p50/p95/p99", f"{p.p50} / {p.p95} / {p.p99} ms (n={p.n})"))
    for s in facts.sleeves:
        state = "ACTIVE" if s.halted is None else f"HALTED: {s.halted}"
        equity = "-" if s.equity is None else _num(s.equity)
        shown = f"{state}; cash {_num(s.cash)}, equity {equity}, budget {_num(s.budget)}"
        out.append((f"strategy {s.strategy_id}", shown))
    out.append(("pending controls", str(facts.pending_controls)))
    for alert in facts.alerts:
        cleared = alert.cleared_ms
        when = f"raised {_utc(alert.raised_ms)}, " + (
            f"cleared {_utc(cleared)}" if cleared is not None else "open"
        )
        out.append((f"alert {alert.kind}", f"{alert.msg} ({when})"))
    for a in facts.config_amendments:
        change = f"{a.old or 'unset'} -> {a.new} by {a.posted_by} at {_utc(a.posted_ms)}"
        out.append((f"amended {a.key}", change))
    for c in facts.alert_channels:
        out.append((f"alerts via {c.channel}", _delivered(c.last)))
    out.append(("manifest sha256", facts.manifest_sha256 or "-"))
    return out


def _delivered(last: LastDelivery | None) -> str:
    if last is None:
        return "nothing sent yet"
    said = f"{'sent' if last.ok else 'FAILED'} {last.event} {last.kind} at {_utc(last.ts_ms)}"
    return said if last.ok else f"{said}: {last.detail}"


def _writer(lease: leases.Lease | None, now_ms: int) -> str:
    if lease is None:
        return "none"
    return f"pid {lease.pid} on {lease.host}, heartbeat {leases.age_s(lease, now_ms):.1f}s ago"


def _state(trading: TradingStatus) -> str:
    since = _utc(trading.changed_ms) if trading.changed_ms else "the start"
    why = f": {trading.reason}" if trading.reason else ""
    by = f" by {trading.changed_by}" if trading.changed_by else ""
    return f"{trading.state} since {since}{by}{why}"


def render(
    console: Console,
    title: str,
    table_rows: list[tuple[str, str]],
    *,
    justify: JustifyMethod = "right",
) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify=justify, overflow="fold")
    for name, value in table_rows:
        table.add_row(name, value)
    console.print(table)
