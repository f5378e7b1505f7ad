"""The end-of-run summary: metrics, fees, exposure, QC and risk blocks, for a terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from njord.core.metrics import Metrics


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{value * 100:.2f}%"


def _num(value: float | None, places: int = 2) -> str:
    return "n/a" if value is None else f"{value:,.{places}f}"


def rows(metrics: Metrics, facts: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        ("bars processed", f"{facts['bars']:,}"),
        ("final equity", _num(facts["equity"])),
        *metric_rows(metrics),
        ("trading state", facts["trading"]["state"]),
        ("risk blocks", ", ".join(f"{k}={v}" for k, v in facts["risk"]["blocks"].items()) or "0"),
        ("QC", facts["qc"]),
    ]


def metric_rows(m: Metrics) -> list[tuple[str, str]]:
    """The performance rows alone (also shown for a benchmark beside the strategy)."""
    return [
        ("total return", _pct(m.total_return)),
        ("CAGR", _pct(m.cagr)),
        ("volatility (ann., daily, 365)", _pct(m.volatility)),
        ("Sharpe (daily, 365)", _num(m.sharpe)),
        ("Sortino (daily, 365)", _num(m.sortino)),
        ("max drawdown", _pct(-m.max_drawdown if m.max_drawdown else 0.0)),
        ("max drawdown duration (days)", _num(m.max_drawdown_days)),
        ("Calmar", _num(m.calmar)),
        ("trades", str(m.trades)),
        ("win rate", _pct(m.win_rate)),
        ("profit factor", _num(m.profit_factor)),
        ("avg win / avg loss", f"{_num(m.avg_win)} / {_num(m.avg_loss)}"),
        ("largest win / loss", f"{_num(m.largest_win)} / {_num(m.largest_loss)}"),
        ("exposure", _pct(m.exposure)),
        ("fees paid", _num(m.fees)),
    ]


def render(console: Console, title: str, table_rows: list[tuple[str, str]]) -> None:
    table = Table(title=title, show_header=False)
    table.add_column("metric", style="bold")
    table.add_column("value", justify="right")
    for name, value in table_rows:
        table.add_row(name, value)
    console.print(table)
