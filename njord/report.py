"""`njord report`: one self-contained HTML file per session, readable offline.

plotly draws the charts (interactive: zoom, hover) and its JavaScript is inlined once, so
the file makes no network request. Works for any session db: backtest, paper or shadow.
"""

from __future__ import annotations

import html
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

import msgspec
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from njord import summary
from njord.config import stored_config
from njord.core.metrics import Metrics
from njord.core.money import E8, to_e8
from njord.data.qc import QcSummary
from njord.errors import ConfigError
from njord.research import charts
from njord.store import db, reads
from njord.store.db import Connection
from njord.store.runs import SqliteManifestStore

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def build(db_path: Path) -> str:
    conn = db.open_reader(db_path)
    try:
        return render(conn, db_path)
    finally:
        conn.close()


def compare(paths: list[Path]) -> str:
    """Several sessions side by side: their returns on one chart, their metrics as
    columns (each labelled by its file name and run id)."""
    fig = go.Figure()
    columns: list[tuple[str, dict[str, str]]] = []
    for path in paths:
        conn = db.open_reader(path)
        try:
            manifest = SqliteManifestStore(conn).load()
            if manifest is None:
                raise ConfigError(f"{path} holds no session")
            initial = to_e8(stored_config(manifest.config_toml).runtime.initial_cash)
            points = reads.sampled_equity(conn)
            rows = summary.rows(reads.metrics(conn, initial), *_facts(conn))
        finally:
            conn.close()
        label = f"{path.name} ({manifest.run_id})"
        fig.add_trace(
            go.Scatter(
                x=_dates(points),
                y=[(e / (initial / E8) - 1) * 100 for _, e in points],
                name=label,
            )
        )
        columns.append((label, dict(rows)))
    fig.update_layout(title="Return (%)", height=480, margin={"t": 40, "b": 30})
    order = list(columns[0][1])
    table = [(name, *(values.get(name, "") for _, values in columns)) for name in order]
    chart = fig.to_html(full_html=False, include_plotlyjs=True, config={"displaylogo": False})
    body = f"""<h1>njord: {len(paths)} sessions compared</h1>
{chart}
<h2>Metrics</h2>{_table(table, ("", *(label for label, _ in columns)))}"""
    return page("njord compare", body)


def _facts(conn: Connection) -> tuple[reads.Status, str]:
    """The session's status and its QC line."""
    qc = reads.qc(conn)
    return reads.session_status(conn), f"{qc.policy}: {qc.gaps} gaps" if qc else "n/a: 0 gaps"


def render(conn: Connection, db_path: Path) -> str:
    """The report from an open connection (the backtest passes its own, before closing)."""
    manifest = SqliteManifestStore(conn).load()
    if manifest is None:
        raise ConfigError(f"{db_path} holds no session")
    config = stored_config(manifest.config_toml)
    initial = to_e8(config.runtime.initial_cash)
    points = reads.sampled_equity(conn)
    months = reads.monthly_equity(conn)
    pnls = reads.trade_net_pnls(conn)
    metrics = reads.metrics(conn, initial)
    facts, qc_line = _facts(conn)
    qc = reads.qc(conn)
    # Several symbols: a price chart each; the benchmark holds the first one.
    several = config.data.session_symbols
    symbols: list[str | None] = list(several) if len(several) > 1 else [None]
    charted = [
        charts.prices_and_benchmark(
            conn,
            bars=facts.bars,
            initial=initial / E8,
            timeframe=reads.main_timeframe(conn),
            symbol=symbol,
        )
        for symbol in symbols
    ]
    prices, benchmark = charted[0]
    equity = _equity(points, initial / E8)
    equity.add_trace(charts.benchmark_line(prices, initial / E8), row=1, col=1)
    figures = [
        *(
            charts.price_figure(shown, reads.fill_marks(conn, symbol), symbol or config.data.symbol)
            for (shown, _), symbol in zip(charted, symbols, strict=True)
        ),
        equity,
        _monthly(months, initial / E8),
        _histogram(pnls),
    ]
    html_charts = [
        fig.to_html(full_html=False, include_plotlyjs=(i == 0), config={"displaylogo": False})
        for i, fig in enumerate(figures)
    ]
    stats = reads.trade_stats(conn)
    rows = _with_benchmark(summary.rows(metrics, facts, qc_line), benchmark, stats)
    trades = charts.trades_table(reads.largest_trades(conn), stats.trades)
    trades += _breakdown(reads.breakdown(conn))
    return _page(
        manifest.run_id, manifest.mode, html_charts, rows, qc, manifest.config_toml, trades
    )


def _breakdown(rows: list[reads.BreakdownRow]) -> str:
    """Several symbols or strategies: results per strategy and symbol, and the portfolio."""
    if not rows:
        return ""
    head = ("strategy", "symbol", "fills", "bought", "sold", "fees", "position", "P&L")
    cells = [
        (
            r.strategy_id,
            r.symbol,
            str(r.fills),
            f"{r.bought:,.5f}",
            f"{r.sold:,.5f}",
            f"{r.fees:,.2f}",
            f"{r.position:,.5f}",
            f"{r.pnl:,.2f}",
        )
        for r in rows
    ]
    return f"<h2>By strategy and symbol</h2>{_table(cells, head)}"


def _with_benchmark(
    rows: list[tuple[str, str]], benchmark: Metrics | None, stats: reads.TradeStats
) -> list[tuple[str, str, str]]:
    """The strategy's rows with buy-and-hold beside the ones it has, and trade stats."""
    held = dict(summary.metric_rows(benchmark)) if benchmark is not None else {}
    out = [(name, value, held.get(name, "")) for name, value in rows]
    at = next(i for i, (name, _, _) in enumerate(out) if name == "trades") + 1
    expectancy = stats.expectancy
    out[at:at] = [
        ("avg trade duration", charts.duration(stats.avg_duration_ms), ""),
        (
            "expectancy (net P&L per trade)",
            "n/a" if expectancy is None else f"{expectancy:,.2f}",
            "",
        ),
    ]
    return out


def _dates(points: list[tuple[int, float]]) -> list[datetime]:
    return [datetime.fromtimestamp(t / 1000, tz=UTC) for t, _ in points]


def _equity(points: list[tuple[int, float]], initial: float) -> go.Figure:
    shown = points
    peak, drawdown = initial, []
    for _, equity in shown:
        peak = max(peak, equity)
        drawdown.append(round((equity / peak - 1) * 100, 4))  # the page carries text: short
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
        go.Scatter(
            x=dates, y=[round(e, 2) for _, e in shown], name="equity", line={"color": "#1f77b4"}
        ),
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


def _table(rows: Sequence[tuple[str, ...]], head: tuple[str, ...] = ()) -> str:
    top = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join(
        f"<tr><th>{html.escape(k)}</th>"
        + "".join(f"<td>{html.escape(v)}</td>" for v in vs)
        + "</tr>"
        for k, *vs in rows
    )
    return f"<table>{'<tr>' + top + '</tr>' if top else ''}{body}</table>"


def _page(
    run_id: str,
    mode: str,
    figures: list[str],
    rows: list[tuple[str, str, str]],
    qc: QcSummary | None,
    config_toml: str,
    trades: str,
) -> str:
    shown = msgspec.structs.asdict(qc) if qc is not None else {}
    qc_rows = [(k, "" if v is None else str(v)) for k, v in shown.items()]
    body = f"""<h1>njord {html.escape(mode)} session {html.escape(run_id)}</h1>
{"".join(figures)}
<div class="cols"><div><h2>Metrics</h2>{_table(rows, ("", "strategy", "buy and hold"))}</div>
<div><h2>Data quality</h2>{_table(qc_rows)}</div></div>
<h2>Trades</h2>{trades}
<h2>Effective config</h2><pre>{html.escape(config_toml)}</pre>"""
    return page(f"njord {run_id}", body)


def page(title: str, body: str) -> str:
    """A self-contained page: the style, sortable tables' script, and the body."""
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 24px auto; max-width: 1100px; color: #222; }}
h1 {{ font-size: 20px; }} h2 {{ font-size: 16px; margin-top: 28px; }}
table {{ border-collapse: collapse; }}
th, td {{ padding: 3px 12px; border-bottom: 1px solid #eee; }}
th {{ text-align: left; font-weight: 600; }}
td {{ text-align: right; font-variant-numeric: tabular-nums; }}
table.sortable th {{ cursor: pointer; }}
caption {{ text-align: left; color: #666; padding: 4px 0; }}
.cols {{ display: flex; gap: 40px; flex-wrap: wrap; }}
pre {{ background: #f6f6f6; padding: 12px; overflow-x: auto; }}
</style>{charts.SORT_SCRIPT}</head><body>
{body}
</body></html>
"""
