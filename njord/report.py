"""`njord report`: one self-contained HTML file per session, readable offline.

plotly draws the charts (interactive: zoom, hover) and its JavaScript is inlined once, so
the file makes no network request. Works for any session db: backtest, paper or shadow.
"""

from __future__ import annotations

import html
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from njord import summary
from njord.config import stored_config
from njord.core.money import E8, to_e8
from njord.store import db, reads
from njord.store.runs import SqliteManifestStore

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def build(db_path: Path) -> str:
    conn = db.open_reader(db_path)
    try:
        return render(conn, db_path)
    finally:
        conn.close()


def render(conn: Any, db_path: Path) -> str:
    """The report from an open connection (the backtest passes its own, before closing)."""
    manifest = SqliteManifestStore(conn).load()
    if manifest is None:
        raise ValueError(f"{db_path} holds no session")
    config = stored_config(manifest.config_toml)
    initial = to_e8(config.runtime.initial_cash)
    points = reads.sampled_equity(conn)
    months = reads.monthly_equity(conn)
    pnls = reads.trade_net_pnls(conn)
    metrics = reads.metrics(conn, initial)
    facts = reads.status(conn)
    qc = reads.qc_summary(conn)
    facts["qc"] = f"{qc.get('policy', 'n/a')}: {qc.get('gaps', 0)} gaps"
    figures = [_equity(points, initial / E8), _monthly(months, initial / E8), _histogram(pnls)]
    charts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, fig in enumerate(figures)
    ]
    rows = summary.rows(metrics, facts)
    return _page(manifest.run_id, manifest.mode, charts, rows, qc, manifest.config_toml)


def _dates(points: list[tuple[int, float]]) -> list[datetime]:
    return [datetime.fromtimestamp(t / 1000, tz=UTC) for t, _ in points]


def _equity(points: list[tuple[int, float]], initial: float) -> go.Figure:
    shown = points
    peak, drawdown = initial, []
    for _, equity in shown:
        peak = max(peak, equity)
        drawdown.append((equity / peak - 1) * 100)
    fig = make_subplots(
        rows=2,
        cols=1,
        shared_xaxes=True,
        row_heights=[0.7, 0.3],
        vertical_spacing=0.05,
        subplot_titles=("Equity", "Drawdown (%)"),
    )
    dates = _dates(shown)
    fig.add_trace(
        go.Scatter(x=dates, y=[e for _, e in shown], name="equity", line={"color": "#1f77b4"}),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(x=dates, y=drawdown, name="drawdown", fill="tozeroy", line={"color": "#d62728"}),
        row=2,
        col=1,
    )
    fig.update_layout(height=520, showlegend=False, margin={"t": 40, "b": 30})
    return fig


def _monthly(months: list[tuple[str, float]], initial: float) -> go.Figure:
    last = {(int(m[:4]), int(m[5:7])): equity for m, equity in months}
    years = sorted({y for y, _ in last})
    grid: dict[int, list[float | None]] = defaultdict(lambda: [None] * 12)
    previous = initial
    for year, month in sorted(last):
        grid[year][month - 1] = round((last[(year, month)] / previous - 1) * 100, 2)
        previous = last[(year, month)]
    fig = go.Figure(
        go.Heatmap(
            z=[grid[y] for y in years],
            x=list(MONTHS),
            y=[str(y) for y in years],
            colorscale="RdYlGn",
            zmid=0,
            text=[[f"{v}%" if v is not None else "" for v in grid[y]] for y in years],
            texttemplate="%{text}",
            hovertemplate="%{y} %{x}: %{z}%<extra></extra>",
        )
    )
    fig.update_layout(
        title="Monthly returns (%)", height=120 + 40 * len(years), margin={"t": 40, "b": 30}
    )
    return fig


def _histogram(pnls: list[float]) -> go.Figure:
    fig = go.Figure(go.Histogram(x=pnls, nbinsx=50, marker={"color": "#7f7f7f"}))
    fig.update_layout(
        title=f"Trade P&L net of fees ({len(pnls)} trades)",
        height=320,
        margin={"t": 40, "b": 30},
        xaxis_title="quote currency",
    )
    return fig


def _table(rows: list[tuple[str, str]]) -> str:
    body = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows)
    return f"<table>{body}</table>"


def _page(
    run_id: str,
    mode: str,
    charts: list[str],
    rows: list[tuple[str, str]],
    qc: dict[str, Any],
    config_toml: str,
) -> str:
    qc_rows = [(k, "" if v is None else str(v)) for k, v in qc.items()]
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>njord {html.escape(run_id)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 3px 12px; border-bottom: 1px solid #eee; }}
th {{ text-align: left; font-weight: 600; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
.cols {{ display: flex; gap: 40px; flex-wrap: wrap; }}
pre {{ background: #f6f6f6; padding: 12px; overflow-x: auto; }}
</style></head><body>
<h1>njord {html.escape(mode)} session {html.escape(run_id)}</h1>
{charts[0]}
{charts[1]}
{charts[2]}
<div class="cols"><div><h2>Metrics</h2>{_table(rows)}</div>
<div><h2>Data quality</h2>{_table(qc_rows)}</div></div>
<h2>Effective config</h2><pre>{html.escape(config_toml)}</pre>
</body></html>
"""
