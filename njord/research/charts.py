"""The report's trader views: the price with every fill on it, a buy-and-hold benchmark
beside the equity, and the trades table.

The price is drawn on the strategy's main timeframe (its longest declared one: a strategy
of 1m and 1h bars is read in hours). A year of minutes is 525,600 bars; the file must stay
small and open fast, so the price is always downsampled: candles up to `CANDLES_UP_TO`
bars of that timeframe, above that one point per bucket of whole bars (its last close)
with the bucket's min and max close as a band. Fills are never dropped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import msgspec
import plotly.graph_objects as go
import pyarrow as pa
import pyarrow.compute as pc

from njord.core.metrics import Metrics, columns_of, compute
from njord.core.money import E8
from njord.core.time import timeframe_ms
from njord.data.history import read_ipc
from njord.store import reads
from njord.store.db import Connection
from njord.store.history import stored_bar_blobs
from njord.store.reads import FillMark, TradeRow

CANDLES_UP_TO = 5000
BUCKETS = 5000
# About 90 bytes a marker: 20,000 keep a year's page under 10 MB beside plotly.js (4.8 MB).
MOST_MARKS = 20_000


class Prices(msgspec.Struct, kw_only=True):
    """The price series as drawn, on the strategy's main timeframe: per bucket (one bar of
    `timeframe`, or several whole ones on a long session) the open of its first bar, its
    last close, and its min and max close."""

    timeframe: str
    ts_ms: list[int]
    close: list[float]
    low: list[float]
    high: list[float]
    candles: dict[str, list[Any]] | None  # ts_ms/open/high/low/close, short sessions only


def when(ts_ms: int) -> datetime:
    return datetime.fromtimestamp(ts_ms / 1000, tz=UTC)


def prices_and_benchmark(
    conn: Connection, *, bars: int, initial: float, timeframe: str, symbol: str | None = None
) -> tuple[Prices, Metrics | None]:
    """One pass over every close: the series on `timeframe` (the strategy's main one:
    reads.main_timeframe), downsampled, and the metrics of buying with all the initial cash
    at the first close and holding (no fees). `symbol`: that symbol's closes, in a
    several-symbol session."""
    length = timeframe_ms(timeframe)
    first_ts, last_ts = reads.equity_span(conn)
    count = 0  # bars of `timeframe` the session spans
    if first_ts is not None and last_ts is not None:
        count = last_ts // length - first_ts // length + 1
    bucket_ms = length * max(1, math.ceil(count / BUCKETS))  # whole bars of `timeframe`
    series = Prices(timeframe=timeframe, ts_ms=[], close=[], low=[], high=[], candles=None)
    first: list[float] = []
    bucket = [-1]

    def held() -> Iterator[tuple[int, float]]:
        for ts, close_e8 in reads.closes(conn, symbol):
            close = close_e8 / E8
            if not first:
                first.append(close)
            if ts // bucket_ms != bucket[0]:
                bucket[0] = ts // bucket_ms
                series.ts_ms.append(ts - ts % length)
                series.close.append(close)
                series.low.append(close)
                series.high.append(close)
            else:
                series.close[-1] = close
                series.low[-1] = min(series.low[-1], close)
                series.high[-1] = max(series.high[-1], close)
            yield ts, initial * close / first[0]

    bar_ms = reads.bar_ms(conn)
    benchmark = compute(
        initial=initial,
        columns=columns_of(held()),
        trade_pnls=[],
        bars_in_market=bars,
        fees=0,
        bar_ms=bar_ms,
    )
    if not first:
        return series, None
    if count <= CANDLES_UP_TO:
        series.candles = _candles(conn, length, symbol)
    return series, benchmark


def _candles(conn: Connection, length: int, symbol: str | None) -> dict[str, list[Any]] | None:
    """The stored bars (`symbol`'s) as candles of `length` ms on the UTC grid (a session's
    last one may be still forming: drawn as far as it got)."""
    blobs = stored_bar_blobs(conn)
    if not blobs:
        return None  # a session that keeps no bars (store.store_bars = false): the line
    bars = pa.Table.from_batches([read_ipc(blob) for blob in blobs])
    if symbol is not None:
        bars = bars.filter(pc.equal(bars.column("symbol"), symbol))
    ts = bars.column("ts_ms")
    start = pc.multiply(pc.divide(ts, length), length)  # integer division: the bar's open
    prices = {c: bars.column(c) for c in ("open", "high", "low", "close")}
    candles = (
        pa.table({"start": start, **prices})
        .group_by("start", use_threads=False)
        .aggregate([("open", "first"), ("high", "max"), ("low", "min"), ("close", "last")])
        .sort_by("start")
    )
    return {
        "ts_ms": candles.column("start").to_pylist(),
        **{c: candles.column(f"{c}_{how}").to_pylist() for c, how in _HOW.items()},
    }


_HOW = {"open": "first", "high": "max", "low": "min", "close": "last"}


def largest(marks: list[FillMark], most: int) -> list[FillMark]:
    """At most `most` fills, those of the trades with the largest |net P&L| first, back
    in time order (a session trading every bar would otherwise outgrow the page)."""
    if len(marks) <= most:
        return marks

    def weight(mark: FillMark) -> float:
        return float(abs(mark.pnl if mark.pnl is not None else mark.opened or 0.0))

    kept = sorted(range(len(marks)), key=lambda i: (-weight(marks[i]), i))[:most]
    return [marks[i] for i in sorted(kept)]


def price_figure(
    prices: Prices, marks: list[FillMark], symbol: str, *, most: int = MOST_MARKS
) -> go.Figure:
    fig = go.Figure()
    total, marks = len(marks), largest(marks, most)
    if prices.candles is not None:
        c = prices.candles
        fig.add_trace(
            go.Candlestick(
                x=[when(t) for t in c["ts_ms"]],
                open=c["open"],
                high=c["high"],
                low=c["low"],
                close=c["close"],
                name=symbol,
                increasing={"line": {"color": "#7f7f7f"}},
                decreasing={"line": {"color": "#bcbcbc"}},
            )
        )
    else:
        x = [when(t) for t in prices.ts_ms]
        band = {"width": 0, "color": "rgba(127,127,127,0.25)"}
        fig.add_trace(go.Scatter(x=x, y=prices.high, line=band, hoverinfo="skip", name="max"))
        fig.add_trace(
            go.Scatter(
                x=x,
                y=prices.low,
                line=band,
                fill="tonexty",
                fillcolor="rgba(127,127,127,0.25)",
                hoverinfo="skip",
                name="min",
            )
        )
        fig.add_trace(go.Scatter(x=x, y=prices.close, line={"color": "#555"}, name="close"))
    for side, symbol_name, color in (
        ("BUY", "triangle-up", "#2ca02c"),
        ("SELL", "triangle-down", "#d62728"),
    ):
        fig.add_trace(_marks([m for m in marks if m.side == side], side, symbol_name, color))
    shown = f"{prices.timeframe} candles" if prices.candles is not None else "close, min/max band"
    which = "every fill" if total == len(marks) else f"{len(marks):,} of {total:,} fills"
    fig.update_layout(
        title=f"{symbol} ({shown}) with {which}",
        height=460,
        margin={"t": 40, "b": 30},
        xaxis_rangeslider_visible=False,
        legend={"orientation": "h"},
    )
    return fig


def _marks(marks: list[FillMark], side: str, symbol: str, color: str) -> go.Scatter:
    hover = [
        [
            m.side,
            f"{m.qty:.8g}",
            f"{m.price:,.2f}",
            f"{m.fee:,.4f}",
            "open" if m.pnl is None else f"{m.pnl:,.2f}",
        ]
        for m in marks
    ]
    return go.Scatter(
        x=[when(m.ts_ms) for m in marks],
        y=[m.price for m in marks],
        mode="markers",
        name=f"{side} fills",
        marker={"symbol": symbol, "size": 9, "color": color},
        customdata=hover,
        hovertemplate="%{x}<br>%{customdata[0]} %{customdata[1]} @ %{customdata[2]}"
        "<br>fee %{customdata[3]}<br>trade P&L %{customdata[4]}<extra></extra>",
    )


def benchmark_line(prices: Prices, initial: float) -> go.Scatter:
    first = prices.close[0] if prices.close else 1.0
    return go.Scatter(
        x=[when(t) for t in prices.ts_ms],
        y=[round(initial * c / first, 2) for c in prices.close],
        name="buy and hold",
        line={"color": "#ff7f0e", "dash": "dot"},
    )


def duration(ms: float | None) -> str:
    if ms is None:
        return "n/a"
    minutes = int(ms // 60_000)
    days, rest = divmod(minutes, 1440)
    return f"{days}d {rest // 60}h {rest % 60}m" if days else f"{rest // 60}h {rest % 60}m"


def trades_table(trades: list[TradeRow], total: int) -> str:
    header = ["trade", "direction", "entry", "exit", "duration", "qty", "entry price"]
    header += ["exit price", "net P&L", "fees"]
    body = []
    for t in trades:
        cells = [
            str(t.trade),
            t.direction,
            when(t.entry_ms).strftime("%Y-%m-%d %H:%M"),
            when(t.exit_ms).strftime("%Y-%m-%d %H:%M"),
            duration(t.exit_ms - t.entry_ms),
            f"{t.qty:.8g}",
            f"{t.entry_price:.2f}",
            f"{t.exit_price:.2f}",
            f"{t.net_pnl:.2f}",
            f"{t.fees:.2f}",
        ]
        keys = [t.trade, t.direction, t.entry_ms, t.exit_ms]
        keys += [t.exit_ms - t.entry_ms, t.qty, t.entry_price, t.exit_price]
        keys += [t.net_pnl, t.fees]
        body.append(list(zip(cells, keys, strict=True)))
    note = f"the {len(trades)} largest by |net P&L| of {total}" if total > len(trades) else ""
    return sortable_table(header, body, caption=note)


def sortable_table(
    header: list[str], body: list[list[tuple[str, Any]]], *, caption: str = ""
) -> str:
    """An HTML table whose columns sort on a click (each cell: shown text, sort key)."""
    head = "".join(f"<th onclick='njSort(this)'>{html.escape(h)}</th>" for h in header)
    rows = "".join(
        "<tr>"
        + "".join(f"<td data-k='{html.escape(str(k))}'>{html.escape(v)}</td>" for v, k in row)
        + "</tr>"
        for row in body
    )
    cap = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return (
        f"<table class='sortable'>{cap}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"
    )


SORT_SCRIPT = """<script>
function njSort(th) {
  const table = th.closest('table'), body = table.tBodies[0];
  const i = Array.from(th.parentNode.children).indexOf(th);
  const down = th.dataset.dir !== 'down'; th.dataset.dir = down ? 'down' : 'up';
  const key = r => { const k = r.children[i].dataset.k; const n = parseFloat(k);
    return isNaN(n) ? k : n; };
  Array.from(body.rows).sort((a, b) => { const x = key(a), y = key(b);
    return (x < y ? -1 : x > y ? 1 : 0) * (down ? -1 : 1); }).forEach(r => body.appendChild(r));
}
</script>"""
