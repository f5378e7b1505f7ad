"""`sweep.html`: every combination in a sortable table, and the metric as a heatmap over
each pair of swept keys (the best value over the other keys), in one offline file."""

from __future__ import annotations

import html
import itertools
import math
from typing import Any

import plotly.graph_objects as go

from njord.research.charts import sortable_table
from njord.research.sweep import columns

MOST_PAIRS = 6


def render(rows: list[dict[str, Any]], names: list[str], metric: str) -> str:
    from njord.report import page

    figures = [_heatmap(rows, a, b, metric) for a, b in itertools.combinations(names, 2)]
    if len(names) == 1:
        figures = [_line(rows, names[0], metric)]
    charts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, fig in enumerate(figures[:MOST_PAIRS])
    ]
    header = columns(names)
    body = [[(_shown(row.get(c)), _key(row.get(c))) for c in header] for row in rows]
    title = f"njord sweep: {len(rows)} combinations by {metric}"
    return page(
        title,
        f"<h1>{html.escape(title)}</h1>\n{''.join(charts)}\n<h2>Combinations</h2>"
        + sortable_table(header, body),
    )


def _ok(rows: list[dict[str, Any]], metric: str) -> list[dict[str, Any]]:
    return [
        r
        for r in rows
        if r["status"] == "ok"
        and isinstance(r.get(metric), int | float)
        and not math.isnan(float(r[metric]))
    ]


def _better(metric: str, a: float, b: float) -> float:
    return min(a, b) if metric == "max_drawdown" else max(a, b)


def _heatmap(rows: list[dict[str, Any]], a: str, b: str, metric: str) -> go.Figure:
    xs = sorted({r[a] for r in rows}, key=_order)
    ys = sorted({r[b] for r in rows}, key=_order)
    best: dict[tuple[Any, Any], float] = {}
    for r in _ok(rows, metric):
        cell, value = (r[a], r[b]), float(r[metric])
        best[cell] = _better(metric, best[cell], value) if cell in best else value
    z = [[best.get((x, y)) for x in xs] for y in ys]
    fig = go.Figure(
        go.Heatmap(
            z=z,
            x=[str(x) for x in xs],
            y=[str(y) for y in ys],
            colorscale="RdYlGn_r" if metric == "max_drawdown" else "RdYlGn",
            hovertemplate=f"{a}=%{{x}} {b}=%{{y}}: {metric} %{{z}}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{metric} by {a} and {b} (best over the other keys)",
        height=420,
        xaxis_title=a,
        yaxis_title=b,
        xaxis_type="category",
        yaxis_type="category",
        margin={"t": 40, "b": 40},
    )
    return fig


def _line(rows: list[dict[str, Any]], a: str, metric: str) -> go.Figure:
    ok = sorted(_ok(rows, metric), key=lambda r: _order(r[a]))
    fig = go.Figure(go.Scatter(x=[str(r[a]) for r in ok], y=[r[metric] for r in ok]))
    fig.update_layout(title=f"{metric} by {a}", height=360, xaxis_title=a, xaxis_type="category")
    return fig


def _order(value: Any) -> tuple[int, Any]:
    return (0, value) if isinstance(value, int | float) else (1, str(value))


def _shown(value: Any) -> str:
    if value is None:
        return ""
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def _key(value: Any) -> Any:
    return "" if value is None else value
